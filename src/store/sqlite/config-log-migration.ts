/**
 * Migration 5: the change log also records config changes (`table_name = 'config'`), and the
 * access policy's version rows can record a rule's removal (`decision = 'removed'`, for
 * `kair access apply`). SQLite
 * cannot widen a CHECK in place, so the table is rebuilt with its rows, ids and hashes as they
 * are (the chain hashes the row contents, which the copy keeps), and its index and append-only
 * triggers are created again under their old names. DROP TABLE fires no trigger.
 */
import type { Db } from './db.js';
import { appendOnlyTriggersSql } from './anchoring-migration.js';

export function configInChangeLog(db: Db): void {
  db.exec(`
CREATE TABLE change_log_next (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id   TEXT NOT NULL,
  table_name  TEXT NOT NULL CHECK (table_name IN ('simulations', 'access_policy', 'config')),
  row_key     TEXT NOT NULL CHECK (json_valid(row_key)),
  action      TEXT NOT NULL,
  actor       TEXT NOT NULL,
  changed_at  TEXT NOT NULL,
  change      TEXT NOT NULL CHECK (json_valid(change)),
  row_sha256  TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  row_hash    TEXT NOT NULL
);
INSERT INTO change_log_next (id, tenant_id, table_name, row_key, action, actor, changed_at, change, row_sha256, prev_hash, row_hash)
  SELECT id, tenant_id, table_name, row_key, action, actor, changed_at, change, row_sha256, prev_hash, row_hash FROM change_log ORDER BY id;
DROP TABLE change_log;
ALTER TABLE change_log_next RENAME TO change_log;
CREATE INDEX change_log_row ON change_log (table_name, row_key, id);
` + appendOnlyTriggersSql('change_log') + `
CREATE TABLE access_policy_versions_next (
  version    INTEGER PRIMARY KEY AUTOINCREMENT,
  changed_at TEXT NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  decision   TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'require-ap', 'removed'))
);
INSERT INTO access_policy_versions_next (version, changed_at, actor, action, decision)
  SELECT version, changed_at, actor, action, decision FROM access_policy_versions ORDER BY version;
DROP TABLE access_policy_versions;
ALTER TABLE access_policy_versions_next RENAME TO access_policy_versions;
CREATE TRIGGER access_policy_versions_append_only_update BEFORE UPDATE ON access_policy_versions
BEGIN SELECT RAISE(ABORT, 'access_policy_versions is append-only'); END;
CREATE TRIGGER access_policy_versions_append_only_delete BEFORE DELETE ON access_policy_versions
BEGIN SELECT RAISE(ABORT, 'access_policy_versions is append-only'); END;
`);
}
