/**
 * Temp and staging files. write-file-atomic writes `<file>.<uint32>` beside its target and
 * renames it into place; a kill in between leaves that name behind. kair's own files all end in
 * .json, .jsonl or .md, so such a name is recognisable: loaders and `verify` never read it as
 * data, `verify` counts it (`temp_file`), and the next writer holding the lock that guards the
 * folder removes it (only that lock's holders write there, so its writer is dead).
 */
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPidAlive } from './pid.js';

const TEMP = /\.(json|jsonl|md)\.\d{1,10}$/;

export function isTempName(name: string): boolean {
  return TEMP.test(name) || /^propose-[a-z0-9_-]+-\d+-\d+$/.test(name);
}

/** The names in a folder, none when it does not exist (or cannot be read). */
export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Removes the temp files directly inside each folder; returns how many. */
export function sweepTemps(dirs: string[]): number {
  let n = 0;
  for (const dir of dirs) {
    for (const name of listDir(dir)) {
      const staged = /^propose-[a-z0-9_-]+-(\d+)-\d+$/.exec(name);
      if (staged) {
        // A propose's staging folder: its writer's pid is in the name.
        if (!isPidAlive(Number(staged[1]))) {
          rmSync(join(dir, name), { recursive: true, force: true });
          n++;
        }
        continue;
      }
      if (!isTempName(name)) continue;
      try {
        unlinkSync(join(dir, name));
        n++;
      } catch {
        // gone already
      }
    }
  }
  return n;
}

/**
 * Private folders kair makes in the system temp folder for the length of one step: a command's
 * KAIR_OUTPUT file, ssh-keygen's signature and key files. The writer's pid is in the name
 * (`<prefix><pid>-XXXXXX`): kair removes its own when the step ends, when the process exits, and
 * before it dies of a second signal; a folder whose process is dead (SIGKILL, power cut) is
 * removed by the next kair that makes one, whatever its prefix.
 */
export type ScratchPrefix = 'kair-out-' | 'kair-sig-' | 'kair-key-';
const SCRATCH_NAME = /^kair-(?:out|sig|key)-(\d+)-[A-Za-z0-9]{6}$/;
const scratch = new Set<string>();
let exitHook = false;

export function makeScratchDir(prefix: ScratchPrefix): string {
  // The system temp folder is shared: another user's folder may not be ours to remove.
  sweepDeadWriters(tmpdir(), SCRATCH_NAME, { folders: true, bestEffort: true });
  const dir = mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
  scratch.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', removeScratchDirs);
  }
  return dir;
}

export function removeScratchDir(dir: string): void {
  scratch.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** Every scratch folder this process still has; synchronous, so it runs in an exit handler. */
export function removeScratchDirs(): void {
  for (const dir of [...scratch]) {
    try {
      removeScratchDir(dir);
    } catch {
      // best effort: a dead writer's folder is swept by the next one
    }
  }
}

/**
 * Removes the entries of `dir` whose name matches `name` (group 1: the writer's pid) and whose
 * writer is dead: what a killed kair left. Only files unless `folders`. With `bestEffort`, an entry
 * that cannot be removed is skipped; without it the error is thrown.
 */
export function sweepDeadWriters(dir: string, name: RegExp, opts: { folders?: boolean; bestEffort?: boolean } = {}): void {
  for (const entry of listDir(dir)) {
    const m = name.exec(entry);
    if (!m || Number(m[1]) === process.pid || isPidAlive(Number(m[1]))) continue;
    try {
      rmSync(join(dir, entry), { recursive: opts.folders === true, force: true });
    } catch (e) {
      if (!opts.bestEffort) throw e;
    }
  }
}
