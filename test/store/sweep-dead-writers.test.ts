/**
 * What a killed kair left, named with its pid, is removed by the next one; nothing else is: not a
 * live process's entry, not the target of a symlink planted under such a name.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sweepDeadWriters } from '../../src/store/fs/temp.js';
import { makeTempDir } from '../helpers/temp.js';

const deadPid = (): number => spawnSync('true').pid!;
const NAME = /^kair-out-(\d+)-[A-Za-z0-9]{6}$/;

describe('sweepDeadWriters', () => {
  it("removes a dead writer's folder, keeps a live one's and names that do not match", () => {
    const dir = makeTempDir('kair-sweep-');
    const dead = join(dir, `kair-out-${deadPid()}-abcDEF`);
    const live = join(dir, `kair-out-${process.ppid}-abcDEF`);
    const other = join(dir, 'kair-out-notapid-abcDEF');
    for (const d of [dead, live, other]) {
      mkdirSync(d);
      writeFileSync(join(d, 'outputs'), 'id=1\n');
    }
    sweepDeadWriters(dir, NAME, { folders: true });
    expect([existsSync(dead), existsSync(live), existsSync(other)]).toEqual([false, true, true]);
  });

  it('a symlink planted under a dead name is removed, its target is left alone', () => {
    const dir = makeTempDir('kair-sweep-');
    const target = makeTempDir('kair-sweep-target-');
    writeFileSync(join(target, 'keep'), 'precious');
    const link = join(dir, `kair-out-${deadPid()}-zzzzzz`);
    symlinkSync(target, link);
    sweepDeadWriters(dir, NAME, { folders: true, bestEffort: true });
    expect(existsSync(link)).toBe(false);
    expect(readFileSync(join(target, 'keep'), 'utf8')).toBe('precious');
  });
});
