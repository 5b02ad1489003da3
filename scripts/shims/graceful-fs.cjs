// proper-lockfile's default `fs`, in the bundle. graceful-fs queues async fs calls that fail
// with EMFILE; kair takes its locks with the synchronous API and passes proper-lockfile its own
// `fs` (src/store/fs/lock.ts), so the bundle need not load graceful-fs, which patches a clone of
// node:fs and loads node:stream and node:assert on the way.
'use strict';
module.exports = require('node:fs');
