/**
 * `kair export --to DIR` and `kair import --from DIR` (docs/decisions/034).
 *
 * Export writes DIR/.kair/, a complete local workspace, from a local workspace (each contract
 * read under its writer lock, history before kair.db, kair.db in one read transaction) or from a
 * PostgreSQL tenant (one REPEATABLE READ transaction). It is built in a staging folder beside
 * DIR/.kair and renamed into place, so DIR/.kair either is a whole export or does not exist.
 *
 * Import verifies the source (`kair verify` on it: a problem refuses everything, exit 7), then
 * loads it: on PostgreSQL into the workspace's tenant in one transaction; on a local workspace
 * into a fresh one (no contract, no execution row), whose `.kair/` is replaced by the source's.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../domain/config.js';
import { kairError, isKairError } from '../domain/errors.js';
import type { ContractDump, ExecRow, ExecTable, FoldedDump, WorkspaceDump } from '../domain/transfer.js';
import { EXEC_TABLES, KEY_ORDERED, checkArtifactPath, foldDump } from '../domain/transfer.js';
import { fsyncDir, jsonText } from '../store/fs/atomic.js';
import { indexEntry, listContractIds } from '../store/fs/contracts.js';
import { CHECKPOINT_HEAD } from '../store/fs/index-read.js';
import type { LockWho } from '../store/fs/lock.js';
import { contractLock, withLock } from '../store/fs/lock.js';
import { isTempName, sweepDeadWriters } from '../store/fs/temp.js';
import type { Workspace } from '../store/fs/workspace.js';
import { paths, workspaceAt } from '../store/fs/workspace.js';
import type { Db } from '../store/sqlite/db.js';
import { openDb } from '../store/sqlite/db.js';
import { failpoint } from '../store/failpoint.js';
import type { Ctx } from './context.js';
import { createCtx } from './context.js';
import { prepareOutDir } from './artifacts-out.js';

const CHECKPOINT_FILE = /^checkpoints\/(\d{1,12})\.json$/;
const PLAN_BY_SHA = /^plan\/([0-9a-f]{64})\.json$/;

/** A file's text; bytes that are not UTF-8 would not survive a text column or a re-write byte for byte. */
function readUtf8(file: string, shown: string): string {
  const buf = readFileSync(file);
  const text = buf.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(buf)) {
    throw kairError('INTEGRITY_FAILED', `${shown} is not UTF-8 text, which kair never writes; nothing was written`, { path: shown, hint: 'run `kair verify` on the source and restore that file from a backup' });
  }
  return text;
}

const notKairs = (shown: string, what: string) =>
  kairError('INTEGRITY_FAILED', `${shown} is ${what}, which kair never writes; nothing was written`, { path: shown, hint: 'replace it with the file itself (or remove it) in the source, then run `kair verify` there' });

/** One contract's folder: exact text of everything kair wrote there (fence markers and temp files left out). */
export function readContractFolder(ws: Workspace, id: string): ContractDump {
  const root = paths.contract(ws, id);
  const base = `.kair/contracts/${id}`;
  for (const [p, shown] of [[paths.contracts(ws), '.kair/contracts'], [root, base]] as const) {
    if (lstatSync(p).isSymbolicLink()) throw notKairs(shown, 'a symbolic link');
  }
  const hist = readUtf8(paths.history(ws, id), `${base}/history.jsonl`);
  // A torn last line was never acknowledged: only complete lines are history.
  const complete = hist.slice(0, hist.lastIndexOf('\n') + 1);
  const d: ContractDump = { id, lines: complete ? complete.slice(0, -1).split('\n') : [], checkpoints: [], plans: [], dpc: null, artifacts: [] };
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (isTempName(name) || (!rel && (name === 'fence' || name === 'contract.json' || name === 'history.jsonl'))) continue;
      const st = lstatSync(join(dir, name));
      if (st.isDirectory()) {
        walk(join(dir, name), r);
        continue;
      }
      // kair writes only folders and regular files: a link (to a file outside the workspace, say)
      // or a device is not followed, and not skipped either (verify would have read through it).
      if (!st.isFile()) throw notKairs(`${base}/${r}`, st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file');
      const text = readUtf8(join(dir, name), `${base}/${r}`);
      const cp = CHECKPOINT_FILE.exec(r);
      const plan = PLAN_BY_SHA.exec(r);
      if (cp) d.checkpoints.push({ through: Number(cp[1]), text });
      else if (plan) d.plans.push({ sha: plan[1]!, text });
      else if (r === 'dpc/dpc_v1.json') d.dpc = text;
      else {
        checkArtifactPath(`${base}/${r}`, id);
        d.artifacts.push({ path: `${base}/${r}`, text });
      }
    }
  };
  walk(root, '');
  d.checkpoints.sort((a, b) => a.through - b.through);
  return d;
}

