// Counts the fsyncs a kair process makes from JavaScript, for the fsync budget test and
// `npm run bench`. Load it with NODE_OPTIONS="--require /abs/path/fsync-count.cjs" and set
// KAIR_FSYNC_COUNT_FILE: on exit the process appends one JSON line
// {pid, argv (script and arguments), file, dir, fdatasync} to that file (appendFileSync: no fsync of its own).
//
// Counted: fs.fsyncSync / fs.fsync (split into file and directory descriptors by an fstat) and
// fs.fdatasyncSync / fs.fdatasync. kair and write-file-atomic call them as properties of the
// node:fs module object at call time, so replacing the properties here sees every call.
// Not counted: the fsyncs SQLite makes inside better-sqlite3's C++ (WAL commits with
// synchronous=FULL, checkpoints). Those are counted from the kernel's side with strace
// (test/helpers/fsync-count.ts), so nothing here depends on better-sqlite3's internals.
'use strict';
const fs = require('node:fs');

const out = process.env.KAIR_FSYNC_COUNT_FILE;
const counts = { file: 0, dir: 0, fdatasync: 0 };

function isDir(fd) {
  try {
    return fs.fstatSync(fd).isDirectory();
  } catch {
    return false;
  }
}

const { fsyncSync, fsync, fdatasyncSync, fdatasync } = fs;
fs.fsyncSync = function (fd) {
  counts[isDir(fd) ? 'dir' : 'file']++;
  return fsyncSync.apply(this, arguments);
};
fs.fsync = function (fd) {
  counts[isDir(fd) ? 'dir' : 'file']++;
  return fsync.apply(this, arguments);
};
fs.fdatasyncSync = function () {
  counts.fdatasync++;
  return fdatasyncSync.apply(this, arguments);
};
fs.fdatasync = function () {
  counts.fdatasync++;
  return fdatasync.apply(this, arguments);
};

if (out) {
  process.on('exit', () => {
    try {
      fs.appendFileSync(out, JSON.stringify({ pid: process.pid, argv: process.argv.slice(1), ...counts }) + '\n');
    } catch {
      // a count that cannot be written is missing, which the reader reports
    }
  });
}
