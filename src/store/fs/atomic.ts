/** The one way kair writes a file: temp file, fsync, rename, fsync of the folder. */
import { closeSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { jsonText } from '../../domain/chain.js';

export interface AtomicWriteOptions {
  /**
   * The file is derived from something already durable (a snapshot from the fsynced history, the
   * index from the snapshots, the latest copy of a run artifact from the run's own copy). Its
   * contents are still fsynced before the rename, but the folder is not: if a power cut loses the
   * rename, the previous copy (or none) comes back, which readers already treat as lagging and the
   * next command rolls forward or rebuilds (SPEC §11). Saves one fsync per write.
   */
  derived?: boolean;
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeFileAtomicSync(path: string, data: string, opts: AtomicWriteOptions = {}): void {
  const dir = dirname(path);
  const made = mkdirSync(dir, { recursive: true });
  writeFileAtomic.sync(path, data, { fsync: true });
  if (opts.derived) return;
  fsyncDir(dir);
  // A folder this write created (a run's folder, a contract's first plan/) is a name in its parent:
  // without the parent's fsync a power cut could lose the folder, and the file with it, after
  // history named the file.
  if (made !== undefined) for (let d = dir; d !== dirname(made); d = dirname(d)) fsyncDir(dirname(d));
}

// Moved to src/domain/chain.ts (the snapshot's text on both backends); re-exported for existing importers.
export { jsonText } from '../../domain/chain.js';

export function writeJsonAtomic(path: string, value: unknown, opts: AtomicWriteOptions = {}): void {
  writeFileAtomicSync(path, jsonText(value), opts);
}
