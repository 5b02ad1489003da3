/**
 * The two-backend harness itself. Under `npm run test:pg` (KAIR_TEST_BACKEND=postgres) the
 * workspace helpers make PostgreSQL workspaces: a fresh tenant per workspace on the test file's
 * database, a clone in a database copied from its source's, and the CLI spawned with the URL in
 * its environment. Until the commands run on PostgreSQL, they refuse such a workspace with
 * BACKEND_CONFIG_INVALID: that refusal is what this pass can show today.
 *
 * In the local pass (npm test) one test runs this file under the PostgreSQL pass, so the
 * harness cannot rot while `.ci/run` runs only the local pass.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import { PgEventStore } from '../../src/store/pg/event-store.js';
import { ROOT, TEST_BACKEND, backendEnvOf, cloneWorkspace, configFile, history, isPgWorkspace, kairAsync, kj, makeWorkspace, readIndex, snapshot, tamperHistoryEvent } from '../helpers/cli.js';
import { withQuery } from '../helpers/pg.js';

const tenantRows = async (url: string) => withQuery(url, async (c) => (await c.query<{ tenant_id: string }>('SELECT tenant_id FROM kair.workspaces ORDER BY tenant_id')).rows.map((r) => r.tenant_id));

describe.runIf(TEST_BACKEND === 'postgres')('the PostgreSQL pass: workspaces are tenants of the test server', () => {
  it('makeWorkspace inits a new tenant per workspace; the local config holds only backend and workspace_id', async () => {
    const a = makeWorkspace();
    const b = makeWorkspace();
    const ca = JSON.parse(readFileSync(configFile(a), 'utf8'));
    const cb = JSON.parse(readFileSync(configFile(b), 'utf8'));
    expect(ca).toEqual({ backend: { kind: 'postgres', url_env: 'KAIR_DATABASE_URL', schema: 'kair' }, workspace_id: expect.stringMatching(/^ws_/) });
    expect(cb.workspace_id).not.toBe(ca.workspace_id);
    const tenants = await tenantRows(process.env.KAIR_DATABASE_URL!);
    expect(tenants).toEqual(expect.arrayContaining([ca.workspace_id, cb.workspace_id]));
  });

  it("today's commands refuse the workspace (BACKEND_CONFIG_INVALID) until the backend is wired, sync and async alike", async () => {
    const ws = makeWorkspace();
    for (const args of [['status', 'c1'], ['list'], ['propose', 'Ship it', '--id', 'c1']]) {
      const r = kj(ws, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json.error).toMatchObject({ code: 'BACKEND_CONFIG_INVALID', message: expect.stringMatching(/postgres backend is not available in this version/) });
    }
    const r = await kairAsync(ws, ['status', 'c1', '--json']);
    expect(r.json.error.code).toBe('BACKEND_CONFIG_INVALID');
  });

  it('cloneWorkspace copies the database too: the clone reaches its own copy of the tenant', async () => {
    const ws = makeWorkspace();
    const id = JSON.parse(readFileSync(configFile(ws), 'utf8')).workspace_id as string;
    const clone = cloneWorkspace(ws);
    expect(readFileSync(configFile(clone), 'utf8')).toBe(readFileSync(configFile(ws), 'utf8'));
    // The clone's CLI gets another database, holding the source's tenant.
    const url = backendEnvOf(clone).KAIR_DATABASE_URL!;
    expect(new URL(url).pathname).not.toBe(new URL(process.env.KAIR_DATABASE_URL!).pathname);
    expect(await tenantRows(url)).toContain(id);
    const r = kj(clone, ['init', '--backend', 'postgres']);
    expect(r.json).toMatchObject({ ok: true, created: false, tenant: 'joined', workspace_id: id });
  });
});

describe.runIf(TEST_BACKEND === 'postgres')('the reading and tampering helpers read the database', () => {
  it('history, snapshot and readIndex come from the tenant\'s rows; tamperHistoryEvent edits a row past the triggers and the store finds chain_broken', async () => {
    const ws = makeWorkspace();
    expect(isPgWorkspace(ws)).toBe(true);
    const cfg = JSON.parse(readFileSync(configFile(ws), 'utf8'));
    // Written through the store (the commands do not run on PostgreSQL yet).
    const store = await PgEventStore.open({ env: process.env, urlEnv: 'KAIR_DATABASE_URL', schema: 'kair', tenant: cfg.workspace_id });
    try {
      const meta = { at: '2026-01-30T12:00:00.000Z', actor: 'tester', command: 'propose' };
      await store.create({ id: 'c1', drafts: (i: string) => [decidePropose(i, 'Ship it', [])], meta: meta, dpcText: '{}\n', lockTimeoutMs: 10_000 });
      await store.mutate('c1', { lockTimeoutMs: 5000, meta, decide: async (b) => b.append([decideGrant(b.contract, 'grant', ['local:read'])]) });
      expect(history(ws, 'c1').map((e) => [e.seq, e.type])).toEqual([[1, 'propose'], [2, 'grant']]);
      expect(snapshot(ws, 'c1')).toMatchObject({ id: 'c1', history_seq: 2, controls: { granted: ['local:read'] } });
      expect(readIndex(ws)).toEqual([{ id: 'c1', intent: 'Ship it', state: 'DRAFT', updated_at: meta.at, version: 1 }]);
      expect((await store.verify()).problems).toEqual([]);
      tamperHistoryEvent(ws, 'c1', 2, (e) => (e.actor = 'mallory'));
      expect(history(ws, 'c1')[1]!.actor).toBe('mallory');
      expect((await store.verify()).problems.map((p) => p.kind)).toContain('chain_broken');
    } finally {
      await store.close();
    }
  });
});

describe.runIf(TEST_BACKEND === 'local')('tamperHistoryEvent on the local backend', () => {
  it('edits the line in history.jsonl: verify exits 7', () => {
    const ws = makeWorkspace();
    expect(kj(ws, ['propose', 'Ship it', '--id', 'c1']).code).toBe(0);
    expect(kj(ws, ['grant', 'c1', 'local:read']).code).toBe(0);
    tamperHistoryEvent(ws, 'c1', 2, (e) => (e.actor = 'mallory'));
    expect(history(ws, 'c1')[1]!.actor).toBe('mallory');
    expect(kj(ws, ['verify']).code).toBe(7);
  });
});

describe.runIf(TEST_BACKEND === 'local')('the PostgreSQL pass from the local one', () => {
  it('npm run test:pg runs this file on PostgreSQL and it passes', () => {
    const r = spawnSync(process.execPath, [`${ROOT}/node_modules/vitest/vitest.mjs`, 'run', '--config', 'vitest.pg.config.ts', 'test/e2e/pg-harness.test.ts'], {
      cwd: ROOT,
      env: { ...process.env, KAIR_TEST_BACKEND: 'postgres', KAIR_DATABASE_URL: undefined, FORCE_COLOR: '0', NO_COLOR: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/4 passed/);
    expect(r.stdout).toMatch(/2 skipped/);
  }, 150_000);
});
