import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig, type KimiCaps } from '../../src/domain/config.js';
import { effectiveCaps, usdToMicros } from '../../src/domain/kimi.js';
import { envelopeRepo, runKimiLane, type KimiLaneInput } from '../../src/lanes/kimi/envelopes.js';
import { stubProvider, type KimiProvider } from '../../src/lanes/kimi/provider.js';
import { appliedMigrations, MIGRATIONS, openDb, type Db, type Migration } from '../../src/store/sqlite/db.js';
import { executionStoreOf } from '../../src/store/sqlite/executor.js';
import { caught, caughtAsync } from '../helpers/errors.js';
import { seedKimiSuccess } from '../helpers/kimi.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NOW = '2026-01-30T12:00:00.000Z';
const config = defaultConfig('ws');
const CAPS: KimiCaps = effectiveCaps({ scopes: ['custom_logic'] }, config);

let dir: string;
let file: string;
const open: Db[] = [];

function openTracked(f = file, opts: Parameters<typeof openDb>[1] = {}): Db {
  const db = openDb(f, opts);
  open.push(db);
  return db;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kair-kimi-'));
  file = join(dir, '.kair', 'kair.db');
});

afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function input(over: Partial<KimiLaneInput> = {}): KimiLaneInput {
  return {
    contractId: 'chat',
    runId: 'chat-run-1',
    planSha256: 'a'.repeat(64),
    actor: 'alice',
    features: ['chat', 'notifications'],
    caps: CAPS,
    perContractCapMicros: usdToMicros(config.kimi.max_cost_usd_per_contract),
    now: NOW,
    ...over,
  };
}


/** The id a migration appended after this build's list gets. */
const NEXT = MIGRATIONS.length + 1;

describe('openDb and migrations', () => {
  it('applies every migration once (migration 1: the Kimi tables), records it, and sets the pragmas', () => {
    const db = openTracked(file, { now: () => NOW });
    expect(appliedMigrations(db)).toEqual(MIGRATIONS.map((m) => ({ id: m.id, name: m.name, applied_at: NOW })));
    expect(appliedMigrations(db)[0]).toEqual({ id: 1, name: 'kimi_envelopes', applied_at: NOW });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    expect(tables).toEqual(expect.arrayContaining(['execution_envelopes', 'kimi_execution_runs', 'migrations']));
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all();
    expect(indexes).toEqual(expect.arrayContaining(['execution_envelopes_contract_id', 'execution_envelopes_run_id', 'kimi_execution_runs_envelope_id']));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
  });

  it('is idempotent on reopen: nothing re-applied, applied_at unchanged', () => {
    openTracked(file, { now: () => NOW }).close();
    const db = openTracked(file, { now: () => '2030-01-01T00:00:00.000Z' });
    expect(appliedMigrations(db)).toEqual(MIGRATIONS.map((m) => ({ id: m.id, name: m.name, applied_at: NOW })));
  });

  it('applies a migration appended later exactly once, on the next open', () => {
    let calls = 0;
    const extra: Migration = {
      id: NEXT,
      name: 'extra',
      up: (db) => {
        calls++;
        db.exec('CREATE TABLE extra (x INTEGER)');
      },
    };
    openTracked(file).close();
    openTracked(file, { migrations: [...MIGRATIONS, extra] }).close();
    const db = openTracked(file, { migrations: [...MIGRATIONS, extra] });
    expect(calls).toBe(1);
    expect(appliedMigrations(db).map((m) => [m.id, m.name])).toEqual([...MIGRATIONS.map((m) => [m.id, m.name]), [NEXT, 'extra']]);
  });

  it('rolls a failing migration back whole and records nothing', () => {
    const broken: Migration = {
      id: NEXT,
      name: 'broken',
      up: (db) => {
        db.exec('CREATE TABLE half (x INTEGER)');
        throw new Error('boom');
      },
    };
    expect(() => openDb(file, { migrations: [...MIGRATIONS, broken] })).toThrow('boom');
    const db = openTracked(file);
    expect(appliedMigrations(db).map((m) => m.id)).toEqual(MIGRATIONS.map((m) => m.id));
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
  });

  it('refuses a misnumbered migration list and a database newer than this build', () => {
    const gap: Migration = { id: NEXT + 1, name: 'gap', up: () => {} };
    expect(() => openDb(file, { migrations: [...MIGRATIONS, gap] })).toThrow(/ids must be 1, 2, 3/);
    openTracked(file, { migrations: [...MIGRATIONS, { id: NEXT, name: 'newer', up: () => {} }] }).close();
    const err = caught(() => openDb(file));
    expect(err.code).toBe('INTERNAL_ERROR');
    expect(err.message).toMatch(new RegExp(`migration ${NEXT} .* knows only ${MIGRATIONS.length}`));
  });

  it('migrates exactly once when several processes open a fresh file at the same moment', async () => {
    const bundle = join(dir, 'db.cjs');
    buildSync({
      entryPoints: [join(ROOT, 'src/store/sqlite/db.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: bundle,
      external: ['better-sqlite3'],
      logLevel: 'silent',
    });
    const child = `
      const { openDb, appliedMigrations } = require(${JSON.stringify(bundle)});
      const start = Number(process.argv[1]);
      while (Date.now() < start) {}
      const db = openDb(process.argv[2]);
      process.stdout.write(JSON.stringify({ ids: appliedMigrations(db).map((m) => m.id), mode: db.pragma('journal_mode', { simple: true }) }));
      db.close();`;
    for (let round = 0; round < 3; round++) {
      const target = join(dir, `race-${round}`, 'kair.db');
      const start = Date.now() + 1500;
      const results = await Promise.all(
        Array.from(
          { length: 6 },
          () =>
            new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
              const p = spawn(process.execPath, ['-e', child, String(start), target], {
                env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
              });
              let out = '';
              let err = '';
              p.stdout.on('data', (d: Buffer) => (out += d.toString()));
              p.stderr.on('data', (d: Buffer) => (err += d.toString()));
              p.on('close', (code) => resolve({ code, out, err }));
            }),
        ),
      );
      for (const r of results) {
        expect(r.err).toBe('');
        expect(r.code).toBe(0);
        expect(JSON.parse(r.out)).toEqual({ ids: MIGRATIONS.map((m) => m.id), mode: 'wal' });
      }
      const db = openTracked(target);
      expect(db.prepare('SELECT count(*) FROM migrations').pluck().get()).toBe(MIGRATIONS.length);
      db.close();
    }
  });
});

