/**
 * The PostgreSQL event store against a real server (test/helpers/pg.ts): migrations under the
 * advisory lock, byte-identical lines and hashes with the local store, one writer per contract
 * across processes, the unique seq, tamper detection, lock_timeout, error mapping (server gone,
 * wrong password, missing database, missing schema permissions) and the execution-side schema.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import { newDpc } from '../../src/domain/dpc.js';
import { canonicalJson, sha256Hex } from '../../src/domain/canonical.js';
import type { Contract } from '../../src/domain/contract.js';
import { appendToHistory, createContract } from '../../src/store/fs/contract-writes.js';
import { paths, workspaceAt } from '../../src/store/fs/workspace.js';
import { connectPg, mapPgError } from '../../src/store/pg/connect.js';
import { PgEventStore } from '../../src/store/pg/event-store.js';
import { PG_APPEND_ONLY_TABLES, PG_MIGRATIONS, appliedPgMigrations, migratePg } from '../../src/store/pg/migrations.js';
import { ROOT } from '../helpers/cli.js';
import { urlAs, usePg, withQuery } from '../helpers/pg.js';
import { rejectionOf } from '../helpers/errors.js';

const pgt = usePg();
const AT = '2026-01-30T12:00:00.000Z';
const META = { at: AT, actor: 'tester', command: 'grant' };
let schemaN = 0;
/** A fresh schema per test: tests share one database. */
const freshSchema = () => `t${process.pid}_${++schemaN}`;
const env = (url = pgt.current.url) => ({ KAIR_DATABASE_URL: url });
const open = (schema: string, tenant = 'ws-1', url?: string) => PgEventStore.open({ env: env(url), urlEnv: 'KAIR_DATABASE_URL', schema, tenant });

