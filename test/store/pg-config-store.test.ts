/**
 * Workspaces and their config on PostgreSQL (src/store/pg/config-store.ts) against a real server:
 * create / join / read, the exact text and its sha, the local validation rules on the stored
 * text, compare-and-set and the row lock under concurrent writers, config_drift from the change
 * log, and the table's guards (never deleted, never renamed, sha bound to the text).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/domain/canonical.js';
import { initConfig, resolveConfig, validateConfig } from '../../src/domain/config.js';
import { jsonText } from '../../src/store/fs/atomic.js';
import type { PgClient, PgConnection } from '../../src/store/pg/connect.js';
import type { TenantConfigChange } from '../../src/store/pg/config-store.js';
import { connectPg } from '../../src/store/pg/connect.js';
import {
  confirmTenant,
  createTenant,
  initOrigin,
  joinTenant,
  lastLoggedConfigSha,
  mergedConfigValue,
  newTenantConfigText,
  pendingTenant,
  readTenantConfig,
  resolveTenantConfig,
  setTenantConfigKey,
  tenantConfigDrift,
  tenantConfigProblems,
  updateTenantConfig,
  writeTenantConfig,
} from '../../src/store/pg/config-store.js';
import { PG_MIGRATIONS, migratePg } from '../../src/store/pg/migrations.js';
import { usePg } from '../helpers/pg.js';
import { rejectionOf } from '../helpers/errors.js';

const pgt = usePg();
const AT = '2026-01-30T12:00:00.000Z';
const SCHEMA = `cfg${process.pid}`;
const conns: PgConnection[] = [];

async function conn(): Promise<PgConnection> {
  const c = await connectPg({ env: { KAIR_DATABASE_URL: pgt.current.url }, urlEnv: 'KAIR_DATABASE_URL', schema: SCHEMA });
  conns.push(c);
  return c;
}

let a: PgConnection;
beforeAll(async () => {
  a = await conn();
  await migratePg(a.client, a.target);
});
afterAll(async () => {
  for (const c of conns) await c.client.end().catch(() => undefined);
});

describe('tenants', () => {
  it('migration 5 creates the workspaces table', async () => {
    expect(PG_MIGRATIONS.at(-1)).toMatchObject({ id: 5, name: 'workspaces' });
    const r = await a.client.query(`SELECT to_regclass('${SCHEMA}.workspaces') AS t`);
    expect(r.rows[0].t).not.toBeNull();
  });

  it('a new tenant gets init v1 keys, without workspace_id and backend, as exact text with its sha', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    expect(t.workspace_id).toMatch(/^ws_[0-9a-f]{16}$/);
    const { workspace_id: _w, ...v1 } = initConfig('x');
    expect(JSON.parse(t.text)).toEqual(v1);
    expect(t.text).toBe(jsonText(v1));
    expect(t.text).toBe(newTenantConfigText());
    expect(t.sha256).toBe(sha256Hex(t.text));
    expect(t.version).toBe(1);
    // The local rules, unchanged: valid, and defaults fill the keys init does not write.
    expect(tenantConfigProblems(t.workspace_id, t.text)).toEqual([]);
    const merged = mergedConfigValue({ workspace_id: t.workspace_id, backend: { kind: 'postgres' } }, t.text);
    expect(validateConfig(merged)).toEqual([]);
    expect(resolveConfig(merged)).toMatchObject({ workspace_id: t.workspace_id, backend: { kind: 'postgres', url_env: 'KAIR_DATABASE_URL', schema: 'kair' }, policy: { admins: ['*'] } });
    expect(await readTenantConfig(a.client, a.target, t.workspace_id)).toEqual(t);
  });

  it('join needs an existing tenant: an unknown id is WORKSPACE_NOT_FOUND naming it; a hostile id is USAGE_ERROR', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    expect((await joinTenant(a.client, a.target, t.workspace_id)).sha256).toBe(t.sha256);
    const e = await rejectionOf(joinTenant(a.client, a.target, 'ws_does_not_exist'));
    expect(e.code).toBe('WORKSPACE_NOT_FOUND');
    expect(e.message).toContain('"ws_does_not_exist"');
    expect(e.details).toMatchObject({ workspace_id: 'ws_does_not_exist', backend: 'postgres', schema: SCHEMA, hint: expect.stringContaining('--workspace-id') });
    for (const bad of ["x'; DROP TABLE workspaces; --", '', '../x', 'a b', 'x'.repeat(200)]) {
      const u = await rejectionOf(joinTenant(a.client, a.target, bad));
      expect(u.code, bad).toBe('USAGE_ERROR');
      expect(u.details.flag).toBe('--workspace-id');
    }
  });

  it('creating an id in use is refused and changes nothing', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice', workspaceId: 'team-a' });
    const e = await rejectionOf(createTenant(a.client, a.target, { at: AT, actor: 'bob', workspaceId: 'team-a', text: '{}\n' }));
    expect(e.code).toBe('USAGE_ERROR');
    expect(await readTenantConfig(a.client, a.target, 'team-a')).toEqual(t);
  });

  it('an init that never confirmed is found by its origin and reused; once confirmed it is not', async () => {
    const origin = initOrigin('host-1', '/work/repo-x');
    expect(await pendingTenant(a.client, a.target, origin)).toBeNull();
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice', origin });
    expect((await pendingTenant(a.client, a.target, origin))?.workspace_id).toBe(t.workspace_id);
    expect(await pendingTenant(a.client, a.target, initOrigin('host-2', '/work/repo-x'))).toBeNull();
    await confirmTenant(a.client, a.target, t.workspace_id);
    expect(await pendingTenant(a.client, a.target, origin)).toBeNull();
  });

  it('a workspace row is never deleted or renamed, and its sha cannot disagree with its text', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const s = `${SCHEMA}.workspaces`;
    await expect(a.client.query(`DELETE FROM ${s} WHERE tenant_id = $1`, [t.workspace_id])).rejects.toThrow(/never deleted/);
    await expect(a.client.query(`UPDATE ${s} SET tenant_id = 'other' WHERE tenant_id = $1`, [t.workspace_id])).rejects.toThrow(/never deleted or renamed/);
    await expect(a.client.query(`TRUNCATE ${s}`)).rejects.toThrow(/append-only/);
    await expect(a.client.query(`UPDATE ${s} SET config_text = '{"approvals":{"min":9}}' WHERE tenant_id = $1`, [t.workspace_id])).rejects.toThrow(/check constraint/);
    await expect(a.client.query(`UPDATE ${s} SET config_text = '[1]', config_sha256 = encode(sha256(convert_to('[1]', 'UTF8')), 'hex') WHERE tenant_id = $1`, [t.workspace_id])).rejects.toThrow(/check constraint/);
    expect(await readTenantConfig(a.client, a.target, t.workspace_id)).toEqual(t);
  });
});

describe('config writes', () => {
  const withMin = (text: string, min: number) => {
    const v = JSON.parse(text) as { approvals: { min: number } };
    v.approvals.min = min;
    return jsonText(v);
  };

  it('compare-and-set: a writer that read an older sha gets CONCURRENT_WRITE and the other write stays', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const first = await writeTenantConfig(a.client, a.target, t.workspace_id, { expectSha: t.sha256, text: withMin(t.text, 2), at: AT });
    expect(first.version).toBe(2);
    const stale = await rejectionOf(writeTenantConfig(a.client, a.target, t.workspace_id, { expectSha: t.sha256, text: withMin(t.text, 3), at: AT }));
    expect(stale.code).toBe('CONCURRENT_WRITE');
    expect(JSON.parse((await readTenantConfig(a.client, a.target, t.workspace_id)).text).approvals.min).toBe(2);
    expect((await rejectionOf(writeTenantConfig(a.client, a.target, 'ws_nobody', { expectSha: t.sha256, text: '{}', at: AT }))).code).toBe('WORKSPACE_NOT_FOUND');
    expect((await rejectionOf(writeTenantConfig(a.client, a.target, t.workspace_id, { expectSha: first.sha256, text: '[]', at: AT }))).code).toBe('CONFIG_INVALID');
  });

  it('8 sessions each adding an admin under the row lock: no update is lost', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const sessions = await Promise.all(Array.from({ length: 8 }, () => conn()));
    await Promise.all(
      sessions.map((s, i) =>
        updateTenantConfig(s.client, s.target, t.workspace_id, { at: AT, lockTimeoutMs: 10_000 }, async (cur) => {
          const v = JSON.parse(cur.text) as { policy?: { admins: string[] } };
          // Widen the race window: every session reads before any commits, without the lock.
          await new Promise((r) => setTimeout(r, 20));
          v.policy = { admins: [...(v.policy?.admins ?? []), `admin${i}`] };
          return jsonText(v);
        }),
      ),
    );
    const end = await readTenantConfig(a.client, a.target, t.workspace_id);
    expect((JSON.parse(end.text) as { policy: { admins: string[] } }).policy.admins.sort()).toEqual(Array.from({ length: 8 }, (_, i) => `admin${i}`));
    expect(end.version).toBe(9);
  });

  it('the change-log row written in the same transaction commits with the text, or neither does; config_drift compares the shas', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const log = async (tx: PgConnection['client'], sha: string, id: number) =>
      tx.query(
        `INSERT INTO ${SCHEMA}.change_log (tenant_id, id, table_name, row_key, action, actor, changed_at, change, row_sha256, prev_hash, row_hash) VALUES ($1, $2, 'config', '{"file":"config.json"}', 'set', 'alice', $3, '{}', $4, $5, $5)`,
        [t.workspace_id, id, AT, sha, '0'.repeat(64)],
      );
    expect(await tenantConfigDrift(a.client, a.target, t.workspace_id)).toBeNull();
    const next = withMin(t.text, 2);
    await updateTenantConfig(a.client, a.target, t.workspace_id, { at: AT, lockTimeoutMs: 1000 }, async (_c, tx) => {
      await log(tx, sha256Hex(next), 1);
      return next;
    });
    expect(await lastLoggedConfigSha(a.client, a.target, t.workspace_id)).toBe(sha256Hex(next));
    expect(await tenantConfigDrift(a.client, a.target, t.workspace_id)).toBeNull();
    // A failure after the log row rolls both back.
    await expect(
      updateTenantConfig(a.client, a.target, t.workspace_id, { at: AT, lockTimeoutMs: 1000 }, async (_c, tx) => {
        await log(tx, sha256Hex(withMin(t.text, 3)), 2);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await lastLoggedConfigSha(a.client, a.target, t.workspace_id)).toBe(sha256Hex(next));
    // An edit by SQL (text and sha together, past the CHECK) is config_drift.
    const edited = withMin(t.text, 7);
    await a.client.query(`UPDATE ${SCHEMA}.workspaces SET config_text = $2, config_sha256 = $3 WHERE tenant_id = $1`, [t.workspace_id, edited, sha256Hex(edited)]);
    expect(await tenantConfigDrift(a.client, a.target, t.workspace_id)).toMatch(/differs from the config the change log last recorded/);
  });

  it('a writer held by the row lock past its lock timeout gets LOCK_BUSY-mappable 55P03 and writes nothing', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const holder = await conn();
    const other = await conn();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const first = updateTenantConfig(holder.client, holder.target, t.workspace_id, { at: AT, lockTimeoutMs: 10_000 }, async () => {
      locked();
      await held;
      return null;
    });
    await isLocked;
    const e = await rejectionOf(updateTenantConfig(other.client, other.target, t.workspace_id, { at: AT, lockTimeoutMs: 50 }, async () => withMin(t.text, 5)));
    expect((e as unknown as { code: string }).code).toBe('55P03');
    release();
    await first;
    expect((await readTenantConfig(a.client, a.target, t.workspace_id)).sha256).toBe(t.sha256);
  });

  it('resolveTenantConfig: the local block with the stored keys and the defaults; an invalid stored config is CONFIG_INVALID listing every problem', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const local = { workspace_id: t.workspace_id, backend: { kind: 'postgres', url_env: 'KAIR_DATABASE_URL', schema: SCHEMA } };
    const cfg = resolveTenantConfig(local, t);
    expect(cfg).toMatchObject({ workspace_id: t.workspace_id, backend: local.backend, approvals: { min: 1, require_signed: false }, policy: { admins: ['*'] } });
    const bad = { ...t, text: '{"approvals":{"min":0},"backend":{"kind":"local"},"nope":1}' };
    const e = await rejectionOf(Promise.resolve().then(() => resolveTenantConfig(local, bad)));
    expect(e.code).toBe('CONFIG_INVALID');
    expect((e.details.problems as { path: string }[]).map((p) => p.path)).toEqual(['backend', 'nope', 'approvals.min']);
  });

  it('stored text with a local-only key or an invalid value is reported with the local paths', () => {
    expect(tenantConfigProblems('ws_1', '{"backend":{"kind":"local"},"approvals":{"min":0}}')).toEqual([
      { path: 'backend', message: 'belongs in .kair/config.json, not in the database' },
      { path: 'approvals.min', message: 'expected a positive integer' },
    ]);
    expect(tenantConfigProblems('ws_1', 'nope')).toEqual([{ path: '(root)', message: 'the config stored in the database is not JSON' }]);
  });
});

describe('config set on a tenant (setTenantConfigKey)', () => {
  /** A change-log row as the caller would append it, on the transaction it is given. */
  const logInto = (tenant: string, seen: TenantConfigChange[]) => async (tx: PgClient, c: TenantConfigChange) => {
    seen.push(c);
    const n = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.change_log WHERE tenant_id = $1`, [tenant]);
    await tx.query(
      `INSERT INTO ${SCHEMA}.change_log (tenant_id, id, table_name, row_key, action, actor, changed_at, change, row_sha256, prev_hash, row_hash) VALUES ($1, $2, 'config', '{"file":"config.json"}', 'set', $3, $4, $5, $6, $7, $7)`,
      [tenant, n.rows[0]!.n + 1, c.actor, c.at, JSON.stringify({ key: c.key, from: c.from, to: c.to }), c.sha256, '0'.repeat(64)],
    );
  };
  const set = (tenant: string, key: string, value: unknown, actor: string, seen: TenantConfigChange[] = []) =>
    setTenantConfigKey(a.client, a.target, tenant, { key, value, actor, at: AT, lockTimeoutMs: 5000 }, logInto(tenant, seen));

  it('sets a key with the local rules; the logged sha is the stored one, so there is no drift', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const seen: TenantConfigChange[] = [];
    const r = await set(t.workspace_id, 'approvals.min', 2, 'alice', seen);
    expect(r).toMatchObject({ key: 'approvals.min', value: 2, previous: 1, problems: [] });
    const stored = await readTenantConfig(a.client, a.target, t.workspace_id);
    expect(JSON.parse(stored.text).approvals).toEqual({ min: 2, forbid_self: false });
    expect(r.config_sha256).toBe(stored.sha256);
    expect(seen).toEqual([{ key: 'approvals.min', from: 1, to: 2, actor: 'alice', at: AT, sha256: stored.sha256 }]);
    expect(await tenantConfigDrift(a.client, a.target, t.workspace_id)).toBeNull();
    // A key init does not write takes its default as `previous` = null.
    expect((await set(t.workspace_id, 'slo.error_rate', 0.01, 'alice')).previous).toBeNull();
  });

  it('NOT_ADMIN and CONFIG_INVALID write nothing, neither the text nor the log row; backend and workspace_id are not in the database', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    await set(t.workspace_id, 'policy.admins', ['alice'], 'alice');
    const before = await readTenantConfig(a.client, a.target, t.workspace_id);
    const logged = await lastLoggedConfigSha(a.client, a.target, t.workspace_id);
    expect((await rejectionOf(set(t.workspace_id, 'approvals.min', 3, 'mallory'))).code).toBe('NOT_ADMIN');
    const bad = await rejectionOf(set(t.workspace_id, 'approvals.min', 0, 'alice'));
    expect(bad.code).toBe('CONFIG_INVALID');
    expect(bad.details.problems).toEqual([{ path: 'approvals.min', message: 'expected a positive integer' }]);
    expect((await rejectionOf(set(t.workspace_id, 'controls.nope', 1, 'alice'))).code).toBe('CONFIG_INVALID');
    for (const key of ['backend.kind', 'workspace_id']) expect((await rejectionOf(set(t.workspace_id, key, 'x', 'alice'))).code).toBe('USAGE_ERROR');
    // Non-admin keys need no admin.
    await set(t.workspace_id, 'kimi.max_cost_usd_per_contract', 50, 'mallory');
    expect((await readTenantConfig(a.client, a.target, t.workspace_id)).version).toBe(before.version + 1);
    expect(await lastLoggedConfigSha(a.client, a.target, t.workspace_id)).not.toBe(logged);
    expect(await tenantConfigDrift(a.client, a.target, t.workspace_id)).toBeNull();
  });

  it('8 sessions setting 8 keys at once: every change and every log row lands, the last row names the final text', async () => {
    const t = await createTenant(a.client, a.target, { at: AT, actor: 'alice' });
    const sessions = await Promise.all(Array.from({ length: 8 }, () => conn()));
    const keys = ['approvals.min', 'approvals.forbid_self', 'kimi.max_cost_usd_per_contract', 'slo.error_rate', 'slo.dispatch_p95_ms', 'run.allowed_actors', 'planner.max_tokens', 'kimi.defaults.maxAgents'];
    const values = [3, true, 42, 0.1, 900, ['alice'], 1000, 2];
    await Promise.all(sessions.map((s, i) => setTenantConfigKey(s.client, s.target, t.workspace_id, { key: keys[i]!, value: values[i], actor: 'alice', at: AT, lockTimeoutMs: 10_000 }, logInto(t.workspace_id, []))));
    const end = JSON.parse((await readTenantConfig(a.client, a.target, t.workspace_id)).text);
    keys.forEach((k, i) => expect(k.split('.').reduce((v, p) => v[p], end), k).toEqual(values[i]));
    const rows = await a.client.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.change_log WHERE tenant_id = $1`, [t.workspace_id]);
    expect(rows.rows[0].n).toBe(8);
    expect(await tenantConfigDrift(a.client, a.target, t.workspace_id)).toBeNull();
  });
});
