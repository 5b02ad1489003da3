/**
 * The commands a user expects: unrequire, close, a raised or lowered approvals.min, config
 * get/set (on a valid and an invalid config, admin-only policy keys, the change log and
 * config_drift), access apply (a diff, change-logged per rule, admin-only), and doctor.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, POLICY, tableRows } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { bringAll, cloneWorkspace, configFile, editConfig, history, kair, kj, makeTempDir, makeWorkspace, ok, readJson, removeWorkspaces, snapshot } from '../helpers/cli.js';

afterAll(removeWorkspaces);

let base: string;
beforeAll(async () => {
  base = makeWorkspace();
  await bringAll(base, { draft: 'DRAFT', planned: 'PLANNED', approved: 'APPROVED', awaiting: 'AWAITING_APPROVAL' });
}, 60_000);

const types = (ws: string, id: string) => history(ws, id).map((e) => e.type);

describe('unrequire', () => {
  it('removes required controls, voids approvals, APPROVED → PLANNED, history type unrequire', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'x', '--id', 'c', '--requires', 'local:read,local:write']);
    ok(ws, ['plan', 'c', '--file', join(__dirname, '..', '..', 'fixtures', 'plans', 'custom-kimi.json')]);
    ok(ws, ['grant', 'c', 'local:read', 'local:write']);
    ok(ws, ['request-approval', 'c']);
    ok(ws, ['approve', 'c']);
    const r = kj(ws, ['unrequire', 'c', 'local:write']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, removed: ['local:write'], contract: { state: 'PLANNED', controls: { required: ['local:read'] } } });
    expect(r.json.contract.approvals.every((a: Json) => !a.valid)).toBe(true);
    expect(types(ws, 'c').at(-1)).toBe('unrequire');
  });

  it('keeps DRAFT a DRAFT; a bad control name is exit 2 and writes nothing', () => {
    const ws = cloneWorkspace(base);
    const before = readFileSync(join(ws, '.kair/contracts/draft/history.jsonl'), 'utf8');
    const bad = kj(ws, ['unrequire', 'draft', 'Bad Name']);
    expect({ code: bad.code, err: bad.json.error.code }).toEqual({ code: 2, err: 'INVALID_CONTROL' });
    expect(readFileSync(join(ws, '.kair/contracts/draft/history.jsonl'), 'utf8')).toBe(before);
    expect(kj(ws, ['unrequire', 'draft', 'local:read']).json.contract.state).toBe('DRAFT');
  });
});

describe('close', () => {
  it('closes from DRAFT, voids approvals; a second close exits 0 and records nothing', () => {
    const ws = cloneWorkspace(base);
    const r = kj(ws, ['close', 'approved', 'not needed any more']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, recorded: true, contract: { state: 'CLOSED' } });
    expect(r.json.contract.approvals.every((a: Json) => !a.valid)).toBe(true);
    const n = history(ws, 'approved').length;
    const again = kj(ws, ['close', 'approved', 'again']);
    expect(again.json).toMatchObject({ ok: true, recorded: false });
    expect(history(ws, 'approved')).toHaveLength(n);
    expect(kj(ws, ['close', 'draft', 'abandoned']).json.contract.state).toBe('CLOSED');
    expect(history(ws, 'draft').at(-1)).toMatchObject({ type: 'close', state: 'CLOSED', data: { reason: 'abandoned', from_state: 'DRAFT' } });
  });

  it('CLOSED allows only reads and rewind (which reopens it as a new version)', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['close', 'planned', 'parked']);
    for (const args of [['plan', 'planned', '--file', join(__dirname, '..', '..', 'fixtures', 'plans', 'custom-kimi.json')], ['grant', 'planned', 'local:read'], ['request-approval', 'planned'], ['run', 'planned'], ['unrequire', 'planned', 'local:read']]) {
      const r = kj(ws, args);
      expect({ args, code: r.code, err: r.json.error?.code }).toEqual({ args, code: 3, err: 'INVALID_TRANSITION' });
    }
    expect(kj(ws, ['status', 'planned']).code).toBe(0);
    expect(kj(ws, ['list', '--state', 'CLOSED']).json.contracts.map((c: Json) => c.id)).toEqual(['planned']);
    const rw = kj(ws, ['rewind', 'planned', 'try again']);
    expect(rw.json.contract).toMatchObject({ state: 'REWOUND', version: 2 });
  });

  it('needs a reason (exit 2, nothing written)', () => {
    const ws = cloneWorkspace(base);
    const r = kj(ws, ['close', 'draft', '  ']);
    expect({ code: r.code, err: r.json.error.code, arg: r.json.error.details.argument }).toEqual({ code: 2, err: 'USAGE_ERROR', arg: 'reason' });
    expect(snapshot(ws, 'draft').state).toBe('DRAFT');
  });
});

describe('approvals.min changed after approval', () => {
  it('raised to 2: an APPROVED contract accepts approve by another actor, and run wants 2 until then', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['config', 'set', 'approvals.min', '2']);
    const run = kj(ws, ['run', 'approved']);
    expect({ code: run.code, err: run.json.error.code }).toEqual({ code: 3, err: 'APPROVAL_REQUIRED' });
    expect(run.json.error.details.min).toBe(2);
    const bob = kj(ws, ['approve', 'approved', '--actor', 'bob']);
    expect(bob.code).toBe(0);
    expect(bob.json).toMatchObject({ recorded: true, contract: { state: 'APPROVED' } });
    expect(kj(ws, ['run', 'approved', '--dry-run']).code).toBe(0);
  });

  it('lowered to 1: a repeat approve that finds enough approvals moves AWAITING_APPROVAL → APPROVED', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['config', 'set', 'approvals.min', '2']);
    expect(kj(ws, ['approve', 'awaiting']).json.contract.state).toBe('AWAITING_APPROVAL');
    ok(ws, ['config', 'set', 'approvals.min', '1']);
    const again = kj(ws, ['approve', 'awaiting']);
    expect(again.json).toMatchObject({ ok: true, recorded: true, contract: { state: 'APPROVED' } });
    expect(again.json.contract.approvals.filter((a: Json) => a.valid)).toHaveLength(1);
  });
});

describe('config get / set', () => {
  it('gets dotted keys from the file or the defaults', () => {
    const ws = cloneWorkspace(base);
    expect(kj(ws, ['config', 'get', 'approvals.min']).json).toEqual({ ok: true, key: 'approvals.min', value: 1, source: 'file' });
    expect(kj(ws, ['config', 'get', 'slo.error_rate']).json).toEqual({ ok: true, key: 'slo.error_rate', value: 0.005, source: 'default' });
    const r = kj(ws, ['config', 'get', 'approvals.nope']);
    expect({ code: r.code, err: r.json.error.code }).toEqual({ code: 2, err: 'USAGE_ERROR' });
  });

  it('parses the value as JSON when it parses, else a string; writes atomically and change-logs it with the file sha', () => {
    const ws = cloneWorkspace(base);
    const r = kj(ws, ['config', 'set', 'run.allowed_actors', '["alice","@proposer"]']);
    expect(r.json).toMatchObject({ ok: true, value: ['alice', '@proposer'], previous: null });
    const text = readFileSync(configFile(ws), 'utf8');
    expect(JSON.parse(text).run.allowed_actors).toEqual(['alice', '@proposer']);
    const log = tableRows(ws, 'change_log', "table_name = 'config'");
    expect(log.at(-1)).toMatchObject({ action: 'set', row_sha256: r.json.config_sha256 });
    expect(JSON.parse(log.at(-1).change)).toEqual({ key: 'run.allowed_actors', from: null, to: ['alice', '@proposer'] });
    expect(kj(ws, ['verify']).json.warnings.filter((w: Json) => w.kind === 'config_drift')).toEqual([]);
    ok(ws, ['config', 'set', 'approvals.allowed_signers_file', 'keys/allowed']);
    expect(readJson(configFile(ws)).approvals.allowed_signers_file).toBe('keys/allowed');
  });

  it('refuses an invalid value with every problem, writing nothing', () => {
    const ws = cloneWorkspace(base);
    const before = readFileSync(configFile(ws), 'utf8');
    for (const [key, value] of [['approvals.min', '0'], ['approvals.min', 'two'], ['slo', '{"error_rate": 2, "x": 1}'], ['workspace_id', '"other"']]) {
      const r = kj(ws, ['config', 'set', key!, value!]);
      expect({ key, code: r.code }).toEqual({ key, code: 2 });
      expect(readFileSync(configFile(ws), 'utf8')).toBe(before);
    }
    const slo = kj(ws, ['config', 'set', 'slo', '{"error_rate": 2, "x": 1}']);
    expect(slo.json.error.details.problems.map((p: Json) => p.path).sort()).toEqual(['slo.error_rate', 'slo.x']);
  });

  it('works on an invalid config: get shows the bad value, set fixes it, other commands then work', () => {
    const ws = cloneWorkspace(base);
    editConfig(ws, (c) => {
      c.approvals.min = -1;
    });
    expect(kj(ws, ['status', 'draft']).json.error.code).toBe('CONFIG_INVALID');
    expect(kj(ws, ['config', 'get', 'approvals.min']).json.value).toBe(-1);
    expect(kj(ws, ['config', 'set', 'approvals.min', '1']).code).toBe(0);
    expect(kj(ws, ['status', 'draft']).code).toBe(0);
  });

  it('hostile keys and a FIFO in place of the config are refused cleanly (no hang, nothing written)', () => {
    const ws = cloneWorkspace(base);
    const before = readFileSync(configFile(ws), 'utf8');
    for (const key of ['__proto__.x', 'approvals.constructor', '../x', 'a..b', '']) {
      const r = kj(ws, ['config', 'set', key, '1']);
      expect({ key, code: r.code, err: r.json.error.code }).toEqual({ key, code: 2, err: 'USAGE_ERROR' });
    }
    expect(readFileSync(configFile(ws), 'utf8')).toBe(before);
    rmSync(configFile(ws));
    expect(spawnSync('mkfifo', [configFile(ws)]).status).toBe(0);
    for (const args of [['config', 'get', 'approvals.min'], ['config', 'set', 'approvals.min', '2']]) {
      const r = kj(ws, args);
      expect({ args, code: r.code, err: r.json.error.code }).toEqual({ args, code: 2, err: 'CONFIG_INVALID' });
    }
  });

  it('a kill after the change log, before the file: the old file stays, verify warns config_drift, the next set clears it', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['config', 'set', 'approvals.min', '1']);
    const before = readFileSync(configFile(ws), 'utf8');
    const killed = kj(ws, ['config', 'set', 'approvals.min', '3'], { env: { KAIR_FAILPOINT: 'config.logged' } });
    expect(killed.code).not.toBe(0);
    expect(readFileSync(configFile(ws), 'utf8')).toBe(before);
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.warnings.map((w: Json) => w.kind)).toContain('config_drift');
    expect(kj(ws, ['config', 'get', 'approvals.min']).json.value).toBe(1);
    ok(ws, ['config', 'set', 'approvals.min', '2']);
    expect(kj(ws, ['verify']).json.warnings.map((w: Json) => w.kind)).not.toContain('config_drift');
  });

  it('policy keys are admin-only (NOT_ADMIN, exit 3, nothing written); other keys are not', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['config', 'set', 'policy.admins', '["alice"]']);
    const before = readFileSync(configFile(ws), 'utf8');
    for (const key of ['approvals.min', 'run.allowed_actors', 'policy.admins', 'slo.error_rate']) {
      const r = kj(ws, ['config', 'set', key, key === 'slo.error_rate' ? '0.1' : key === 'approvals.min' ? '2' : '["mallory"]', '--actor', 'mallory']);
      expect({ key, code: r.code, err: r.json.error?.code }).toEqual({ key, code: 3, err: 'NOT_ADMIN' });
    }
    expect(readFileSync(configFile(ws), 'utf8')).toBe(before);
    expect(kj(ws, ['config', 'set', 'approvals.min', '2', '--actor', 'alice']).code).toBe(0);
    expect(kj(ws, ['config', 'set', 'kimi.max_cost_usd_per_contract', '50', '--actor', 'mallory']).code).toBe(0);
  });

  it('a config edited by hand after the last logged set is a config_drift warning in verify', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['config', 'set', 'approvals.min', '1']);
    editConfig(ws, (c) => {
      c.approvals.forbid_self = true;
    });
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.warnings.map((w: Json) => w.kind)).toContain('config_drift');
  });
});

describe('access apply', () => {
  it('applies a policy file, prints the difference, change-logs each rule with the actor; --dry-run writes nothing', () => {
    const ws = makeWorkspace();
    ok(ws, ['access', 'allow', 'zed', 'old:action']);
    const dry = kj(ws, ['access', 'apply', '--file', POLICY, '--dry-run']);
    expect(dry.json).toMatchObject({ ok: true, dry_run: true, removed: [{ actor: 'zed', action: 'old:action', decision: 'allow' }] });
    expect(dry.json.added).toHaveLength(6);
    expect(kj(ws, ['access', 'list']).json.rules).toHaveLength(1);
    const r = kj(ws, ['access', 'apply', '--file', POLICY], { env: ALICE });
    expect(r.json).toMatchObject({ ok: true, dry_run: false, changed: [], unchanged: 0 });
    expect(r.json.added).toHaveLength(6);
    expect(kj(ws, ['access', 'list']).json.rules).toHaveLength(6);
    const log = kj(ws, ['access', 'log']).json.entries;
    const mine = log.filter((e: Json) => e.actor === 'alice');
    expect(mine).toHaveLength(7);
    expect(mine.map((e: Json) => e.action)).toContain('remove');
    // the same file again: nothing to do
    expect(kj(ws, ['access', 'apply', '--file', POLICY]).json).toMatchObject({ added: [], removed: [], changed: [], unchanged: 6 });
    expect(kj(ws, ['verify']).code).toBe(0);
  });

  it('names every problem of a bad file by JSON path (exit 2), accepts $schema', () => {
    const ws = makeWorkspace();
    const f = join(makeTempDir(), 'p.json');
    writeFileSync(f, JSON.stringify({ rules: [{ actor: 'a', action: 'x', decision: 'maybe' }, { actor: 'a', action: 'x', decision: 'allow' }], extra: 1 }));
    const r = kj(ws, ['access', 'apply', '--file', f]);
    expect(r.code).toBe(2);
    expect(r.json.error.details.problems.map((p: Json) => p.path)).toEqual(['extra', 'rules[0].decision', 'rules[1]']);
    writeFileSync(f, JSON.stringify({ $schema: 'x', rules: [] }));
    expect(kj(ws, ['access', 'apply', '--file', f]).code).toBe(0);
  });

  it('is admin-only', () => {
    const ws = makeWorkspace();
    ok(ws, ['config', 'set', 'policy.admins', '["alice"]']);
    const r = kj(ws, ['access', 'apply', '--file', POLICY, '--actor', 'mallory']);
    expect({ code: r.code, err: r.json.error.code }).toEqual({ code: 3, err: 'NOT_ADMIN' });
    expect(kj(ws, ['access', 'list']).json.rules).toEqual([]);
  });
});

describe('doctor', () => {
  it('reports each check with a status and a hint; exit 0 on a healthy workspace', () => {
    const ws = cloneWorkspace(base);
    const r = kj(ws, ['doctor']);
    expect(r.code).toBe(0);
    const checks = Object.fromEntries(r.json.findings.map((f: Json) => [f.check, f.status]));
    expect(checks).toMatchObject({ node: 'pass', sqlite: 'pass', actor: 'pass', workspace: 'pass', config: 'pass', locks: 'pass', verify: 'pass' });
    expect(['pass', 'warn']).toContain(checks.path);
    for (const f of r.json.findings) expect(Object.keys(f).sort()).toEqual(['check', 'hint', 'message', 'status']);
  });

  it('works on an invalid config: DOCTOR_FAILED (exit 3) naming the key and how to fix it', () => {
    const ws = cloneWorkspace(base);
    editConfig(ws, (c) => {
      c.approvals.min = 0;
    });
    const r = kj(ws, ['doctor']);
    expect({ code: r.code, err: r.json.error.code }).toEqual({ code: 3, err: 'DOCTOR_FAILED' });
    expect(r.json.findings.find((f: Json) => f.check === 'config')).toMatchObject({ status: 'fail', hint: expect.stringContaining('kair config set approvals.min') });
    const t = kair(ws, ['doctor']);
    expect(t.stdout + t.stderr).toContain('approvals.min');
  });

  it('flags a side-effecting simulation registered with impact none; runs without a workspace', () => {
    const ws = makeWorkspace();
    const f = join(makeTempDir(), 'w.json');
    writeFileSync(f, JSON.stringify({ id: 'writer', title: 'W', examples: ['write it'], required_fields: [], impact: 'none', access_action: 'w:w', executor: { kind: 'builtin', name: 'write_file' } }));
    const reg = kj(ws, ['sim', 'register', '--file', f]);
    if (reg.code === 0) {
      const r = kj(ws, ['doctor']);
      expect(r.json.findings.find((x: Json) => x.check === 'simulations')).toMatchObject({ status: 'warn', message: expect.stringContaining('writer') });
    }
    const none = kj(makeTempDir(), ['doctor']);
    expect(none.json.findings.find((x: Json) => x.check === 'workspace')).toMatchObject({ status: 'warn', hint: expect.stringContaining('kair init') });
  });
});
