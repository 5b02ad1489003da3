/**
 * Temporary folders made by tests. Each is removed after its test file (test/setup/cleanup.ts
 * registers the hook for every file), so a file that forgets `afterAll(removeWorkspaces)` still
 * leaves nothing behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];

/** A fresh temporary folder, removed when the test file ends. */
export function makeTempDir(prefix = 'kair-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Removes every folder made by makeTempDir so far in this test file. */
export function removeTempDirs(): void {
  for (const d of created.splice(0)) rmSync(d, { recursive: true, force: true });
}
