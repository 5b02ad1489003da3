/**
 * vitest globalSetup: the whole run gets a private temporary folder (TMPDIR, inherited by the
 * test workers and every process they start, kair included), and the run fails if anything is
 * left in it at the end. Each leftover is a leak: a test, a helper or kair itself created a
 * temporary folder or file and did not remove it. The private folder is removed either way, so
 * even a failing run leaves nothing in the system temporary folder; its own name does not start
 * with `kair-`, so a run killed before its teardown is not mistaken for kair's leftovers.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const saved = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), 'vitest-tmp-'));
  process.env.TMPDIR = dir;
  return () => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    let left: string[];
    try {
      left = readdirSync(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (left.length > 0) {
      // vitest reports a teardown error but keeps its exit status: set it ourselves.
      process.exitCode = 1;
      throw new Error(`tests left ${left.length} temporary folder(s)/file(s) behind (removed now): ${left.sort().join(', ')} — remove what a test creates (makeTempDir in test/helpers/temp.ts does it for you)`);
    }
  };
}
