/**
 * Migration 5: SLO waivers (`kair aec waiver add`), kept in an append-only table and entered in
 * the change log like catalog and policy changes. The change log's `table_name` was limited by a
 * CHECK to the two tables it logged; SQLite cannot change a CHECK in place, so the table is
 * rebuilt with the same columns and rows (row hashes cover column names and values, so the chain
 * is unchanged) and which tables are logged is left to the code (change-log.ts PRIMARY_KEYS): the
 * next logged table needs no rebuild.
 */
import { appendOnlyTriggersSql } from './anchoring-migration.js';
import type { Db } from './db.js';

const SLO_SQL = `
CREATE TABLE slo_waivers (
  id         TEXT PRIMARY KEY,
  tenant_id  TEXT NOT NULL,
  until      TEXT NOT NULL,
  reason     TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL
);

CREATE TABLE change_log_v5 (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id   TEXT NOT NULL,
  table_name  TEXT NOT NULL CHECK (length(table_name) > 0),
  row_key     TEXT NOT NULL CHECK (json_valid(row_key)),
  action      TEXT NOT NULL,
  actor       TEXT NOT NULL,
  changed_at  TEXT NOT NULL,
  change      TEXT NOT NULL CHECK (json_valid(change)),
  row_sha256  TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  row_hash    TEXT NOT NULL
);
INSERT INTO change_log_v5 (id, tenant_id, table_name, row_key, action, actor, changed_at, change, row_sha256, prev_hash, row_hash)
  SELECT id, tenant_id, table_name, row_key, action, actor, changed_at, change, row_sha256, prev_hash, row_hash FROM change_log ORDER BY id;
DROP TABLE change_log;
ALTER TABLE change_log_v5 RENAME TO change_log;
CREATE INDEX change_log_row ON change_log (table_name, row_key, id);
`;

export function sloWaivers(db: Db): void {
  // Dropping a table drops its triggers first, so the append-only ones never fire here.
  db.exec(SLO_SQL + appendOnlyTriggersSql('change_log') + appendOnlyTriggersSql('slo_waivers'));
}
