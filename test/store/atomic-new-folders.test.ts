/**
 * A durable write into a folder it creates also fsyncs the parents of the new folders: otherwise a
 * power cut could lose a run's folder (and run-request.json with it) after history named the file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it, vi } from 'vitest';

const opened: string[] = [];
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const openSync = (...args: Parameters<typeof fs.openSync>) => {
    if (args[1] === 'r') opened.push(String(args[0]));
    return fs.openSync(...args);
  };
  return { ...fs, default: { ...fs, openSync }, openSync };
});

const { writeFileAtomicSync } = await import('../../src/store/fs/atomic.js');
const root = mkdtempSync(join(tmpdir(), 'kair-atomic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('writeFileAtomicSync and new folders', () => {
  it('fsyncs the folder of the file and the parent of every folder it created', () => {
    opened.length = 0;
    writeFileAtomicSync(join(root, 'runs', 'c-run-1', 'run-request.json'), '{}\n');
    expect(opened.sort()).toEqual([root, join(root, 'runs'), join(root, 'runs', 'c-run-1')].sort());
  });

  it('into an existing folder: that folder only', () => {
    opened.length = 0;
    writeFileAtomicSync(join(root, 'runs', 'c-run-1', 'run-result.1.json'), '{}\n');
    expect(opened).toEqual([join(root, 'runs', 'c-run-1')]);
  });

  it('a derived write fsyncs no folder', () => {
    opened.length = 0;
    writeFileAtomicSync(join(root, 'runs', 'c-run-2', 'latest.json'), '{}\n', { derived: true });
    expect(opened).toEqual([]);
  });
});
