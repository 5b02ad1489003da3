#!/usr/bin/env node
// A CommonJS launcher (bin/package.json) so start-up skips the ESM loader. It compiles the
// bundles with a V8 code cache kept next to them (Node 20 has no module.enableCompileCache):
// compiling the bundle was the largest single start-up cost. Any cache problem falls back to a
// plain compile; the cache is an optimisation only.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
const { isAscii } = require('node:buffer');

// The build writes the bundle's content hash on its first line. V8 checks a cache against its
// source by length (and flags), not content, so a cache named by V8 version alone served a
// rebuilt bundle of the same length its old compiled code. Named by the content hash, a rebuilt
// bundle never finds a cache of another build, and nothing is hashed here at start-up.
const HASH_LINE = /^\/\/ kair-bundle-sha256 ([0-9a-f]{64})$/;

function loadCached(file) {
  // An ASCII bundle (kair.cjs and kair-lifecycle.cjs are; test/e2e/write-path.test.ts checks)
  // becomes a string without UTF-8 decoding: half the time of reading it as 'utf8'.
  const bytes = fs.readFileSync(file);
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
  const nl = source.indexOf('\n');
  const hash = HASH_LINE.exec(nl === -1 ? '' : source.slice(0, nl));
  // A bundle without the line (not built by scripts/build.mjs) runs without a cache.
  const cacheFile = hash ? `${file}.${hash[1].slice(0, 32)}.${process.versions.v8}.cache` : null;
  let cachedData;
  try {
    cachedData = cacheFile ? fs.readFileSync(cacheFile) : undefined;
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  // The build sets KAIR_EXTEND_CODE_CACHE to write back a cache that was accepted, so one cache
  // holds what several commands compiled (the cache of an accepted script keeps what it had).
  if (cacheFile && (cachedData === undefined || script.cachedDataRejected || process.env.KAIR_EXTEND_CODE_CACHE === '1')) {
    process.once('exit', () => {
      try {
        const tmp = `${cacheFile}.${process.pid}`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch {
        // read-only install: run without a cache
      }
    });
  }
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  return mod.exports;
}

// The first bundle loads the others (src/cli/load-lazy.ts) through this when a command needs them.
globalThis.__kairLoadCached = loadCached;
loadCached(path.join(__dirname, '..', 'dist', 'kair.cjs'));