describe('runKimiLane', () => {
  it('runs a successful envelope: COMPLETED envelope and run row, seed-shaped result, seed messages', async () => {
    const db = openTracked();
    const r = await runKimiLane(executionStoreOf(db), stubProvider, input());
    expect(r.ok).toBe(true);
    expect(r.reused).toBe(false);
    expect(r.error).toBeUndefined();
    // Key order matters: the object is printed as the seed's response.
    expect(JSON.stringify(r.kimi)).toBe(JSON.stringify(seedKimiSuccess('chat-run-1')));
    expect(r.messages).toEqual(['Kimi execution started (budget $25, agents 5)', 'Kimi execution completed (cost $0.02)']);
    expect(r.events.map((e) => e.type)).toEqual(['kimi.started', 'kimi.completed']);

    const env = db.prepare('SELECT * FROM execution_envelopes').all();
    expect(env).toEqual([
      {
        id: 'env_chat-run-1',
        contract_id: 'chat',
        run_id: 'chat-run-1',
        plan_sha256: 'a'.repeat(64),
        actor: 'alice',
        provider: 'kimi',
        max_cost_micros: 25_000_000,
        max_agents: 5,
        max_runtime_sec: 600,
        allowed_scopes: '["custom_logic"]',
        status: 'COMPLETED',
        created_at: NOW,
        updated_at: NOW,
      },
    ]);
    const runs = db.prepare('SELECT * FROM kimi_execution_runs').all();
    expect(runs).toEqual([
      {
        id: 'kexec_chat-run-1',
        envelope_id: 'env_chat-run-1',
        provider: 'stub',
        started_at: NOW,
        finished_at: NOW,
        tokens_used: 10000,
        cost_micros: 20000,
        runtime_sec: 8,
        status: 'COMPLETED',
        summary: 'Successfully generated: chat, notifications. Used 5 agents over 8s.',
      },
    ]);
    expect((await envelopeRepo(executionStoreOf(db).sql).completedSpendMicros('chat'))).toBe(20000);
  });

  it('reads a clock function once per transaction for started_at and finished_at', async () => {
    const db = openTracked();
    const times = ['2026-01-30T12:00:00.000Z', '2026-01-30T12:00:09.000Z'];
    await runKimiLane(executionStoreOf(db), stubProvider, input({ now: () => times.shift()! }));
    const run = (await envelopeRepo(executionStoreOf(db).sql).getRun('kexec_chat-run-1'))!;
    expect([run.started_at, run.finished_at]).toEqual(['2026-01-30T12:00:00.000Z', '2026-01-30T12:00:09.000Z']);
    expect((await envelopeRepo(executionStoreOf(db).sql).getEnvelope('env_chat-run-1'))!.updated_at).toBe('2026-01-30T12:00:09.000Z');
  });

  it.each([
    {
      name: 'budget exceeded',
      caps: { ...CAPS, maxCostUSD: 0.01 },
      code: 'BUDGET_EXCEEDED',
      summary: 'Execution aborted: budget exceeded ($0.02 > $0.01)',
      message: 'Kimi execution aborted (budget exceeded)',
    },
    {
      name: 'runtime exceeded',
      caps: { ...CAPS, maxRuntimeSec: 5 },
      code: 'RUNTIME_EXCEEDED',
      summary: 'Execution aborted: runtime exceeded (8s > 5s)',
      message: 'Kimi execution aborted (runtime exceeded)',
    },
  ])('$name: envelope FAILED, FAILED run row with 0 tokens and $0, nothing executed', async ({ caps, code, summary, message }) => {
    const db = openTracked();
    let executed = 0;
    const counting: KimiProvider = {
      ...stubProvider,
      execute: (req) => {
        executed++;
        return stubProvider.execute(req);
      },
    };
    const r = await runKimiLane(executionStoreOf(db), counting, input({ caps }));
    expect(executed).toBe(0);
    expect(r.ok).toBe(false);
    expect(r.error).toMatchObject({ code, message: summary, details: { execution_envelope_id: 'env_chat-run-1' } });
    expect(r.messages).toEqual([message]);
    expect(r.events).toEqual([{ type: 'kimi.aborted', message }]);
    expect(r.kimi).toEqual({
      executionEnvelopeId: 'env_chat-run-1',
      executionRunId: 'kexec_chat-run-1',
      status: 'FAILED',
      maxCostUSD: caps.maxCostUSD,
      maxAgents: 5,
      maxRuntimeSec: caps.maxRuntimeSec,
      result: { tokensUsed: 0, costUSD: 0, summary, status: 'FAILED', runtimeSec: 0 },
    });
    expect(db.prepare('SELECT status FROM execution_envelopes').pluck().all()).toEqual(['FAILED']);
    expect(db.prepare('SELECT status, tokens_used, cost_micros, runtime_sec, summary FROM kimi_execution_runs').all()).toEqual([
      { status: 'FAILED', tokens_used: 0, cost_micros: 0, runtime_sec: 0, summary },
    ]);
    expect((await envelopeRepo(executionStoreOf(db).sql).completedSpendMicros('chat'))).toBe(0);
  });

  it('allows a cost exactly equal to the budget', async () => {
    const db = openTracked();
    expect((await runKimiLane(executionStoreOf(db), stubProvider, input({ caps: { ...CAPS, maxCostUSD: 0.02, maxRuntimeSec: 8 } }))).ok).toBe(true);
  });

  it('caps the sum over the contract’s COMPLETED runs; failed attempts and other contracts do not count', async () => {
    const db = openTracked();
    const cap = usdToMicros(0.03);
    const repo = envelopeRepo(executionStoreOf(db).sql);

    expect((await runKimiLane(executionStoreOf(db), stubProvider, input({ runId: 'chat-run-1', perContractCapMicros: cap }))).ok).toBe(true);
    // A failed attempt spends nothing.
    expect((await runKimiLane(executionStoreOf(db), stubProvider, input({ runId: 'chat-run-2', perContractCapMicros: cap, caps: { ...CAPS, maxCostUSD: 0.01 } }))).ok).toBe(false);
    expect(await repo.completedSpendMicros('chat')).toBe(20000);

    const third = await runKimiLane(executionStoreOf(db), stubProvider, input({ runId: 'chat-run-3', perContractCapMicros: cap }));
    expect(third.ok).toBe(false);
    expect(third.error?.code).toBe('CONTRACT_BUDGET_EXCEEDED');
    expect(third.kimi.result.summary).toBe('Execution aborted: contract budget exceeded ($0.04 > $0.03)');
    expect(third.messages).toEqual(['Kimi execution aborted (contract budget exceeded)']);

    // One feature ($0.01) still fits exactly: $0.02 + $0.01 = $0.03.
    expect((await runKimiLane(executionStoreOf(db), stubProvider, input({ runId: 'chat-run-4', perContractCapMicros: cap, features: ['chat'] }))).ok).toBe(true);
    expect(await repo.completedSpendMicros('chat')).toBe(30000);

    expect((await runKimiLane(executionStoreOf(db), stubProvider, input({ contractId: 'billing', runId: 'billing-run-1', perContractCapMicros: cap }))).ok).toBe(true);
    expect(await repo.completedSpendMicros('billing')).toBe(20000);
    expect(await repo.completedSpendMicros('nobody')).toBe(0);
  });

  it('lists envelopes in creation order, filtered by contract, run and status', async () => {
    const db = openTracked();
    await runKimiLane(executionStoreOf(db), stubProvider, input({ runId: 'chat-run-1' }));
    await runKimiLane(executionStoreOf(db), stubProvider, input({ contractId: 'billing', runId: 'billing-run-1' }));
    await runKimiLane(executionStoreOf(db), stubProvider, input({ runId: 'chat-run-2', caps: { ...CAPS, maxCostUSD: 0.01 } }));
    const repo = envelopeRepo(executionStoreOf(db).sql);
    expect((await repo.listEnvelopes()).map((e) => e.id)).toEqual(['env_chat-run-1', 'env_billing-run-1', 'env_chat-run-2']);
    expect((await repo.listEnvelopes({ contractId: 'chat' })).map((e) => [e.id, e.status])).toEqual([
      ['env_chat-run-1', 'COMPLETED'],
      ['env_chat-run-2', 'FAILED'],
    ]);
    expect((await repo.listEnvelopes({ contractId: 'billing' })).map((e) => e.id)).toEqual(['env_billing-run-1']);
    expect(await repo.listEnvelopes({ contractId: 'none' })).toEqual([]);
    expect((await repo.listEnvelopes({ runId: 'chat-run-2' })).map((e) => e.id)).toEqual(['env_chat-run-2']);
    expect(await repo.listEnvelopes({ contractId: 'billing', runId: 'chat-run-2' })).toEqual([]);
    expect((await repo.listEnvelopes({ contractId: 'chat', status: 'COMPLETED' })).map((e) => e.id)).toEqual(['env_chat-run-1']);
    expect((await repo.listEnvelopes({ status: ['FAILED', 'CANCELLED'] })).map((e) => e.id)).toEqual(['env_chat-run-2']);
    expect((await repo.listEnvelopes({ runId: 'chat-run-1' }))[0].allowed_scopes).toEqual(['custom_logic']);
  });

  it('reuses the run’s COMPLETED envelope instead of executing again', async () => {
    const db = openTracked();
    const first = await runKimiLane(executionStoreOf(db), stubProvider, input());
    const again = await runKimiLane(executionStoreOf(db), { ...stubProvider, execute: () => expect.fail('must not execute') }, input({ now: '2027-01-01T00:00:00.000Z' }));
    expect(again).toEqual({ ok: true, reused: true, kimi: first.kimi, messages: [], events: [], rows: [] });
    expect((await envelopeRepo(executionStoreOf(db).sql).findCompletedForRun('chat-run-1'))?.kimi).toEqual(first.kimi);
    expect((await envelopeRepo(executionStoreOf(db).sql).findCompletedForRun('chat-run-9'))).toBeUndefined();
    expect(db.prepare('SELECT count(*) FROM execution_envelopes').pluck().get()).toBe(1);
  });

  it('gives byte-identical results for the same inputs in two workspaces', async () => {
    const a = await runKimiLane(executionStoreOf(openTracked(join(dir, 'a', 'kair.db'))), stubProvider, input());
    const b = await runKimiLane(executionStoreOf(openTracked(join(dir, 'b', 'kair.db'))), stubProvider, input());
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    const fa = await runKimiLane(executionStoreOf(openTracked(join(dir, 'c', 'kair.db'))), stubProvider, input({ caps: { ...CAPS, maxCostUSD: 0.01 } }));
    const fb = await runKimiLane(executionStoreOf(openTracked(join(dir, 'd', 'kair.db'))), stubProvider, input({ caps: { ...CAPS, maxCostUSD: 0.01 } }));
    expect(JSON.stringify(fb)).toBe(JSON.stringify(fa));
  });

  it('closes the envelope FAILED when the provider throws', async () => {
    const db = openTracked();
    const failing: KimiProvider = {
      ...stubProvider,
      execute: () => {
        throw new Error('upstream 502');
      },
    };
    const r = await runKimiLane(executionStoreOf(db), failing, input());
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe('INTERNAL_ERROR');
    expect(r.messages).toEqual(['Kimi execution started (budget $25, agents 5)', 'Kimi execution aborted (internal error)']);
    expect(r.kimi.status).toBe('FAILED');
    expect(r.kimi.result).toEqual({ tokensUsed: 0, costUSD: 0, summary: 'Execution failed: upstream 502', status: 'FAILED', runtimeSec: 0 });
  });

  it('refuses a run whose envelope was left RUNNING until recovery cancels it, then starts attempt 2', async () => {
    const db = openTracked();
    const repo = envelopeRepo(executionStoreOf(db).sql);
    // What a process killed mid-execution leaves behind.
    await repo.createEnvelope({ id: 'env_chat-run-1', contractId: 'chat', runId: 'chat-run-1', planSha256: 'a'.repeat(64), actor: 'alice', caps: CAPS, now: NOW });
    await repo.transitionEnvelope('env_chat-run-1', 'RUNNING', NOW);
    await repo.startRun({ id: 'kexec_chat-run-1', envelopeId: 'env_chat-run-1', provider: 'stub', now: NOW });

    const err = await caughtAsync(() => runKimiLane(executionStoreOf(db), stubProvider, input()));
    expect(err.code).toBe('INTERNAL_ERROR');
    expect(err.details).toEqual({ envelope_id: 'env_chat-run-1', status: 'RUNNING' });
    expect(await repo.listEnvelopes()).toHaveLength(1);

    await repo.cancelEnvelope('env_chat-run-1', NOW);
    expect((await repo.getEnvelope('env_chat-run-1'))!.status).toBe('CANCELLED');
    expect(await repo.getRun('kexec_chat-run-1')).toMatchObject({ status: 'FAILED', finished_at: NOW, tokens_used: null, cost_micros: null });

    const r = await runKimiLane(executionStoreOf(db), stubProvider, input());
    expect(r.ok).toBe(true);
    expect([r.kimi.executionEnvelopeId, r.kimi.executionRunId]).toEqual(['env_chat-run-1_2', 'kexec_chat-run-1_2']);
    expect(await repo.completedSpendMicros('chat')).toBe(20000);
  });

  it('enforces the lifecycle in the repository and in the schema', async () => {
    const db = openTracked();
    await runKimiLane(executionStoreOf(db), stubProvider, input());
    const repo = envelopeRepo(executionStoreOf(db).sql);
    expect((await caughtAsync(() => repo.transitionEnvelope('env_chat-run-1', 'RUNNING', NOW))).message).toMatch(/cannot go from COMPLETED to RUNNING/);
    expect((await caughtAsync(() => repo.transitionEnvelope('env_nope', 'RUNNING', NOW))).message).toMatch(/does not exist/);
    expect((await caughtAsync(() => repo.finishRun('kexec_chat-run-1', { status: 'FAILED', now: NOW, tokensUsed: 0, costMicros: 0, runtimeSec: 0, summary: 'x' }))).code).toBe(
      'INTERNAL_ERROR',
    );
    // Bypassing the repository does not help: triggers guard the rows.
    expect(() => db.prepare("UPDATE execution_envelopes SET status = 'RUNNING'").run()).toThrow(/invalid execution_envelopes update/);
    expect(() => db.prepare("UPDATE execution_envelopes SET max_cost_micros = 1, status = 'COMPLETED'").run()).toThrow(/invalid/);
    expect(() => db.prepare('UPDATE kimi_execution_runs SET cost_micros = 0').run()).toThrow(/invalid kimi_execution_runs update/);
    expect(() => db.prepare('DELETE FROM kimi_execution_runs').run()).toThrow(/never deleted/);
    expect(() => db.prepare('DELETE FROM execution_envelopes').run()).toThrow(/never deleted/);
    expect(() =>
      db
        .prepare("INSERT INTO kimi_execution_runs (id, envelope_id, provider, started_at, status) VALUES ('x', 'env_missing', 'stub', ?, 'RUNNING')")
        .run(NOW),
    ).toThrow(/FOREIGN KEY/);
    expect(await repo.completedSpendMicros('chat')).toBe(20000);
  });
});
