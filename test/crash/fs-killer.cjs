// Preloaded into the CLI under test (`node --require test/crash/fs-killer.cjs bin/kair.js …`):
// counts the file-system operations that change something under `.kair/` and SIGKILLs the
// process right after the Nth one. It patches the `node:fs` module object before the bundles
// load, so kair's own calls (which read `fs.x` at call time), write-file-atomic's (which does the
// same) and proper-lockfile's (kair hands it functions it took from node:fs at load time, i.e.
// these wrappers) are all seen; the harness checks that each kind appears in the counted list.
//
//   KAIR_CRASH_AT=N            SIGKILL right after the Nth counted operation
//   KAIR_CRASH_SIGNAL=SIGINT   send that signal there instead of SIGKILL (an interrupt, which a
//                              run handles at its next step boundary)
//   KAIR_CRASH_AFTER_MS=T      SIGKILL T ms after the first operation under .kair/ (random
//                              instants: covers SQLite, whose writes are native and invisible here)
//   KAIR_CRASH_COUNT_FILE=F    at exit, write {total, duration_ms (from the first operation under
//                              .kair/ to the exit), ops: [[op, path]…]} to F
//
// Operations that can change what is on disk are seen (opening for writing, writing, renaming,
// creating, removing, truncating, syncing, chmod/chown/utimes). Kill points are those that change
// names or contents: a kill right after a read, a stat, a close, an fsync or a metadata change
// leaves exactly the files a kill after the previous kill point leaves, so those are listed in
// the count file but not counted (the harness keeps the same rule in isKillPoint).
'use strict';
const fs = require('node:fs');

const crashAt = Number(process.env.KAIR_CRASH_AT || 0);
const crashSignal = process.env.KAIR_CRASH_SIGNAL || 'SIGKILL';
const countFile = process.env.KAIR_CRASH_COUNT_FILE || '';
const afterMs = process.env.KAIR_CRASH_AFTER_MS;
const MARK = `${require('node:path').sep}.kair`;

const ops = [];
let killPoints = 0;
const kairFds = new Map();
const SAME_FILES_AS_BEFORE = new Set(['fsyncSync', 'fdatasyncSync', 'chmodSync', 'chownSync', 'fchmodSync', 'fchownSync', 'utimesSync', 'lutimesSync', 'futimesSync']);

function underKair(p) {
  if (typeof p !== 'string') {
    if (p instanceof URL) p = p.pathname;
    else if (Buffer.isBuffer(p)) p = p.toString();
    else return false;
  }
  const i = p.indexOf(MARK);
  return i >= 0 && (p.length === i + MARK.length || p[i + MARK.length] === '/');
}

function short(p) {
  const s = String(p);
  const i = s.indexOf(MARK);
  return i >= 0 ? s.slice(i + 1) : s;
}

let firstOpAt = 0;
let startTimer = null;

function count(op, target) {
  if (firstOpAt === 0) {
    firstOpAt = Date.now();
    if (startTimer) startTimer();
  }
  ops.push([op, target]);
  if (SAME_FILES_AS_BEFORE.has(op)) return;
  killPoints += 1;
  if (killPoints === crashAt) process.kill(process.pid, crashSignal);
}

const WRITE_FLAGS = /[wa+]/;
function opensForWriting(flags) {
  if (flags === undefined || flags === null) return false;
  if (typeof flags === 'number') return (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC)) !== 0;
  return WRITE_FLAGS.test(String(flags));
}

function wrap(name, classify) {
  const orig = fs[name];
  if (typeof orig !== 'function') return;
  fs[name] = function patched(...args) {
    const target = classify(args);
    const result = orig.apply(this, args);
    if (name === 'openSync' && typeof result === 'number' && underKair(args[0])) kairFds.set(result, short(args[0]));
    if (name === 'closeSync') kairFds.delete(args[0]);
    if (target !== null) count(name, target);
    return result;
  };
}

const byPath = (i) => (args) => (underKair(args[i]) ? short(args[i]) : null);
const byPathOrFd = (args) => (typeof args[0] === 'number' ? (kairFds.has(args[0]) ? kairFds.get(args[0]) : null) : byPath(0)(args));
const byFd = (args) => (kairFds.has(args[0]) ? kairFds.get(args[0]) : null);
const eitherPath = (args) => (underKair(args[0]) || underKair(args[1]) ? `${short(args[0])} -> ${short(args[1])}` : null);

wrap('openSync', (args) => (underKair(args[0]) && opensForWriting(args[1]) ? short(args[0]) : null));
for (const name of ['writeSync', 'writevSync', 'fsyncSync', 'fdatasyncSync', 'ftruncateSync', 'fchmodSync', 'fchownSync', 'futimesSync']) wrap(name, byFd);
for (const name of ['writeFileSync', 'appendFileSync']) wrap(name, byPathOrFd);
for (const name of ['mkdirSync', 'mkdtempSync', 'rmdirSync', 'rmSync', 'unlinkSync', 'truncateSync', 'chmodSync', 'chownSync', 'utimesSync', 'lutimesSync']) wrap(name, byPath(0));
for (const name of ['renameSync', 'linkSync', 'symlinkSync', 'copyFileSync', 'cpSync']) wrap(name, eitherPath);

// kair writes synchronously. An asynchronous write under .kair/ could not be killed at a precise
// point, so it is recorded as `async:<name>` for the harness to refuse.
const ASYNC = ['open', 'writeFile', 'appendFile', 'rename', 'mkdir', 'rm', 'rmdir', 'unlink', 'copyFile', 'truncate', 'link', 'symlink'];
for (const [api, prefix] of [[fs, 'async:'], [fs.promises, 'async:promises.']]) {
  for (const name of ASYNC) {
    const orig = api[name];
    if (typeof orig !== 'function') continue;
    api[name] = function patched(...args) {
      if (underKair(args[0]) || underKair(args[1])) ops.push([prefix + name, short(args[0])]);
      return orig.apply(this, args);
    };
  }
}

if (countFile) {
  process.on('exit', () => {
    fs.writeFileSync(countFile, JSON.stringify({ total: killPoints, duration_ms: firstOpAt ? Date.now() - firstOpAt : 0, ops }));
  });
}

if (afterMs !== undefined && afterMs !== '') {
  // A worker thread, because kair works synchronously: a timer on the main thread would only
  // fire once the command had finished. T counts from the first operation under .kair/, where
  // the main thread waits for the worker to be running (its start-up takes longer than a short
  // command; it cannot start while a preload blocks, hence not here).
  const { Worker } = require('node:worker_threads');
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const w = new Worker(
    `const { workerData } = require('node:worker_threads');
     const flags = workerData.flags;
     Atomics.store(flags, 0, 1);
     Atomics.notify(flags, 0);
     Atomics.wait(flags, 1, 0);
     const wait = Number(workerData.ms);
     if (wait > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
     process.kill(workerData.pid, 'SIGKILL');`,
    { eval: true, workerData: { flags, ms: afterMs, pid: process.pid } },
  );
  w.unref();
  startTimer = () => {
    Atomics.wait(flags, 0, 0, 10_000);
    Atomics.store(flags, 1, 1);
    Atomics.notify(flags, 1);
  };
}
