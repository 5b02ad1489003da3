/**
 * One writer per contract: a proper-lockfile lock (an atomic mkdir of `locks/<name>.lock`) with
 * the holder's record inside it. A lock is taken from its holder only when the holder is provably
 * dead, never because of its age; recoverers take turns on `locks/<name>.recover` and move a dead
 * lock aside by renaming it, so none of them can remove a lock a new owner has just taken.
 * docs/decisions/013-locks.md has the reasoning.
 */
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { kairError } from '../../domain/errors.js';
import { failpoint, stoppoint } from '../failpoint.js';
import { readTextFile } from './contracts.js';
import type { ProcessIdentity } from './pid.js';
import { isPidAlive, processVerdict, selfIdentity } from './pid.js';

/** Who holds a lock (or is recovering one): the process, and what it is doing since when. */
export interface Holder extends ProcessIdentity {
  actor: string;
  command: string;
  since: string;
}

export interface LockWho {
  actor: string;
  command: string;
  now: () => string;
}

export interface LockHandle {
  release(): void;
}

/** Lock names: a contract may be called `index` or `propose`, so kair's own locks start with `_`. */
export const contractLock = (id: string) => `contract-${id}`;
export const INDEX_LOCK = '_index';
export const PROPOSE_LOCK = '_propose';

/** A lock folder that has had no holder record for this long is dead (its taker died in between). */
export const NO_HOLDER_DEAD_MS = 2000;

const HOLDER_FILE = 'holder.json';

/**
 * proper-lockfile's options. Its staleness is the lock folder's mtime, which only its update timer
 * refreshes, and a synchronous holder never runs timers: any finite `stale` hands the lock of a
 * holder that stalls that long to a second writer. `stale: Infinity` makes its check
 * (`mtime < now - stale`) never true. `update` must then be given: by default it is `stale / 2`,
 * and setTimeout(Infinity) prints a TimeoutOverflowWarning and fires after 1 ms. The largest
 * timer delay, never reached, keeps the timer silent (it is unref'd and cleared on release).
 * test/unit/lock-library.test.ts fails if a version of the library treats these otherwise.
 */
export const LOCK_LIBRARY_OPTIONS = { realpath: false, stale: Infinity, update: 2 ** 31 - 1, onCompromised: () => {} };

const sleepBuf = new Int32Array(new SharedArrayBuffer(4));
export function sleepMs(ms: number): void {
  Atomics.wait(sleepBuf, 0, 0, ms);
}

/** Removes a file that may already be gone (cheaper than rmSync, which loads its rimraf). */
function unlinkIfThere(file: string): void {
  try {
    unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A record as written by `holderRecord`; anything else (empty, torn, edited) counts as none. */
export function parseHolder(text: string): Holder | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObj(v)) return null;
  const str = (k: string) => typeof v[k] === 'string';
  if (!str('host') || !str('actor') || !str('command') || !str('since')) return null;
  if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) return null;
  if (v.boot_id !== null && !str('boot_id')) return null;
  if (v.pid_start !== null && !Number.isSafeInteger(v.pid_start)) return null;
  // pid_ns came after the other fields; a record without it names no namespace.
  if (v.pid_ns === undefined) return { ...(v as unknown as Holder), pid_ns: null };
  if (v.pid_ns !== null && !str('pid_ns')) return null;
  return v as unknown as Holder;
}

function holderRecord(who: LockWho): Holder {
  return { ...selfIdentity(), actor: who.actor, command: who.command, since: who.now() };
}

/** What a lock (or recover file) looks like now; null when it does not exist. */
interface Seen {
  holder: Holder | null;
  /** The record's exact text, to tell it from a later record of the same process. */
  text: string | null;
  ageMs: number;
  ino: number;
}


function look(path: string, recordFile: string): Seen | null {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const text = readTextFile(recordFile);
  const holder = text === null ? (recordFile === join(path, HOLDER_FILE) ? unrenamedRecord(path) : null) : parseHolder(text);
  return { holder, text, ageMs: Date.now() - st.mtimeMs, ino: st.ino };
}

