/**
 * Migration 6 rebuilds access_policy_versions (to allow `removed`) with every row as it was
 * (migration 5 already let the change log take `config` entries): the change log chained before
 * the upgrade still checks after it, later entries chain onto it, and the append-only triggers
 * are back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accessRepo } from '../../src/lanes/aec/access.js';
import { lastConfigSha, logConfigChange } from '../../src/lanes/aec/change-log.js';
import { executionStoreOf } from '../../src/store/sqlite/executor.js';
import { CHAINS, checkChainTable } from '../../src/store/sqlite/chain.js';
import { MIGRATIONS, openDb } from '../../src/store/sqlite/db.js';

const NOW = '2026-01-30T12:00:00.000Z';
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kair-mig5-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('migration 6 (access_policy_removed)', () => {
  it('keeps every change-log and policy-version row, id and hash; the chain still checks and grows', async () => {
    const file = join(dir, 'kair.db');
    const old = openDb(file, { now: () => NOW, migrations: MIGRATIONS.slice(0, 4) });
    const by = { actor: 'alice', now: NOW, tenant: 't1' };
    // Rules as version 4 held them (today's repo writes the chain columns of migration 7).
    old.prepare("INSERT INTO access_policy_versions (changed_at, actor, action, decision) VALUES (?, 'alice', 'a:b', 'allow'), (?, 'bob', 'a:b', 'deny')").run(NOW, NOW);
    old.prepare("INSERT INTO access_policy (actor, action, decision, updated_at, updated_by) VALUES ('alice', 'a:b', 'allow', ?, 'alice'), ('bob', 'a:b', 'deny', ?, 'alice')").run(NOW, NOW);
    const logBefore = old.prepare('SELECT * FROM change_log ORDER BY id').all();
    const v4Columns = 'SELECT version, changed_at, actor, action, decision FROM access_policy_versions ORDER BY version';
    const versionsBefore = old.prepare(v4Columns).all();
    expect(() => old.prepare("INSERT INTO access_policy_versions (changed_at, actor, action, decision) VALUES ('t', 'a', 'b', 'removed')").run()).toThrow(/CHECK/);
    old.close();

    const db = openDb(file, { now: () => NOW });
    try {
      expect(db.prepare('SELECT * FROM change_log ORDER BY id').all()).toEqual(logBefore);
      expect(db.prepare(v4Columns).all()).toEqual(versionsBefore);
      expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.change_log)).toEqual([]);
      // a removal and a config entry, chained onto the old rows
      expect(await accessRepo(executionStoreOf(db).sql).removeRule('bob', 'a:b', by)).toBe(true);
      await logConfigChange(executionStoreOf(db).sql, { tenant: 't1', actor: 'alice', at: NOW, change: { key: 'approvals.min', from: 1, to: 2 }, sha256: 'f'.repeat(64) });
      expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.change_log)).toEqual([]);
      expect(await lastConfigSha(executionStoreOf(db).sql)).toBe('f'.repeat(64));
      expect(await accessRepo(executionStoreOf(db).sql).snapshot(accessRepo(db).policyVersion())).toEqual([{ actor: 'alice', action: 'a:b', decision: 'allow' }]);
      // the append-only triggers are there again
      expect(() => db.prepare('DELETE FROM change_log').run()).toThrow(/append-only/);
      expect(() => db.prepare('UPDATE access_policy_versions SET actor = actor').run()).toThrow(/append-only/);
    } finally {
      db.close();
    }
  });
});
