/**
 * The change log of the simulation catalog and the access policy: one append-only,
 * hash-chained row per change (per tenant), naming the changed row by its key and the sha256 of
 * its canonical JSON after the change. `verify` holds the tables to what the log says.
 */
import { canonicalJson } from '../../domain/canonical.js';
import { CHAINS, insertChained, insertChainedSync, rowSha } from '../../store/sqlite/chain.js';
import type { Db } from '../../store/sqlite/db.js';
import type { SqlExecutor } from '../../store/port.js';

export type LoggedTable = 'simulations' | 'access_policy' | 'slo_waivers';

export interface ChangeLogRow {
  id: number;
  tenant_id: string;
  table_name: LoggedTable;
  row_key: string;
  action: string;
  actor: string;
  changed_at: string;
  change: string;
  row_sha256: string;
  prev_hash: string;
  row_hash: string;
}

export const PRIMARY_KEYS: Record<LoggedTable, readonly string[]> = { simulations: ['id'], access_policy: ['actor', 'action'], slo_waivers: ['id'] };

/** The row key as the log stores it: canonical JSON of the primary key columns. */
export function rowKey(table: LoggedTable, row: Record<string, unknown>): string {
  return canonicalJson(Object.fromEntries(PRIMARY_KEYS[table].map((k) => [k, row[k]])));
}

export interface Change {
  tenant: string;
  table: LoggedTable;
  action: string;
  actor: string;
  at: string;
  /** What changed, e.g. `{status: {from, to}}`. */
  change: Record<string, unknown>;
}

/** Appends the change of `table`'s row identified by `key`, reading the row as it now is (in the caller's transaction). */
export async function logChange(sql: SqlExecutor, c: Change, key: Record<string, unknown>): Promise<void> {
  const cols = PRIMARY_KEYS[c.table];
  const row = await sql.get(`SELECT * FROM ${c.table} WHERE ${cols.map((k) => `${k} = ?`).join(' AND ')}`, cols.map((k) => key[k]));
  // A removed row (access apply) is recorded as gone: the sha of nothing.
  await insertChained(sql, CHAINS.change_log, changeRow(c, key, row ? rowSha(row, { dialect: sql.dialect, table: c.table }) : REMOVED_SHA));
}

/** logChange over a raw local connection, inside its caller's synchronous transaction (the local facades of catalog.ts and access.ts). */
export function logChangeSync(db: Db, c: Change, key: Record<string, unknown>): void {
  const cols = PRIMARY_KEYS[c.table];
  const row = db.prepare(`SELECT * FROM ${c.table} WHERE ${cols.map((k) => `${k} = ?`).join(' AND ')}`).get(...cols.map((k) => key[k])) as Record<string, unknown> | undefined;
  insertChainedSync(db, CHAINS.change_log, changeRow(c, key, row ? rowSha(row) : REMOVED_SHA));
}

/** The change log row of `c` (both the async and the local synchronous writer append this). */
function changeRow(c: Change, key: Record<string, unknown>, rowSha256: string): Record<string, unknown> {
  return { tenant_id: c.tenant, table_name: c.table, row_key: rowKey(c.table, key), action: c.action, actor: c.actor, changed_at: c.at, change: canonicalJson(c.change), row_sha256: rowSha256 };
}

export const REMOVED_SHA = 'removed';

/** The change log's key of the workspace config. */
const CONFIG_KEY = canonicalJson({ file: 'config.json' });

/** Records a config change with the sha256 of the config file's bytes after it. */
export async function logConfigChange(sql: SqlExecutor, c: { tenant: string; actor: string; at: string; change: Record<string, unknown>; sha256: string }): Promise<void> {
  await insertChained(sql, CHAINS.change_log, {
    tenant_id: c.tenant,
    table_name: 'config',
    row_key: CONFIG_KEY,
    action: 'set',
    actor: c.actor,
    changed_at: c.at,
    change: canonicalJson(c.change),
    row_sha256: c.sha256,
  });
}

/** The config sha the change log last recorded (null: kair never changed the config). */
export async function lastConfigSha(sql: SqlExecutor): Promise<string | null> {
  const r = await sql.get<{ row_sha256: string }>("SELECT row_sha256 FROM change_log WHERE table_name = 'config' AND row_key = ? ORDER BY id DESC LIMIT 1", [CONFIG_KEY]);
  return r?.row_sha256 ?? null;
}

export interface LogMismatch {
  kind: 'row_mismatch' | 'row_missing';
  message: string;
}

/**
 * Where `simulations` and `access_policy` differ from what the change log last recorded of each
 * row: a row no entry names or whose sha256 differs (it was written outside kair), or an entry
 * whose row is gone.
 */
export async function changeLogMismatches(sql: SqlExecutor, tables: readonly LoggedTable[] = Object.keys(PRIMARY_KEYS) as LoggedTable[]): Promise<LogMismatch[]> {
  const out: LogMismatch[] = [];
  const latest = new Map<string, { sha: string; id: number }>();
  for (const e of await sql.all<{ id: number; table_name: string; row_key: string; row_sha256: string }>('SELECT id, table_name, row_key, row_sha256 FROM change_log ORDER BY id')) {
    if (e.row_sha256 === REMOVED_SHA) {
      latest.delete(`${e.table_name}\u0000${e.row_key}`);
      continue;
    }
    latest.set(`${e.table_name}\u0000${e.row_key}`, { sha: e.row_sha256, id: e.id });
  }
  for (const table of tables) {
    const seen = new Set<string>();
    for (const row of await sql.all(`SELECT * FROM ${table}`)) {
      const key = rowKey(table, row);
      seen.add(key);
      const logged = latest.get(`${table}\u0000${key}`);
      if (!logged) out.push({ kind: 'row_mismatch', message: `${table} row ${key} is in no change-log entry (it was written outside kair)` });
      else if (logged.sha !== rowSha(row, { dialect: sql.dialect, table })) out.push({ kind: 'row_mismatch', message: `${table} row ${key} differs from what change-log entry ${logged.id} recorded` });
    }
    for (const [k, v] of latest) {
      const [t, key] = k.split('\u0000') as [string, string];
      if (t === table && !seen.has(key)) out.push({ kind: 'row_missing', message: `${table} row ${key}, recorded by change-log entry ${v.id}, is missing` });
    }
  }
  return out;
}

/** What `access log` / `sim log` print of an entry. */
export interface ChangeLogEntry {
  id: number;
  changed_at: string;
  actor: string;
  action: string;
  table: LoggedTable;
  key: Record<string, string>;
  change: Record<string, unknown>;
  row_sha256: string;
  prev_hash: string;
  row_hash: string;
}

export function toEntry(r: ChangeLogRow): ChangeLogEntry {
  return {
    id: r.id,
    changed_at: r.changed_at,
    actor: r.actor,
    action: r.action,
    table: r.table_name,
    key: JSON.parse(r.row_key) as Record<string, string>,
    change: JSON.parse(r.change) as Record<string, unknown>,
    row_sha256: r.row_sha256,
    prev_hash: r.prev_hash,
    row_hash: r.row_hash,
  };
}

/** In log order; `table`/`key` narrow it to one table or one row. */
export async function changeLog(sql: SqlExecutor, filter: { table?: LoggedTable; key?: string } = {}): Promise<ChangeLogRow[]> {
  const where: string[] = [];
  const args: string[] = [];
  if (filter.table) {
    where.push('table_name = ?');
    args.push(filter.table);
  }
  if (filter.key) {
    where.push('row_key = ?');
    args.push(filter.key);
  }
  return sql.all<ChangeLogRow>(`SELECT * FROM change_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`, args);
}