async function withStore<T>(schema: string, fn: (s: PgEventStore) => Promise<T>, tenant = 'ws-1'): Promise<T> {
  const s = await open(schema, tenant);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const sha256Of = (text: string) => sha256Hex(text);
const propose = (id: string) => decidePropose(id, 'Ship it', []);
const createReq = (id: string) => ({ id, drafts: (i: string) => [propose(i)], meta: META, dpcText: '{}\n', lockTimeoutMs: 10_000 });
const grant = (s: PgEventStore, id: string, control: string, extra: Partial<Parameters<PgEventStore['mutate']>[1]> = {}) =>
  s.mutate(id, { lockTimeoutMs: 5000, meta: META, decide: async (b) => b.append([decideGrant(b.contract, 'grant', [control])]), ...extra });

describe('migrations', () => {
  it('apply once, numbered, recorded in schema_migrations; a second opener applies nothing', async () => {
    const schema = freshSchema();
    const a = await connectPg({ env: env(), urlEnv: 'KAIR_DATABASE_URL', schema });
    const b = await connectPg({ env: env(), urlEnv: 'KAIR_DATABASE_URL', schema });
    try {
      // Two sessions migrating a fresh schema at once: one applies, the other waits, then skips.
      const [ra, rb] = await Promise.all([migratePg(a.client, a.target), migratePg(b.client, b.target)]);
      expect([...ra, ...rb].sort()).toEqual(PG_MIGRATIONS.map((m) => m.id));
      expect([ra.length, rb.length].sort()).toEqual([0, PG_MIGRATIONS.length]);
      expect(await appliedPgMigrations(a.client, schema)).toEqual(PG_MIGRATIONS.map((m) => ({ id: m.id, name: m.name })));
      expect(await migratePg(a.client, a.target)).toEqual([]);
    } finally {
      await a.client.end();
      await b.client.end();
    }
  });

  it('a schema migrated by a newer kair is refused (BACKEND_CONFIG_INVALID), not written to', async () => {
    const schema = freshSchema();
    const a = await connectPg({ env: env(), urlEnv: 'KAIR_DATABASE_URL', schema });
    try {
      await migratePg(a.client, a.target);
      await a.client.query(`INSERT INTO ${schema}.schema_migrations VALUES (99, 'future', 'x')`);
      const e = await rejectionOf(migratePg(a.client, a.target));
      expect(e.code).toBe('BACKEND_CONFIG_INVALID');
      expect(e.message).toMatch(/migration 99/);
    } finally {
      await a.client.end();
    }
  });

  it('every table has tenant_id; the append-only tables refuse UPDATE and DELETE', async () => {
    const schema = freshSchema();
    await withStore(schema, async (s) => {
      await s.create(createReq('c1'));
    });
    await withQuery(pgt.current.url, async (c) => {
      const tables = await c.query<{ table_name: string; has: boolean }>(
        `SELECT t.table_name, EXISTS (SELECT 1 FROM information_schema.columns k WHERE k.table_schema = t.table_schema AND k.table_name = t.table_name AND k.column_name = 'tenant_id') AS has
         FROM information_schema.tables t WHERE t.table_schema = $1 AND t.table_name <> 'schema_migrations'`,
        [schema],
      );
      expect(tables.rows.length).toBeGreaterThanOrEqual(20);
      expect(tables.rows.filter((r) => !r.has)).toEqual([]);
      for (const t of PG_APPEND_ONLY_TABLES) {
        const trig = await c.query('SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal', [`${schema}.${t}`]);
        expect(trig.rows.map((r) => r.tgname).sort(), t).toEqual([`${t}_no_delete`, `${t}_no_truncate`, `${t}_no_update`]);
      }
      await expect(c.query(`UPDATE ${schema}.history_events SET type = 'x'`)).rejects.toThrow(/append-only/);
      await expect(c.query(`DELETE FROM ${schema}.history_events`)).rejects.toThrow(/append-only/);
    });
  });

  it('execution envelopes only move forward and are never deleted, as in SQLite', async () => {
    const schema = freshSchema();
    await withStore(schema, async () => undefined);
    await withQuery(pgt.current.url, async (c) => {
      await c.query(`INSERT INTO ${schema}.execution_envelopes (tenant_id, id, contract_id, run_id, plan_sha256, actor, max_cost_micros, max_agents, max_runtime_sec, status, created_at, updated_at)
        VALUES ('ws-1', 'env-1', 'c1', 'c1-run-1', 'sha', 'a', 100, 1, 60, 'PENDING', '${AT}', '${AT}')`);
      await expect(c.query(`UPDATE ${schema}.execution_envelopes SET status = 'COMPLETED'`)).rejects.toThrow(/invalid execution_envelopes update/);
      await expect(c.query(`UPDATE ${schema}.execution_envelopes SET status = 'RUNNING', max_cost_micros = 1`)).rejects.toThrow(/invalid execution_envelopes update/);
      await c.query(`UPDATE ${schema}.execution_envelopes SET status = 'RUNNING'`);
      await expect(c.query(`DELETE FROM ${schema}.execution_envelopes`)).rejects.toThrow(/append-only/);
      await expect(c.query(`INSERT INTO ${schema}.execution_envelopes (tenant_id, id, contract_id, run_id, plan_sha256, actor, max_cost_micros, max_agents, max_runtime_sec, allowed_scopes, status, created_at, updated_at)
        VALUES ('ws-1', 'env-2', 'c1', 'c1-run-1', 'sha', 'a', 100, 1, 60, '{"not": "an array"}', 'PENDING', '${AT}', '${AT}')`)).rejects.toThrow(/check constraint/);
    });
  });

  it('the AEC unique index allows one claim per key and attempt across sessions; HALTED rows may repeat', async () => {
    const schema = freshSchema();
    await withStore(schema, async () => undefined);
    const row = (rowId: number, event: string) =>
      `INSERT INTO ${schema}.agent_execution_ledger (tenant_id, row_id, plan_id, correlation_id, contract_id, run_id, step_id, idempotency_key, attempt, event, reason_code, actor, finder_packet_ref, catalog_snapshot_ref, decision_ref, dispatch_decision_hash, created_at)
       VALUES ('ws-1', ${rowId}, 'p', 'corr', 'c1', 'r1', 's1', 'key', 1, '${event}', 'R', 'a', 'f', 'c', 'd', 'h', '${AT}')`;
    await withQuery(pgt.current.url, async (a) => {
      await withQuery(pgt.current.url, async (b) => {
        await a.query(row(1, 'CLAIMED'));
        const dup = await rejectionOf(b.query(row(2, 'CLAIMED')));
        expect(dup.code).toBe('23505');
        await b.query(row(3, 'HALTED'));
        await a.query(row(4, 'HALTED'));
        // Another tenant's same key is its own.
        await b.query(row(5, 'CLAIMED').replace("'ws-1'", "'ws-2'"));
      });
    });
  });
});

describe('the same events give the same bytes on both backends', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('history lines, hashes and checkpoint states are identical to the local store (past a checkpoint)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kair-pg-same-'));
    dirs.push(dir);
    mkdirSync(join(dir, '.kair', 'contracts'), { recursive: true });
    const ws = workspaceAt(dir);
    const controls = Array.from({ length: 70 }, (_, i) => `ns:p${i}`);
    // Local: createContract, then one appendToHistory per grant (as `kair grant` does).
    let local = createContract(ws, 'c1', propose('c1'), { at: AT, actor: 'tester' }, newDpc('Ship it', AT), null).contract;
    for (const ctl of controls) local = appendToHistory(ws, local, [decideGrant(local, 'grant', [ctl])], { at: AT, actor: 'tester' }).contract;
    const localLines = readFileSync(paths.history(ws, 'c1'), 'utf8').split('\n').slice(0, -1);

    const schema = freshSchema();
    await withStore(schema, async (s) => {
      await s.create(createReq('c1'));
      for (const ctl of controls) await grant(s, 'c1', ctl);
      const pgLines = (await s.history('c1')).map((e) => e.line);
      expect(pgLines.length).toBe(72); // propose, 70 grants, one checkpoint at seq 64
      expect(pgLines).toEqual(localLines);
      const folded: Contract = await s.load('c1');
      expect(folded).toEqual(local);
      // The same state. Not the same text: a fold that starts from a checkpoint has the
      // checkpoint's (canonical) key order, on both backends (decision 031, "Snapshot text").
      expect(canonicalJson(JSON.parse((await s.snapshot('c1'))!))).toBe(canonicalJson(local));
      expect(await s.checkChain('c1')).toEqual([]);
    });
    await withQuery(pgt.current.url, async (c) => {
      const cp = await c.query<{ through_seq: number; state: string }>(`SELECT through_seq, state FROM ${schema}.checkpoints`);
      expect(cp.rows.map((r) => Number(r.through_seq))).toEqual([63]);
      expect(cp.rows[0]!.state + '\n').toBe(readFileSync(join(paths.checkpoints(ws, 'c1'), '63.json'), 'utf8'));
    });
  });

  it('a load after the checkpoint folds from it, and equals a full fold', async () => {
    const schema = freshSchema();
    await withStore(schema, async (s) => {
      await s.create(createReq('c1'));
      for (let i = 0; i < 66; i++) await grant(s, 'c1', `ns:p${i}`);
      const c = await s.load('c1');
      expect(c.history_seq).toBe(68);
      expect(canonicalJson(c)).toBe(canonicalJson(JSON.parse((await s.snapshot('c1'))!)));
    });
  });
});

