/** `kair init`: creates .kair/ idempotently; a second init keeps config and workspace_id. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultConfig } from '../domain/config.js';
import { writeJsonAtomic } from '../store/fs/atomic.js';
import { readJsonFile } from '../store/fs/contracts.js';
import { paths, rel, workspaceAt } from '../store/fs/workspace.js';

export function init(opts: { dir?: string; cwd: string; env: NodeJS.ProcessEnv }) {
  const root = resolve(opts.cwd, opts.dir ?? opts.env.KAIR_DIR ?? '.');
  const ws = workspaceAt(root);
  const created = !existsSync(ws.kairDir);
  mkdirSync(paths.contracts(ws), { recursive: true });
  mkdirSync(paths.locks(ws), { recursive: true });
  const cfgPath = paths.config(ws);
  let config = readJsonFile<{ workspace_id?: string }>(cfgPath);
  if (!config) {
    const fresh = defaultConfig(`ws_${randomBytes(8).toString('hex')}`);
    writeJsonAtomic(cfgPath, fresh);
    config = fresh;
  }
  if (!existsSync(paths.index(ws))) writeJsonAtomic(paths.index(ws), []);
  return { created, workspace: rel(ws, ws.kairDir) || '.kair', workspace_id: config.workspace_id ?? null, config: rel(ws, cfgPath), root: ws.root };
}