/** kair.db's execution rows in insertion order, read in one transaction (one consistent snapshot). */
export function readLocalRows(db: Db): Record<ExecTable, ExecRow[]> {
  return db.transaction(() => {
    const rows = {} as Record<ExecTable, ExecRow[]>;
    for (const t of EXEC_TABLES) rows[t] = db.prepare(`SELECT * FROM ${t} ORDER BY ${KEY_ORDERED[t] ?? 'rowid'}`).all() as ExecRow[];
    return rows;
  })();
}

/** The columns of each execution table in a local database (what a PostgreSQL read returns). */
export function localColumns(): Record<ExecTable, string[]> {
  const db = openDb(':memory:', { now: () => '1970-01-01T00:00:00.000Z' });
  try {
    return Object.fromEntries(EXEC_TABLES.map((t) => [t, (db.prepare(`PRAGMA table_info(${t})`).all() as { name: string }[]).map((c) => c.name)])) as Record<ExecTable, string[]>;
  } finally {
    db.close();
  }
}

function emptyRows(): Record<ExecTable, ExecRow[]> {
  return Object.fromEntries(EXEC_TABLES.map((t) => [t, []])) as unknown as Record<ExecTable, ExecRow[]>;
}

/** config.json as written, without the backend block (what an export's config is). */
export function portableConfig(ws: Workspace): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(paths.config(ws), 'utf8'));
  } catch {
    raw = null;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw kairError('CONFIG_INVALID', '.kair/config.json is not a JSON object', { path: '.kair/config.json' });
  const { backend: _b, ...rest } = raw as Record<string, unknown>;
  return rest;
}

/**
 * A local workspace as data. With `who`, each contract is read under its writer lock (a
 * command mid-way through its writes finishes first); contracts are read before kair.db, whose
 * rows are committed before the history events that name them, so every row history names is in
 * the copy (rows newer than the copied history are `orphan_row` warnings, as after a crash).
 */
export function readLocalDump(ws: Workspace, config: Pick<Config, 'workspace_id'>, opts: { who?: LockWho; timeoutMs: number; now: () => string }): WorkspaceDump {
  const contracts = listContractIds(ws).map((id) => (opts.who ? withLock(paths.locks(ws), contractLock(id), opts.who, opts.timeoutMs, () => readContractFolder(ws, id)) : readContractFolder(ws, id)));
  let rows = emptyRows();
  if (existsSync(paths.db(ws))) {
    const db = openDb(paths.db(ws), { now: opts.now });
    try {
      rows = readLocalRows(db);
    } finally {
      db.close();
    }
  }
  return { workspaceId: config.workspace_id, config: portableConfig(ws), contracts, rows, extras: readExtras(ws) };
}

const HEAD_FILE = /^[0-9a-f]{64}\.json$/;

