/** `kair init`: creates .kair/ idempotently; a second init keeps config and workspace_id. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { initConfig } from '../domain/config.js';
import { writeJsonAtomic } from '../store/fs/atomic.js';
import { writeIndex } from '../store/fs/contract-writes.js';
import { kairError } from '../domain/errors.js';
import { DEFAULT_MAX_INPUT_BYTES, parseJsonInput } from '../domain/json-input.js';
import { readInputFile } from '../store/fs/input.js';
import { paths, rel, workspaceAt } from '../store/fs/workspace.js';

export function init(opts: { dir?: string; cwd: string; env: NodeJS.ProcessEnv }) {
  const root = resolve(opts.cwd, opts.dir ?? opts.env.KAIR_DIR ?? '.');
  const ws = workspaceAt(root);
  const created = !existsSync(ws.kairDir);
  mkdirSync(paths.contracts(ws), { recursive: true });
  mkdirSync(paths.locks(ws), { recursive: true });
  const cfgPath = paths.config(ws);
  let config = readExistingConfig(cfgPath, rel(ws, cfgPath));
  if (!config) {
    const fresh = initConfig(`ws_${randomBytes(8).toString('hex')}`);
    writeJsonAtomic(cfgPath, fresh);
    config = fresh;
  }
  // The checkpoint format (decision 028), so `list --limit` pages from the first command on.
  if (!existsSync(paths.index(ws))) writeIndex(ws, []);
  return { created, workspace: rel(ws, ws.kairDir) || '.kair', workspace_id: (config.workspace_id as string | undefined) ?? null, config: rel(ws, cfgPath), root: ws.root };
}

/**
 * The config a previous init wrote, or null (missing or unparsable: init writes a fresh one, as
 * before). A FIFO, device or folder in its place, or a file over the input limit, is refused
 * rather than read: reading a FIFO would hang init.
 */
function readExistingConfig(file: string, shown: string): { workspace_id?: string } | null {
  if (!existsSync(file)) return null;
  let text: string;
  try {
    text = readInputFile(file, { flag: '', shown, limit: DEFAULT_MAX_INPUT_BYTES, tooLarge: (max) => kairError('CONFIG_INVALID', `${shown} is larger than ${max} bytes`, { path: shown }) });
  } catch (e) {
    if ((e as { code?: string }).code === 'USAGE_ERROR') throw kairError('CONFIG_INVALID', (e as Error).message, { path: shown });
    throw e;
  }
  const parsed = parseJsonInput(text);
  return parsed.ok && typeof parsed.value === 'object' && parsed.value !== null ? (parsed.value as { workspace_id?: string }) : null;
}
