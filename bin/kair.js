#!/usr/bin/env node
// A CommonJS launcher (bin/package.json) so start-up skips the ESM loader; it loads the bundle.
'use strict';
const mod = require('node:module');
if (typeof mod.enableCompileCache === 'function') {
  try {
    mod.enableCompileCache();
  } catch {
    // the cache is an optimisation only
  }
}
require('../dist/kair.cjs');
