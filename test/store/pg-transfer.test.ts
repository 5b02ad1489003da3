/**
 * Export and import on a real PostgreSQL (test/helpers/pg.ts), through the built CLI (export and
 * import are the commands that open a postgres workspace) and at the store level: the round trip
 * local → PostgreSQL → local → PostgreSQL is byte-identical (every file, every row), verify passes
 * on each side, and the refusals write nothing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractFiles } from '../../src/app/artifacts-out.js';
import { EXEC_TABLES } from '../../src/domain/transfer.js';
import { PgEventStore } from '../../src/store/pg/event-store.js';
import { openPgStorage } from '../../src/store/pg/open.js';
import { PG_ORDER, loadPgDump, openPgSession, readPgDump } from '../../src/store/pg/transfer.js';
import { foldAll, localColumns, readLocalDump } from '../../src/app/transfer.js';
import { resolveConfig } from '../../src/domain/config.js';
import { workspaceAt } from '../../src/store/fs/workspace.js';
import { decidePropose } from '../../src/domain/lifecycle.js';
import { cloneWorkspace, historyFile, kj, makeTempDir, makeWorkspace, ok, readJson, removeWorkspaces } from '../helpers/cli.js';
import type { Json } from '../helpers/cli.js';
import { usePg, withQuery } from '../helpers/pg.js';
import { fileHashes, localRows, recordedFiles, richWorkspace } from '../helpers/transfer.js';

const pgt = usePg();
let rich: string;
let wsId: string;
beforeAll(() => {
  rich = richWorkspace();
  wsId = readJson(join(rich, '.kair', 'config.json')).workspace_id;
}, 120_000);
afterAll(() => removeWorkspaces());

let schemaN = 0;
const freshSchema = () => `x${process.pid}_${++schemaN}`;
const pgEnv = () => ({ env: { KAIR_DATABASE_URL: pgt.current.url } });

/** A workspace folder whose config names PostgreSQL (schema `schema`) with the given workspace_id. */
function pgWorkspace(schema: string, id = wsId): string {
  const ws = makeWorkspace();
  const file = join(ws, '.kair', 'config.json');
  const c = readJson(file);
  writeFileSync(file, JSON.stringify({ ...c, workspace_id: id, backend: { kind: 'postgres', url_env: 'KAIR_DATABASE_URL', schema } }, null, 2) + '\n');
  return ws;
}

/** Every execution row of a tenant, without PostgreSQL's own columns, in the order export reads them. */
async function tenantRows(schema: string): Promise<Record<string, Json[]>> {
  return withQuery(pgt.current.url, async (c) => {
    const out: Record<string, Json[]> = {};
    for (const t of EXEC_TABLES) {
      // In the order the lanes read them (rowid: insertion order), which import must keep.
      const rows = (await c.query(`SELECT * FROM ${schema}.${t} WHERE tenant_id = $1 ORDER BY ${PG_ORDER[t]}`, [wsId])).rows as Json[];
      out[t] = rows.map(({ rowid: _r, ...rest }) => rest);
    }
    for (const t of ['contracts', 'history_events', 'checkpoints', 'plans', 'dpc', 'artifacts', 'contract_index']) {
      out[t] = ((await c.query(`SELECT * FROM ${schema}.${t} WHERE tenant_id = $1`, [wsId])).rows as Json[]).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    }
    return out;
  });
}

const storeOf = (schema: string) => PgEventStore.open({ env: pgEnv().env, urlEnv: 'KAIR_DATABASE_URL', schema, tenant: wsId });

