/**
 * One writer per contract: a proper-lockfile lock (an atomic mkdir) under .kair/locks/, plus a
 * holder file naming pid, actor, command and since for LOCK_BUSY messages. A lock whose holder
 * pid is dead is recovered at once; proper-lockfile's mtime staleness covers the rest.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmdirSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { kairError } from '../../domain/errors.js';
import { isPidAlive } from './pid.js';

export { isPidAlive };

export interface Holder {
  pid: number;
  host: string;
  actor: string;
  command: string;
  since: string;
}

export interface LockHandle {
  release(): void;
}

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

function readHolder(file: string): Holder | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Holder;
  } catch {
    return null;
  }
}

/**
 * The `fs` given to proper-lockfile: the synchronous calls its sync API makes, from node:fs.
 * Not its default graceful-fs, whose queueing of async calls on EMFILE does nothing for a lock
 * taken synchronously (scripts/build.mjs leaves it out of the bundle), and not node:fs whole,
 * which proper-lockfile copies on every lock, loading node:fs's stream classes on the way.
 */
const lockFs = { mkdirSync, realpathSync, rmdirSync, statSync, utimesSync };

export function acquireLock(
  locksDir: string,
  name: string,
  who: { actor: string; command: string; now: () => string },
  timeoutMs: number,
): LockHandle {
  mkdirSync(locksDir, { recursive: true });
  const target = join(locksDir, name);
  const lockDir = `${target}.lock`;
  const holderFile = `${target}.holder.json`;
  const opts = { realpath: false, lockfilePath: lockDir, stale: 10_000, onCompromised: () => {}, fs: lockFs };
  const deadline = Date.now() + timeoutMs;
  let wait = 5;
  for (;;) {
    try {
      const unlock = lockfile.lockSync(target, opts);
      const holder: Holder = { pid: process.pid, host: hostname(), actor: who.actor, command: who.command, since: who.now() };
      writeFileSync(holderFile, JSON.stringify(holder));
      return {
        release() {
          unlinkIfThere(holderFile);
          try {
            unlock();
          } catch {
            rmSync(lockDir, { recursive: true, force: true });
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
    }
    const holder = readHolder(holderFile);
    if (holder && holder.host === hostname() && !isPidAlive(holder.pid) && existsSync(lockDir)) {
      // The holder died without releasing: recover the lock now rather than waiting for staleness.
      unlinkIfThere(holderFile);
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      const who2 = holder
        ? `pid ${holder.pid} (actor ${holder.actor}, command ${holder.command}, since ${holder.since})`
        : 'another process';
      throw kairError('LOCK_BUSY', `${name} is locked by ${who2}; retry, or raise --lock-timeout`, {
        lock: name,
        holder,
        timeout_ms: timeoutMs,
      });
    }
    sleepMs(Math.min(wait, Math.max(1, deadline - Date.now())) + Math.floor(Math.random() * 5));
    wait = Math.min(wait * 2, 100);
  }
}

/** Runs `fn` under the lock; always releases. */
export function withLock<T>(
  locksDir: string,
  name: string,
  who: { actor: string; command: string; now: () => string },
  timeoutMs: number,
  fn: () => T,
): T {
  const lock = acquireLock(locksDir, name, who, timeoutMs);
  try {
    return fn();
  } finally {
    lock.release();
  }
}

