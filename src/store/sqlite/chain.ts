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
import type Database from 'better-sqlite3';
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

export function rowJson(row: Record<string, unknown>): string {
  const { prev_hash: _p, row_hash: _h, ...rest } = row;
  return canonicalJson(rest);
}

export const rowSha = (row: Record<string, unknown>): string => sha256Hex(rowJson(row));

export const chainHash = (prev: string, row: Record<string, unknown>): string => sha256Hex(prev + rowJson(row));

// Strings with nothing to escape are quoted as they are: JSON.stringify per value was the larger
// part of a chain walk's time.
// eslint-disable-next-line no-control-regex -- control characters are exactly what needs escaping
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const leaf = (v: unknown): string =>
  v === null ? 'null' : typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' && !NEEDS_ESCAPE.test(v) ? `"${v}"` : typeof v === 'object' ? canonicalJson(v) : JSON.stringify(v);

/**
 * rowJson for rows read with `.raw()` (arrays in `columns` order): the same text, built without
 * an object and a key sort per row. Walking a million-row ledger spends most of its time here.
 */
function rawRowJson(columns: readonly string[]): (values: unknown[]) => string {
  const order = columns.map((c, i) => [c, i] as const).filter(([c]) => c !== 'prev_hash' && c !== 'row_hash');
  order.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const keys = order.map(([c]) => JSON.stringify(c) + ':');
  const idx = order.map(([, i]) => i);
  return (values) => {
    let out = '{';
    for (let k = 0; k < idx.length; k++) {
      const v = values[idx[k]!];
      if (v === undefined) continue;
      out += (out.length > 1 ? ',' : '') + keys[k] + leaf(v);
    }
    return out + '}';
  };
}

type Stmt = Database.Statement<unknown[], unknown>;
const statements = new WeakMap<Db, Map<string, Stmt>>();

function stmt(db: Db, sql: string): Stmt {
  let m = statements.get(db);
  if (!m) statements.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.prepare<unknown[]>(sql)));
  return s;
}

const keyWhere = (spec: ChainSpec) => (spec.key.length ? `WHERE ${spec.key.map((k) => `${k} = ?`).join(' AND ')}` : '');

/** The `row_hash` the chain of `row` ends with (GENESIS when it has no row yet). */
export function chainHead(db: Db, spec: ChainSpec, row: Record<string, unknown>): string {
  const order = spec.integerId ? spec.id : 'rowid';
  const last = stmt(db, `SELECT row_hash FROM ${spec.table} ${keyWhere(spec)} ORDER BY ${order} DESC LIMIT 1`).get(...spec.key.map((k) => row[k])) as { row_hash: string | null } | undefined;
  return last?.row_hash ?? GENESIS;
}

/**
 * Appends `row` (every column but the chain's own, and the id for integer-id tables) to its
 * chain and returns the id. Runs in a BEGIN IMMEDIATE transaction (a savepoint inside the
 * caller's), so reading the chain head and inserting after it cannot interleave with another
 * writer.
 */
export function insertChained(db: Db, spec: ChainSpec, values: Record<string, unknown>): number | string {
  return db
    .transaction(() => {
      // SQLite stores a lone surrogate as U+FFFD: hash what will be stored, not what was passed.
      const row: Record<string, unknown> = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === 'string' ? (v as string & { toWellFormed(): string }).toWellFormed() : v]));
      if (spec.integerId) {
        // AUTOINCREMENT would choose the same number; kair picks it first so the hash covers it.
        const seq = stmt(db, 'SELECT seq FROM sqlite_sequence WHERE name = ?').get(spec.table) as { seq: number } | undefined;
        const max = stmt(db, `SELECT coalesce(max(${spec.id}), 0) AS m FROM ${spec.table}`).get() as { m: number };
        row[spec.id] = Math.max(seq?.seq ?? 0, max.m) + 1;
      }
      const prev = chainHead(db, spec, row);
      const cols = Object.keys(row);
      const all = [...cols, 'prev_hash', 'row_hash'];
      stmt(db, `INSERT INTO ${spec.table} (${all.join(', ')}) VALUES (${all.map(() => '?').join(', ')})`).run(...cols.map((c) => row[c]), prev, chainHash(prev, row));
      return row[spec.id] as number | string;
    })
    .immediate();
}

