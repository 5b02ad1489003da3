/**
 * Hash-chained SQLite tables and row anchors (cross-anchoring between SQLite and history).
 *
 * A row's canonical JSON is the RFC 8785 form of the row as SQLite returns it (column-name keys,
 * integers as numbers, text — timestamps and JSON documents included — as the stored text, null),
 * without its own `prev_hash`/`row_hash`. A chained row stores
 * `row_hash = sha256(prev_hash + canonical row JSON)`, `prev_hash` being the `row_hash` of the
 * chain's previous row (64 zeros for the first). History names rows by `{table, id, sha256}` where
 * `sha256 = sha256(canonical row JSON)`.
 */
import { hash } from 'node:crypto';
import { GENESIS_HASH, canonicalJson, sha256Hex } from '../../domain/canonical.js';
import type { SqlExecutor } from '../port.js';
import type { Db } from './db.js';

export interface ChainSpec {
  table: string;
  /** The primary key column: what anchors use as `id` and the order rows are chained in. */
  id: string;
  /** Rows with equal values in these columns form one chain. */
  key: readonly string[];
  /** The id is an INTEGER assigned by kair before the insert (so the hash can cover it). */
  integerId: boolean;
}

export const CHAINS = {
  agent_execution_ledger: { table: 'agent_execution_ledger', id: 'row_id', key: ['tenant_id', 'contract_id'], integerId: true },
  agent_execution_access_decision_ledger: { table: 'agent_execution_access_decision_ledger', id: 'id', key: ['tenant_id'], integerId: true },
  agent_execution_confirmation_ledger: { table: 'agent_execution_confirmation_ledger', id: 'id', key: ['tenant_id'], integerId: true },
  // aec_refs has no tenant column; its refs are shared by every contract of the workspace.
  aec_refs: { table: 'aec_refs', id: 'ref', key: [], integerId: false },
  change_log: { table: 'change_log', id: 'id', key: ['tenant_id'], integerId: true },
  // Migration 5. dev_intake ids are text (`intake-<n>`): chained in rowid order. access_policy_versions has no tenant column.
  dev_intake: { table: 'dev_intake', id: 'id', key: ['tenant_id'], integerId: false },
  access_policy_versions: { table: 'access_policy_versions', id: 'version', key: [], integerId: true },
} as const satisfies Record<string, ChainSpec>;

export type ChainedTable = keyof typeof CHAINS;

/** Tables whose rows a run creates or changes and history names, with their primary key. */
export const ANCHORED_TABLES = {
  execution_envelopes: 'id',
  kimi_execution_runs: 'id',
  agent_execution_ledger: 'row_id',
  agent_execution_access_decision_ledger: 'id',
  agent_execution_confirmation_ledger: 'id',
} as const;

export type AnchoredTable = keyof typeof ANCHORED_TABLES;

/** How a history event names a SQLite row. */
export interface RowAnchor {
  table: string;
  id: string | number;
  sha256: string;
}

export const GENESIS = GENESIS_HASH;

/**
 * Columns PostgreSQL's tables have and the local ones do not (decision 031): a `tenant_id` where
 * the local table has none, and the explicit `rowid` that stands in for SQLite's implicit one.
 * Row hashes cover column names, so they are left out of the canonical JSON on PostgreSQL.
 */
const PG_ADDED_TENANT = new Set(['aec_refs', 'access_policy_versions', 'simulations', 'access_policy', 'execution_envelopes', 'kimi_execution_runs']);

/** Where a row was read: the dialect, and on PostgreSQL its table (to know which columns are local). */
export interface RowSource {
  dialect: SqlExecutor['dialect'];
  table: string;
}

export function rowJson(row: Record<string, unknown>, from?: RowSource): string {
  const { prev_hash: _p, row_hash: _h, ...rest } = row;
  if (from?.dialect === 'postgres') {
    delete rest.rowid;
    if (PG_ADDED_TENANT.has(from.table)) delete rest.tenant_id;
  }
  return canonicalJson(rest);
}

export const rowSha = (row: Record<string, unknown>, from?: RowSource): string => sha256Hex(rowJson(row, from));

export const chainHash = (prev: string, row: Record<string, unknown>, from?: RowSource): string => sha256Hex(prev + rowJson(row, from));

const keyWhere = (spec: ChainSpec) => (spec.key.length ? `WHERE ${spec.key.map((k) => `${k} = ?`).join(' AND ')}` : '');

/**
 * The `row_hash` the chain of `row` ends with (GENESIS when it has no row yet). Dialect branch:
 * SQLite orders a text-id chain by its implicit rowid; PostgreSQL's `aec_refs` has no rowid, so
 * there the head of a text-id chain is the row no other row names as its predecessor.
 */
