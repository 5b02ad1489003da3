import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { find } from '../../src/domain/aec/finder.js';
import { parseSimulation, type SimulationDefinition } from '../../src/domain/aec/simulation.js';
import { accessRepo } from '../../src/lanes/aec/access.js';
import { catalogRepo } from '../../src/lanes/aec/catalog.js';
import { changeLogMismatches } from '../../src/lanes/aec/change-log.js';
import { addWaiver } from '../../src/lanes/aec/waivers.js';
import { executionStoreOf } from '../../src/store/sqlite/executor.js';
import { CHAINS, checkChainTable } from '../../src/store/sqlite/chain.js';
import { MIGRATIONS, appliedMigrations, openDb, type Db } from '../../src/store/sqlite/db.js';
import { caught } from '../helpers/errors.js';

const NOW = '2026-01-30T12:00:00.000Z';
const LATER = '2026-01-30T13:00:00.000Z';
const BY = { actor: 'alice', now: NOW };

let dir: string;
let file: string;
const open: Db[] = [];
function openTracked(opts: Parameters<typeof openDb>[1] = {}): Db {
  const db = openDb(file, opts);
  open.push(db);
  return db;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kair-aec-store-'));
  file = join(dir, 'kair.db');
});
afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});


const sim = (id: string, over: Partial<SimulationDefinition> = {}): SimulationDefinition =>
  parseSimulation({
    id,
    title: `Sim ${id}`,
    examples: [`do ${id}`],
    required_fields: [],
    impact: 'none',
    access_action: `${id}:run`,
    executor: { kind: 'builtin', name: 'noop' },
    ...over,
  });

describe('migration 2 (aec_catalog_access)', () => {
  it('is applied once, after migration 1, and creates the catalog and policy tables (migration 3 adds the ledgers, 4 the change log, 5 widens it, 6 and 7 two more chains)', async () => {
    openTracked({ now: () => NOW }).close();
    const db = openTracked({ now: () => LATER });
    expect(appliedMigrations(db)).toEqual([
      { id: 1, name: 'kimi_envelopes', applied_at: NOW },
      { id: 2, name: 'aec_catalog_access', applied_at: NOW },
      { id: 3, name: 'aec_ledgers', applied_at: NOW },
      { id: 4, name: 'cross_anchoring', applied_at: NOW },
      { id: 5, name: 'slo_waivers', applied_at: NOW },
      { id: 6, name: 'access_policy_removed', applied_at: NOW },
      { id: 7, name: 'chain_intake_policy_versions', applied_at: NOW },
    ]);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all();
    expect(tables).toEqual([
      'access_policy',
      'access_policy_versions',
      'aec_refs',
      'agent_execution_access_decision_ledger',
      'agent_execution_confirmation_ledger',
      'agent_execution_current',
      'agent_execution_ledger',
      'change_log',
      'dev_intake',
      'execution_envelopes',
      'kimi_execution_runs',
      'migrations',
      'simulations',
      'slo_waivers',
    ]);
  });

  it('migration 5 rebuilds the change log with every row and hash as it was: the chain and the catalog still check out, and waivers can be logged', async () => {
    const v4 = openTracked({ now: () => NOW, migrations: MIGRATIONS.slice(0, 4) });
    catalogRepo(v4).registerSimulation(parseSimulation({ id: 'ping', title: 'Ping', examples: ['ping'], required_fields: [], impact: 'none', access_action: 'system:ping', executor: { kind: 'builtin', name: 'noop' } }), { ...BY, tenant: 't' });
    const before = v4.prepare('SELECT * FROM change_log ORDER BY id').all();
    v4.close();
    const db = openTracked({ now: () => LATER });
    expect(db.prepare('SELECT * FROM change_log ORDER BY id').all()).toEqual(before);
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.change_log)).toEqual([]);
    expect(await changeLogMismatches(executionStoreOf(db).sql)).toEqual([]);
    await executionStoreOf(db).transaction((sql) => addWaiver(sql, { tenant: 't', until: LATER, reason: 'r', actor: 'root', now: NOW }));
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.change_log)).toEqual([]);
    expect(await changeLogMismatches(executionStoreOf(db).sql)).toEqual([]);
    expect(() => db.prepare("UPDATE slo_waivers SET until = '2030-01-01T00:00:00.000Z'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM slo_waivers').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE change_log SET actor = 'x'").run()).toThrow(/append-only/);
  });

  it('rejects statuses and decisions outside the CHECK lists', async () => {
    const db = openTracked();
    expect(() => db.prepare("INSERT INTO simulations VALUES ('x', '{}', 'Live', ?, ?, 'a')").run(NOW, NOW)).toThrow(/CHECK/);
    expect(() => db.prepare("INSERT INTO access_policy VALUES ('a', 'b', 'maybe', ?, 'a')").run(NOW)).toThrow(/CHECK/);
  });
});

