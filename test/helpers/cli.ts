/**
 * End-to-end helpers: run the built CLI (`bin/kair.js` → `dist/kair.cjs`) in throwaway
 * workspaces and read what it left on disk. `npm test` builds first; run
 * `node scripts/build.mjs` yourself when calling vitest directly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeTempDirs } from './temp.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The launcher under test; KAIR_E2E_BIN points the suite at another build (e.g. a release). */
export const BIN = process.env.KAIR_E2E_BIN ? resolve(process.env.KAIR_E2E_BIN) : join(ROOT, 'bin', 'kair.js');
export const BUNDLE = join(dirname(BIN), '..', 'dist', 'kair.cjs');
export const FIXTURES = join(ROOT, 'fixtures', 'plans');
export const fixture = (name: string) => join(FIXTURES, name);

/** Parsed JSON output, loosely typed on purpose: the tests assert its shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const NOW = '2026-01-30T12:00:00.000Z';

if (!existsSync(BUNDLE)) {
  throw new Error(`${BUNDLE} is missing: run \`node scripts/build.mjs\` (or \`npm test\`, which builds first) before the e2e tests`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when it parses, else undefined. */
  json: Json;
}

export interface RunOptions {
  input?: string;
  /** Extra environment; a value of `undefined` removes the variable. */
  env?: Record<string, string | undefined>;
  /** Working directory (default: the workspace root). */
  cwd?: string;
}

export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, KAIR_NOW: NOW, KAIR_ACTOR: 'tester', NO_COLOR: '1' };
  // The test runner's own settings must not leak into the CLI under test.
  delete env.FORCE_COLOR;
  delete env.KAIR_DIR;
  delete env.KAIR_DEBUG;
  delete env.KAIR_E2E_BIN;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function parse(stdout: string): Json {
  try {
    return JSON.parse(stdout);
  } catch {
    return undefined;
  }
}

// ---- the backend under test

/**
 * `KAIR_TEST_BACKEND=postgres` (npm run test:pg, vitest.pg.config.ts) runs the same suites on
 * PostgreSQL: test/setup/pg-backend.ts starts a server per test file and puts its database's URL
 * in KAIR_DATABASE_URL, `kair init` run through these helpers becomes `kair init --backend
 * postgres` (a fresh tenant per workspace), and a cloned workspace gets a copy of the database.
 */
export const TEST_BACKEND: 'local' | 'postgres' = process.env.KAIR_TEST_BACKEND === 'postgres' ? 'postgres' : 'local';

/** Workspace root → the environment that reaches its database (clones live in their own database). */
const pgWorkspaceEnv = new Map<string, Record<string, string>>();

/** The environment the helpers add to a CLI spawned in `ws` (on PostgreSQL: its database's URL). */
export function backendEnvOf(ws: string): Record<string, string> {
  if (TEST_BACKEND !== 'postgres') return {};
  for (let dir = resolve(ws); ; dir = dirname(dir)) {
    const env = pgWorkspaceEnv.get(dir);
    if (env) return env;
    if (dirname(dir) === dir) return {};
  }
}

/** On PostgreSQL, a bare `init` becomes `init --backend postgres`: the suites' own inits make shared workspaces too. */
export function backendArgs(args: string[]): string[] {
  if (TEST_BACKEND !== 'postgres' || args[0] !== 'init' || args.includes('--backend')) return args;
  return [args[0], '--backend', 'postgres', ...args.slice(1)];
}

/** Runs `kair …args` synchronously with `ws` as the working directory. */
export function kair(ws: string, args: string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...backendArgs(args)], {
    cwd: opts.cwd ?? ws,
    env: baseEnv({ ...backendEnvOf(ws), ...opts.env }),
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json: parse(r.stdout) };
}

/** Like `kair`, but asynchronous (for concurrent processes). */
export function kairAsync(ws: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...backendArgs(args)], { cwd: opts.cwd ?? ws, env: baseEnv({ ...backendEnvOf(ws), ...opts.env }), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr, json: parse(stdout) }));
    child.stdin.end(opts.input ?? '');
  });
}

/** `kair … --json`, asserting nothing: callers check `code` and `json`. */
export const kj = (ws: string, args: string[], opts: RunOptions = {}) => kair(ws, [...args, '--json'], opts);