/**
 * The record of a holder killed between writing `holder.json.<pid>.tmp` and renaming it: whole,
 * or, cut short, at least its writer's pid (on this host; kill -0 decides). Without it a dead
 * holder's lock would wait out the 2 s of a lock with no record.
 */
function unrenamedRecord(dir: string): Holder | null {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  for (const n of names) {
    const m = /^holder\.json\.(\d+)\.tmp$/.exec(n);
    if (!m) continue;
    return parseHolder(readTextFile(join(dir, n)) ?? '') ?? { ...selfIdentity(), pid: Number(m[1]), pid_start: null, actor: 'unknown', command: 'unknown', since: '' };
  }
  return null;
}

export type Verdict = 'live' | 'dead' | 'remote' | 'young';

/**
 * Whether the holder a record names is provably dead (pid.ts: another boot, its pid gone or
 * reused). A record of another host is never judged. Without a record, only age speaks: `young`
 * until 2 s.
 */
export function judge(holder: Holder | null, ageMs: number): Verdict {
  if (!holder) return ageMs >= NO_HOLDER_DEAD_MS ? 'dead' : 'young';
  const v = processVerdict(holder);
  return v === 'alive' ? 'live' : v;
}

const grave = (path: string) => `${path}.dead-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

/** Removes what recoverers of `name` killed between their rename and their delete left behind. */
function sweepGraves(locksDir: string, name: string): void {
  for (const f of readdirSync(locksDir)) {
    const m = f.startsWith(`${name}.`) ? /^(?:lock|recover)\.dead-(\d+)-[a-z0-9]+$/.exec(f.slice(name.length + 1)) : null;
    if (m && !isPidAlive(Number(m[1]))) rmSync(join(locksDir, f), { recursive: true, force: true });
  }
}

/** Tests widen the windows between reading a lock's record, judging it and acting on it, so that recoverers race. */
function testDelay(): void {
  const ms = Number(process.env.KAIR_TEST_RECOVER_DELAY_MS);
  if (ms > 0) sleepMs(ms);
}

/**
 * Takes `<name>.recover` with O_EXCL and writes this process's record into it. An existing one
 * whose creator is provably dead (or, with `force`, on another host) is moved aside first; if the
 * file moved turns out not to be the one judged (another recoverer replaced it meanwhile), it is
 * put back with link(), which never overwrites. Returns the file's inode, or `busy` with the
 * record of the recoverer that holds it.
 */
function takeRecoverFile(file: string, who: LockWho, force: boolean): { ino: number } | { busy: Holder | null } {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      try {
        writeSync(fd, JSON.stringify(holderRecord(who)));
      } finally {
        closeSync(fd);
      }
      return { ino: statSync(file).ino };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const seen = look(file, file);
    if (!seen) continue;
    const verdict = judge(seen.holder, seen.ageMs);
    if (verdict !== 'dead' && !(force && verdict === 'remote')) return { busy: seen.holder };
    const moved = grave(file);
    try {
      renameSync(file, moved);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    if (statSync(moved).ino !== seen.ino || readTextFile(moved) !== seen.text) {
      try {
        linkSync(moved, file);
      } catch {
        // a third recoverer created one meanwhile: it holds the file now, and the one moved
        // here finds it is no longer its own before it acts (ownsRecoverFile).
      }
    }
    unlinkIfThere(moved);
  }
  return { busy: null };
}

function ownsRecoverFile(file: string, ino: number): boolean {
  try {
    return statSync(file).ino === ino;
  } catch {
    return false;
  }
}

function releaseRecoverFile(file: string, ino: number): void {
  if (ownsRecoverFile(file, ino)) unlinkIfThere(file);
}

export type BreakResult = { removed: true; holder: Holder | null } | { removed: false; reason: 'gone' } | { removed: false; reason: 'busy'; holder: Holder | null; verdict: Verdict | 'recovering' };

/**
 * Removes the lock `name` if its holder is provably dead (or, with `force`, on another host), as
 * one recoverer at a time: under `<name>.recover` the record is read again and judged, then the
 * lock folder is renamed to a unique `<name>.lock.dead-…` name and deleted. If the folder renamed
 * is not the one judged, it is put back.
 */
export function breakLock(locksDir: string, name: string, who: LockWho, force = false): BreakResult {
  const lockDir = join(locksDir, `${name}.lock`);
  const recoverFile = join(locksDir, `${name}.recover`);
  if (!look(lockDir, join(lockDir, HOLDER_FILE))) return { removed: false, reason: 'gone' };
  const taken = takeRecoverFile(recoverFile, who, force);
  if ('busy' in taken) return { removed: false, reason: 'busy', holder: taken.busy, verdict: 'recovering' };
  try {
    sweepGraves(locksDir, name);
    const seen = look(lockDir, join(lockDir, HOLDER_FILE));
    if (!seen) return { removed: false, reason: 'gone' };
    const verdict = judge(seen.holder, seen.ageMs);
    if (verdict !== 'dead' && !(force && verdict === 'remote')) return { removed: false, reason: 'busy', holder: seen.holder, verdict };
    if (!ownsRecoverFile(recoverFile, taken.ino)) return { removed: false, reason: 'busy', holder: null, verdict: 'recovering' };
    const moved = grave(lockDir);
    try {
      renameSync(lockDir, moved);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { removed: false, reason: 'gone' };
      throw e;
    }
    if (statSync(moved).ino !== seen.ino || readTextFile(join(moved, HOLDER_FILE)) !== seen.text) {
      // Not the lock judged but a new owner's (the recover file makes this unreachable unless a
      // recoverer was wrongly judged dead): give it back unless yet another owner took the name.
      try {
        statSync(lockDir);
        rmSync(moved, { recursive: true, force: true });
      } catch {
        renameSync(moved, lockDir);
      }
      return { removed: false, reason: 'gone' };
    }
    rmSync(moved, { recursive: true, force: true });
    return { removed: true, holder: seen.holder };
  } finally {
    releaseRecoverFile(recoverFile, taken.ino);
  }
}

/** The holder record of lock `name` as it is now (null: no lock, or a lock without a record). */
export function lockHolder(locksDir: string, name: string): { exists: boolean; holder: Holder | null; verdict: Verdict | null } {
  const seen = look(join(locksDir, `${name}.lock`), join(locksDir, `${name}.lock`, HOLDER_FILE));
  return seen ? { exists: true, holder: seen.holder, verdict: judge(seen.holder, seen.ageMs) } : { exists: false, holder: null, verdict: null };
}

/**
 * The `fs` given to proper-lockfile: the synchronous calls its sync API makes, from node:fs.
 * Not its default graceful-fs, whose queueing of async calls on EMFILE does nothing for a lock
 * taken synchronously (scripts/build.mjs leaves it out of the bundle), and not node:fs whole,
 * which proper-lockfile copies on every lock, loading node:fs's stream classes on the way.
 */
export const lockFs = { mkdirSync, realpathSync, rmdirSync, statSync, utimesSync };

function describeHolder(name: string, holder: Holder | null, verdict: Verdict | 'recovering' | null): string {
  if (verdict === 'recovering') return `${name} is being recovered by another process`;
  if (!holder) return `${name} is being taken by another process (no holder record yet)`;
  return `${name} is locked by pid ${holder.pid} on ${holder.host} (actor ${holder.actor}, command ${holder.command}, since ${holder.since})`;
}

/** How a person removes the lock `name` by hand. */
function unlockHint(name: string): string {
  if (name === INDEX_LOCK) return 'kair unlock --index --force';
  if (name.startsWith('contract-')) return `kair unlock ${name.slice('contract-'.length)} --force`;
  if (name === PROPOSE_LOCK) return 'kair unlock --propose --force';
  return `rm -r .kair/locks/${name}.lock`;
}

export function lockBusy(name: string, holder: Holder | null, verdict: Verdict | 'recovering' | null, timeoutMs: number) {
  const hint =
    verdict === 'remote'
      ? `; it runs on another host (or in another container), so kair cannot tell whether it is alive: if it is not, \`${unlockHint(name)}\` removes the lock`
      : '; retry, or raise --lock-timeout';
  return kairError('LOCK_BUSY', describeHolder(name, holder, verdict) + hint, { lock: name, holder, timeout_ms: timeoutMs });
}

