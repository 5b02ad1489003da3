/**
 * kair's lock rests on how proper-lockfile treats the options in LOCK_LIBRARY_OPTIONS (its
 * internals, not its documented API): `stale: Infinity` must make no lock stale however old its
 * mtime, and `update` at the largest timer delay must keep its refresh timer silent. If a version
 * of the library changes either, a stalled live holder could lose its lock: these tests fail.
 */
import { mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK_LIBRARY_OPTIONS } from '../../src/store/fs/lock.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function target(): { file: string; lockDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kair-locklib-'));
  dirs.push(dir);
  return { file: join(dir, 'x'), lockDir: join(dir, 'x.lock') };
}

const opts = (lockDir: string) => ({ ...LOCK_LIBRARY_OPTIONS, lockfilePath: lockDir });

describe('proper-lockfile as kair configures it', () => {
  it('a lock whose folder is a day old is still held: a second lockSync gets ELOCKED and leaves it', () => {
    const { file, lockDir } = target();
    const release = lockfile.lockSync(file, opts(lockDir));
    const dayAgo = new Date(Date.now() - 86_400_000);
    utimesSync(lockDir, dayAgo, dayAgo);
    let code: string | undefined;
    try {
      lockfile.lockSync(file, opts(lockDir));
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code;
    }
    expect(code).toBe('ELOCKED');
    expect(Math.round(statSync(lockDir).mtimeMs)).toBe(dayAgo.getTime());
    release();
  });

  it('holding a lock schedules no timer that fires: no TimeoutOverflowWarning, the folder is never touched', async () => {
    const { file, lockDir } = target();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const release = lockfile.lockSync(file, opts(lockDir));
      const past = new Date(Date.now() - 60_000);
      utimesSync(lockDir, past, past);
      // An overflowing or short refresh delay would fire within this wait and touch the mtime.
      await new Promise((r) => setTimeout(r, 1_100));
      expect(Math.round(statSync(lockDir).mtimeMs)).toBe(past.getTime());
      release();
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('the options normalised by the library keep their meaning (stale never reached, update a valid delay)', () => {
    expect(LOCK_LIBRARY_OPTIONS.stale).toBe(Infinity);
    expect(LOCK_LIBRARY_OPTIONS.update).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(LOCK_LIBRARY_OPTIONS.update).toBeGreaterThanOrEqual(1000);
  });
});
