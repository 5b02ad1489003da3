/**
 * The execution side on a real PostgreSQL (test/helpers/pg.ts): the lanes' SQLite SQL through
 * the dialect layer, the tenant on every row without the lanes naming it, parity with
 * better-sqlite3 (same rows, same row JSON and hashes), the AEC claim across 8 processes, a
 * ledger chain appended by 8 processes, and verify / head on the execution tables.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../src/domain/canonical.js';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import type { ExecutionStore, SqlExecutor } from '../../src/store/port.js';
import { connectPg } from '../../src/store/pg/connect.js';
import type { PgClient, PgConnection } from '../../src/store/pg/connect.js';
import { PgEventStore } from '../../src/store/pg/event-store.js';
import { migratePg } from '../../src/store/pg/migrations.js';
import { loadTables, pgExecutionStore } from '../../src/store/pg/sql-executor.js';
import { pgOnlyColumns } from '../../src/store/pg/dialect.js';
import type { PgExecutionStore } from '../../src/store/pg/sql-executor.js';
import { checkExecutionChains, checkExecutionTriggers, executionChainHeads, executionChainHolds, mergeVerify, verifyExecution } from '../../src/store/pg/verify-exec.js';
import { CHAINS, checkChainTable, rowSha } from '../../src/store/sqlite/chain.js';
import { openDb } from '../../src/store/sqlite/db.js';
import type { Db } from '../../src/store/sqlite/db.js';
import { AT, appendChained, ledgerValues, sqliteExecution } from '../fixtures/exec-chain.js';
import { ROOT } from '../helpers/cli.js';
import { usePg, withQuery } from '../helpers/pg.js';
import { rejectionOf } from '../helpers/errors.js';

const pgt = usePg();
let schemaN = 0;
const freshSchema = () => `x${process.pid}_${++schemaN}`;
const env = () => ({ KAIR_DATABASE_URL: pgt.current.url });
const conns: PgConnection[] = [];

async function openExec(schema: string, tenant = 'ws-1'): Promise<{ store: PgExecutionStore; client: PgClient }> {
  const conn = await connectPg({ env: env(), urlEnv: 'KAIR_DATABASE_URL', schema });
  conns.push(conn);
  await migratePg(conn.client, conn.target);
  return { store: pgExecutionStore(conn.client, conn.target, tenant), client: conn.client };
}

afterAll(async () => {
  await Promise.all(conns.map((c) => c.client.end().catch(() => undefined)));
});

const envelope = (id: string, contract = 'c1') => [id, contract, `${contract}-run-1`, 'a'.repeat(64), 'alice', 1000, 1, 60, '["repo:read"]', 'PENDING', AT, AT];
const INSERT_ENVELOPE =
  'INSERT INTO execution_envelopes (id, contract_id, run_id, plan_sha256, actor, max_cost_micros, max_agents, max_runtime_sec, allowed_scopes, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

describe('the dialect: SQLite SQL on PostgreSQL', () => {
  it('numbers placeholders outside string literals, fills the tenant in, and reads rows as the local table returns them', async () => {
    const { store } = await openExec(freshSchema());
    const t = await store.translate("SELECT '?' AS q, id FROM execution_envelopes WHERE id = ? AND actor <> 'it''s ?' ORDER BY rowid");
    expect(t.params).toBe(1);
    expect(t.text).toContain("'?' AS q");
    expect(t.text).toContain("'it''s ?'");
    expect(t.text).toMatch(/WHERE id = \$1 /);
    expect(t.text).toMatch(/tenant_id = \$2/);
    await store.transaction(async (sql) => {
      expect(await sql.run(INSERT_ENVELOPE, envelope('env-1'))).toEqual({ changes: 1 });
      const row = await sql.get('SELECT * FROM execution_envelopes WHERE id = ?', ['env-1']);
      // No tenant_id (kair.db's table has none) and no rowid (SQLite's SELECT * does not return it).
      expect(Object.keys(row!).sort()).toEqual(['actor', 'allowed_scopes', 'contract_id', 'created_at', 'id', 'max_agents', 'max_cost_micros', 'max_runtime_sec', 'plan_sha256', 'provider', 'run_id', 'status', 'updated_at']);
      expect(row!.max_cost_micros).toBe(1000);
      expect(await sql.get('SELECT rowid > 0 AS has, count(*) AS n FROM execution_envelopes GROUP BY rowid')).toEqual({ has: 1, n: 1 });
      const named = await sql.get<{ rowid: number }>('SELECT rowid, id FROM execution_envelopes');
      expect(typeof named!.rowid).toBe('number');
    });
  });

  it('nests as savepoints, serialises unrelated transactions on its session, and refuses an executor kept past its transaction', async () => {
    const { store } = await openExec(freshSchema());
    let kept: SqlExecutor | undefined;
    await store.transaction(async (sql) => {
      kept = sql;
      await sql.run(INSERT_ENVELOPE, envelope('env-outer'));
      // A failing inner transaction rolls back to its savepoint; the outer one goes on.
      const e = await rejectionOf(store.transaction(async (inner) => {
        await inner.run(INSERT_ENVELOPE, envelope('env-inner'));
        await inner.run(INSERT_ENVELOPE, envelope('env-inner'));
      }));
      expect(e.code).toBe('CONCURRENT_WRITE');
      await store.transaction((inner) => inner.run(INSERT_ENVELOPE, envelope('env-inner-2')));
    });
    // Two transactions started together run one after the other on the one session.
    await Promise.all([0, 1, 2].map((i) => store.transaction((sql) => sql.run(INSERT_ENVELOPE, envelope(`env-par-${i}`)))));
    const ids = await store.transaction((sql) => sql.all<{ id: string }>('SELECT id FROM execution_envelopes ORDER BY rowid'));
    expect(ids.map((r) => r.id)).toEqual(['env-outer', 'env-inner-2', 'env-par-0', 'env-par-1', 'env-par-2']);
    expect((await rejectionOf(kept!.all('SELECT 1 AS one'))).message).toMatch(/outside its transaction/);
    expect((await rejectionOf(kept!.lockChain('change_log', ['ws-1']))).message).toMatch(/outside its transaction/);
  });

  it('inside a transaction already open on its session (the contract boundary’s), its rows commit or roll back with that one', async () => {
    const { store, client } = await openExec(freshSchema());
    for (const [end, id] of [
      ['ROLLBACK', 'env-rolled-back'],
      ['COMMIT', 'env-committed'],
    ] as const) {
      await client.query('BEGIN');
      await store.transaction((sql) => sql.run(INSERT_ENVELOPE, envelope(id)));
      // Still open: the execution store did not commit the boundary's transaction.
      expect(client.getTransactionStatus()).toBe('T');
      await client.query(end);
    }
    // A failed transaction of someone else's on the session is left to its owner.
    await client.query('BEGIN');
    await client.query('SELECT 1/0').catch(() => undefined);
    expect(client.getTransactionStatus()).toBe('E');
    expect((await rejectionOf(store.transaction((sql) => sql.run(INSERT_ENVELOPE, envelope('env-in-failed'))))).message).toMatch(/aborted/);
    expect(client.getTransactionStatus()).toBe('E');
    await client.query('ROLLBACK');
    const ids = await store.transaction((sql) => sql.all<{ id: string }>('SELECT id FROM execution_envelopes'));
    expect(ids).toEqual([{ id: 'env-committed' }]);
  });

  it('refuses what it cannot put a tenant filter on, before sending anything', async () => {
    const schema = freshSchema();
    const { store } = await openExec(schema);
    const bad = [
      [`SELECT * FROM ${schema}.agent_execution_ledger`, /schema-qualified/],
      ['SELECT * FROM "agent_execution_ledger"', /quoted table/],
      ["SELECT name FROM sqlite_master WHERE type = 'trigger'", /sqlite_master/],
      ['PRAGMA journal_mode', /PRAGMA/],
      ['SELECT 1; DELETE FROM agent_execution_current', /more than one statement/],
      ['UPDATE agent_execution_current SET tenant_id = ? WHERE step_id = ?', /UPDATE of tenant_id/],
      ['INSERT INTO aec_refs (tenant_id, ref, kind, body, created_at) VALUES (?, ?, ?, ?, ?)', /naming tenant_id/],
      ['INSERT INTO dev_intake SELECT * FROM dev_intake', /column list/],
      ['UPDATE simulations SET status = @to WHERE id = @id', /named parameter/],
      ['SELECT * FROM pg_roles', /pg_roles/],
    ] as const;
    for (const [sql, why] of bad) {
      const e = await rejectionOf(store.transaction((x) => x.all(sql)));
      expect(e.code, sql).toBe('INTERNAL_ERROR');
      expect(e.message, sql).toMatch(why);
    }
    // A tenant_id the lane passes must be the workspace's own.
    const v = ledgerValues('someone-else', 'c1');
    const cols = Object.keys(v);
    const e = await rejectionOf(store.transaction((x) => x.run(`INSERT INTO agent_execution_ledger (row_id, ${cols.join(', ')}) VALUES (1, ${cols.map(() => '?').join(', ')})`, cols.map((c) => v[c]))));
    expect(e.code).toBe('INTERNAL_ERROR');
    expect(e.message).toMatch(/another workspace/);
    await withQuery(pgt.current.url, async (c) => {
      expect((await c.query(`SELECT count(*)::int AS n FROM ${schema}.agent_execution_ledger`)).rows[0].n).toBe(0);
    });
  });

  it('two tenants in one schema never see, change or delete each other’s rows', async () => {
    const schema = freshSchema();
    const a = (await openExec(schema, 'ws-a')).store;
    const b = (await openExec(schema, 'ws-b')).store;
    for (const [s, actor] of [
      [a, 'alice'],
      [b, 'bob'],
    ] as const) {
      await s.transaction(async (sql) => {
        await sql.run(INSERT_ENVELOPE, envelope('env-1').map((v) => (v === 'alice' ? actor : v)));
        await sql.run("INSERT INTO kimi_execution_runs (id, envelope_id, provider, started_at, status) VALUES (?, ?, 'kimi', ?, 'RUNNING')", ['run-1', 'env-1', AT]);
        await sql.run('INSERT INTO aec_refs (ref, kind, body, created_at) VALUES (?, ?, ?, ?)', ['policy:v1', 'policy', canonicalJson({ actor }), AT]);
        await sql.run('INSERT OR REPLACE INTO access_policy (actor, action, decision, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)', ['*', 'deploy', actor === 'alice' ? 'allow' : 'deny', AT, actor]);
        await appendChained(sql, CHAINS.agent_execution_ledger, ledgerValues(s.tenant, 'c1'));
        // The same simulation id in both tenants: the conflict target is per tenant.
        expect(await sql.run('INSERT INTO simulations (id, definition, status, created_at, updated_at, registered_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING', ['sim.a', '{}', 'Draft', AT, AT, actor])).toEqual({ changes: 1 });
      });
    }
    const seen = (s: PgExecutionStore) =>
      s.transaction(async (sql) => ({
        envelopes: await sql.all('SELECT id, actor FROM execution_envelopes ORDER BY rowid'),
        joined: await sql.all('SELECT e.actor, r.id FROM execution_envelopes e JOIN kimi_execution_runs r ON r.envelope_id = e.id'),
        sub: await sql.all('SELECT actor FROM execution_envelopes WHERE id IN (SELECT envelope_id FROM kimi_execution_runs) AND EXISTS (SELECT 1 FROM aec_refs WHERE ref = ?)', ['policy:v1']),
        refs: await sql.all('SELECT body FROM aec_refs'),
        policy: await sql.all('SELECT actor, action, decision FROM access_policy'),
        ledger: await sql.all('SELECT tenant_id, row_id FROM agent_execution_ledger'),
        counts: await sql.get('SELECT (SELECT count(*) FROM execution_envelopes) AS e, (SELECT count(*) FROM agent_execution_ledger) AS l'),
        sims: await sql.all('SELECT id, registered_by FROM simulations'),
      }));
    const sa = await seen(a);
    expect(sa).toEqual({
      envelopes: [{ id: 'env-1', actor: 'alice' }],
      joined: [{ actor: 'alice', id: 'run-1' }],
      sub: [{ actor: 'alice' }],
      refs: [{ body: '{"actor":"alice"}' }],
      policy: [{ actor: '*', action: 'deploy', decision: 'allow' }],
      ledger: [{ tenant_id: 'ws-a', row_id: 1 }],
      counts: { e: 1, l: 1 },
      sims: [{ id: 'sim.a', registered_by: 'alice' }],
    });
    expect((await seen(b)).envelopes).toEqual([{ id: 'env-1', actor: 'bob' }]);
    // A's writes touch only A's rows.
    await a.transaction(async (sql) => {
      expect(await sql.run("UPDATE execution_envelopes SET status = 'RUNNING', updated_at = ? WHERE id = ?", [AT, 'env-1'])).toEqual({ changes: 1 });
      expect(await sql.run('DELETE FROM access_policy WHERE actor = ? AND action = ?', ['*', 'deploy'])).toEqual({ changes: 1 });
      expect(await sql.run("UPDATE simulations SET status = 'Active'")).toEqual({ changes: 1 });
    });
    const sb = await seen(b);
    expect(sb.policy).toEqual([{ actor: '*', action: 'deploy', decision: 'deny' }]);
    expect(await b.transaction((sql) => sql.all('SELECT id, status FROM simulations'))).toEqual([{ id: 'sim.a', status: 'Draft' }]);
    await withQuery(pgt.current.url, async (c) => {
      const st = await c.query(`SELECT tenant_id, status FROM ${schema}.execution_envelopes ORDER BY tenant_id`);
      expect(st.rows).toEqual([
        { tenant_id: 'ws-a', status: 'RUNNING' },
        { tenant_id: 'ws-b', status: 'PENDING' },
      ]);
    });
  });
});

/** The same statements through better-sqlite3 and through the PostgreSQL executor. */
describe('parity with SQLite', () => {
  let db: Db;
  let local: ExecutionStore;
  let pgs: PgExecutionStore;
  let pgClient: PgClient;
  beforeAll(async () => {
    db = openDb(':memory:', { now: () => AT });
    local = sqliteExecution(db);
    ({ store: pgs, client: pgClient } = await openExec(freshSchema(), 'ws-1'));
  });
  afterAll(() => db.close());

  const both = async <T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<[T, T]> => [await local.transaction(fn), await pgs.transaction(fn)];

  it('every kair.db table exists on PostgreSQL with the same columns once the PostgreSQL-only ones are left out', async () => {
    const localTables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('migrations', 'sqlite_sequence') ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    const pgTables = await loadTables(pgClient, pgs.target.schema);
    for (const t of localTables) {
      const local = (db.prepare(`SELECT name FROM pragma_table_info('${t}')`).all() as { name: string }[]).map((c) => c.name).sort();
      expect(pgTables.get(t)?.columns.filter((c) => !pgOnlyColumns(t).includes(c)).sort(), t).toEqual(local);
    }
    expect(localTables.length).toBeGreaterThanOrEqual(13);
  });

  it('chained ledger inserts: the same ids, rows, row JSON, hashes and chain heads', async () => {
    for (const [contract, n] of [
      ['c1', 1],
      ['c2', 2],
      ['c1', 3],
      ['c1', 4],
    ] as const) {
      const [l, p] = await both((sql) => appendChained(sql, CHAINS.agent_execution_ledger, ledgerValues('ws-1', contract, { step: `s${n}`, n })));
      expect(p).toBe(l);
    }
    const [lr, pr] = await both((sql) => sql.all('SELECT * FROM agent_execution_ledger ORDER BY row_id'));
    expect(pr.map((r) => canonicalJson(r))).toEqual(lr.map((r) => canonicalJson(r)));
    expect(pr.map((r) => rowSha(r))).toEqual(lr.map((r) => rowSha(r)));
    expect(await local.transaction((sql) => checkChainTable(sql, CHAINS.agent_execution_ledger))).toEqual([]);
    const [lh, ph] = await both((sql) => sql.get("SELECT row_hash FROM agent_execution_ledger WHERE tenant_id = ? AND contract_id = ? ORDER BY row_id DESC LIMIT 1", ['ws-1', 'c1']));
    expect(ph).toEqual(lh);
    // aec_refs (no tenant column locally, chained in insertion order).
    for (const ref of ['b:1', 'a:2', 'c:3']) await both((sql) => appendChained(sql, CHAINS.aec_refs, { ref, kind: ref[0], body: canonicalJson({ ref }), created_at: AT }));
    const [la, pa] = await both((sql) => sql.all('SELECT * FROM aec_refs ORDER BY rowid'));
    expect(pa).toEqual(la);
    expect(await local.transaction((sql) => checkChainTable(sql, CHAINS.aec_refs))).toEqual([]);
    for (const page of [1, 2, 5000]) expect(await pgs.transaction((sql) => checkExecutionChains(sql, page))).toEqual([]);
    expect(await local.transaction((sql) => checkExecutionChains(sql, 2))).toEqual([]);
    // The heads `kair head` records, computed the same way on both.
    const local3 = (await executionChainHeads(local)).filter((h) => h.name.startsWith('agent_execution_ledger') || h.name === 'aec_refs');
    const pg3 = (await executionChainHeads(pgs)).filter((h) => h.name.startsWith('agent_execution_ledger') || h.name === 'aec_refs');
    expect(pg3.map((h) => h.name)).toEqual(['agent_execution_ledger:ws-1/c1', 'agent_execution_ledger:ws-1/c2', 'aec_refs']);
    // Integer ids are the same; aec_refs's seq is its rowid, which on PostgreSQL is a sequence shared by tenants.
    expect(pg3.map(({ name, row_hash }) => ({ name, row_hash }))).toEqual(local3.map(({ name, row_hash }) => ({ name, row_hash })));
    expect(pg3.filter((h) => h.name !== 'aec_refs')).toEqual(local3.filter((h) => h.name !== 'aec_refs'));
  });

  it('an envelope’s forward-only update is refused by the trigger on both', async () => {
    await both((sql) => sql.run(INSERT_ENVELOPE, envelope('env-fwd')));
    for (const store of [local, pgs]) {
      const e = await rejectionOf(store.transaction((sql) => sql.run("UPDATE execution_envelopes SET status = 'COMPLETED' WHERE id = ?", ['env-fwd'])));
      expect(e.message).toMatch(/invalid execution_envelopes update/);
      const e2 = await rejectionOf(store.transaction((sql) => sql.run('UPDATE execution_envelopes SET max_cost_micros = 1 WHERE id = ?', ['env-fwd'])));
      expect(e2.message).toMatch(/invalid execution_envelopes update/);
    }
    const [l, p] = await both(async (sql) => {
      await sql.run("UPDATE execution_envelopes SET status = 'RUNNING' WHERE id = ? AND status = 'PENDING'", ['env-fwd']);
      return sql.get('SELECT * FROM execution_envelopes WHERE id = ?', ['env-fwd']);
    });
    expect(p).toEqual(l);
    expect(rowSha(p!)).toBe(rowSha(l!));
  });

  it('a second claim of one key and attempt hits the unique index on both: SQLite’s constraint error, CONCURRENT_WRITE on PostgreSQL, nothing committed', async () => {
    const v = { ...ledgerValues('ws-1', 'c9', { key: 'z'.repeat(64) }) };
    await both((sql) => appendChained(sql, CHAINS.agent_execution_ledger, v));
    const dup = (sql: SqlExecutor) => sql.run(`INSERT INTO agent_execution_ledger (row_id, ${Object.keys(v).join(', ')}) VALUES (999, ${Object.keys(v).map(() => '?').join(', ')})`, Object.values(v));
    const le = await rejectionOf(local.transaction(dup));
    expect(le.code).toBe('SQLITE_CONSTRAINT_UNIQUE');
    const pe = await rejectionOf(pgs.transaction(dup));
    expect(pe.code).toBe('CONCURRENT_WRITE');
    expect(pe.details).toMatchObject({ table: 'agent_execution_ledger', constraint: 'agent_execution_ledger_idempotency', retryable: true });
    const [l, p] = await both((sql) => sql.all('SELECT row_id FROM agent_execution_ledger WHERE contract_id = ?', ['c9']));
    expect(p).toEqual(l);
    expect(p).toHaveLength(1);
  });

  it('the lanes’ own upserts (ON CONFLICT (local key) DO UPDATE / DO NOTHING) give the same rows', async () => {
    const upsert =
      'INSERT INTO access_policy (actor, action, decision, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (actor, action) DO UPDATE SET decision = excluded.decision, updated_at = excluded.updated_at, updated_by = excluded.updated_by';
    const register = 'INSERT INTO simulations (id, definition, status, created_at, updated_at, registered_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING';
    await both((sql) => sql.run(upsert, ['alice', 'deploy', 'allow', AT, 'admin']));
    await both((sql) => sql.run(upsert, ['alice', 'deploy', 'deny', '2026-01-31T00:00:00.000Z', 'root']));
    await both((sql) => sql.run(register, ['sim.a', '{"id":"sim.a"}', 'Draft', AT, AT, 'admin']));
    const [l1, p1] = await both((sql) => sql.run(register, ['sim.a', '{"id":"other"}', 'Active', AT, AT, 'mallory']));
    expect(p1).toEqual(l1);
    const [l, p] = await both(async (sql) => [...(await sql.all('SELECT * FROM access_policy ORDER BY rowid')), ...(await sql.all('SELECT * FROM simulations ORDER BY rowid'))]);
    expect(p).toEqual(l);
    expect(p.map((r) => rowSha(r))).toEqual(l.map((r) => rowSha(r)));
    expect(p[0]).toMatchObject({ decision: 'deny', updated_by: 'root' });
  });

  it('INSERT OR REPLACE / OR IGNORE on the projection, from VALUES and from the ledger fold', async () => {
    const cols = 'tenant_id, correlation_id, step_id, plan_id, contract_id, run_id, simulation_id, idempotency_key, attempt, status, reason_code, success_row_id, last_row_id, rows, updated_at';
    const put = (status: string) => (sql: SqlExecutor) =>
      sql.run(`INSERT OR REPLACE INTO agent_execution_current (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ['ws-1', 'c1:v1', 'sx', 'c1:v1', 'c1', 'c1-run-1', null, 'k', 1, status, 'R', null, 1, 1, AT]);
    await both(put('CLAIMED'));
    await both(put('SUCCEEDED'));
    await both((sql) => sql.run(`INSERT OR IGNORE INTO agent_execution_current (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ['ws-1', 'c1:v1', 'sx', 'c1:v1', 'c1', 'c1-run-1', null, 'k', 1, 'IGNORED', 'R', null, 1, 1, AT]));
    // The fold of lanes/aec/ledger.ts (PROJECTION_SQL), an INSERT OR REPLACE from a WITH … JOIN.
    const GROUP = 'tenant_id, correlation_id, step_id';
    const fold = `INSERT OR REPLACE INTO agent_execution_current (${cols})
WITH g AS (
  SELECT ${GROUP}, max(row_id) AS last_row_id, count(*) AS rows,
         coalesce(max(CASE WHEN event = 'CLAIMED' THEN attempt END), 0) AS attempt,
         max(CASE WHEN event = 'SUCCEEDED' THEN row_id END) AS success_row_id
  FROM agent_execution_ledger WHERE tenant_id = ?
  GROUP BY ${GROUP}
)
SELECT g.tenant_id, g.correlation_id, g.step_id, l.plan_id, l.contract_id, l.run_id, l.simulation_id, l.idempotency_key,
       g.attempt, CASE WHEN g.success_row_id IS NOT NULL THEN 'SUCCEEDED' ELSE l.event END AS status, l.reason_code,
       g.success_row_id, g.last_row_id, g.rows, l.created_at AS updated_at
FROM g JOIN agent_execution_ledger l ON l.row_id = g.last_row_id`;
    await both((sql) => sql.run(fold, ['ws-1']));
    await both((sql) => sql.run(fold, ['ws-1']));
    const [l, p] = await both((sql) => sql.all(`SELECT ${cols} FROM agent_execution_current ORDER BY ${GROUP}`));
    expect(p).toEqual(l);
    expect(p.find((r) => r.step_id === 'sx')!.status).toBe('SUCCEEDED');
    expect(p.length).toBeGreaterThan(3);
    const [ls, ps] = await both((sql) => sql.get('SELECT count(*) AS n, sum(latency_us) AS s, max(row_id) AS m, avg(attempt) AS a FROM agent_execution_ledger'));
    expect(ps).toEqual(ls);
  });
});