describe('catalog repo', () => {
  it('registers as Draft and reads back the definition with its bookkeeping', async () => {
    const repo = catalogRepo(openTracked());
    const def = sim('send-invoice', { impact: 'impactful', rollback_simulation_id: 'void-invoice', required_fields: ['customer'] });
    const v = repo.registerSimulation(def, BY);
    expect(v).toEqual({ ...def, status: 'Draft', created_at: NOW, updated_at: NOW, registered_by: 'alice' });
    expect(repo.getSimulation('send-invoice')).toEqual(v);
    expect(repo.getSimulation('nope')).toBeUndefined();
  });

  it('SIMULATION_EXISTS (exit 3) on a second register, and the first definition is kept', async () => {
    const repo = catalogRepo(openTracked());
    repo.registerSimulation(sim('ping'), BY);
    const e = caught(() => repo.registerSimulation(sim('ping', { title: 'Other' }), { actor: 'bob', now: LATER }));
    expect(e.code).toBe('SIMULATION_EXISTS');
    expect(e.details).toEqual({ simulation_id: 'ping' });
    expect(repo.getSimulation('ping')).toMatchObject({ title: 'Sim ping', registered_by: 'alice' });
  });

  it('lists by id', async () => {
    const repo = catalogRepo(openTracked());
    for (const id of ['zeta', 'alpha', 'mid']) repo.registerSimulation(sim(id), BY);
    expect(repo.listSimulations().map((s) => s.id)).toEqual(['alpha', 'mid', 'zeta']);
  });

  it('status transitions: Draft → Active → Deprecated → Disabled → Active; updated_at moves', async () => {
    const repo = catalogRepo(openTracked());
    repo.registerSimulation(sim('ping'), BY);
    expect(repo.setStatus('ping', 'Active', LATER)).toMatchObject({ status: 'Active', created_at: NOW, updated_at: LATER });
    expect(repo.setStatus('ping', 'Deprecated', LATER).status).toBe('Deprecated');
    expect(repo.setStatus('ping', 'Disabled', LATER).status).toBe('Disabled');
    expect(repo.setStatus('ping', 'Active', LATER).status).toBe('Active');
  });

  it('SIMULATION_NOT_FOUND (exit 4) for an unknown id', async () => {
    const repo = catalogRepo(openTracked());
    const e = caught(() => repo.setStatus('ghost', 'Active', NOW));
    expect(e.code).toBe('SIMULATION_NOT_FOUND');
    expect(e.details).toEqual({ simulation_id: 'ghost' });
  });

  it('definitions are immutable in SQLite (only status/updated_at may change) and rows never deleted', async () => {
    const db = openTracked();
    catalogRepo(db).registerSimulation(sim('ping'), BY);
    expect(() => db.prepare("UPDATE simulations SET definition = '{}' WHERE id = 'ping'").run()).toThrow(/only the status/);
    expect(() => db.prepare("DELETE FROM simulations WHERE id = 'ping'").run()).toThrow(/never deleted/);
  });

  it('catalogEntries feeds the Finder: Draft refuses, Active matches', async () => {
    const db = openTracked();
    const repo = catalogRepo(db);
    repo.registerSimulation(sim('send-invoice', { examples: ['send invoice'], required_fields: ['customer'], impact: 'impactful', rollback_simulation_id: 'void-invoice' }), BY);
    const port = catalogRepo(executionStoreOf(db).sql);
    const entries = await port.catalogEntries();
    expect(entries).toEqual([expect.objectContaining({ id: 'send-invoice', status: 'Draft', rollback_simulation_id: 'void-invoice', executor: { kind: 'builtin', name: 'noop' } })]);
    expect(find({ utterance: 'send invoice', fields: { customer: 'acme' } }, entries).reason_code).toBe('SIM_FINDER_SIMULATION_INACTIVE');
    repo.setStatus('send-invoice', 'Active', LATER);
    const p = find({ utterance: 'send invoice', fields: { customer: 'acme' } }, await port.catalogEntries());
    expect(p).toMatchObject({ type: 'SimulationMatchPacket', simulation_id: 'send-invoice', score_bp: 10000 });
  });
});

