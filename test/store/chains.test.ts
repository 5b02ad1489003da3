/**
 * The hash chains of the AEC ledgers, aec_refs and the change log (store level): appends chain
 * per (tenant, contract) / per tenant, the migration chains a v3 database's rows in id order
 * and logs its catalog and policy, and any edit, deletion or insertion breaks a chain.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../src/domain/canonical.js';
import { accessRepo } from '../../src/lanes/aec/access.js';
import { catalogRepo } from '../../src/lanes/aec/catalog.js';
import { changeLog } from '../../src/lanes/aec/change-log.js';
import type { NewLedgerRow } from '../../src/lanes/aec/ledger.js';
import { ledgerRepo } from '../../src/lanes/aec/ledger.js';
import { executionStoreOf } from '../../src/store/sqlite/executor.js';
import type { SqlExecutor } from '../../src/store/port.js';
import { CHAINS, GENESIS, checkChainTable, rowJson, rowSha } from '../../src/store/sqlite/chain.js';
import { MIGRATIONS, openDb, type Db } from '../../src/store/sqlite/db.js';

const NOW = '2026-01-30T12:00:00.000Z';
let dir: string;
let file: string;
const opened: Db[] = [];
const open = (migrations = MIGRATIONS): Db => {
  const db = openDb(file, { now: () => NOW, migrations });
  opened.push(db);
  return db;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kair-chains-'));
  file = join(dir, 'kair.db');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ workspace_id: 'ws-1' }));
});
afterEach(() => {
  for (const db of opened.splice(0)) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

const row = (contract: string, step: string, event: NewLedgerRow['event'] = 'HALTED'): NewLedgerRow => ({
  tenant_id: 'ws-1',
  plan_id: `${contract}:v1/${step}`,
  correlation_id: `${contract}:v1`,
  contract_id: contract,
  run_id: `${contract}-run-1`,
  step_id: step,
  simulation_id: null,
  required_fields_fingerprint: null,
  idempotency_key: `k-${step}`,
  attempt: 1,
  event,
  reason_code: 'SIM_FINDER_CLARIFY',
  actor: 'alice',
  finder_packet_ref: 'packet:x',
  catalog_snapshot_ref: 'catalog:x',
  policy_snapshot_ref: null,
  artifact_fingerprint_bundle_ref: null,
  access_decision_id: null,
  confirmation_id: null,
  confirmation_proof_ref: null,
  rollback_plan_ref: null,
  dispatch_envelope_ref: null,
  decision_ref: 'decision:x',
  dispatch_decision_hash: 'h',
  outcome: { n: 1 },
  latency_us: null,
  created_at: NOW,
});

const ledger = (db: Db) => db.prepare('SELECT * FROM agent_execution_ledger ORDER BY row_id').all() as Record<string, unknown>[];

describe('chained appends', () => {
  it('chain per (tenant, contract): each row links to the previous row of its own contract and hashes its canonical JSON', async () => {
    const db = open();
    const repo = ledgerRepo(db);
    await executionStoreOf(db).transaction(async () => {
      for (const [c, s] of [['a', 's1'], ['b', 's1'], ['a', 's2']] as const) await repo.appendRow(row(c, s));
    });
    const [a1, b1, a2] = ledger(db);
    expect([a1!.row_id, b1!.row_id, a2!.row_id]).toEqual([1, 2, 3]);
    expect(a1!.prev_hash).toBe(GENESIS);
    expect(b1!.prev_hash).toBe(GENESIS);
    expect(a2!.prev_hash).toBe(a1!.row_hash);
    expect(a2!.row_hash).toBe(sha256Hex(String(a1!.row_hash) + rowJson(a2!)));
    // Stored text stays text: the outcome is hashed as the JSON string SQLite holds.
    expect(JSON.parse(rowJson(a2!))).toMatchObject({ outcome: '{"n":1}', row_id: 3, created_at: NOW });
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.agent_execution_ledger)).toEqual([]);
  });

  it('the walk hashes stored text exactly as the append did: quotes, escapes, non-ASCII, lone surrogates, numbers', async () => {
    const db = open();
    const repo = ledgerRepo(db);
    for (const actor of ['a"b\\c', 'line\nbreak\u0001\u001f\u007f', 'é – 😀', 'lone \ud800 surrogate', '']) await repo.appendRow({ ...row('a', `s-${actor.length}`), actor, latency_us: 1234567, outcome: { s: actor } });
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.agent_execution_ledger)).toEqual([]);
  });

  it('an edit, a deletion or a forged insert breaks the chain at that row', async () => {
    const db = open();
    const repo = ledgerRepo(db);
    for (const s of ['s1', 's2', 's3']) await repo.appendRow(row('a', s));
    db.exec('DROP TRIGGER agent_execution_ledger_no_update; DROP TRIGGER agent_execution_ledger_no_delete');
    const broken = async () => (await checkChainTable(executionStoreOf(db).sql, CHAINS.agent_execution_ledger)).map((b) => b.id);

    db.exec(`UPDATE agent_execution_ledger SET outcome = '{"n":2}' WHERE row_id = 2`);
    expect(await broken()).toEqual([2]);
    db.exec(`UPDATE agent_execution_ledger SET outcome = '{"n":1}' WHERE row_id = 2`);
    expect(await broken()).toEqual([]);

    db.exec('DELETE FROM agent_execution_ledger WHERE row_id = 2');
    expect(await broken()).toEqual([3]);
  });

  it('refs, access decisions and confirmations are chained too; a repeated ref is not appended twice', async () => {
    const db = open();
    const repo = ledgerRepo(db);
    const ref = await repo.putRef('packet', { a: 1 }, NOW);
    expect(await repo.putRef('packet', { a: 1 }, NOW)).toBe(ref);
    await repo.putNamedRef('policy:v0', 'policy', () => ({ version: 0, rules: [] }), NOW);
    const refs = db.prepare('SELECT * FROM aec_refs ORDER BY rowid').all() as Record<string, unknown>[];
    expect(refs).toHaveLength(2);
    expect(refs[1]!.prev_hash).toBe(refs[0]!.row_hash);
    const scope = { tenant_id: 'ws-1', correlation_id: 'a:v1', run_id: 'a-run-1', step_id: 's1', actor: 'alice' };
    expect(await repo.appendAccessDecision({ ...scope, action: 'x:y', decision: 'allow', rule: null, policy_snapshot_version: 0, checked_by: 'precheck', created_at: NOW })).toBe(1);
    expect(await repo.appendConfirmation({ ...scope, lexicon: 'v1', lang: 'en', token: 'yes', normalized: 'yes', result: 'affirmative', source: 'flag', proof_ref: 'p', created_at: NOW })).toBe(1);
    for (const spec of Object.values(CHAINS)) expect(await checkChainTable(executionStoreOf(db).sql, spec), spec.table).toEqual([]);
  });

  it('every catalog and access change is in the change log with the sha256 of the resulting row', async () => {
    const db = open();
    const def = { id: 'ping', title: 'Ping', examples: ['ping'], required_fields: [], impact: 'none' as const, access_action: 'system:ping', executor: { kind: 'builtin' as const, name: 'noop' as const } };
    catalogRepo(db).registerSimulation(def, { actor: 'alice', now: NOW, tenant: 'ws-1' });
    catalogRepo(db).setStatus('ping', 'Active', NOW, { actor: 'bob', tenant: 'ws-1' });
    accessRepo(db).setRule('alice', 'system:ping', 'allow', { actor: 'root', now: NOW, tenant: 'ws-1' });
    const log = await changeLog(executionStoreOf(db).sql);
    expect(log.map((e) => [e.table_name, e.row_key, e.action, e.actor])).toEqual([
      ['simulations', '{"id":"ping"}', 'register', 'alice'],
      ['simulations', '{"id":"ping"}', 'activate', 'bob'],
      ['access_policy', '{"action":"system:ping","actor":"alice"}', 'allow', 'root'],
    ]);
    expect(JSON.parse(log[1]!.change)).toEqual({ status: { from: 'Draft', to: 'Active' } });
    expect(log[1]!.row_sha256).toBe(rowSha(db.prepare("SELECT * FROM simulations WHERE id = 'ping'").get() as Record<string, unknown>));
    expect(log[2]!.row_sha256).toBe(rowSha(db.prepare('SELECT * FROM access_policy').get() as Record<string, unknown>));
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.change_log)).toEqual([]);
    expect(() => db.prepare('DELETE FROM change_log').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE change_log SET actor = 'x'").run()).toThrow(/append-only/);
  });
});

describe('migration 4 (cross_anchoring) on an existing database', () => {
  it('chains the existing rows in id order (escaped text included) and logs the catalog and policy as found', async () => {
    const v3 = open(MIGRATIONS.slice(0, 3));
    const cols = 'tenant_id, plan_id, correlation_id, contract_id, run_id, step_id, idempotency_key, attempt, event, reason_code, actor, finder_packet_ref, catalog_snapshot_ref, decision_ref, dispatch_decision_hash, created_at';
    const insert = v3.prepare(`INSERT INTO agent_execution_ledger (${cols}) VALUES (${cols.split(',').map(() => '?').join(', ')})`);
    for (const [c, s] of [['a', 's1'], ['b', 's1'], ['a', 's2']]) insert.run('ws-1', `${c}:v1/${s}`, `${c}:v1`, c, `${c}-run-1`, s, 'k', 1, 'HALTED', 'X', c === 'b' ? 'b"ob\n\u0001é' : 'alice', 'packet:x', 'catalog:x', 'decision:x', 'h', NOW);
    v3.prepare("INSERT INTO aec_refs VALUES ('packet:1', 'packet', '{}', ?)").run(NOW);
    v3.prepare(`INSERT INTO simulations VALUES ('ping', '{"id":"ping"}', 'Active', ?, ?, 'alice')`).run(NOW, NOW);
    v3.prepare("INSERT INTO access_policy VALUES ('alice', 'system:ping', 'allow', ?, 'root')").run(NOW);
    v3.close();

    const db = open();
    for (const spec of Object.values(CHAINS)) expect(await checkChainTable(executionStoreOf(db).sql, spec), spec.table).toEqual([]);
    const [a1, b1, a2] = ledger(db);
    expect([a1!.prev_hash, b1!.prev_hash, a2!.prev_hash]).toEqual([GENESIS, GENESIS, a1!.row_hash]);
    const log = await changeLog(executionStoreOf(db).sql);
    expect(log.map((e) => [e.tenant_id, e.table_name, e.row_key, e.action])).toEqual([
      ['ws-1', 'simulations', '{"id":"ping"}', 'migrate'],
      ['ws-1', 'access_policy', canonicalJson({ actor: 'alice', action: 'system:ping' }), 'migrate'],
    ]);
    // The append-only triggers are back after the backfill.
    expect(() => db.prepare('UPDATE agent_execution_ledger SET actor = 1').run()).toThrow(/append-only/);
    expect(() => db.prepare('UPDATE aec_refs SET kind = 1').run()).toThrow(/append-only/);
  });
});

describe('migration 7 (chain_intake_policy_versions) on an existing database', () => {
  it('chains the dev_intake and access_policy_versions rows as found; later appends extend the chains; an edit breaks them', async () => {
    const v4 = open(MIGRATIONS.slice(0, 4));
    v4.prepare("INSERT INTO access_policy_versions (changed_at, actor, action, decision) VALUES (?, 'alice', 'system:ping', 'allow'), (?, 'bob', 'x:y', 'deny')").run(NOW, NOW);
    v4.prepare("INSERT INTO dev_intake VALUES ('intake-1', 'ws-1', 'c', 'c:v1', 'c-run-1', 's', 'do \"it\"\n', '{}', 'en', 'packet:x', 'alice', ?)").run(NOW);
    v4.close();

    const db = open();
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.dev_intake)).toEqual([]);
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.access_policy_versions)).toEqual([]);
    const versions = () => db.prepare('SELECT * FROM access_policy_versions ORDER BY version').all() as Record<string, unknown>[];
    expect(versions().map((r) => r.prev_hash)).toEqual([GENESIS, versions()[0]!.row_hash]);
    // The triggers are back, byte for byte.
    expect(() => db.prepare('UPDATE access_policy_versions SET actor = 1').run()).toThrow(/append-only/);
    expect(() => db.prepare('UPDATE dev_intake SET actor = 1').run()).toThrow(/append-only/);

    expect(accessRepo(db).setRule('carol', 'a:b', 'allow', { actor: 'root', now: NOW, tenant: 'ws-1' }).policy_snapshot_version).toBe(3);
    (await ledgerRepo(db)).addIntake({ tenant_id: 'ws-1', contract_id: 'c', correlation_id: 'c:v1', run_id: 'c-run-1', step_id: 't', utterance: 'more', fields: { a: '1' }, lang: 'en', finder_packet_ref: 'packet:x', actor: 'alice', created_at: NOW });
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.access_policy_versions)).toEqual([]);
    expect(await checkChainTable(executionStoreOf(db).sql, CHAINS.dev_intake)).toEqual([]);
    expect(versions()[2]!.prev_hash).toBe(versions()[1]!.row_hash);

    const { sql } = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'access_policy_versions_append_only_update'").get() as { sql: string };
    db.exec('DROP TRIGGER access_policy_versions_append_only_update');
    db.prepare("UPDATE access_policy_versions SET decision = 'allow' WHERE version = 2").run();
    db.exec(sql);
    expect((await checkChainTable(executionStoreOf(db).sql, CHAINS.access_policy_versions)).map((b) => b.id)).toEqual([2]);
  });
});

describe('rowJson by dialect (decision 033)', () => {
  it("leaves out PostgreSQL's explicit rowid, and tenant_id where the local table has none, so hashes match across backends", () => {
    const local = { ref: 'packet:ab', kind: 'packet', body: '{}', created_at: NOW, prev_hash: GENESIS, row_hash: 'x' };
    const pg = { tenant_id: 'ws-1', ...local, rowid: 7 };
    expect(rowJson(pg, { dialect: 'postgres', table: 'aec_refs' })).toBe(rowJson(local));
    expect(rowSha(pg, { dialect: 'postgres', table: 'aec_refs' })).toBe(rowSha(local));
    // A table with tenant_id locally keeps it: it is part of the row on both backends.
    const ledgerRow = { row_id: 1, tenant_id: 'ws-1', event: 'CLAIMED' };
    expect(rowJson({ ...ledgerRow, rowid: 3 }, { dialect: 'postgres', table: 'agent_execution_ledger' })).toBe(rowJson(ledgerRow));
    expect(rowJson(ledgerRow, { dialect: 'postgres', table: 'agent_execution_ledger' })).toContain('"tenant_id":"ws-1"');
    // Locally nothing is dropped (SQLite's SELECT * has no rowid column to drop).
    expect(rowJson(pg, { dialect: 'sqlite', table: 'aec_refs' })).toContain('"tenant_id"');
  });
});

describe('checkChainTable without the SQLite fast path (the walk the PostgreSQL executor gets)', () => {
  it('finds no break in good chains, walks aec_refs by its links, and reports an edit', async () => {
    const db = open();
    const repo = ledgerRepo(db);
    for (const n of [1, 2, 3]) await repo.putRef('packet', { n }, NOW);
    const local = executionStoreOf(db).sql;
    // The same rows through an executor that is not the local one: the generic walk, in link order for aec_refs.
    const generic: SqlExecutor = { dialect: 'postgres', all: (q, p) => local.all(q, p), get: (q, p) => local.get(q, p), run: (q, p) => local.run(q, p), lockChain: () => Promise.resolve() };
    expect(await checkChainTable(generic, CHAINS.aec_refs)).toEqual([]);
    expect(await checkChainTable(generic, CHAINS.change_log)).toEqual([]);
    db.exec('DROP TRIGGER aec_refs_no_update');
    db.prepare("UPDATE aec_refs SET body = '{\"n\":9}' WHERE rowid = 2").run();
    const breaks = await checkChainTable(generic, CHAINS.aec_refs);
    expect(breaks).toHaveLength(1);
    expect(breaks[0]!.message).toMatch(/was edited/);
    expect((await checkChainTable(local, CHAINS.aec_refs)).map((b) => b.id)).toEqual(breaks.map((b) => b.id));
  });
});