/** `heads/<digest>.json` and `allowed_signers` when present (regular files only). */
function readExtras(ws: Workspace): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const add = (rel: string) => {
    const file = join(ws.kairDir, ...rel.split('/'));
    if (lstatSync(file, { throwIfNoEntry: false })?.isFile()) out.push({ path: rel, text: readUtf8(file, `.kair/${rel}`) });
  };
  add('allowed_signers');
  const heads = join(ws.kairDir, 'heads');
  if (lstatSync(heads, { throwIfNoEntry: false })?.isDirectory()) for (const n of readdirSync(heads).sort()) if (HEAD_FILE.test(n)) add(`heads/${n}`);
  return out;
}

export function foldAll(dump: Pick<WorkspaceDump, 'contracts'>): Map<string, FoldedDump> {
  return new Map(dump.contracts.map((d) => [d.id, foldDump(d)]));
}

/** Creates a file that must not exist yet (O_EXCL: never through a link); fsynced later with the others. */
function putFile(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const fd = openSync(file, 'wx', 0o644);
  try {
    writeSync(fd, Buffer.from(text, 'utf8'));
  } finally {
    closeSync(fd);
  }
}

/** Every folder under `dir`, deepest first. */
function foldersOf(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (lstatSync(p).isDirectory()) out.push(...foldersOf(p));
  }
  out.push(dir);
  return out;
}

/**
 * fsyncs the files, then the folders, several at a time: a workspace of 1,000 contracts is
 * ~5,000 files, and one fsync after another (each waiting for the disk) took 20 s on a busy
 * machine; libuv's thread pool keeps a few in flight. The staging folder is renamed into place
 * only after this.
 */
async function fsyncAll(files: string[], folders: string[]): Promise<void> {
  const sync = async (p: string) => {
    const h = await open(p, 'r');
    try {
      await h.sync();
    } catch (e) {
      // Some file systems refuse fsync on a folder; its rename is still atomic there.
      if (!folders.includes(p)) throw e;
    } finally {
      await h.close();
    }
  };
  for (const list of [files, folders]) {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(8, list.length) }, async () => {
      while (next < list.length) await sync(list[next++]!);
    }));
  }
}

