/**
 * Temp and staging files. write-file-atomic writes `<file>.<uint32>` beside its target and
 * renames it into place; a kill in between leaves that name behind. kair's own files all end in
 * .json, .jsonl or .md, so such a name is recognisable: loaders and `verify` never read it as
 * data, `verify` counts it (`temp_file`), and the next writer holding the lock that guards the
 * folder removes it (only that lock's holders write there, so its writer is dead).
 */
import { readdirSync, rmSync, unlinkSync } from 'node:fs';
import { isPidAlive } from './pid.js';
import { join } from 'node:path';

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
