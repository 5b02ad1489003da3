/**
 * `kair init`: creates .kair/ idempotently; a second init keeps config and workspace_id.
 *
 * `--backend postgres` keeps the workspace in a shared database: the tenant and its config are
 * committed there first, and only then is `.kair/config.json` written, holding nothing but
 * `{"backend": {...}, "workspace_id": ...}` (committable: the URL stays in its variable). Any
 * failure before that leaves nothing local. A kill between the two leaves a tenant marked with
 * this host and folder, which the next `kair init --backend postgres` here reuses instead of
 * creating another.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { BackendConfig } from '../domain/config.js';
import { BACKEND_KINDS, DEFAULT_BACKEND, initConfig, validateConfig } from '../domain/config.js';
import { writeJsonAtomic } from '../store/fs/atomic.js';
import { writeIndex } from '../store/fs/contract-writes.js';
import { kairError } from '../domain/errors.js';
import { DEFAULT_MAX_INPUT_BYTES, parseJsonInput } from '../domain/json-input.js';
import { failpoint } from '../store/failpoint.js';
import { readInputFile } from '../store/fs/input.js';
import { paths, rel, workspaceAt } from '../store/fs/workspace.js';

export interface InitOptions {
  dir?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** --backend (default local). */
  backend?: string;
  /** --workspace-id, --schema, --url-env: postgres only. */
  workspaceId?: string;
  schema?: string;
  urlEnv?: string;
  /** Who created a new tenant (recorded in the database). */
  actor?: () => string;
}

export interface InitResult {
  created: boolean;
  workspace: string;
  workspace_id: string | null;
  config: string;
  backend: 'local' | 'postgres';
  /** postgres, when init reached the database: what it did with the tenant. */
  tenant?: 'created' | 'joined' | 'reused';
  schema?: string;
  root: string;
}

export async function init(opts: InitOptions): Promise<InitResult> {
  const kind = backendOption(opts);
  const root = resolve(opts.cwd, opts.dir ?? opts.env.KAIR_DIR ?? '.');
  const ws = workspaceAt(root);
  const cfgPath = paths.config(ws);
  const existing = readExistingConfig(cfgPath, rel(ws, cfgPath));
  const existingKind = existing?.backend?.kind === 'postgres' ? 'postgres' : 'local';
  const shown = { workspace: rel(ws, ws.kairDir) || '.kair', config: rel(ws, cfgPath), root: ws.root };

  if (kind === 'postgres' || (kind === undefined && existing && existingKind === 'postgres')) {
    return initPostgres(opts, ws, cfgPath, existing, kind === undefined, shown);
  }
  if (existing && existingKind === 'postgres') {
    throw kairError('USAGE_ERROR', `${shown.config} already names the postgres backend (workspace ${JSON.stringify(existing.workspace_id ?? null)}); nothing was written`, {
      flag: '--backend',
      hint: 'run `kair init` without --backend to keep it, or use another folder for a local workspace',
    });
  }
  const created = !existsSync(ws.kairDir);
  mkdirSync(paths.contracts(ws), { recursive: true });
  mkdirSync(paths.locks(ws), { recursive: true });
  let config = existing;
  if (!config) {
    const fresh = initConfig(`ws_${randomBytes(8).toString('hex')}`);
    writeJsonAtomic(cfgPath, fresh);
    config = fresh;
  }
  // The checkpoint format (decision 028), so `list --limit` pages from the first command on.
  if (!existsSync(paths.index(ws))) writeIndex(ws, []);
  return { created, ...shown, workspace_id: (config.workspace_id as string | undefined) ?? null, backend: 'local' };
}

function backendOption(opts: InitOptions): 'local' | 'postgres' | undefined {
  const b = opts.backend;
  if (b !== undefined && !(BACKEND_KINDS as readonly string[]).includes(b)) {
    throw kairError('USAGE_ERROR', `--backend must be one of ${BACKEND_KINDS.join(', ')}, got ${JSON.stringify(b.slice(0, 80))}`, { flag: '--backend', hint: 'kair init --backend postgres' });
  }
  if (b !== 'postgres') {
    for (const [flag, v] of [['--workspace-id', opts.workspaceId], ['--schema', opts.schema], ['--url-env', opts.urlEnv]] as const) {
      if (v !== undefined) throw kairError('USAGE_ERROR', `${flag} applies only to a PostgreSQL workspace`, { flag, hint: `kair init --backend postgres ${flag} <value>` });
    }
  }
  return b as 'local' | 'postgres' | undefined;
}

/** The backend block the flags ask for, validated as the config would be (never echoing a URL). */
function backendFromFlags(opts: InitOptions): BackendConfig {
  const block: BackendConfig = { kind: 'postgres', url_env: opts.urlEnv ?? DEFAULT_BACKEND.url_env, schema: opts.schema ?? DEFAULT_BACKEND.schema };
  const problems = validateConfig({ workspace_id: 'x', backend: block });
  const first = problems[0];
  if (first) {
    const flag = first.path === 'backend.schema' ? '--schema' : '--url-env';
    throw kairError('USAGE_ERROR', `${flag}: ${first.message}`, { flag, hint: flag === '--schema' ? 'kair init --backend postgres --schema kair' : 'kair init --backend postgres --url-env KAIR_DATABASE_URL' });
  }
  return block;
}