describe('across processes', () => {
  let worker: string;
  beforeAll(() => {
    // In node_modules so that the bundle's require('pg') resolves to the installed package.
    mkdirSync(join(ROOT, 'node_modules', '.kair-test'), { recursive: true });
    worker = join(ROOT, 'node_modules', '.kair-test', `pg-exec-worker-${process.pid}.cjs`);
    buildSync({ entryPoints: [join(ROOT, 'test', 'fixtures', 'pg-exec-worker.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: worker, external: ['pg', 'pg-native', 'better-sqlite3'], logLevel: 'error' });
  });
  afterAll(() => rmSync(worker, { force: true }));

  /** Starts `n` workers, waits until each is connected, then tells them all to go at once. */
  async function race(n: number, args: string[], extra: (i: number) => string[] = () => []): Promise<{ results: Record<string, unknown>[]; ms: number }> {
    const children = Array.from({ length: n }, (_, i) => spawn(process.execPath, [worker, ...args, ...extra(i)], { env: { ...process.env, ...env() }, stdio: ['pipe', 'pipe', 'pipe'] }));
    const outs = children.map((child) => {
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: string) => {
          out += d;
          if (out.startsWith('ready\n')) resolve();
        });
        child.on('close', () => reject(new Error(`worker ended before ready: ${out} ${err}`)));
      });
      const done = new Promise<Record<string, unknown>>((resolve, reject) =>
        child.on('close', () => {
          try {
            resolve(JSON.parse(out.replace(/^ready\n/, '')) as Record<string, unknown>);
          } catch {
            reject(new Error(`worker printed ${out} ${err}`));
          }
        }),
      );
      return { ready, done };
    });
    await Promise.all(outs.map((o) => o.ready));
    const t0 = performance.now();
    for (const c of children) c.stdin.end('go\n');
    const results = await Promise.all(outs.map((o) => o.done));
    return { results, ms: performance.now() - t0 };
  }

  it('a claimer SIGKILLed while it holds the chain lock commits nothing, and the next one appends at once', async () => {
    const schema = freshSchema();
    const { store } = await openExec(schema);
    await store.transaction((sql) => appendChained(sql, CHAINS.agent_execution_ledger, ledgerValues('ws-1', 'c1', { step: 'before' })));
    const child = spawn(process.execPath, [worker, schema, 'ws-1', 'hold', '1'], { env: { ...process.env, ...env() }, stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('ready')) child.stdin.end('go\n');
        if (out.includes('holding')) resolve();
      });
      child.on('close', () => reject(new Error(`the worker ended before holding: ${out}`)));
    });
    const closed = new Promise((r) => child.on('close', r));
    child.kill('SIGKILL');
    await closed;
    // The server ends the killed session and its transaction; the chain lock goes with it.
    await store.transaction((sql) => appendChained(sql, CHAINS.agent_execution_ledger, ledgerValues('ws-1', 'c1', { step: 'after' })));
    const rows = await store.transaction((sql) => sql.all('SELECT row_id, step_id FROM agent_execution_ledger ORDER BY row_id'));
    expect(rows).toEqual([
      { row_id: 1, step_id: 'before' },
      { row_id: 2, step_id: 'after' },
    ]);
    expect(await store.transaction((sql) => checkExecutionChains(sql))).toEqual([]);
  });

  it('8 processes claiming one AEC key and attempt: exactly one claim row', async () => {
    const schema = freshSchema();
    const { store } = await openExec(schema);
    const { results } = await race(8, [schema, 'ws-1', 'claim', '1']);
    expect(results.filter((r) => r.ok !== true)).toEqual([]);
    expect(results.filter((r) => r.claimed === true)).toHaveLength(1);
    const rows = await store.transaction((sql) => sql.all("SELECT row_id FROM agent_execution_ledger WHERE event = 'CLAIMED'"));
    expect(rows).toEqual([{ row_id: 1 }]);
  });

  it('8 processes inserting the same claim without the lock: the unique index keeps one, the others get CONCURRENT_WRITE', async () => {
    const schema = freshSchema();
    const { store } = await openExec(schema);
    const { results } = await race(8, [schema, 'ws-1', 'rawclaim', '1']);
    expect(results.filter((r) => r.ok === true)).toHaveLength(1);
    expect(results.filter((r) => r.ok !== true).map((r) => r.code)).toEqual(Array(7).fill('CONCURRENT_WRITE'));
    expect(await store.transaction((sql) => sql.all('SELECT count(*) AS n FROM agent_execution_ledger'))).toEqual([{ n: 1 }]);
  });

  it.each([
    ['one contract', () => 'c1'],
    ['8 contracts', (i: number) => `c${i + 1}`],
  ] as const)('8 processes claiming distinct steps on %s: contiguous chains, ids 1…n, every row present', async (what, contractOf) => {
    const schema = freshSchema();
    const { store } = await openExec(schema);
    const per = 10;
    const { results, ms } = await race(8, [schema, 'ws-1', 'append', String(per)], (i) => [contractOf(i)]);
    expect(results.filter((r) => r.ok !== true)).toEqual([]);
    const ids = results.flatMap((r) => r.ids as number[]).sort((x, y) => x - y);
    expect(ids).toEqual(Array.from({ length: 8 * per }, (_, i) => i + 1));
    expect(await store.transaction((sql) => checkExecutionChains(sql))).toEqual([]);
    // Walked a page at a time, the same answer.
    expect(await store.transaction((sql) => checkExecutionChains(sql, 7))).toEqual([]);
    // The figure decision 035 reports (appends per second across 8 processes, on a loaded machine).
    console.log(`pg-exec: ${8 * per} claims (lock, re-read, chained append) from 8 processes on ${what} in ${ms.toFixed(0)} ms (${((8 * per) / (ms / 1000)).toFixed(0)}/s)`);
  });
});

