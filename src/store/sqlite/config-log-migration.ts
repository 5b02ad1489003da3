/**
 * Migration 6: the access policy's version rows can record a rule's removal (`decision =
 * 'removed'`, for `kair access apply`). SQLite cannot widen a CHECK in place, so the table is
 * rebuilt with its rows as they are, and its append-only triggers are created again under their
 * old names (DROP TABLE fires no trigger). The change log takes `config` entries since
 * migration 5, which left the logged tables to the code.
 */
import type { Db } from './db.js';

export function accessPolicyRemoved(db: Db): void {
  db.exec(`
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
