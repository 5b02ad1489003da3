/**
 * The change log of the simulation catalog and the access policy: one append-only,
 * hash-chained row per change (per tenant), naming the changed row by its key and the sha256 of
 * its canonical JSON after the change. `verify` holds the tables to what the log says.
 */
import { canonicalJson } from '../../domain/canonical.js';
import { CHAINS, insertChained, rowSha } from '../../store/sqlite/chain.js';
import type { Db } from '../../store/sqlite/db.js';

export type LoggedTable = 'simulations' | 'access_policy';

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

export const PRIMARY_KEYS: Record<LoggedTable, readonly string[]> = { simulations: ['id'], access_policy: ['actor', 'action'] };

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
export function logChange(db: Db, c: Change, key: Record<string, unknown>): void {
  const cols = PRIMARY_KEYS[c.table];
  const row = db.prepare(`SELECT * FROM ${c.table} WHERE ${cols.map((k) => `${k} = ?`).join(' AND ')}`).get(...cols.map((k) => key[k])) as Record<string, unknown>;
  insertChained(db, CHAINS.change_log, {
    tenant_id: c.tenant,
    table_name: c.table,
    row_key: rowKey(c.table, key),
    action: c.action,
    actor: c.actor,
    changed_at: c.at,
    change: canonicalJson(c.change),
    row_sha256: rowSha(row),
  });
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
export function changeLog(db: Db, filter: { table?: LoggedTable; key?: string } = {}): ChangeLogRow[] {
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
  return db.prepare<string[], ChangeLogRow>(`SELECT * FROM change_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`).all(...args);
}