describe('verify and head on the execution side', () => {
  const META = { at: AT, actor: 'tester', command: 'run' };

  async function workspace(schema: string) {
    const { store, client } = await openExec(schema);
    const events = await PgEventStore.open({ env: env(), urlEnv: 'KAIR_DATABASE_URL', schema, tenant: 'ws-1' });
    await events.create({ id: 'c1', drafts: (i: string) => [decidePropose(i, 'Ship it', [])], meta: META, dpcText: '{}\n', lockTimeoutMs: 10_000 });
    const ids = await store.transaction(async (sql) => {
      await sql.run(INSERT_ENVELOPE, envelope('env-1'));
      const out: (number | string)[] = [];
      for (let i = 0; i < 3; i++) out.push(await appendChained(sql, CHAINS.agent_execution_ledger, ledgerValues('ws-1', 'c1', { step: `s${i}`, n: i })));
      return out;
    });
    // An event names the envelope and the ledger rows, as a run's events do.
    const anchors = await store.transaction(async (sql) => [
      { table: 'execution_envelopes', id: 'env-1', sha256: rowSha((await sql.get('SELECT * FROM execution_envelopes WHERE id = ?', ['env-1']))!) },
      ...(await sql.all('SELECT * FROM agent_execution_ledger ORDER BY row_id')).map((r) => ({ table: 'agent_execution_ledger', id: r.row_id as number, sha256: rowSha(r) })),
    ]);
    await events.mutate('c1', { lockTimeoutMs: 5000, meta: META, decide: async (b) => b.append([{ ...decideGrant(b.contract, 'grant', ['ns:x']), data: { ...decideGrant(b.contract, 'grant', ['ns:x']).data, rows: anchors } }]) });
    return { store, client, events, ids };
  }

  it('a fresh schema verifies clean; its heads are the newest row of each chain', async () => {
    const schema = freshSchema();
    const { store, client, events } = await workspace(schema);
    try {
      expect(await verifyExecution(client, store)).toEqual({ problems: [], warnings: [] });
      expect((await events.verify()).problems).toEqual([]);
      const heads = await executionChainHeads(store);
      const ledgerHead = heads.find((h) => h.name === 'agent_execution_ledger:ws-1/c1')!;
      expect(ledgerHead.seq).toBe(3);
      expect(await executionChainHolds(store, ledgerHead)).toBe(true);
      await store.transaction((sql) => appendChained(sql, CHAINS.agent_execution_ledger, ledgerValues('ws-1', 'c1', { step: 's9' })));
      // A chain that grew still holds the row an earlier head named.
      expect(await executionChainHolds(store, ledgerHead)).toBe(true);
      expect(await executionChainHolds(store, { ...ledgerHead, row_hash: '0'.repeat(64) })).toBe(false);
    } finally {
      await events.close();
    }
  });

  it('a trigger dropped, disabled or pointed at another function, and a trigger function replaced, are trigger_missing', async () => {
    const schema = freshSchema();
    const { client } = await openExec(schema);
    expect(await checkExecutionTriggers(client, schema)).toEqual([]);
    await withQuery(pgt.current.url, async (c) => {
      await c.query(`ALTER TABLE ${schema}.agent_execution_ledger DISABLE TRIGGER agent_execution_ledger_no_update`);
      await c.query(`DROP TRIGGER execution_envelopes_update ON ${schema}.execution_envelopes`);
      await c.query(`CREATE FUNCTION ${schema}.kair_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
      await c.query(`DROP TRIGGER change_log_no_update ON ${schema}.change_log`);
      await c.query(`CREATE TRIGGER change_log_no_update BEFORE UPDATE ON ${schema}.change_log FOR EACH ROW EXECUTE FUNCTION ${schema}.kair_noop()`);
      await c.query(`CREATE OR REPLACE FUNCTION ${schema}.kair_simulation_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
    });
    const found = await checkExecutionTriggers(client, schema);
    expect(found.map((f) => f.kind)).toEqual(Array(4).fill('trigger_missing'));
    const text = found.map((f) => f.message).join('\n');
    for (const m of [/agent_execution_ledger_no_update on agent_execution_ledger is disabled/, /execution_envelopes_update on execution_envelopes is missing/, /change_log_no_update is not the one kair created/, /kair_simulation_update, which kair's triggers call, is not the one/]) expect(text).toMatch(m);
  });

  it('tamper: a history row and a ledger row edited by a superuser with the triggers disabled, and an envelope edited, are all reported', async () => {
    const schema = freshSchema();
    const { store, client, events } = await workspace(schema);
    try {
      await withQuery(pgt.current.url, async (c) => {
        await c.query(`ALTER TABLE ${schema}.history_events DISABLE TRIGGER history_events_no_update`);
        await c.query(`UPDATE ${schema}.history_events SET line = replace(line, 'Ship it', 'Ship that') WHERE contract_id = 'c1' AND seq = 1`);
        await c.query(`ALTER TABLE ${schema}.history_events ENABLE TRIGGER history_events_no_update`);
        await c.query(`ALTER TABLE ${schema}.agent_execution_ledger DISABLE TRIGGER agent_execution_ledger_no_update`);
        await c.query(`UPDATE ${schema}.agent_execution_ledger SET outcome = '{"n":99}' WHERE row_id = 2`);
        await c.query(`ALTER TABLE ${schema}.agent_execution_ledger ENABLE TRIGGER agent_execution_ledger_no_update`);
        // A superuser's replica-mode session skips every trigger: the envelope's limits edited.
        await c.query("SET session_replication_role = 'replica'");
        await c.query(`UPDATE ${schema}.execution_envelopes SET max_cost_micros = 999999999 WHERE id = 'env-1'`);
      });
      const ev = await events.verify();
      expect(ev.problems.map((p) => p.kind)).toContain('chain_broken');
      // A trigger left disabled is reported once by the whole verify, though both sides check it.
      await withQuery(pgt.current.url, (c) => c.query(`ALTER TABLE ${schema}.change_log DISABLE TRIGGER change_log_no_delete`));
      const whole = mergeVerify(await events.verify(), await verifyExecution(client, store));
      expect(whole.problems.filter((p) => p.message.includes('change_log_no_delete'))).toEqual([{ kind: 'trigger_missing', message: 'the PostgreSQL trigger change_log_no_delete on change_log is disabled' }]);
      expect(whole.problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['chain_broken', 'ledger_chain_broken', 'row_mismatch']));
      await withQuery(pgt.current.url, (c) => c.query(`ALTER TABLE ${schema}.change_log ENABLE TRIGGER change_log_no_delete`));
      const ex = await verifyExecution(client, store);
      expect(ex.problems).toEqual([
        { contract_id: 'c1', kind: 'ledger_chain_broken', message: expect.stringMatching(/agent_execution_ledger row_id 2 \(chain ws-1\/c1\) does not hash to its row_hash/) },
        { contract_id: 'c1', kind: 'row_mismatch', message: expect.stringMatching(/execution_envelopes row "env-1" differs/) },
        { contract_id: 'c1', kind: 'row_mismatch', message: expect.stringMatching(/agent_execution_ledger row 2 differs/) },
      ]);
      // Walked a page at a time (pages of 1 and 2 rows), the same breaks.
      for (const page of [1, 2]) expect(await store.transaction((sql) => checkExecutionChains(sql, page))).toEqual(ex.problems.filter((p) => p.kind === 'ledger_chain_broken'));
      // The head recorded before the edit no longer holds.
      const h = (await executionChainHeads(store)).find((x) => x.name === 'agent_execution_ledger:ws-1/c1')!;
      expect(h.seq).toBe(3);
      expect(await executionChainHolds(store, { name: h.name, seq: 2, row_hash: sha256Hex('x') })).toBe(false);
    } finally {
      await events.close();
    }
  });
});