type Existing = { workspace_id?: string; backend?: { kind?: unknown; url_env?: unknown; schema?: unknown } } & Record<string, unknown>;

async function initPostgres(opts: InitOptions, ws: ReturnType<typeof workspaceAt>, cfgPath: string, existing: Existing | null, bare: boolean, shown: { workspace: string; config: string; root: string }): Promise<InitResult> {
  if (existing && existing.backend?.kind === 'postgres') {
    const kept = existing.backend;
    const id = typeof existing.workspace_id === 'string' ? existing.workspace_id : null;
    const base = { created: false, ...shown, workspace_id: id, backend: 'postgres' as const, schema: typeof kept.schema === 'string' ? kept.schema : DEFAULT_BACKEND.schema };
    // A bare `kair init` keeps the config, as on the local backend, without connecting.
    if (bare) return base;
    const differs = (
      [
        ['--workspace-id', opts.workspaceId, id],
        ['--schema', opts.schema, kept.schema ?? DEFAULT_BACKEND.schema],
        ['--url-env', opts.urlEnv, kept.url_env ?? DEFAULT_BACKEND.url_env],
      ] as const
    ).find(([, given, has]) => given !== undefined && given !== has);
    if (differs) {
      throw kairError('USAGE_ERROR', `${shown.config} already names workspace ${JSON.stringify(id)} (schema ${String(base.schema)}); ${differs[0]} differs, and init never changes an existing config; nothing was written`, {
        flag: differs[0],
        hint: `run \`kair init --backend postgres\` in another folder, or \`kair config get backend\` to see this one`,
      });
    }
    if (id === null) throw kairError('CONFIG_INVALID', `${shown.config}: workspace_id is missing`, { path: shown.config, hint: 'restore workspace_id in .kair/config.json (`kair config get workspace_id` on another machine of the workspace)' });
    const pg = await import('../store/pg/backend.js');
    await pg.recheckTenant({ env: opts.env, urlEnv: String(kept.url_env ?? DEFAULT_BACKEND.url_env), schema: String(base.schema), workspaceId: id });
    return { ...base, tenant: 'joined' };
  }
  if (bare) throw new Error('unreachable: a bare init reaches here only for an existing postgres config');
  // A local workspace (or anything else) already here: moving it is not init's job. The temp
  // file of a config write killed before its rename (write-file-atomic's `config.json.<n>`) is
  // not a workspace: an init killed there is run again.
  const leftovers: string[] = [];
  const others = existsSync(ws.kairDir) ? readdirSync(ws.kairDir).filter((n) => !(/^config\.json\.\d+$/.test(n) && leftovers.push(n))) : [];
  if (existing !== null || others.length > 0) {
    throw kairError('USAGE_ERROR', `${shown.workspace} already holds a local workspace; nothing was written`, {
      flag: '--backend',
      hint: 'run `kair init --backend postgres` in another folder (this one keeps its local workspace)',
    });
  }
  const backend = backendFromFlags(opts);
  const pg = await import('../store/pg/backend.js');
  const session = await pg.initTenant({
    env: opts.env,
    urlEnv: backend.url_env,
    schema: backend.schema,
    workspaceId: opts.workspaceId,
    // The folder's real path: the same folder reached through a symlink is the same init.
    root: realRoot(ws.root),
    actor: opts.actor?.() ?? 'unknown',
    // init never reads KAIR_NOW: the tenant's creation time is the real one.
    at: new Date().toISOString(),
  });
  try {
    failpoint('init.tenant-committed');
    for (const n of leftovers) rmSync(`${ws.kairDir}/${n}`, { force: true });
    writeJsonAtomic(cfgPath, { backend, workspace_id: session.workspaceId });
    await session.confirm();
  } finally {
    await session.close();
  }
  return { created: true, ...shown, workspace_id: session.workspaceId, backend: 'postgres', tenant: session.outcome, schema: backend.schema };
}

function realRoot(root: string): string {
  try {
    return realpathSync.native(root);
  } catch {
    return root;
  }
}

/**
 * The config a previous init wrote, or null (missing or unparsable: init writes a fresh one, as
 * before). A FIFO, device or folder in its place, or a file over the input limit, is refused
 * rather than read: reading a FIFO would hang init.
 */
function readExistingConfig(file: string, shown: string): Existing | null {
  if (!existsSync(file)) return null;
  let text: string;
  try {
    text = readInputFile(file, { flag: '', shown, limit: DEFAULT_MAX_INPUT_BYTES, tooLarge: (max) => kairError('CONFIG_INVALID', `${shown} is larger than ${max} bytes`, { path: shown }) });
  } catch (e) {
    if ((e as { code?: string }).code === 'USAGE_ERROR') throw kairError('CONFIG_INVALID', (e as Error).message, { path: shown });
    throw e;
  }
  const parsed = parseJsonInput(text);
  if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) return null;
  const v = parsed.value as Existing;
  // A hand-written backend block that is not an object cannot name postgres.
  if (typeof v.backend !== 'object' || v.backend === null) delete v.backend;
  return v;
}