export async function chainHead(sql: SqlExecutor, spec: ChainSpec, row: Record<string, unknown>): Promise<string> {
  const args = spec.key.map((k) => row[k]);
  if (sql.dialect === 'postgres' && !spec.integerId) {
    const k = spec.key.map((c) => ` AND b.${c} = a.${c}`).join('');
    const where = spec.key.length ? `${spec.key.map((c) => `a.${c} = ?`).join(' AND ')} AND` : '';
    const last = await sql.get<{ row_hash: string | null }>(`SELECT a.row_hash FROM ${spec.table} a WHERE ${where} NOT EXISTS (SELECT 1 FROM ${spec.table} b WHERE b.prev_hash = a.row_hash${k}) LIMIT 1`, args);
    return last?.row_hash ?? GENESIS;
  }
  const order = spec.integerId ? spec.id : 'rowid';
  const last = await sql.get<{ row_hash: string | null }>(`SELECT row_hash FROM ${spec.table} ${keyWhere(spec)} ORDER BY ${order} DESC LIMIT 1`, args);
  return last?.row_hash ?? GENESIS;
}

// SQLite stores a lone surrogate as U+FFFD: hash what will be stored, not what was passed.
const wellFormed = (values: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === 'string' ? (v as string & { toWellFormed(): string }).toWellFormed() : v]));

const insertSql = (spec: ChainSpec, cols: string[]) => {
  const all = [...cols, 'prev_hash', 'row_hash'];
  return `INSERT INTO ${spec.table} (${all.join(', ')}) VALUES (${all.map(() => '?').join(', ')})`;
};

/**
 * Appends `row` (every column but the chain's own, and the id for integer-id tables) to its
 * chain and returns the id, in the caller's transaction (`ExecutionStore.transaction`). On SQLite
 * that transaction is BEGIN IMMEDIATE, so reading the chain head and inserting after it cannot
 * interleave with another writer; on PostgreSQL (dialect branch) a transaction-scoped advisory
 * lock on the chain does the same before the head is read.
 */
export async function insertChained(sql: SqlExecutor, spec: ChainSpec, values: Record<string, unknown>): Promise<number | string> {
  const row = wellFormed(values);
  // SQLite's BEGIN IMMEDIATE for this chain (a no-op there): taken before its head is read.
  await sql.lockChain(spec.table, spec.key.map((k) => row[k]));
  if (spec.integerId) {
    // AUTOINCREMENT would choose the same number; kair picks it first so the hash covers it.
    // SQLite (dialect branch): never below a number sqlite_sequence handed out before.
    const seq = sql.dialect === 'sqlite' ? await sql.get<{ seq: number }>('SELECT seq FROM sqlite_sequence WHERE name = ?', [spec.table]) : undefined;
    const max = (await sql.get<{ m: number }>(`SELECT coalesce(max(${spec.id}), 0) AS m FROM ${spec.table}`))!;
    row[spec.id] = Math.max(seq?.seq ?? 0, Number(max.m)) + 1;
  }
  const prev = await chainHead(sql, spec, row);
  const cols = Object.keys(row);
  await sql.run(insertSql(spec, cols), [...cols.map((c) => row[c]), prev, chainHash(prev, row, { dialect: sql.dialect, table: spec.table })]);
  return row[spec.id] as number | string;
}

/** insertChained for the local migrations, which run synchronously inside their own transaction. */
export function insertChainedSync(db: Db, spec: ChainSpec, values: Record<string, unknown>): number | string {
  const row = wellFormed(values);
  if (spec.integerId) {
    const seq = db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(spec.table) as { seq: number } | undefined;
    const max = db.prepare(`SELECT coalesce(max(${spec.id}), 0) AS m FROM ${spec.table}`).get() as { m: number };
    row[spec.id] = Math.max(seq?.seq ?? 0, max.m) + 1;
  }
  const order = spec.integerId ? spec.id : 'rowid';
  const last = db.prepare(`SELECT row_hash FROM ${spec.table} ${keyWhere(spec)} ORDER BY ${order} DESC LIMIT 1`).get(...spec.key.map((k) => row[k])) as { row_hash: string | null } | undefined;
  const prev = last?.row_hash ?? GENESIS;
  const cols = Object.keys(row);
  db.prepare(insertSql(spec, cols)).run(...cols.map((c) => row[c]), prev, chainHash(prev, row));
  return row[spec.id] as number | string;
}

/** The anchor of one row as it is now; undefined when the row does not exist. */
export async function rowAnchor(sql: SqlExecutor, table: AnchoredTable, id: string | number): Promise<RowAnchor | undefined> {
  const row = await sql.get(`SELECT * FROM ${table} WHERE ${ANCHORED_TABLES[table]} = ?`, [id]);
  return row ? { table, id, sha256: rowSha(row, { dialect: sql.dialect, table }) } : undefined;
}

