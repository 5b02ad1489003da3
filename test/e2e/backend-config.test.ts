/**
 * The `backend` config block on this version: postgres is configurable but its commands do not
 * run on PostgreSQL yet, so a workspace that names it is refused by every command
 * (BACKEND_CONFIG_INVALID, exit 2, nothing read or written) instead of silently using local
 * files; a URL in the config is CONFIG_INVALID. And the local backend never loads `pg`.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, configFile, fixture, kair, kj, makeTempDir, makeWorkspace, ok, readJson, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

/** Every file under .kair/ with its content hash: "nothing written" is this map unchanged. */
function tree(ws: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(ws.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(join(ws, '.kair'));
  return out;
}

function setBackend(ws: string, backend: unknown): void {
  const c = readJson(configFile(ws));
  writeFileSync(configFile(ws), JSON.stringify({ ...c, backend }, null, 2) + '\n');
}

describe('backend.kind postgres on this version', () => {
  it('every command that opens the workspace refuses it: BACKEND_CONFIG_INVALID, exit 2, nothing written', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Ship it', '--id', 'c1']);
    ok(ws, ['plan', 'c1', '--file', fixture('custom-kimi.json')]);
    setBackend(ws, { kind: 'postgres', url_env: 'KAIR_DATABASE_URL', schema: 'kair' });
    const before = tree(ws);
    const env = { env: { KAIR_DATABASE_URL: 'postgres://kair:s3cret@127.0.0.1:1/kair' } };
    for (const args of [['status', 'c1'], ['list'], ['history', 'c1'], ['grant', 'c1', 'local:read'], ['propose', 'Other', '--id', 'c2'], ['verify'], ['head'], ['run', 'c1'], ['sim', 'list'], ['access', 'list']]) {
      const r = kj(ws, args, env);
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.json.error.code, args.join(' ')).toBe('BACKEND_CONFIG_INVALID');
      expect(r.json.error.message).toMatch(/postgres backend is not available in this version/);
      expect(r.json.error.details).toMatchObject({ path: '.kair/config.json', key: 'backend.kind' });
      expect(r.stdout + r.stderr).not.toContain('s3cret');
    }
    const text = kair(ws, ['list'], env);
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/BACKEND_CONFIG_INVALID|postgres backend is not available/);
    expect(text.stderr).toMatch(/backend\.kind/); // the hint says how to go back
    expect(tree(ws)).toEqual(before);
  });

  it('doctor reports it as a failed config check; config set backend.kind local brings the workspace back', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Ship it', '--id', 'c1']);
    setBackend(ws, { kind: 'postgres' });
    const d = kj(ws, ['doctor']);
    expect(d.json.findings.find((f: { check: string }) => f.check === 'config')).toMatchObject({ status: 'fail', message: expect.stringMatching(/postgres backend is not available/) });
    expect(ok(ws, ['config', 'get', 'backend.kind']).value).toBe('postgres');
    ok(ws, ['config', 'set', 'backend.kind', 'local']);
    expect(ok(ws, ['list']).contracts.map((c: { id: string }) => c.id)).toEqual(['c1']);
  });

  it('config set backend.kind postgres is refused at once (BACKEND_CONFIG_INVALID, nothing written); other backend keys can be set', () => {
    const ws = makeWorkspace();
    const before = readFileSync(configFile(ws), 'utf8');
    const r = kj(ws, ['config', 'set', 'backend.kind', 'postgres']);
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ code: 'BACKEND_CONFIG_INVALID', details: { key: 'backend.kind' } });
    expect(readFileSync(configFile(ws), 'utf8')).toBe(before);
    ok(ws, ['config', 'set', 'backend.schema', 'team_a']);
    expect(ok(ws, ['config', 'get', 'backend.schema']).value).toBe('team_a');
    const url = kj(ws, ['config', 'set', 'backend.url_env', 'postgres://kair:s3cret@db/kair']);
    expect(url.code).toBe(2);
    expect(url.json.error.code).toBe('CONFIG_INVALID');
    expect(url.stdout + url.stderr).not.toContain('s3cret');
  });

  it('a URL written into the backend block is CONFIG_INVALID naming the key, and never printed', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Ship it', '--id', 'c1']);
    setBackend(ws, { kind: 'local', url: 'postgres://kair:s3cret@db.example/kair' });
    const r = kj(ws, ['grant', 'c1', 'local:read']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('CONFIG_INVALID');
    expect(r.json.error.details.problems).toEqual([{ path: 'backend.url', message: expect.stringMatching(/never stored in the config/) }]);
    expect(r.stdout + r.stderr).not.toContain('s3cret');
  });

  it('backend.kind local (the default, also when written out) works as before', () => {
    const ws = makeWorkspace();
    setBackend(ws, { kind: 'local', url_env: 'KAIR_DATABASE_URL', schema: 'kair' });
    ok(ws, ['propose', 'Ship it', '--id', 'c1']);
    expect(ok(ws, ['status', 'c1']).contract.state).toBe('DRAFT');
  });
});

describe('the local backend never loads pg', () => {
  it('no bundle carries pg, and status, list and grant require nothing of it', () => {
    const dist = join(dirname(BIN), '..', 'dist');
    for (const f of readdirSync(dist).filter((n) => n.endsWith('.cjs'))) {
      expect(readFileSync(join(dist, f), 'utf8'), f).not.toMatch(/node_modules\/pg(-[a-z]+)?\//);
    }
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Ship it', '--id', 'c1']);
    const dir = makeTempDir('kair-modules-');
    const preload = join(dir, 'requires.cjs');
    // Every module request, bundled or not, as Module._load sees it.
    writeFileSync(
      preload,
      "const M = require('node:module'); const seen = []; const load = M._load; M._load = function (r, ...a) { seen.push(r); return load.call(this, r, ...a); };\n" +
        "process.on('exit', () => require('node:fs').writeFileSync(process.env.REQUIRES_OUT, seen.join('\\n')));\n",
    );
    for (const args of [['status', 'c1'], ['list'], ['grant', 'c1', 'local:read']]) {
      const out = join(dir, `${args[0]}.txt`);
      const r = kj(ws, args, { env: { NODE_OPTIONS: `--require ${preload}`, REQUIRES_OUT: out } });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const requests = readFileSync(out, 'utf8').split('\n');
      expect(requests.length, args[0]).toBeGreaterThan(1); // the hook saw the bundle's requires
      expect(requests.filter((m) => /^pg(-|$)|[/\\]node_modules[/\\]pg/.test(m)), args[0]).toEqual([]);
    }
  });
});
