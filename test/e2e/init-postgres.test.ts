/**
 * `kair init --backend postgres [--workspace-id ID]` with the built CLI against a real server
 * (test/helpers/pg.ts): the tenant and its config land in the database first, then
 * `.kair/config.json` holding only `{backend, workspace_id}`; every failure (server down, bad
 * URL, wrong password, no schema privilege, unknown workspace id, hostile flags) exits with its
 * code and leaves nothing local; a kill between the database commit and the local write is
 * recovered by the next init of the same folder, which reuses the tenant. And `unlock` on a
 * postgres workspace is USAGE_ERROR.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initConfig } from '../../src/domain/config.js';
import { configFile, kair, kj, makeTempDir, makeWorkspace, ok, removeWorkspaces } from '../helpers/cli.js';
import { urlAs, usePg, withQuery } from '../helpers/pg.js';

afterAll(removeWorkspaces);
const pgt = usePg();
const SCHEMA = 'kair';
const db = (extra: Record<string, string | undefined> = {}) => ({ env: { KAIR_DATABASE_URL: pgt.current.url, ...extra } });
const tenants = () => withQuery(pgt.current.url, async (c) => (await c.query<{ tenant_id: string; config_text: string; init_origin: string | null }>(`SELECT tenant_id, config_text, init_origin FROM ${SCHEMA}.workspaces ORDER BY tenant_id`)).rows);
const PASSWORD = () => new URL(pgt.current.url).password;

function expectNothingLocal(dir: string, out: { stdout: string; stderr: string }) {
  expect(existsSync(join(dir, '.kair')), 'no .kair/ after a failed init').toBe(false);
  expect(out.stdout + out.stderr).not.toContain(PASSWORD());
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('kair init --backend postgres', () => {
  it('creates a tenant with init v1 keys in the database, then a local config holding only backend and workspace_id', async () => {
    const dir = makeTempDir();
    const r = kj(dir, ['init', '--backend', 'postgres'], db());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, created: true, backend: 'postgres', tenant: 'created', schema: 'kair', workspace: '.kair', config: '.kair/config.json' });
    const id = r.json.workspace_id as string;
    expect(id).toMatch(/^ws_[0-9a-f]{16}$/);
    const text = readFileSync(configFile(dir), 'utf8');
    expect(JSON.parse(text)).toEqual({ backend: { kind: 'postgres', url_env: 'KAIR_DATABASE_URL', schema: 'kair' }, workspace_id: id });
    expect(Object.keys(JSON.parse(text))).toEqual(['backend', 'workspace_id']);
    expect(text).not.toContain(PASSWORD());
    expect(text).not.toContain('postgres://');
    expect(readdirSync(join(dir, '.kair'))).toEqual(['config.json']);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD());
    const row = (await tenants()).find((t) => t.tenant_id === id)!;
    const { workspace_id: _w, ...v1 } = initConfig(id);
    expect(JSON.parse(row.config_text)).toEqual(v1);
    expect(row.init_origin).toBeNull(); // confirmed once the local file was written
    // Today's commands still refuse the workspace until the backend is wired; unlock has nothing to unlock.
    const s = kj(dir, ['status', 'c1'], db());
    expect(s.code).toBe(2);
    expect(s.json.error.code).toBe('BACKEND_CONFIG_INVALID');
    const u = kj(dir, ['unlock', 'c1', '--force'], db());
    expect(u.code, u.stdout).toBe(2);
    expect(u.json.error).toMatchObject({ code: 'USAGE_ERROR', message: expect.stringMatching(/unlock has nothing to remove on a PostgreSQL workspace/) });
    expect(u.json.error.details.hint).toMatch(/--lock-timeout/);
    // config get/set of a key kept in the database is refused, not answered from the defaults or written locally.
    for (const args of [['config', 'get', 'approvals.min'], ['config', 'set', 'approvals.min', '2']]) {
      const c = kj(dir, args, db());
      expect(c.code, args.join(' ')).toBe(2);
      expect(c.json.error).toMatchObject({ code: 'BACKEND_CONFIG_INVALID', details: { key: 'approvals.min' } });
    }
    expect(ok(dir, ['config', 'get', 'backend.kind'], db()).value).toBe('postgres');
    expect(readdirSync(join(dir, '.kair'))).toEqual(['config.json']);
  });

  it('--workspace-id joins an existing tenant from another folder; an unknown one is WORKSPACE_NOT_FOUND (exit 4) with nothing written', async () => {
    const first = makeTempDir();
    const id = ok(first, ['init', '--backend', 'postgres'], db()).workspace_id as string;
    const before = await tenants();
    const second = makeTempDir();
    const j = ok(second, ['init', '--backend', 'postgres', '--workspace-id', id], db());
    expect(j).toMatchObject({ created: true, tenant: 'joined', workspace_id: id });
    expect(readFileSync(configFile(second), 'utf8')).toBe(readFileSync(configFile(first), 'utf8'));
    const textJoin = kair(makeTempDir(), ['init', '--backend', 'postgres', '--workspace-id', id], db());
    expect(textJoin.code).toBe(0);
    expect(textJoin.stdout).toContain(`PostgreSQL, workspace ${id}, joined`);
    expect(textJoin.stdout + textJoin.stderr).not.toContain(PASSWORD());
    const third = makeTempDir();
    const miss = kj(third, ['init', '--backend', 'postgres', '--workspace-id', 'ws_0000000000000000'], db());
    expect(miss.code).toBe(4);
    expect(miss.json.error).toMatchObject({ code: 'WORKSPACE_NOT_FOUND', details: { workspace_id: 'ws_0000000000000000', backend: 'postgres' } });
    expect(miss.json.error.details.hint).toMatch(/--workspace-id/);
    expectNothingLocal(third, miss);
    const text = kair(third, ['init', '--backend', 'postgres', '--workspace-id', 'ws_0000000000000000'], db());
    expect(text.code).toBe(4);
    expect(text.stderr).toMatch(/no workspace "ws_0000000000000000"/);
    const hostile = kj(third, ['init', '--backend', 'postgres', '--workspace-id', "x'; DROP TABLE kair.workspaces; --"], db());
    expect(hostile.code).toBe(2);
    expect(hostile.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--workspace-id' } });
    expectNothingLocal(third, hostile);
    expect(await tenants()).toEqual(before);
  });

  it('a server that does not answer is BACKEND_UNAVAILABLE (exit 6, retryable); nothing local', async () => {
    const dir = makeTempDir();
    const url = new URL(pgt.current.url);
    url.port = String(await closedPort());
    const r = kj(dir, ['init', '--backend', 'postgres'], db({ KAIR_DATABASE_URL: url.toString() }));
    expect(r.code, r.stdout).toBe(6);
    expect(r.json.error).toMatchObject({ code: 'BACKEND_UNAVAILABLE', details: { retryable: true } });
    expectNothingLocal(dir, r);
  });

  it('bad URL, missing variable, wrong password, missing database, no schema privilege: BACKEND_CONFIG_INVALID (exit 2), nothing local, the password never printed', async () => {
    const role = `init_${process.pid}`;
    await withQuery(pgt.current.url, async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'r0le-pw'`);
      await c.query(`REVOKE CREATE ON DATABASE ${pgt.current.database} FROM PUBLIC`);
    });
    const wrongPw = new URL(pgt.current.url);
    wrongPw.password = 'not-the-password';
    const noDb = new URL(pgt.current.url);
    noDb.pathname = '/no_such_db';
    const cases: [string, Record<string, string | undefined>, string[]][] = [
      ['unset', { KAIR_DATABASE_URL: undefined }, []],
      ['not a URL', { KAIR_DATABASE_URL: 'host=db user=kair' }, []],
      ['wrong scheme', { KAIR_DATABASE_URL: 'mysql://u:p@127.0.0.1/x' }, []],
      ['wrong password', { KAIR_DATABASE_URL: wrongPw.toString() }, []],
      ['missing database', { KAIR_DATABASE_URL: noDb.toString() }, []],
      ['no privilege to create the schema', { KAIR_DATABASE_URL: urlAs(pgt.current, role, 'r0le-pw') }, ['--schema', 'kair_denied']],
    ];
    for (const [name, env, flags] of cases) {
      const dir = makeTempDir();
      const r = kj(dir, ['init', '--backend', 'postgres', ...flags], db(env));
      expect(r.code, `${name}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.json.error.code, name).toBe('BACKEND_CONFIG_INVALID');
      expectNothingLocal(dir, r);
      expect(r.stdout + r.stderr, name).not.toContain('not-the-password');
      expect(r.stdout + r.stderr, name).not.toContain('r0le-pw');
    }
  });

  it('bad flags are USAGE_ERROR naming the flag before anything is contacted; a URL given as --url-env is never echoed', () => {
    const dir = makeTempDir();
    const cases: [string[], string][] = [
      [['--backend', 'sqlite'], '--backend'],
      [['--workspace-id', 'ws_1'], '--workspace-id'],
      [['--backend', 'local', '--schema', 'kair'], '--schema'],
      [['--backend', 'postgres', '--schema', 'Bad-Schema'], '--schema'],
      [['--backend', 'postgres', '--url-env', 'postgres://u:s3cret@db/kair'], '--url-env'],
      [['--backend', 'postgres', '--url-env', '1BAD'], '--url-env'],
    ];
    for (const [flags, flag] of cases) {
      const r = kj(dir, ['init', ...flags], { env: { KAIR_DATABASE_URL: 'postgres://u:p@127.0.0.1:1/x' } });
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.json.error, flags.join(' ')).toMatchObject({ code: 'USAGE_ERROR', details: { flag } });
      expect(r.stdout + r.stderr).not.toContain('s3cret');
      expect(existsSync(join(dir, '.kair'))).toBe(false);
    }
    // --backend local is the plain init.
    expect(ok(dir, ['init', '--backend', 'local'])).toMatchObject({ created: true, backend: 'local' });
    expect(readdirSync(join(dir, '.kair')).sort()).toEqual(['config.json', 'contracts', 'locks', 'tmp']);
  });

  it('--url-env and --schema are used and recorded (the URL read from the named variable)', async () => {
    const dir = makeTempDir();
    const r = ok(dir, ['init', '--backend', 'postgres', '--url-env', 'TEAM_DB', '--schema', 'team_a'], { env: { TEAM_DB: pgt.current.url, KAIR_DATABASE_URL: undefined } });
    expect(r).toMatchObject({ tenant: 'created', schema: 'team_a' });
    expect(JSON.parse(readFileSync(configFile(dir), 'utf8'))).toEqual({ backend: { kind: 'postgres', url_env: 'TEAM_DB', schema: 'team_a' }, workspace_id: r.workspace_id });
    const rows = await withQuery(pgt.current.url, async (c) => (await c.query('SELECT tenant_id FROM team_a.workspaces')).rows);
    expect(rows).toEqual([{ tenant_id: r.workspace_id }]);
  });

  it('a second init keeps the config: bare without connecting, --backend postgres rechecking the tenant; a different id, schema or --backend local is refused', () => {
    const dir = makeTempDir();
    const id = ok(dir, ['init', '--backend', 'postgres'], db()).workspace_id as string;
    const before = readFileSync(configFile(dir), 'utf8');
    expect(ok(dir, ['init'], { env: { KAIR_DATABASE_URL: undefined } })).toMatchObject({ created: false, backend: 'postgres', workspace_id: id });
    expect(ok(dir, ['init'], { env: { KAIR_DATABASE_URL: undefined } }).tenant).toBeUndefined();
    expect(ok(dir, ['init', '--backend', 'postgres'], db())).toMatchObject({ created: false, tenant: 'joined', workspace_id: id });
    expect(ok(dir, ['init', '--backend', 'postgres', '--workspace-id', id], db())).toMatchObject({ created: false, workspace_id: id });
    for (const [flags, flag] of [
      [['--backend', 'postgres', '--workspace-id', 'ws_other'], '--workspace-id'],
      [['--backend', 'postgres', '--schema', 'other'], '--schema'],
      [['--backend', 'local'], '--backend'],
    ] as const) {
      const r = kj(dir, ['init', ...flags], db());
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag } });
    }
    expect(readFileSync(configFile(dir), 'utf8')).toBe(before);
    expect(readdirSync(join(dir, '.kair'))).toEqual(['config.json']);
  });

  it('--backend postgres in a folder holding a local workspace (or anything but a torn config write in .kair/) is refused, nothing changed', () => {
    const ws = makeWorkspace();
    const before = readFileSync(configFile(ws), 'utf8');
    const r = kj(ws, ['init', '--backend', 'postgres'], db());
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--backend' } });
    expect(readFileSync(configFile(ws), 'utf8')).toBe(before);
    const other = makeTempDir();
    mkdirSync(join(other, '.kair'));
    writeFileSync(join(other, '.kair', 'kair.db'), '');
    expect(kj(other, ['init', '--backend', 'postgres'], db()).code).toBe(2);
    expect(readdirSync(join(other, '.kair'))).toEqual(['kair.db']);
    // What a kill inside the config write leaves (.kair/ and write-file-atomic's temp file) is not a workspace.
    const torn = makeTempDir();
    mkdirSync(join(torn, '.kair'));
    writeFileSync(join(torn, '.kair', 'config.json.3141592653'), '{"backend":');
    expect(ok(torn, ['init', '--backend', 'postgres'], db()).created).toBe(true);
    expect(readdirSync(join(torn, '.kair'))).toEqual(['config.json']);
  });

  it('killed after the tenant committed and before the local write: nothing local; the next init here reuses that tenant, and a later fresh init creates another', async () => {
    const dir = makeTempDir();
    const killed = kj(dir, ['init', '--backend', 'postgres'], db({ KAIR_FAILPOINT: 'init.tenant-committed' }));
    expect(killed.code).toBe(-1); // SIGKILL
    expect(existsSync(join(dir, '.kair', 'config.json'))).toBe(false);
    const pending = (await tenants()).filter((t) => t.init_origin !== null);
    expect(pending).toHaveLength(1);
    const count = (await tenants()).length;
    // Re-run through a symlink to the same folder: the same init.
    const link = join(makeTempDir(), 'link');
    symlinkSync(dir, link);
    const again = ok(link, ['init', '--backend', 'postgres'], db());
    expect(again).toMatchObject({ created: true, tenant: 'reused', workspace_id: pending[0]!.tenant_id });
    expect((await tenants()).length).toBe(count);
    expect((await tenants()).filter((t) => t.init_origin !== null)).toEqual([]);
    expect(existsSync(join(dir, '.kair', 'config.json'))).toBe(true);
    // Another folder gets its own tenant.
    const elsewhere = makeTempDir();
    expect(ok(elsewhere, ['init', '--backend', 'postgres'], db()).tenant).toBe('created');
  });
});