describe('one writer per contract', () => {
  let worker = '';
  beforeAll(() => {
    // In node_modules so that the bundle's require('pg') resolves to the installed package.
    mkdirSync(join(ROOT, 'node_modules', '.kair-test'), { recursive: true });
    worker = join(ROOT, 'node_modules', '.kair-test', `pg-appender-${process.pid}.cjs`);
    buildSync({ entryPoints: [join(ROOT, 'test', 'fixtures', 'pg-appender.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: worker, external: ['pg', 'pg-native', 'better-sqlite3'], logLevel: 'error' });
  });
  afterAll(() => rmSync(worker, { force: true }));

  const appender = (schema: string, control: string, timeout = 60_000) =>
    new Promise<{ ok: boolean; seq?: number; code?: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [worker, schema, 'ws-1', 'c1', control, String(timeout)], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', reject);
      child.on('close', () => {
        try {
          resolve(JSON.parse(out) as { ok: boolean; seq?: number; code?: string });
        } catch {
          reject(new Error(`appender printed ${out} ${err}`));
        }
      });
    });

  it('32 processes granting on one contract: a contiguous chain, no fork, every event present', async () => {
    const schema = freshSchema();
    await withStore(schema, (s) => s.create(createReq('c1')));
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => appender(schema, `ns:w${i}`)));
    const ms = performance.now() - t0;
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.seq).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 32 }, (_, i) => i + 2));
    await withStore(schema, async (s) => {
      const lines = await s.history('c1');
      expect(lines.map((l) => l.event.seq)).toEqual(Array.from({ length: 33 }, (_, i) => i + 1));
      expect(await s.checkChain('c1')).toEqual([]);
      const c = await s.load('c1');
      expect(c.controls.granted).toEqual(Array.from({ length: 32 }, (_, i) => `ns:w${i}`).sort());
      expect(new Set(lines.slice(1).map((l) => l.event.actor)).size).toBe(32);
      expect((await s.listIndex())[0]).toMatchObject({ id: 'c1', state: 'DRAFT' });
    });
    console.log(`32 separate processes, one grant each on one contract: ${Math.round(ms)} ms in all`);
  });

  it('a writer SIGKILLed inside its transaction commits nothing, and its lock is free at once', async () => {
    const schema = freshSchema();
    await withStore(schema, (s) => s.create(createReq('c1')));
    const child = spawn(process.execPath, [worker, schema, 'ws-1', 'c1', 'ns:killed', '5000'], { env: { ...process.env, ...env(), PG_APPENDER_HOLD: '1' }, stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('holding') && resolve());
      child.on('close', () => reject(new Error('the appender ended before holding')));
    });
    const closed = new Promise((r) => child.on('close', r));
    child.kill('SIGKILL');
    await closed;
    await withStore(schema, async (s) => {
      // The server ends the killed session's transaction; the next writer waits at most for that.
      const r = await grant(s, 'c1', 'ns:after', { lockTimeoutMs: 5000 });
      expect(r.contract.history_seq).toBe(2);
      expect((await s.history('c1')).map((l) => l.event.data.controls)).toEqual([undefined, ['ns:after']]);
      expect(await s.checkChain('c1')).toEqual([]);
    });
  });

  it('4 processes opening a fresh schema at once: the migrations are applied once, and each then sees them done', async () => {
    const schema = freshSchema();
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => appender(schema, `ns:m${i}`)));
    // No contract c1 in a fresh schema: each got as far as the lookup, past the migrations.
    expect(results.map((r) => r.code)).toEqual(Array(4).fill('CONTRACT_NOT_FOUND'));
    await withQuery(pgt.current.url, async (c) => {
      const r = await c.query(`SELECT id FROM ${schema}.schema_migrations ORDER BY id`);
      expect(r.rows.map((x) => x.id)).toEqual(PG_MIGRATIONS.map((m) => m.id));
    });
  });

  it('two appenders of the same seq: one wins, the other is refused with CONCURRENT_WRITE and writes nothing', async () => {
    const schema = freshSchema();
    const a = await open(schema);
    const b = await open(schema);
    try {
      const c = (await a.create(createReq('c1'))).contract;
      const tail = { seq: c.history_seq, hash: c.history_head };
      const both = await Promise.allSettled([grant(a, 'c1', 'ns:a', { expectTail: tail }), grant(b, 'c1', 'ns:b', { expectTail: tail })]);
      expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const lost = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason.code).toBe('CONCURRENT_WRITE');
      expect((await a.history('c1')).length).toBe(2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the unique (tenant_id, contract_id, seq) refuses a second row for a seq even without the lock: CONCURRENT_WRITE', async () => {
    const schema = freshSchema();
    await withStore(schema, (s) => s.create(createReq('c1')));
    const conn = await connectPg({ env: env(), urlEnv: 'KAIR_DATABASE_URL', schema });
    try {
      const e = await rejectionOf(conn.client.query(`INSERT INTO ${schema}.history_events (tenant_id, contract_id, seq, type, line, prev, hash) SELECT tenant_id, contract_id, seq, type, line, prev, hash FROM ${schema}.history_events`));
      expect(e.code).toBe('23505');
      expect((mapPgError(e, conn.target, { contractId: 'c1' }) as { code: string }).code).toBe('CONCURRENT_WRITE');
    } finally {
      await conn.client.end();
    }
  });

  it('a writer that cannot get the lock within --lock-timeout gets LOCK_BUSY (exit 6) and writes nothing', async () => {
    const schema = freshSchema();
    const a = await open(schema);
    const b = await open(schema);
    try {
      await a.create(createReq('c1'));
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const holder = a.mutate('c1', { lockTimeoutMs: 5000, meta: META, decide: async (bd) => { entered(); await held; return bd.append([decideGrant(bd.contract, 'grant', ['ns:a'])]); } });
      await inside;
      const t0 = performance.now();
      const e = await rejectionOf(grant(b, 'c1', 'ns:b', { lockTimeoutMs: 200 }));
      expect(e.code).toBe('LOCK_BUSY');
      // The holder is named, as the local lock's holder record names it.
      expect(e.details.holder).toMatchObject({ application_name: 'kair grant by tester', pid: expect.any(Number) });
      expect(e.message).toMatch(/contract c1 is being written by another session \("kair grant by tester", server pid \d+ from 127\.0\.0\.1; waited for --lock-timeout\)/);
      expect(performance.now() - t0).toBeLessThan(3000);
      release();
      await holder;
      expect((await b.load('c1')).controls.granted).toEqual(['ns:a']);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('runner liveness', () => {
  it('a session advisory lock per run: alive while its session holds it, dead when the session ends, never held twice', async () => {
    const schema = freshSchema();
    const runner = await open(schema);
    const other = await open(schema);
    try {
      const release = await runner.liveness().hold('c1-run-1');
      expect(await other.liveness().verdict('c1-run-1')).toBe('alive');
      expect(await runner.liveness().verdict('c1-run-1')).toBe('alive');
      expect(await other.liveness().verdict('c1-run-2')).toBe('dead');
      expect((await rejectionOf(other.liveness().hold('c1-run-1'))).code).toBe('LOCK_BUSY');
      await release();
      expect(await other.liveness().verdict('c1-run-1')).toBe('dead');
      await runner.liveness().hold('c1-run-1');
      // The runner's session ends without releasing (a killed process): the server frees it.
      await runner.close();
      for (let i = 0; i < 50 && (await other.liveness().verdict('c1-run-1')) === 'alive'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await other.liveness().verdict('c1-run-1')).toBe('dead');
      // Another tenant's run of the same id is its own.
      const t2 = await open(schema, 'ws-2');
      try {
        await other.liveness().hold('c1-run-1');
        expect(await t2.liveness().verdict('c1-run-1')).toBe('dead');
      } finally {
        await t2.close();
      }
    } finally {
      await runner.close();
      await other.close();
    }
  });
});

describe('tampering, refusals and rollbacks', () => {
  it('a history row edited in the database is found by the chain check; loads and writers refuse it (INTEGRITY_FAILED)', async () => {
    const schema = freshSchema();
    await withStore(schema, async (s) => {
      await s.create(createReq('c1'));
      await grant(s, 'c1', 'ns:a');
      await grant(s, 'c1', 'ns:b');
    });
    await withQuery(pgt.current.url, async (c) => {
      // What someone with the table owner's rights can do: lift the trigger, edit, put it back.
      await c.query(`ALTER TABLE ${schema}.history_events DISABLE TRIGGER history_events_no_update`);
      await c.query(`UPDATE ${schema}.history_events SET line = replace(line, '"actor":"tester"', '"actor":"mallory"') WHERE seq = 2`);
      await c.query(`ALTER TABLE ${schema}.history_events ENABLE TRIGGER history_events_no_update`);
    });
    await withStore(schema, async (s) => {
      const issues = await s.checkChain('c1');
      expect(issues).toEqual([expect.objectContaining({ seq: 2, message: expect.stringMatching(/hash does not match/) })]);
      expect((await rejectionOf(s.load('c1'))).code).toBe('INTEGRITY_FAILED');
      const e = await rejectionOf(grant(s, 'c1', 'ns:c'));
      expect(e.code).toBe('INTEGRITY_FAILED');
      expect((await s.history('c1')).length).toBe(3);
    });
  });

  it('verify: clean after writes; then each kind of tampering is its problem kind', async () => {
    const schema = freshSchema();
    await withStore(schema, async (s) => {
      for (const id of ['a', 'b', 'c', 'd']) await s.create(createReq(id));
      await grant(s, 'a', 'ns:x');
      await s.mutate('b', { lockTimeoutMs: 5000, meta: META, decide: async (bd) => { await bd.putPlan(sha256Of('{"v":1}'), '{"v":1}'); await bd.putArtifact('.kair/contracts/b/plan/PLAN.md', '# v1\n'); } });
      expect(await s.verify()).toEqual({ problems: [], warnings: [] });
    });
    await withQuery(pgt.current.url, async (c) => {
      const lift = async (t: string, sql: string) => {
        await c.query(`ALTER TABLE ${schema}.${t} DISABLE TRIGGER USER`);
        await c.query(sql);
        await c.query(`ALTER TABLE ${schema}.${t} ENABLE TRIGGER USER`);
      };
      await lift('history_events', `DELETE FROM ${schema}.history_events WHERE contract_id = 'a' AND seq = 1`);
      await c.query(`UPDATE ${schema}.contracts SET snapshot = replace(snapshot, '"DRAFT"', '"APPROVED"') WHERE contract_id = 'c'`);
      await lift('plans', `UPDATE ${schema}.plans SET body = '{"v":2}'`);
      await c.query(`UPDATE ${schema}.artifacts SET body = '# v2\n'`);
      await c.query(`UPDATE ${schema}.contract_index SET state = 'PLANNED' WHERE contract_id = 'd'`);
      await c.query(`INSERT INTO ${schema}.contract_index VALUES ('ws-1', 'ghost', 'x', 'DRAFT', 1, '${AT}')`);
      await c.query(`DROP TRIGGER checkpoints_no_delete ON ${schema}.checkpoints`);
    });
    await withStore(schema, async (s) => {
      const r = await s.verify();
      // A deleted first line breaks the chain at several links: one kind per contract is enough here.
      expect([...new Set(r.problems.map((p) => `${p.contract_id ?? '-'} ${p.kind}`))].sort()).toEqual(['- trigger_missing', 'a chain_broken', 'b artifact_mismatch', 'b plan_mismatch', 'c snapshot_mismatch', 'ghost contract_missing']);
      expect(r.problems.find((p) => p.kind === 'trigger_missing')!.message).toMatch(/checkpoints_no_delete/);
      expect(r.warnings).toEqual([expect.objectContaining({ contract_id: 'd', kind: 'index_behind' })]);
    });
  });

  it('a gate refusal rolls back what the decision wrote and commits only its gate.blocked event', async () => {
    const schema = freshSchema();
    await withStore(schema, async (s) => {
      await s.create(createReq('c1'));
      const e = await rejectionOf(
        s.mutate('c1', {
          lockTimeoutMs: 5000,
          meta: META,
          decide: async (b) => {
            await b.append([decideGrant(b.contract, 'grant', ['ns:half'])]);
            await b.putArtifact('.kair/contracts/c1/plan/PLAN.md', 'half');
            throw Object.assign(new Error('refused'), { name: 'KairError', code: 'APPROVAL_REQUIRED', details: {} });
          },
          onRefusal: async (b) => void (await b.append([{ type: 'gate.blocked', state: b.contract.state, data: { command: 'run', code: 'APPROVAL_REQUIRED' } }])),
        }),
      );
      expect(e.code).toBe('APPROVAL_REQUIRED');
      expect((await s.history('c1')).map((l) => l.event.type)).toEqual(['propose', 'gate.blocked']);
      expect(await s.artifact('.kair/contracts/c1/plan/PLAN.md')).toBeNull();
      expect(JSON.parse((await s.snapshot('c1'))!).history_seq).toBe(2);
    });
  });

  it('plans by sha are immutable; artifacts keep their local paths; the index pages by id', async () => {
    const schema = freshSchema();
    await withStore(schema, async (s) => {
      for (const id of ['a_1', 'b', 'c']) await s.create(createReq(id));
      const sha = 'a'.repeat(64);
      await s.mutate('b', { lockTimeoutMs: 5000, meta: META, decide: async (bd) => { await bd.putPlan(sha, '{"v":1}'); await bd.putArtifact('.kair/contracts/b/artifacts/run/b-run-1/run-result.1.json', '{}\n'); } });
      expect(await s.plan('b', sha)).toBe('{"v":1}');
      const e = await rejectionOf(s.mutate('b', { lockTimeoutMs: 5000, meta: META, decide: (bd) => bd.putPlan(sha, '{"v":2}') }));
      expect(e.code).toBe('INTEGRITY_FAILED');
      expect(await s.plan('b', sha)).toBe('{"v":1}');
      expect(await s.artifacts('.kair/contracts/b/')).toEqual(['.kair/contracts/b/artifacts/run/b-run-1/run-result.1.json']);
      // `_` is not a wildcard: a_1's prefix does not match a contract "ab1".
      expect(await s.artifacts('.kair/contracts/a_/')).toEqual([]);
      expect(await s.dpc('c')).toBe('{}\n');
      expect((await s.listIndex({ limit: 2 })).map((r) => r.id)).toEqual(['a_1', 'b']);
      expect((await s.listIndex({ after: 'b' })).map((r) => r.id)).toEqual(['c']);
      expect((await rejectionOf(s.create(createReq('b')))).code).toBe('CONTRACT_EXISTS');
      expect((await rejectionOf(s.load('nope'))).code).toBe('CONTRACT_NOT_FOUND');
    });
    // Tenants do not see each other.
    await withStore(schema, async (s) => expect(await s.listIndex()).toEqual([]), 'ws-2');
  });
});

describe('error mapping', () => {
  it('wrong password → BACKEND_CONFIG_INVALID (exit 2), the password never shown', async () => {
    const u = new URL(pgt.current.url);
    u.password = 'not-the-password-xyz';
    const e = await rejectionOf(open(freshSchema(), 'ws-1', u.toString()));
    expect(e.code).toBe('BACKEND_CONFIG_INVALID');
    expect(e.message).toMatch(/refused the credentials/);
    expect(JSON.stringify(e) + e.message).not.toMatch(/not-the-password-xyz/);
    expect(JSON.stringify(e) + e.message).not.toContain(new URL(pgt.current.url).password);
  });

  it('a missing database, a bad URL and an unset variable → BACKEND_CONFIG_INVALID', async () => {
    const u = new URL(pgt.current.url);
    u.pathname = '/no_such_db_kair';
    expect((await rejectionOf(open(freshSchema(), 'ws-1', u.toString()))).code).toBe('BACKEND_CONFIG_INVALID');
    expect((await rejectionOf(open(freshSchema(), 'ws-1', 'mysql://u:p@h/db'))).message).toMatch(/expected postgres:\/\//);
    const unset = await rejectionOf(PgEventStore.open({ env: {}, urlEnv: 'KAIR_DATABASE_URL', schema: 'kair', tenant: 'w' }));
    expect(unset.code).toBe('BACKEND_CONFIG_INVALID');
    expect(unset.message).toMatch(/KAIR_DATABASE_URL is not set/);
  });

  it('a role without schema permissions → BACKEND_CONFIG_INVALID, both to create the schema and to use an existing one', async () => {
    const schema = freshSchema();
    await withStore(schema, async (s) => void (await s.create(createReq('c1'))));
    const role = `nopriv_${process.pid}`;
    await withQuery(pgt.current.adminUrl, (c) => c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-${role}'`));
    try {
      await withQuery(pgt.current.url, (c) => c.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`));
      const url = urlAs(pgt.current, role, `pw-${role}`);
      const create = await rejectionOf(open(freshSchema(), 'ws-1', url));
      expect(create.code).toBe('BACKEND_CONFIG_INVALID');
      expect(create.message).toMatch(/may not use or create the schema/);
      const use = await rejectionOf(open(schema, 'ws-1', url));
      expect(use.code).toBe('BACKEND_CONFIG_INVALID');
    } finally {
      await withQuery(pgt.current.adminUrl, (c) => c.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => undefined)).catch(() => undefined);
    }
  });

  it('nothing listening → BACKEND_UNAVAILABLE (exit 6, retryable)', async () => {
    const e = await rejectionOf(open(freshSchema(), 'ws-1', 'postgres://kair:secret-pw@127.0.0.1:1/kair'));
    expect(e.code).toBe('BACKEND_UNAVAILABLE');
    expect(e.details).toMatchObject({ host: '127.0.0.1', port: 1, retryable: true });
    expect(e.message).not.toContain('secret-pw');
  });

  // Last in the file: it stops the server (embedded only; a shared KAIR_TEST_DATABASE_URL server is left alone).
  it('server stopped mid-transaction → BACKEND_UNAVAILABLE, and nothing of the transaction is committed', async (ctx) => {
    if (!pgt.current.embedded) ctx.skip();
    const schema = freshSchema();
    const s = await open(schema);
    try {
      await s.create(createReq('c1'));
      await grant(s, 'c1', 'ns:before');
      const e = await rejectionOf(
        s.mutate('c1', {
          lockTimeoutMs: 5000,
          meta: META,
          decide: async (b) => {
            await b.append([decideGrant(b.contract, 'grant', ['ns:a'])]);
            await pgt.current.stopServer();
            await b.append([decideGrant(b.contract, 'grant', ['ns:b'])]);
          },
        }),
      );
      expect(e.code).toBe('BACKEND_UNAVAILABLE');
      expect((await rejectionOf(open(schema))).code).toBe('BACKEND_UNAVAILABLE');
    } finally {
      await s.close();
      await pgt.current.startServer();
    }
    await withStore(schema, async (s2) => {
      expect((await s2.history('c1')).map((l) => l.event.seq)).toEqual([1, 2]);
      expect((await s2.load('c1')).controls.granted).toEqual(['ns:before']);
      expect(await s2.checkChain('c1')).toEqual([]);
    });
  });
});