export interface ChainBreak {
  table: string;
  id: string | number;
  chain: string;
  message: string;
}

/** A SQL expression giving the row's JSON with the keys in canonical order (no prev_hash/row_hash). */
function sqlRowJson(db: Db, table: string): string {
  const columns = (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((c) => c.name);
  const content = columns.filter((c) => c !== 'prev_hash' && c !== 'row_hash').sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `json_object(${content.map((c) => `'${c}', "${c}"`).join(', ')})`;
}

/**
 * Walks every chain of a table in id order. Reports the first broken link of each chain (a row
 * whose prev_hash is not its predecessor's row_hash, or whose row_hash is not the hash of its
 * content): later rows of a broken chain say nothing new.
 *
 * SQLite builds each row's JSON (json_object, keys in canonical order), which makes a walk of a
 * million-row ledger several times faster than building it in JavaScript. Its text is RFC 8785
 * for every value kair stores; where it might not be (an escape written differently), a row that
 * does not match is hashed again from rowJson before it is called broken, so the fast path can
 * only ever be slower, never wrong.
 */
export async function checkChainTable(sql: SqlExecutor, spec: ChainSpec): Promise<ChainBreak[]> {
  // Dialect branch: SQLite builds each row's JSON itself (the fast path below); elsewhere the
  // rows are read whole and hashed here.
  // (The local executor's connection is read from the object: importing executor.ts here would
  // close an import cycle through db.ts and the migrations, which need CHAINS at load time.)
  const local = sql.dialect === 'sqlite' ? (sql as { db?: Db }).db : undefined;
  if (local) return checkChainTableSqlite(local, spec);
  const order = spec.integerId ? spec.id : 'rowid';
  const from = { dialect: sql.dialect, table: spec.table };
  const rows = await sql.all(sql.dialect === 'postgres' && !spec.integerId ? `SELECT * FROM ${spec.table}` : `SELECT * FROM ${spec.table} ORDER BY ${order}`);
  const byChain = new Map<string, Record<string, unknown>[]>();
  for (const r of rows) {
    const chain = spec.key.map((k) => String(r[k])).join('/') || spec.table;
    let list = byChain.get(chain);
    if (!list) byChain.set(chain, (list = []));
    list.push(r);
  }
  const out: ChainBreak[] = [];
  for (const [chain, list] of byChain) {
    // Without an insertion order (PostgreSQL's aec_refs), the walk follows the links from GENESIS.
    const ordered = sql.dialect === 'postgres' && !spec.integerId ? byLinks(list) : list;
    let prev = GENESIS;
    for (const r of ordered) {
      const id = r[spec.id] as string | number;
      let why: string | undefined;
      if (r.prev_hash !== prev) why = r.prev_hash == null ? 'has no prev_hash' : `has prev_hash ${String(r.prev_hash).slice(0, 12)}… where its predecessor's row_hash is ${prev.slice(0, 12)}… (a row was deleted, inserted or reordered)`;
      else if (r.row_hash == null) why = 'has no row_hash';
      else if (r.row_hash !== chainHash(prev, r, from)) why = 'does not hash to its row_hash (the row was edited)';
      if (why) {
        out.push({ table: spec.table, id, chain, message: `${spec.table} ${spec.id} ${JSON.stringify(id)} (chain ${chain}) ${why}` });
        break;
      }
      prev = r.row_hash as string;
    }
  }
  return out;
}

/** Rows in link order from GENESIS; rows no link reaches come last (and break the walk there). */
function byLinks(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  const next = new Map<unknown, Record<string, unknown>>();
  for (const r of rows) if (!next.has(r.prev_hash)) next.set(r.prev_hash, r);
  const out: Record<string, unknown>[] = [];
  const seen = new Set<Record<string, unknown>>();
  for (let r = next.get(GENESIS); r && !seen.has(r); r = next.get(r.row_hash)) {
    seen.add(r);
    out.push(r);
  }
  return [...out, ...rows.filter((r) => !seen.has(r))];
}

function checkChainTableSqlite(db: Db, spec: ChainSpec): ChainBreak[] {
  const order = spec.integerId ? spec.id : 'rowid';
  const json = sqlRowJson(db, spec.table);
  const keys = spec.key.map((k) => `"${k}"`);
  const select = db.prepare(`SELECT "${spec.id}", prev_hash, row_hash, ${json}${keys.length ? `, ${keys.join(', ')}` : ''} FROM ${spec.table} ORDER BY ${order}`).raw();
  const heads = new Map<string, string>();
  // In walk order: links that are broken, and rows whose fast hash did not match (checked below).
  const suspects: { n: number; chain: string; id: string | number; prev: string; why?: string }[] = [];
  let n = 0;
  for (const values of select.iterate() as IterableIterator<unknown[]>) {
    const [id, prevHash, rowHash, text] = values as [string | number, unknown, unknown, string];
    const chain = values.slice(4).map(String).join('/') || spec.table;
    const prev = heads.get(chain) ?? GENESIS;
    if (prevHash !== prev) {
      suspects.push({ n, chain, id, prev, why: prevHash == null ? 'has no prev_hash' : `has prev_hash ${String(prevHash).slice(0, 12)}… where its predecessor's row_hash is ${prev.slice(0, 12)}… (a row was deleted, inserted or reordered)` });
    } else if (rowHash == null) {
      suspects.push({ n, chain, id, prev, why: 'has no row_hash' });
    } else if (rowHash !== hash('sha256', prev + text)) {
      suspects.push({ n, chain, id, prev });
    }
    heads.set(chain, typeof rowHash === 'string' ? rowHash : GENESIS);
    n++;
  }
  const byId = db.prepare(`SELECT * FROM ${spec.table} WHERE "${spec.id}" = ?`);
  const out: ChainBreak[] = [];
  const reported = new Set<string>();
  for (const s of suspects) {
    if (reported.has(s.chain)) continue;
    let why = s.why;
    if (why === undefined) {
      const row = byId.get(s.id) as Record<string, unknown>;
      if (row.row_hash === chainHash(s.prev, row)) continue;
      why = 'does not hash to its row_hash (the row was edited)';
    }
    reported.add(s.chain);
    out.push({ table: spec.table, id: s.id, chain: s.chain, message: `${spec.table} ${spec.id} ${JSON.stringify(s.id)} (chain ${s.chain}) ${why}` });
  }
  return out;
}

/**
 * Fills prev_hash/row_hash of every row in id order (the migration that adds the chains). Pages
 * through the table: a connection cannot write while it iterates, and a million rows at once
 * would not fit comfortably in memory.
 */
export function chainExistingRows(db: Db, spec: ChainSpec): void {
  const order = spec.integerId ? spec.id : 'rowid';
  const keys = spec.key.map((k) => `"${k}"`);
  const heads = new Map<string, string>();
  const set = db.prepare(`UPDATE ${spec.table} SET prev_hash = ?, row_hash = ? WHERE rowid = ?`);
  const page = db.prepare(`SELECT rowid, ${order}, ${sqlRowJson(db, spec.table)}${keys.length ? `, ${keys.join(', ')}` : ''} FROM ${spec.table} WHERE ${order} > ? ORDER BY ${order} LIMIT 5000`).raw();
  const whole = db.prepare(`SELECT * FROM ${spec.table} WHERE rowid = ?`);
  for (let after: unknown = -1; ; ) {
    const rows = page.all(after) as unknown[][];
    if (rows.length === 0) break;
    for (const values of rows) {
      const [rowid, , text] = values as [number, unknown, string];
      const chain = values.slice(3).map(String).join('\u0000');
      const prev = heads.get(chain) ?? GENESIS;
      // SQLite's text is canonical when it escapes nothing; otherwise JavaScript builds it.
      const canonical = text.includes('\\') ? rowJson(whole.get(rowid) as Record<string, unknown>) : text;
      const rowHash = sha256Hex(prev + canonical);
      set.run(prev, rowHash, rowid);
      heads.set(chain, rowHash);
    }
    after = rows[rows.length - 1]![1];
  }
}

/** Anchors of the rows of `table` matching `where` (in id order). */
export async function anchorsWhere(sql: SqlExecutor, table: AnchoredTable, where: string, args: unknown[]): Promise<RowAnchor[]> {
  const id = ANCHORED_TABLES[table];
  return (await sql.all(`SELECT * FROM ${table} WHERE ${where} ORDER BY ${id}`, args)).map((row) => ({ table, id: row[id] as string | number, sha256: rowSha(row, { dialect: sql.dialect, table }) }));
}

/** Every AEC ledger row (decisions, access checks, confirmations) of one step of one run, as it is now. */
export async function stepAnchors(sql: SqlExecutor, runId: string, stepId: string): Promise<RowAnchor[]> {
  const out: RowAnchor[] = [];
  for (const t of ['agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger', 'agent_execution_ledger'] as const) out.push(...(await anchorsWhere(sql, t, 'run_id = ? AND step_id = ?', [runId, stepId])));
  return out;
}

/** An envelope and its Kimi run rows, as they are now. */
export async function envelopeAnchors(sql: SqlExecutor, envelopeId: string): Promise<RowAnchor[]> {
  return [...(await anchorsWhere(sql, 'execution_envelopes', 'id = ?', [envelopeId])), ...(await anchorsWhere(sql, 'kimi_execution_runs', 'envelope_id = ?', [envelopeId]))];
}