describe('export and import on PostgreSQL', () => {
  it('local → PostgreSQL → local → PostgreSQL → local is byte-identical, and verify passes on each side', async () => {
    const dir = makeTempDir();
    const s1 = freshSchema();
    const s2 = freshSchema();
    const p1 = pgWorkspace(s1);
    const i1 = ok(p1, ['import', '--from', rich], pgEnv());
    expect(i1).toMatchObject({ backend: 'postgres', workspace_id: wsId, contracts: 4 });
    ok(p1, ['export', '--to', join(dir, 'b')], pgEnv());
    const b = join(dir, 'b');
    expect(ok(b, ['verify']).problems).toEqual([]);
    expect(recordedFiles(b)).toEqual(recordedFiles(rich));
    expect(localRows(b)).toEqual(localRows(rich));

    const p2 = pgWorkspace(s2);
    ok(p2, ['import', '--from', b], pgEnv());
    ok(p2, ['export', '--to', join(dir, 'c')], pgEnv());
    const c = join(dir, 'c');
    expect(fileHashes(c)).toEqual(fileHashes(b));
    expect(localRows(c)).toEqual(localRows(b));
    expect(await tenantRows(s2)).toEqual(await tenantRows(s1));

    // The local export of the source itself is the same workspace as the one that went through PostgreSQL.
    ok(rich, ['export', '--to', join(dir, 'a')]);
    expect(fileHashes(join(dir, 'a'))).toEqual(fileHashes(b));

    for (const s of [s1, s2]) {
      const store = await storeOf(s);
      try {
        const v = await store.verify();
        expect(v.problems).toEqual([]);
        expect(v.warnings).toEqual([]);
        // History lines on PostgreSQL are the source's lines.
        expect((await store.history('long')).map((e) => `${e.line}\n`).join('')).toBe(readFileSync(historyFile(rich, 'long'), 'utf8'));
      } finally {
        await store.close();
      }
    }
  });

  it('artifacts --out reads the same files from PostgreSQL as from the local workspace (store level)', async () => {
    const s = freshSchema();
    ok(pgWorkspace(s), ['import', '--from', rich], pgEnv());
    const out = ok(rich, ['artifacts', 'mixed', '--out', makeTempDir()]);
    const store = await storeOf(s);
    try {
      const files = await contractFiles(store, 'mixed');
      const local = Object.fromEntries(out.files.map((f: { path: string; sha256: string }) => [f.path, f.sha256]));
      expect(files.map((f) => f.path)).toEqual(Object.keys(local));
      // Recorded and copied files carry the source's bytes; the snapshot is the key-ordered fold (same state).
      for (const f of files.filter((x) => x.kind !== 'snapshot')) expect(readFileSync(join(rich, f.path), 'utf8'), f.path).toBe(f.text);
      expect(JSON.parse(files[0]!.text)).toEqual(readJson(join(rich, files[0]!.path)));
    } finally {
      await store.close();
    }
  });

  it('a tenant that already has contracts or rows is WORKSPACE_NOT_EMPTY (exit 3), and nothing is added', async () => {
    const s = freshSchema();
    const p = pgWorkspace(s);
    ok(p, ['import', '--from', rich], pgEnv());
    const before = await tenantRows(s);
    const r = kj(p, ['import', '--from', rich], pgEnv());
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('WORKSPACE_NOT_EMPTY');
    expect(r.json.error.details.tables).toContain('contracts');
    expect(await tenantRows(s)).toEqual(before);
  });

  it('two imports into one empty tenant at once (store level): one loads, the other is WORKSPACE_NOT_EMPTY; a read is the whole tenant', async () => {
    const s = freshSchema();
    const dump = readLocalDump(workspaceAt(rich), { workspace_id: wsId }, { timeoutMs: 5000, now: () => '2026-01-30T12:00:00.000Z' });
    const folded = foldAll(dump);
    const o = { env: pgEnv().env, urlEnv: 'KAIR_DATABASE_URL', schema: s };
    const [a, b] = [await openPgSession(o), await openPgSession(o)];
    try {
      const results = await Promise.allSettled([loadPgDump(a, wsId, dump, folded), loadPgDump(b, wsId, dump, folded)]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason.code).toBe('WORKSPACE_NOT_EMPTY');
      const back = await readPgDump(a, wsId, localColumns());
      expect(back.contracts.map((c) => c.id)).toEqual(dump.contracts.map((c) => c.id));
      expect(back.contracts).toEqual(dump.contracts);
      expect(back.rows).toEqual(dump.rows);
    } finally {
      await a.client.end();
      await b.client.end();
    }
  });

  it('a source of another workspace_id is a usage error naming init --workspace-id; a tampered source is exit 7; nothing is written', async () => {
    const s = freshSchema();
    await (await storeOf(s)).close(); // the schema exists, empty
    const other = pgWorkspace(s, 'ws_other');
    const r = kj(other, ['import', '--from', rich], pgEnv());
    expect(r.code).toBe(2);
    expect(r.json.error.details.hint).toMatch(new RegExp(`--workspace-id ${wsId}`));

    const src = cloneWorkspace(rich);
    writeFileSync(historyFile(src, 'long'), readFileSync(historyFile(src, 'long'), 'utf8').replace('ns:p7"', 'ns:p8"'));
    const t = kj(pgWorkspace(s), ['import', '--from', src], pgEnv());
    expect(t.code).toBe(7);
    expect(t.json.error.code).toBe('INTEGRITY_FAILED');
    const rows = await tenantRows(s);
    expect(Object.values(rows).every((x) => x.length === 0)).toBe(true);
  });

  it('killed before its commit, an import into PostgreSQL leaves the tenant empty; the next import succeeds', async () => {
    const s = freshSchema();
    const p = pgWorkspace(s);
    const r = kj(p, ['import', '--from', rich], { env: { ...pgEnv().env, KAIR_FAILPOINT: 'import.pg.inserted' } });
    expect(r.code).not.toBe(0);
    // The server rolls back the dead session's transaction (it may take a moment to notice).
    for (let i = 0; i < 50; i++) {
      const rows = await tenantRows(s);
      if (Object.values(rows).every((x) => x.length === 0)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(Object.values(await tenantRows(s)).every((x) => x.length === 0)).toBe(true);
    expect(ok(p, ['import', '--from', rich], pgEnv()).contracts).toBe(4);
  });

  it('an artifact key with .. in the database is refused by export (exit 7) and nothing is written', async () => {
    const s = freshSchema();
    const p = pgWorkspace(s);
    ok(p, ['import', '--from', rich], pgEnv());
    await withQuery(pgt.current.url, async (c) => {
      // What a hostile or broken database could hold: the CHECK constraint dropped, a key that climbs out.
      await c.query(`ALTER TABLE ${s}.artifacts DROP CONSTRAINT artifacts_path_check`);
      await c.query(`INSERT INTO ${s}.artifacts (tenant_id, path, contract_id, body, sha256) VALUES ($1, '.kair/contracts/mixed/../../../evil.txt', 'mixed', 'x', 'x')`, [wsId]);
    });
    const dir = makeTempDir();
    const r = kj(p, ['export', '--to', dir], pgEnv());
    expect(r.code).toBe(7);
    expect(r.json.error.message).toMatch(/not a plain path/);
    expect(existsSync(join(dir, '.kair'))).toBe(false);
    expect(existsSync(join(dir, '..', 'evil.txt'))).toBe(false);
  });

  it('openPgStorage: the port on the workspace\'s tenant, from the URL the config names; the password is never in an error', async () => {
    const s = freshSchema();
    const ws = pgWorkspace(s);
    const config = resolveConfig(readJson(join(ws, '.kair', 'config.json')));
    const port = await openPgStorage(workspaceAt(ws), config, { KAIR_DATABASE_URL: pgt.current.url });
    try {
      expect(port.kind).toBe('postgres');
      await port.contracts.create({ id: 'c1', drafts: (i: string) => [decidePropose(i, 'Ship it', [])], meta: { at: '2026-01-30T12:00:00.000Z', actor: 'tester', command: 'propose' }, dpcText: '{}\n', lockTimeoutMs: 10_000 });
      expect((await port.contracts.load('c1')).id).toBe('c1');
      expect(await port.liveness!.verdict('c1-run-1')).toBe('dead');
    } finally {
      await port.close();
    }
    // The row is the workspace's tenant's.
    expect((await tenantRows(s)).contracts.map((r) => r.contract_id)).toEqual(['c1']);
    const bad = await openPgStorage(workspaceAt(ws), config, { KAIR_DATABASE_URL: 'postgres://kair:s3cret@127.0.0.1:1/kair' }).catch((e: unknown) => e as { code: string; message: string; details: unknown });
    expect((bad as { code: string }).code).toBe('BACKEND_UNAVAILABLE');
    expect(JSON.stringify(bad) + (bad as { message: string }).message).not.toContain('s3cret');
    const unset = await openPgStorage(workspaceAt(ws), config, {}).catch((e: unknown) => e as { code: string });
    expect((unset as { code: string }).code).toBe('BACKEND_CONFIG_INVALID');
  });

  it('no reachable server: BACKEND_UNAVAILABLE (exit 6), the URL\'s password never printed, nothing written', () => {
    const p = pgWorkspace(freshSchema());
    const dir = makeTempDir();
    const r = kj(p, ['export', '--to', dir], { env: { KAIR_DATABASE_URL: 'postgres://kair:s3cret@127.0.0.1:1/kair' } });
    expect(r.code).toBe(6);
    expect(r.json.error.code).toBe('BACKEND_UNAVAILABLE');
    expect(r.stdout + r.stderr).not.toContain('s3cret');
    expect(existsSync(join(dir, '.kair'))).toBe(false);
  });
});
