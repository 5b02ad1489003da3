/**
 * Migration 5: `dev_intake` and `access_policy_versions` are chained like the other append-only
 * tables (they were append-only by trigger only, so an edit with the trigger dropped and put back
 * left no trace). Existing rows are chained in id order at migration, as migration 4 did for the
 * ledgers: a workspace that verified clean before the upgrade verifies clean after it, and from
 * then on an edited, deleted or inserted row breaks the chain.
 */
import type { ChainSpec } from './chain.js';
import { CHAINS, chainExistingRows } from './chain.js';
import type { Db } from './db.js';

/** Each table with the trigger that refuses UPDATEs (lifted only inside this transaction to fill the new columns). */
const TABLES: readonly [ChainSpec, string][] = [
  [CHAINS.dev_intake, 'dev_intake_no_update'],
  [CHAINS.access_policy_versions, 'access_policy_versions_append_only_update'],
];

export function chainIntakeAndPolicyVersions(db: Db): void {
  for (const [spec, trigger] of TABLES) {
    db.exec(`ALTER TABLE ${spec.table} ADD COLUMN prev_hash TEXT; ALTER TABLE ${spec.table} ADD COLUMN row_hash TEXT;`);
    // Put back byte for byte: verify compares triggers with those of a freshly migrated schema.
    const { sql } = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?").get(trigger) as { sql: string };
    db.exec(`DROP TRIGGER ${trigger}`);
    chainExistingRows(db, spec);
    db.exec(sql);
  }
}
