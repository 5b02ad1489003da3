/**
 * Migration 4: the hash chains and the change log (cross-anchoring). Existing rows are chained
 * in id order, and the catalog and access policy as they stand are entered in the change log
 * (action `migrate`), so a workspace that passed `verify` before the upgrade passes after it.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson } from '../../domain/canonical.js';
import type { ChainSpec } from './chain.js';
import { CHAINS, chainExistingRows, insertChainedSync, rowSha } from './chain.js';
import type { Db } from './db.js';

const CHANGE_LOG_SQL = `
CREATE TABLE change_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id   TEXT NOT NULL,
  table_name  TEXT NOT NULL CHECK (table_name IN ('simulations', 'access_policy')),
  row_key     TEXT NOT NULL CHECK (json_valid(row_key)),
  action      TEXT NOT NULL,
  actor       TEXT NOT NULL,
  changed_at  TEXT NOT NULL,
  change      TEXT NOT NULL CHECK (json_valid(change)),
  row_sha256  TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  row_hash    TEXT NOT NULL
);
CREATE INDEX change_log_row ON change_log (table_name, row_key, id);
-- The head of a per-tenant chain is found by walking the ids down from the newest, which in a
-- local workspace (one tenant) stops at the first row: no index to keep up on every append.
-- A ledger chain is per contract, and contracts interleave, so it gets one.
CREATE INDEX agent_execution_ledger_chain ON agent_execution_ledger (tenant_id, contract_id, row_id);
`;

export const appendOnlyTriggersSql = (t: string) => `
CREATE TRIGGER ${t}_no_update BEFORE UPDATE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;
CREATE TRIGGER ${t}_no_delete BEFORE DELETE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;`;

const LEGACY_CHAINED: readonly ChainSpec[] = [CHAINS.aec_refs, CHAINS.agent_execution_access_decision_ledger, CHAINS.agent_execution_confirmation_ledger, CHAINS.agent_execution_ledger];

/** The tenant of a local workspace is its workspace_id; the config sits next to kair.db. */
function workspaceTenant(db: Db): string {
  if (db.memory) return '';
  try {
    const c = JSON.parse(readFileSync(join(dirname(db.name), 'config.json'), 'utf8')) as { workspace_id?: unknown };
    return typeof c.workspace_id === 'string' ? c.workspace_id : '';
  } catch {
    return '';
  }
}

export function crossAnchoring(db: Db, now: string): void {
  for (const spec of LEGACY_CHAINED) {
    db.exec(`ALTER TABLE ${spec.table} ADD COLUMN prev_hash TEXT; ALTER TABLE ${spec.table} ADD COLUMN row_hash TEXT;`);
    // The append-only trigger is lifted only inside this transaction, to fill the new columns.
    db.exec(`DROP TRIGGER ${spec.table}_no_update`);
    chainExistingRows(db, spec);
    db.exec(`CREATE TRIGGER ${spec.table}_no_update BEFORE UPDATE ON ${spec.table} BEGIN SELECT RAISE(ABORT, '${spec.table} is append-only'); END;`);
  }
  db.exec(CHANGE_LOG_SQL + appendOnlyTriggersSql('change_log'));
  const tenant = workspaceTenant(db);
  const log = (table: 'simulations' | 'access_policy', key: Record<string, unknown>, row: Record<string, unknown>) =>
    insertChainedSync(db, CHAINS.change_log, { tenant_id: tenant, table_name: table, row_key: canonicalJson(key), action: 'migrate', actor: 'kair', changed_at: now, change: canonicalJson({ state: 'as found by the upgrade' }), row_sha256: rowSha(row) });
  for (const r of db.prepare('SELECT * FROM simulations ORDER BY rowid').all() as Record<string, unknown>[]) log('simulations', { id: r.id }, r);
  for (const r of db.prepare('SELECT * FROM access_policy ORDER BY rowid').all() as Record<string, unknown>[]) log('access_policy', { actor: r.actor, action: r.action }, r);
}