describe('access repo', () => {
  it('fails closed: no rule → deny at policy version 0', async () => {
    const repo = accessRepo(openTracked());
    expect(repo.policyVersion()).toBe(0);
    expect(repo.decide('alice', 'invoice:send')).toEqual({ decision: 'deny', policy_snapshot_version: 0 });
  });

  it('every change appends a version (even an unchanged decision); decide reports the rule and the version', async () => {
    const db = openTracked();
    const repo = accessRepo(db);
    expect(repo.setRule('alice', 'invoice:send', 'allow', BY).policy_snapshot_version).toBe(1);
    expect(repo.setRule('bob', 'invoice:send', 'require-ap', BY).policy_snapshot_version).toBe(2);
    expect(repo.setRule('alice', 'invoice:send', 'allow', BY).policy_snapshot_version).toBe(3);
    expect(repo.decide('alice', 'invoice:send')).toEqual({ decision: 'allow', policy_snapshot_version: 3, rule: { actor: 'alice', action: 'invoice:send', decision: 'allow' } });
    expect(repo.decide('bob', 'invoice:send').decision).toBe('require-ap');
    // exact match only: another action, or another actor, is denied
    expect(repo.decide('alice', 'invoice:void')).toEqual({ decision: 'deny', policy_snapshot_version: 3 });
    expect(repo.decide('ALICE', 'invoice:send').decision).toBe('deny');
    repo.setRule('alice', 'invoice:send', 'deny', { actor: 'root', now: LATER });
    expect(repo.decide('alice', 'invoice:send')).toMatchObject({ decision: 'deny', policy_snapshot_version: 4 });
    expect(repo.listRules()).toEqual([
      { actor: 'alice', action: 'invoice:send', decision: 'deny', updated_at: LATER, updated_by: 'root' },
      { actor: 'bob', action: 'invoice:send', decision: 'require-ap', updated_at: NOW, updated_by: 'alice' },
    ]);
    expect(db.prepare('SELECT version, actor, action, decision FROM access_policy_versions ORDER BY version').all()).toEqual([
      { version: 1, actor: 'alice', action: 'invoice:send', decision: 'allow' },
      { version: 2, actor: 'bob', action: 'invoice:send', decision: 'require-ap' },
      { version: 3, actor: 'alice', action: 'invoice:send', decision: 'allow' },
      { version: 4, actor: 'alice', action: 'invoice:send', decision: 'deny' },
    ]);
    expect(() => db.prepare('DELETE FROM access_policy_versions').run()).toThrow(/append-only/);
  });

  it('versions survive reopening', async () => {
    accessRepo(openTracked()).setRule('a', 'x:y', 'allow', BY);
    expect(accessRepo(openTracked()).policyVersion()).toBe(1);
  });
});