/** Like `kj`, but throws (with the output) unless the command exits 0. */
export function ok(ws: string, args: string[], opts: RunOptions = {}): Json {
  const r = kj(ws, args, opts);
  if (r.code !== 0 || !r.json?.ok) {
    throw new Error(`kair ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r.json;
}

/** A fresh temporary folder (no workspace), removed when the test file ends. */
export { makeTempDir };

/**
 * A fresh temporary folder with `kair init` run in it. Returns the workspace root. On PostgreSQL
 * (KAIR_TEST_BACKEND) it is `kair init --backend postgres` on the test file's database: a new
 * tenant, so workspaces of one file never see each other.
 */
export function makeWorkspace(): string {
  const dir = makeTempDir();
  const r = kair(dir, ['init', '--json']);
  if (r.code !== 0) throw new Error(`kair init failed: ${r.stdout}${r.stderr}`);
  return dir;
}

/**
 * A copy of `src`'s `.kair/` in a fresh temporary folder: much cheaper than replaying the
 * commands that built it (each spawn of node costs 100+ ms). On PostgreSQL the copy gets its own
 * database, made from the source's as a template (same tenant, same rows, same hashes).
 */
export function cloneWorkspace(src: string): string {
  const dir = makeTempDir();
  cpSync(join(src, '.kair'), join(dir, '.kair'), { recursive: true });
  if (TEST_BACKEND === 'postgres') pgWorkspaceEnv.set(resolve(dir), { KAIR_DATABASE_URL: copyPgDatabase(backendEnvOf(src).KAIR_DATABASE_URL ?? process.env.KAIR_DATABASE_URL) });
  return dir;
}

/** Databases made by cloneWorkspace in this file (test/setup/pg-backend.ts drops them). */
export const pgClones: string[] = [];

/** `CREATE DATABASE … TEMPLATE …`, synchronously (the helpers are): a child process runs it. */
function copyPgDatabase(url: string | undefined): string {
  if (!url) throw new Error('cloneWorkspace on PostgreSQL: no KAIR_DATABASE_URL (is test/setup/pg-backend.ts in the vitest config?)');
  const source = new URL(url);
  const name = `kair_clone_${process.pid}_${pgClones.length + 1}_${Math.random().toString(16).slice(2, 8)}`;
  const script = `const pg = require('pg'); const c = new pg.Client({ connectionString: process.env.SRC }); c.connect().then(() => c.query('CREATE DATABASE ' + process.env.DST + ' TEMPLATE ' + process.env.SRC_DB)).then(() => c.end()).catch((e) => { console.error(e.message); process.exit(1); });`;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, SRC: admin.toString(), DST: name, SRC_DB: decodeURIComponent(source.pathname.slice(1)) }, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`cloneWorkspace: CREATE DATABASE ${name} failed: ${r.stderr}`);
  pgClones.push(name);
  const out = new URL(url);
  out.pathname = `/${name}`;
  return out.toString();
}

/** Removes every folder made by makeTempDir/makeWorkspace in this test file (also done after every file). */
export function removeWorkspaces(): void {
  removeTempDirs();
}

// ---- reading what the CLI left on disk

export const kairPath = (ws: string, ...parts: string[]) => join(ws, '.kair', ...parts);
export const contractDir = (ws: string, id: string) => kairPath(ws, 'contracts', id);
export const historyFile = (ws: string, id: string) => join(contractDir(ws, id), 'history.jsonl');
export const snapshotFile = (ws: string, id: string) => join(contractDir(ws, id), 'contract.json');
export const planFile = (ws: string, id: string) => join(contractDir(ws, id), 'plan', 'plan_v1.json');
export const dpcFile = (ws: string, id: string) => join(contractDir(ws, id), 'dpc', 'dpc_v1.json');
export const configFile = (ws: string) => kairPath(ws, 'config.json');
export const indexFile = (ws: string) => kairPath(ws, 'contracts', 'index.json');
export const indexLogFile = (ws: string) => kairPath(ws, 'contracts', 'index.log');
export const indexCompactingFile = (ws: string) => kairPath(ws, 'contracts', 'index.compacting.log');

type Entry = { id: string; pending?: boolean } & Record<string, unknown>;
/** The index as a reader merges it: index.json, then the set-aside and current logs over it (the later entry of an id wins). */
export function readIndex(ws: string, opts: { pending?: boolean } = {}): Json {
  if (isPgWorkspace(ws)) return pgRows(ws, 'SELECT contract_id AS id, intent, state, updated_at, version FROM {schema}.contract_index WHERE tenant_id = $1 ORDER BY contract_id', []);
  const byId = new Map<string, Entry>();
  if (existsSync(indexFile(ws))) for (const e of readJson(indexFile(ws)) as Entry[]) byId.set(e.id, e);
  for (const f of [indexCompactingFile(ws), indexLogFile(ws)]) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as Entry;
        byId.set(e.id, e);
      } catch {
        /* a torn or edited line: readers skip it */
      }
    }
  }
  return [...byId.values()].filter((e) => opts.pending || !e.pending || existsSync(historyFile(ws, e.id))).map(({ pending: _p, ...e }) => e as Entry).sort((a, b) => (a.id < b.id ? -1 : 1));
}
/** Replaces the whole index with `entries` as one index.json (no logs), as a hand edit would. */
export function writeIndexWhole(ws: string, entries: unknown[]): void {
  writeFileSync(indexFile(ws), JSON.stringify(entries));
  rmSync(indexLogFile(ws), { force: true });
  rmSync(indexCompactingFile(ws), { force: true });
}

export const readJson = (file: string): Json => JSON.parse(readFileSync(file, 'utf8'));

export interface HistoryEvent {
  seq: number;
  at: string;
  type: string;
  actor: string;
  state: string;
  data: Record<string, Json>;
  prev: string;
  hash: string;
}

/** The complete (newline-terminated) history lines of a contract, parsed. */
export function history(ws: string, id: string): HistoryEvent[] {
  if (isPgWorkspace(ws)) return pgRows<{ line: string }>(ws, 'SELECT line FROM {schema}.history_events WHERE tenant_id = $1 AND contract_id = $2 ORDER BY seq', [id]).map((r) => JSON.parse(r.line) as HistoryEvent);
  const text = readFileSync(historyFile(ws, id), 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as HistoryEvent);
}

export const snapshot = (ws: string, id: string): Json =>
  isPgWorkspace(ws) ? JSON.parse(pgRows<{ snapshot: string }>(ws, 'SELECT snapshot FROM {schema}.contracts WHERE tenant_id = $1 AND contract_id = $2', [id])[0]?.snapshot ?? 'null') : readJson(snapshotFile(ws, id));

/**
 * Edits history event `seq` of contract `id` as tampering would: the line in history.jsonl, or on
 * PostgreSQL the row's line (its seq/prev/hash columns kept), with the append-only triggers
 * bypassed for that one session (`session_replication_role`, as a superuser could).
 */
export function tamperHistoryEvent(ws: string, id: string, seq: number, edit: (e: HistoryEvent) => void): void {
  if (isPgWorkspace(ws)) {
    const [row] = pgRows<{ line: string }>(ws, 'SELECT line FROM {schema}.history_events WHERE tenant_id = $1 AND contract_id = $2 AND seq = $3', [id, seq]);
    if (!row) throw new Error(`tamperHistoryEvent: no event ${seq} of ${id}`);
    const e = JSON.parse(row.line) as HistoryEvent;
    edit(e);
    pgRows(ws, "SET session_replication_role = replica; UPDATE {schema}.history_events SET line = $4 WHERE tenant_id = $1 AND contract_id = $2 AND seq = $3", [id, seq, JSON.stringify(e)]);
    return;
  }
  const lines = readFileSync(historyFile(ws, id), 'utf8').split('\n');
  const i = lines.findIndex((l) => l && (JSON.parse(l) as HistoryEvent).seq === seq);
  if (i < 0) throw new Error(`tamperHistoryEvent: no event ${seq} of ${id}`);
  const e = JSON.parse(lines[i]!) as HistoryEvent;
  edit(e);
  lines[i] = JSON.stringify(e);
  writeFileSync(historyFile(ws, id), lines.join('\n'));
}

// ---- reading a PostgreSQL workspace (the helpers above are synchronous: a child process queries)

/** The workspace's config names the postgres backend. */
export function isPgWorkspace(ws: string): boolean {
  if (TEST_BACKEND !== 'postgres') return false;
  try {
    return (readJson(configFile(ws)) as { backend?: { kind?: string } }).backend?.kind === 'postgres';
  } catch {
    return false;
  }
}

/**
 * Runs `sql` on the workspace's database with `$1` = its workspace_id and `params` after it;
 * `{schema}` is its backend.schema. Several statements may be given, separated by `; ` (the
 * last one's rows are returned; only it takes the parameters).
 */
export function pgRows<T = Json>(ws: string, sql: string, params: unknown[]): T[] {
  const cfg = readJson(configFile(ws)) as { workspace_id: string; backend: { schema?: string; url_env?: string } };
  const url = backendEnvOf(ws).KAIR_DATABASE_URL ?? process.env[cfg.backend.url_env ?? 'KAIR_DATABASE_URL'];
  if (!url) throw new Error('pgRows: no database URL for this workspace');
  const statements = sql.replaceAll('{schema}', cfg.backend.schema ?? 'kair').split('; ');
  const script = `const pg = require('pg'); const c = new pg.Client({ connectionString: process.env.PG_URL }); const q = JSON.parse(process.env.PG_Q);
(async () => { await c.connect(); let r; for (let i = 0; i < q.sql.length; i++) r = await c.query(q.sql[i], i === q.sql.length - 1 ? q.params : []); process.stdout.write(JSON.stringify(r.rows)); await c.end(); })().catch((e) => { process.stderr.write(e.message); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, PG_URL: url, PG_Q: JSON.stringify({ sql: statements, params: [cfg.workspace_id, ...params] }) }, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`pgRows: ${r.stderr}`);
  return JSON.parse(r.stdout) as T[];
}

/** Rewrites `.kair/config.json` through `edit`. */
export function editConfig(ws: string, edit: (c: Json) => void): void {
  const c = readJson(configFile(ws));
  edit(c);
  writeFileSync(configFile(ws), JSON.stringify(c, null, 2) + '\n');
}

// ---- bringing contracts to a state

export type Reachable = 'DRAFT' | 'PLANNED' | 'AWAITING_APPROVAL' | 'APPROVED' | 'REWOUND';

/**
 * Proposes `id` and drives it to `state` with the custom-kimi fixture plan (no required
 * controls). Each step is checked, so a broken step fails the test where it happens.
 */
export function bring(ws: string, id: string, state: Reachable, planName = 'custom-kimi.json'): Json {
  let c = ok(ws, ['propose', `Intent of ${id}`, '--id', id]).contract;
  if (state === 'DRAFT') return c;
  c = ok(ws, ['plan', id, '--file', fixture(planName)]).contract;
  if (state === 'PLANNED') return c;
  if (state === 'REWOUND') return ok(ws, ['rewind', id, 'start over']).contract;
  c = ok(ws, ['request-approval', id]).contract;
  if (state === 'AWAITING_APPROVAL') return c;
  return ok(ws, ['approve', id]).contract;
}

/** Async variant of `ok`. */
export async function okAsync(ws: string, args: string[], opts: RunOptions = {}): Promise<Json> {
  const r = await kairAsync(ws, [...args, '--json'], opts);
  if (r.code !== 0 || !r.json?.ok) {
    throw new Error(`kair ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r.json;
}

/** `bring`, concurrently for several contracts (different contracts do not contend). */
export async function bringAll(ws: string, targets: Record<string, Reachable>, planName = 'custom-kimi.json'): Promise<void> {
  await Promise.all(
    Object.entries(targets).map(async ([id, state]) => {
      await okAsync(ws, ['propose', `Intent of ${id}`, '--id', id]);
      if (state === 'DRAFT') return;
      await okAsync(ws, ['plan', id, '--file', fixture(planName)]);
      if (state === 'PLANNED') return;
      if (state === 'REWOUND') {
        await okAsync(ws, ['rewind', id, 'start over']);
        return;
      }
      await okAsync(ws, ['request-approval', id]);
      if (state === 'AWAITING_APPROVAL') return;
      await okAsync(ws, ['approve', id]);
    }),
  );
}

/** An APPROVED contract on the custom-kimi plan that requires `control`, granted before approval. */
export async function approvedRequiring(ws: string, id: string, control: string): Promise<void> {
  await okAsync(ws, ['propose', `Needs ${control}`, '--id', id, '--requires', control]);
  await okAsync(ws, ['plan', id, '--file', fixture('custom-kimi.json')]);
  await okAsync(ws, ['grant', id, control]);
  await okAsync(ws, ['request-approval', id]);
  await okAsync(ws, ['approve', id]);
}

/**
 * A workspace holding one contract per reachable state, all with the custom-kimi plan and no
 * required controls: `draft`, `planned`, `awaiting`, `approved`, `rewound`. Clone it per test.
 */
export async function makeStandardWorkspace(): Promise<string> {
  const ws = makeWorkspace();
  await bringAll(ws, { draft: 'DRAFT', planned: 'PLANNED', awaiting: 'AWAITING_APPROVAL', approved: 'APPROVED', rewound: 'REWOUND' });
  return ws;
}

/** The same JSON value with every object's keys in reverse order (a re-formatted, equal document). */
export function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .reverse()
        .map((k) => [k, reverseKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** The process is gone (a zombie waiting for its reaper counts as gone: it runs nothing). */
export function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
  } catch {
    return false;
  }
}

/** A fresh folder holding a `kair` that runs the built CLI, to put first on PATH for shell examples. */
export function kairOnPath(prefix = 'kair-bin-'): string {
  const dir = makeTempDir(prefix);
  // A script rather than a symlink: bin/kair.js need not be executable in a checkout.
  writeFileSync(join(dir, 'kair'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
  return dir;
}