/** The anchor of one row as it is now; undefined when the row does not exist. */
export function rowAnchor(db: Db, table: AnchoredTable, id: string | number): RowAnchor | undefined {
  const row = stmt(db, `SELECT * FROM ${table} WHERE ${ANCHORED_TABLES[table]} = ?`).get(id) as Record<string, unknown> | undefined;
  return row ? { table, id, sha256: rowSha(row) } : undefined;
}

export interface ChainBreak {
  table: string;
  id: string | number;
  chain: string;
  message: string;
}

/**
 * Walks every chain of a table in id order. Reports the first broken link of each chain (a row
 * whose prev_hash is not its predecessor's row_hash, or whose row_hash is not the hash of its
 * content): later rows of a broken chain say nothing new.
 */
export function checkChainTable(db: Db, spec: ChainSpec): ChainBreak[] {
  const order = spec.integerId ? spec.id : 'rowid';
  const heads = new Map<string, string>();
  const broken = new Set<string>();
  const out: ChainBreak[] = [];
  const select = db.prepare(`SELECT * FROM ${spec.table} ORDER BY ${order}`).raw();
  const columns = select.columns().map((c) => c.name);
  const at = (name: string) => columns.indexOf(name);
  const [iPrev, iHash, iId] = [at('prev_hash'), at('row_hash'), at(spec.id)];
  const iKey = spec.key.map(at);
  const json = rawRowJson(columns);
  for (const values of select.iterate() as IterableIterator<unknown[]>) {
    const chain = iKey.map((i) => String(values[i])).join('/') || spec.table;
    if (broken.has(chain)) continue;
    const prev = heads.get(chain) ?? GENESIS;
    const id = values[iId] as string | number;
    const [prevHash, rowHash] = [values[iPrev], values[iHash]];
    let why: string | undefined;
    if (prevHash !== prev) why = prevHash == null ? 'has no prev_hash' : `has prev_hash ${String(prevHash).slice(0, 12)}… where its predecessor's row_hash is ${prev.slice(0, 12)}… (a row was deleted, inserted or reordered)`;
    else if (rowHash !== hash('sha256', prev + json(values))) why = rowHash == null ? 'has no row_hash' : 'does not hash to its row_hash (the row was edited)';
    if (why) {
      broken.add(chain);
      out.push({ table: spec.table, id, chain, message: `${spec.table} ${spec.id} ${JSON.stringify(id)} (chain ${chain}) ${why}` });
      continue;
    }
    heads.set(chain, rowHash as string);
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
  const heads = new Map<string, string>();
  const set = db.prepare(`UPDATE ${spec.table} SET prev_hash = ?, row_hash = ? WHERE rowid = ?`);
  const page = db.prepare(`SELECT rowid AS __rowid, * FROM ${spec.table} WHERE ${order} > ? ORDER BY ${order} LIMIT 5000`);
  for (let after: unknown = -1; ; ) {
    const rows = page.all(after) as Record<string, unknown>[];
    if (rows.length === 0) break;
    for (const { __rowid, ...row } of rows) {
      const chain = spec.key.map((k) => String(row[k])).join('\u0000');
      const prev = heads.get(chain) ?? GENESIS;
      const rowHash = chainHash(prev, row);
      set.run(prev, rowHash, __rowid);
      heads.set(chain, rowHash);
    }
    const last = rows[rows.length - 1]!;
    after = spec.integerId ? last[spec.id] : last.__rowid;
  }
}

/** Anchors of the rows of `table` matching `where` (in id order). */
export function anchorsWhere(db: Db, table: AnchoredTable, where: string, args: unknown[]): RowAnchor[] {
  const id = ANCHORED_TABLES[table];
  return (stmt(db, `SELECT * FROM ${table} WHERE ${where} ORDER BY ${id}`).all(...args) as Record<string, unknown>[]).map((row) => ({ table, id: row[id] as string | number, sha256: rowSha(row) }));
}

/** Every AEC ledger row (decisions, access checks, confirmations) of one step of one run, as it is now. */
export function stepAnchors(db: Db, runId: string, stepId: string): RowAnchor[] {
  return (['agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger', 'agent_execution_ledger'] as const).flatMap((t) => anchorsWhere(db, t, 'run_id = ? AND step_id = ?', [runId, stepId]));
}

/** An envelope and its Kimi run rows, as they are now. */
export function envelopeAnchors(db: Db, envelopeId: string): RowAnchor[] {
  return [...anchorsWhere(db, 'execution_envelopes', 'id = ?', [envelopeId]), ...anchorsWhere(db, 'kimi_execution_runs', 'envelope_id = ?', [envelopeId])];
}