/** Writes a dump as a local `.kair/` at `kairDir` (which must not exist). Returns the number of files. */
export async function writeDump(kairDir: string, dump: WorkspaceDump, folded: Map<string, FoldedDump>, now: () => string): Promise<number> {
  mkdirSync(kairDir);
  mkdirSync(join(kairDir, 'locks'));
  const written: string[] = [];
  const put = (rel: string, text: string) => {
    const file = join(kairDir, ...rel.split('/'));
    putFile(file, text);
    written.push(file);
  };
  put('config.json', jsonText(dump.config));
  for (const x of dump.extras ?? []) {
    if (x.path !== 'allowed_signers' && !/^heads\/[0-9a-f]{64}\.json$/.test(x.path)) throw kairError('INTERNAL_ERROR', `unexpected workspace file ${JSON.stringify(x.path.slice(0, 80))} in an export`, {});
    put(x.path, x.text);
  }
  const entries = dump.contracts.map((d) => JSON.stringify(indexEntry(folded.get(d.id)!.contract))).sort();
  const body = entries.join(',\n');
  put('contracts/index.json', CHECKPOINT_HEAD + body + (body ? '\n' : '') + ']\n');
  for (const d of [...dump.contracts].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    failpoint('transfer.contract');
    const f = folded.get(d.id)!;
    const base = `contracts/${d.id}`;
    put(`${base}/history.jsonl`, d.lines.map((l) => `${l}\n`).join(''));
    put(`${base}/contract.json`, f.snapshotText);
    for (const cp of d.checkpoints) put(`${base}/checkpoints/${cp.through}.json`, cp.text);
    for (const p of d.plans) put(`${base}/plan/${p.sha}.json`, p.text);
    if (d.dpc !== null) put(`${base}/dpc/dpc_v1.json`, d.dpc);
    for (const a of d.artifacts) {
      checkArtifactPath(a.path, d.id);
      put(a.path.slice('.kair/'.length), a.text);
    }
  }
  const db = openDb(join(kairDir, 'kair.db'), { now });
  try {
    db.transaction(() => {
      for (const t of EXEC_TABLES) {
        const rows = dump.rows[t];
        if (!rows.length) continue;
        const cols = Object.keys(rows[0]!);
        const stmt = db.prepare(`INSERT INTO ${t} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
        for (const r of rows) stmt.run(...cols.map((c) => r[c]));
      }
    })();
  } finally {
    db.close();
  }
  // SQLite fsynced its own file (synchronous = FULL) and removed its WAL on close.
  await fsyncAll(written, foldersOf(kairDir));
  return written.length + 1;
}

/** A PostgreSQL workspace's connection settings (the URL itself stays in the environment). */
const pgOptions = (config: Config, env: NodeJS.ProcessEnv) => ({ env, urlEnv: config.backend.url_env, schema: config.backend.schema });

function rowCounts(rows: Record<ExecTable, ExecRow[]>): Record<string, number> {
  return Object.fromEntries(EXEC_TABLES.map((t) => [t, rows[t].length]));
}

export type TransferSummary = {
  backend: 'local' | 'postgres';
  workspace_id: string;
  contracts: number;
  events: number;
  rows: Record<string, number>;
};

const notEmpty = (shown: string, why: string, hint: string) => kairError('WORKSPACE_NOT_EMPTY', `${shown} ${why}; nothing was written`, { path: shown, hint });

/** `kair export --to DIR` */
export async function exportWorkspace(ctx: Ctx, to: string): Promise<TransferSummary & { to: string; workspace: string; files: number }> {
  const dir = prepareOutDir(to, ctx.cwd, '--to', false);
  const target = join(dir, '.kair');
  const shown = `${to.replace(/\/+$/, '')}/.kair`;
  const already = () => lstatSync(target, { throwIfNoEntry: false });
  const there = already();
  if (there) throw notEmpty(shown, there.isSymbolicLink() ? 'exists (a symbolic link)' : 'already exists', 'export into a folder without a .kair/ (export never overwrites a workspace)');
  const config = ctx.config;
  let dump: WorkspaceDump;
  if (config.backend.kind === 'postgres') {
    const { openPgSession, readPgDump } = await import('../store/pg/transfer.js');
    const conn = await openPgSession(pgOptions(config, ctx.env));
    try {
      dump = { ...(await readPgDump(conn, config.workspace_id, localColumns())), config: portableConfig(ctx.ws) };
    } finally {
      await conn.client.end().catch(() => undefined);
    }
  } else {
    dump = readLocalDump(ctx.ws, config, { who: { actor: ctx.actor(), command: 'export', now: ctx.now }, timeoutMs: ctx.lockTimeoutMs, now: ctx.now });
  }
  const folded = foldAll(dump);
  prepareOutDir(to, ctx.cwd, '--to');
  // What a killed export left here: its staging folder (named with its pid).
  sweepDeadWriters(dir, /^\.kair-export-(\d+)-[0-9a-f]{8}$/, { folders: true, bestEffort: true });
  const staging = join(dir, `.kair-export-${process.pid}-${randomBytes(4).toString('hex')}`);
  let files: number;
  try {
    files = await writeDump(staging, dump, folded, ctx.now);
    failpoint('export.staged');
    if (already()) throw notEmpty(shown, 'appeared while kair was exporting', 'export into a folder without a .kair/');
    renameSync(staging, target);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    if (!isKairError(e) && ['ENOTEMPTY', 'EEXIST'].includes((e as { code?: string }).code ?? '')) throw notEmpty(shown, 'appeared while kair was exporting', 'export into a folder without a .kair/');
    throw e;
  }
  fsyncDir(dir);
  let events = 0;
  for (const f of folded.values()) events += f.events.length;
  return { to, workspace: shown, backend: config.backend.kind, workspace_id: config.workspace_id, contracts: dump.contracts.length, events, rows: rowCounts(dump.rows), files };
}

/** The source of an import: DIR/.kair/, a real folder holding a local workspace's config. */
function sourceWorkspace(from: string, cwd: string): Workspace {
  if (from.trim() === '') throw kairError('USAGE_ERROR', '--from needs a folder', { flag: '--from' });
  if (from.length > 4096 || from.includes('\0')) throw kairError('USAGE_ERROR', `--from is not a usable path (${from.length} characters)`, { flag: '--from' });
  const ws = workspaceAt(resolve(cwd, from));
  const shown = `${from.replace(/\/+$/, '')}/.kair`;
  let st;
  try {
    st = lstatSync(ws.kairDir, { throwIfNoEntry: false });
  } catch (e) {
    throw kairError('USAGE_ERROR', `--from ${JSON.stringify(from.slice(0, 80))} cannot be read (${(e as { code?: string }).code ?? 'error'})`, { flag: '--from' });
  }
  if (!st) throw kairError('WORKSPACE_NOT_FOUND', `no ${shown} to import from`, { flag: '--from', hint: '`kair export --to DIR` writes DIR/.kair/; pass that DIR to --from' });
  if (st.isSymbolicLink()) throw kairError('USAGE_ERROR', `${shown} is a symbolic link; import reads only a real .kair/ folder`, { flag: '--from', hint: 'pass the folder the link points to' });
  if (!st.isDirectory()) throw kairError('USAGE_ERROR', `${shown} is not a folder`, { flag: '--from' });
  if (!existsSync(paths.config(ws))) throw kairError('WORKSPACE_NOT_FOUND', `${shown} has no config.json: it is not a kair workspace`, { flag: '--from', hint: '`kair export --to DIR` writes a complete one' });
  return ws;
}

/** `kair verify` on the source: any problem refuses the import (INTEGRITY_FAILED, exit 7) before anything is written. */
async function verifySource(ws: Workspace, from: string, ctx: Ctx): Promise<void> {
  const raw = portableConfigRaw(ws);
  if ((raw.backend as { kind?: unknown } | undefined)?.kind === 'postgres') {
    throw kairError('USAGE_ERROR', `${from}/.kair is a PostgreSQL workspace's config, not a local workspace; nothing was written`, { flag: '--from', hint: 'run `kair export --to DIR` in it first and import DIR' });
  }
  const { verify } = await import('./verify.js');
  const sctx = createCtx({ dir: ws.root, command: 'verify', env: ctx.env, cwd: ctx.cwd, interactive: () => false });
  const r = await verify(sctx);
  if (r.problems.length) {
    const e = kairError('INTEGRITY_FAILED', `the source ${from}/.kair does not verify (${r.problems.length} problem(s), first: ${r.problems[0]!.kind}: ${r.problems[0]!.message.slice(0, 200)}); nothing was written`, {
      problems: r.problems.length,
      hint: `run \`kair verify --dir ${from}\` for the list; import only a source that verifies`,
    });
    e.payload = { problems: r.problems, warnings: r.warnings };
    throw e;
  }
}

function portableConfigRaw(ws: Workspace): Record<string, unknown> {
  try {
    const v = JSON.parse(readFileSync(paths.config(ws), 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** What a fresh local workspace holds: `kair init`'s files, the database, locks and staging. */
const FRESH_ENTRIES = new Set(['config.json', 'kair.db', 'kair.db-wal', 'kair.db-shm', 'contracts', 'locks', 'tmp']);

function assertLocalEmpty(ws: Workspace, now: () => string): void {
  const shown = '.kair';
  const hint = 'import into a fresh workspace (`kair init` in an empty folder, then `kair import --from DIR` there)';
  const ids = listContractIds(ws);
  if (ids.length) throw notEmpty(shown, `holds ${ids.length} contract(s) (${ids.slice(0, 3).join(', ')}); import loads only into a fresh workspace`, hint);
  const extra = readdirSync(ws.kairDir).filter((n) => !FRESH_ENTRIES.has(n));
  const extraContracts = existsSync(paths.contracts(ws)) ? readdirSync(paths.contracts(ws)).filter((n) => n !== 'index.json' && n !== 'index.log') : [];
  if (extra.length || extraContracts.length) throw notEmpty(shown, `holds ${JSON.stringify([...extra, ...extraContracts.map((n) => `contracts/${n}`)][0]!.slice(0, 80))}, which a fresh workspace does not have`, hint);
  if (existsSync(paths.db(ws))) {
    const db = openDb(paths.db(ws), { now });
    try {
      const full = EXEC_TABLES.filter((t) => db.prepare(`SELECT 1 FROM ${t} LIMIT 1`).get() !== undefined);
      if (full.length) throw notEmpty(shown, `has rows in ${full.join(', ')}; import loads only into a fresh workspace`, hint);
    } finally {
      db.close();
    }
  }
}

/** `kair import --from DIR` */
export async function importWorkspace(ctx: Ctx, from: string): Promise<TransferSummary & { from: string }> {
  const src = sourceWorkspace(from, ctx.cwd);
  const ws = ctx.ws;
  if (resolve(src.kairDir) === resolve(ws.kairDir)) throw kairError('USAGE_ERROR', '--from names this workspace itself', { flag: '--from', hint: 'pass the folder an export wrote (kair export --to DIR)' });
  const config = ctx.config;
  await verifySource(src, from, ctx);
  const srcConfig = portableConfigRaw(src);
  const srcId = typeof srcConfig.workspace_id === 'string' ? srcConfig.workspace_id : '';
  const dump = readLocalDump(src, { workspace_id: srcId }, { timeoutMs: ctx.lockTimeoutMs, now: ctx.now });
  const folded = foldAll(dump);
  let events = 0;
  for (const f of folded.values()) events += f.events.length;
  const summary = { from, workspace_id: srcId, contracts: dump.contracts.length, events, rows: rowCounts(dump.rows) };
  if (config.backend.kind === 'postgres') {
    // Rows and anchors name their workspace (tenant_id is hashed): they stay in the tenant they were made in.
    if (srcId !== config.workspace_id) {
      throw kairError('USAGE_ERROR', `the source is workspace ${JSON.stringify(srcId.slice(0, 80))} and this one is ${config.workspace_id}: hashed rows name their workspace, so import loads only into the same workspace_id; nothing was written`, {
        flag: '--from',
        source_workspace_id: srcId,
        workspace_id: config.workspace_id,
        hint: `create the PostgreSQL workspace with that id: kair init --backend postgres --workspace-id ${srcId.slice(0, 80)}`,
      });
    }
    const { openPgSession, loadPgDump } = await import('../store/pg/transfer.js');
    const conn = await openPgSession(pgOptions(config, ctx.env));
    try {
      await loadPgDump(conn, config.workspace_id, dump, folded);
    } finally {
      await conn.client.end().catch(() => undefined);
    }
    return { ...summary, backend: 'postgres' };
  }
  assertLocalEmpty(ws, ctx.now);
  // The fresh workspace becomes the source's: its .kair/ is built beside it and swapped in
  // (the source's config, workspace_id included: its rows and anchors name that id).
  // A killed import's staging folder, and the old .kair of a swap killed before removing it (.kair is back in place).
  sweepDeadWriters(ws.root, /^\.kair-(?:import|replaced)-(\d+)-[0-9a-f]{8}$/, { folders: true, bestEffort: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staging = join(ws.root, `.kair-import-${tag}`);
  const old = join(ws.root, `.kair-replaced-${tag}`);
  try {
    await writeDump(staging, dump, folded, ctx.now);
    failpoint('import.staged');
    assertLocalEmpty(ws, ctx.now);
    renameSync(ws.kairDir, old);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  try {
    renameSync(staging, ws.kairDir);
  } catch (e) {
    renameSync(old, ws.kairDir);
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(ws.root);
  rmSync(old, { recursive: true, force: true });
  return { ...summary, backend: 'local' };
}