/**
 * How waiters wait. A waiter sleeps 2 ms, then twice as long each round up to 20 ms, each sleep
 * jittered over its upper half so that waiters do not wake in step. A lock released while every
 * waiter sleeps stands idle until the first wakes: with 5-100 ms rounds that idle time, summed
 * over the hand-overs of 32 concurrent grants, was 0.6-1 s. While the holder judged live keeps
 * the same lock folder (same inode) a round is one stat; its record is read and judged again
 * every `judgeAgainMs`, so a holder that dies meanwhile is recovered that much later at most.
 * docs/decisions/030-verify-and-contention.md has the figures.
 */
export const LOCK_WAIT = { firstMs: 2, maxMs: 20, judgeAgainMs: 100 };

function inoOf(path: string): number | null {
  try {
    return statSync(path).ino;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export function acquireLock(locksDir: string, name: string, who: LockWho, timeoutMs: number): LockHandle {
  mkdirSync(locksDir, { recursive: true });
  const target = join(locksDir, name);
  const lockDir = `${target}.lock`;
  const holderFile = join(lockDir, HOLDER_FILE);
  const opts = { ...LOCK_LIBRARY_OPTIONS, lockfilePath: lockDir, fs: lockFs };
  const deadline = Date.now() + timeoutMs;
  let wait = LOCK_WAIT.firstMs;
  const nap = () => {
    sleepMs(Math.max(1, Math.min(Math.round(wait / 2 + Math.random() * (wait / 2)), deadline - Date.now())));
    wait = Math.min(wait * 2, LOCK_WAIT.maxMs);
  };
  // The last judgment of a live holder: while its folder (same inode) stays, a round is one stat.
  let live: { ino: number; at: number } | null = null;
  for (;;) {
    if (live) {
      const now = Date.now();
      if (inoOf(lockDir) === live.ino && now - live.at < LOCK_WAIT.judgeAgainMs && now < deadline) {
        nap();
        continue;
      }
      live = null;
    }
    let unlock: (() => void) | undefined;
    try {
      unlock = lockfile.lockSync(target, opts);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
    }
    if (unlock) {
      const release = unlock;
      // Written whole under a temporary name and renamed, so a reader sees all of it or none.
      const tmp = `${holderFile}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(holderRecord(who)));
      renameSync(tmp, holderFile);
      failpoint(`lock:${name}`);
      stoppoint(`lock:${name}`);
      return {
        release() {
          // If this lock was taken from us (only possible if we stalled >2 s before writing the
          // record), the folder there now is another owner's: leave it alone.
          if (parseHolder(readTextFile(holderFile) ?? '')?.pid !== process.pid) return;
          unlinkIfThere(holderFile);
          try {
            release();
          } catch {
            rmSync(lockDir, { recursive: true, force: true });
          }
        },
      };
    }
    const seen = look(lockDir, holderFile);
    if (!seen) continue;
    testDelay();
    let verdict: Verdict | 'recovering' = judge(seen.holder, seen.ageMs);
    let holder = seen.holder;
    if (verdict === 'dead') {
      testDelay();
      const r = breakLock(locksDir, name, who);
      if (r.removed || r.reason === 'gone') continue;
      verdict = r.verdict;
      holder = r.holder;
    }
    if (Date.now() >= deadline) throw lockBusy(name, holder, verdict, timeoutMs);
    if (verdict === 'live') live = { ino: seen.ino, at: Date.now() };
    nap();
  }
}

/** Runs `fn` under the lock; always releases. */
export function withLock<T>(locksDir: string, name: string, who: LockWho, timeoutMs: number, fn: () => T): T {
  const lock = acquireLock(locksDir, name, who, timeoutMs);
  try {
    return fn();
  } finally {
    lock.release();
  }
}
