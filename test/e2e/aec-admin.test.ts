/**
 * SPEC §5, §9.1, §9.2, §9.5: `sim …`, `access …` and `find` through the built CLI.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, cloneWorkspace, kair, kairPath, kj, makeTempDir, makeWorkspace, ok, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const SIMS = join(ROOT, 'fixtures', 'simulations');
const sim = (name: string) => join(SIMS, name);
const FIXTURES = ['send-invoice.json', 'void-invoice.json', 'ping.json', 'append-line.json'];

/** Every file under .kair/ except SQLite's own (kair.db, -wal, -shm come and go under WAL). */
function tree(ws: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.startsWith('kair.db')) out.push(p.slice(ws.length));
    }
  };
  walk(kairPath(ws));
  return out.sort();
}

let registered: string;

beforeAll(() => {
  registered = makeWorkspace();
  for (const f of FIXTURES) ok(registered, ['sim', 'register', '--file', sim(f)]);
});

describe('sim register / list / show / status', () => {
  it('registers a fixture as Draft and prints {simulation}', () => {
    const ws = makeWorkspace();
    const r = ok(ws, ['sim', 'register', '--file', sim('send-invoice.json')]);
    expect(r.simulation).toMatchObject({
      id: 'send-invoice',
      status: 'Draft',
      impact: 'impactful',
      rollback_simulation_id: 'void-invoice',
      required_fields: ['customer', 'amount'],
      executor: { kind: 'builtin', name: 'echo' },
      registered_by: 'tester',
      created_at: '2026-01-30T12:00:00.000Z',
    });
  });

  it('relative --file resolves from the working directory', () => {
    const ws = makeWorkspace();
    const r = kj(ws, ['sim', 'register', '--file', 'fixtures/simulations/ping.json', '--dir', ws], { cwd: ROOT });
    expect(r.code).toBe(0);
    expect(r.json.simulation.id).toBe('ping');
  });

  it('lists every simulation by id, and shows one', () => {
    const list = ok(registered, ['sim', 'list']);
    expect(Object.keys(list).sort()).toEqual(['ok', 'simulations']);
    expect(list.simulations.map((s: { id: string; status: string }) => [s.id, s.status])).toEqual([
      ['append-line', 'Draft'],
      ['ping', 'Draft'],
      ['send-invoice', 'Draft'],
      ['void-invoice', 'Draft'],
    ]);
    const show = ok(registered, ['sim', 'show', 'append-line']);
    expect(show.simulation.executor).toEqual({
      kind: 'command',
      argv: ['node', '-e', "require('fs').appendFileSync(process.argv[1], process.argv[2] + '\\n')", '{file}', '{line}'],
      timeout_ms: 5000,
    });
  });

  it('human output is an aligned table', () => {
    const r = kair(registered, ['sim', 'list']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+IMPACT\s+ACCESS ACTION\s+EXECUTOR\s+TITLE$/);
    expect(lines).toHaveLength(5);
    const col = lines[0]!.indexOf('STATUS');
    for (const l of lines.slice(1)) expect(l.slice(col, col + 5)).toBe('Draft');
  });

  it('activate → Active, deprecate → Deprecated, disable → Disabled', () => {
    const ws = cloneWorkspace(registered);
    expect(ok(ws, ['sim', 'activate', 'ping']).simulation.status).toBe('Active');
    expect(ok(ws, ['sim', 'deprecate', 'ping']).simulation.status).toBe('Deprecated');
    expect(ok(ws, ['sim', 'disable', 'ping']).simulation.status).toBe('Disabled');
    expect(ok(ws, ['sim', 'show', 'ping']).simulation.status).toBe('Disabled');
  });

  it('SIMULATION_EXISTS (exit 3) on a second register of the same id', () => {
    const ws = cloneWorkspace(registered);
    const r = kj(ws, ['sim', 'register', '--file', sim('ping.json')]);
    expect(r.code).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'SIMULATION_EXISTS', details: { simulation_id: 'ping' } });
  });

  it.each([['show'], ['activate'], ['deprecate'], ['disable']])('sim %s of an unknown id → SIMULATION_NOT_FOUND (exit 4)', (cmd) => {
    const r = kj(registered, ['sim', cmd, 'ghost']);
    expect(r.code).toBe(4);
    expect(r.json.error).toMatchObject({ code: 'SIMULATION_NOT_FOUND', details: { simulation_id: 'ghost' } });
  });

  it('SIMULATION_NOT_FOUND also in a workspace without a database, which stays without one', () => {
    const ws = makeWorkspace();
    expect(kj(ws, ['sim', 'activate', 'ghost']).code).toBe(4);
    expect(ok(ws, ['sim', 'list']).simulations).toEqual([]);
    expect(existsSync(kairPath(ws, 'kair.db'))).toBe(false);
  });

  it('an invalid file → SIMULATION_INVALID (exit 2) with every problem, and nothing written', () => {
    const ws = cloneWorkspace(registered);
    const dir = makeTempDir();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ id: 'Bad', title: 'x', examples: ['x'], required_fields: [], impact: 'impactful', access_action: 'a:b', executor: { kind: 'builtin', name: 'noop', extra: 1 } }));
    const r = kj(ws, ['sim', 'register', '--file', bad]);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('SIMULATION_INVALID');
    expect(r.json.error.details.problems.map((p: { path: string }) => p.path)).toEqual(['executor.extra', 'id', 'rollback_simulation_id']);
    expect(ok(ws, ['sim', 'list']).simulations).toHaveLength(4);
  });

  it('unparsable JSON → SIMULATION_INVALID at (root); a missing file or no --file → USAGE_ERROR', () => {
    const dir = makeTempDir();
    writeFileSync(join(dir, 'x.json'), '{not json');
    const r = kj(registered, ['sim', 'register', '--file', join(dir, 'x.json')]);
    expect(r.code).toBe(2);
    expect(r.json.error.details.problems[0].path).toBe('(root)');
    expect(kj(registered, ['sim', 'register', '--file', join(dir, 'missing.json')]).json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--file' } });
    expect(kj(registered, ['sim', 'register']).json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--file' } });
  });

  it('arguments are checked before the workspace: invalid file exits 2 outside one, a valid one exits 4', () => {
    const dir = makeTempDir();
    writeFileSync(join(dir, 'x.json'), '{}');
    expect(kj(dir, ['sim', 'register', '--file', join(dir, 'x.json')]).code).toBe(2);
    const r = kj(dir, ['sim', 'register', '--file', sim('ping.json')]);
    expect(r.code).toBe(4);
    expect(r.json.error.code).toBe('WORKSPACE_NOT_FOUND');
    for (const args of [['sim', 'list'], ['access', 'list'], ['find', 'ping']]) expect(kj(dir, args).json.error.code).toBe('WORKSPACE_NOT_FOUND');
  });

  it('a bare `kair sim` / unknown subcommand is a usage error naming the subcommands', () => {
    const r = kj(registered, ['sim']);
    expect(r.code).toBe(2);
    expect(r.json.error.details.subcommands).toEqual(['register', 'list', 'show', 'activate', 'deprecate', 'disable', 'log']);
    expect(kj(registered, ['access', 'frob']).json.error).toMatchObject({ code: 'USAGE_ERROR', details: { subcommand: 'frob' } });
  });
});

describe('access', () => {
  it('allow / deny / require-ap write rules; list shows {rules: [{actor, action, decision}]}', () => {
    const ws = makeWorkspace();
    expect(ok(ws, ['access', 'list']).rules).toEqual([]);
    expect(ok(ws, ['access', 'allow', 'alice', 'invoice:send'])).toMatchObject({ rule: { actor: 'alice', action: 'invoice:send', decision: 'allow' }, policy_snapshot_version: 1 });
    ok(ws, ['access', 'require-ap', 'carol', 'invoice:send']);
    ok(ws, ['access', 'deny', 'alice', 'invoice:send']);
    const list = ok(ws, ['access', 'list']);
    expect(list.rules).toEqual([
      { actor: 'alice', action: 'invoice:send', decision: 'deny' },
      { actor: 'carol', action: 'invoice:send', decision: 'require-ap' },
    ]);
    expect(list.policy_snapshot_version).toBe(3);
    const text = kair(ws, ['access', 'list']).stdout;
    expect(text).toMatch(/^ACTOR\s+ACTION\s+DECISION\n/);
    expect(text).toContain('carol  invoice:send  require-ap');
  });

  it('a missing argument is a usage error', () => {
    expect(kj(registered, ['access', 'allow', 'alice']).code).toBe(2);
  });
});

describe('find', () => {
  const invoice = ['find', 'send invoice', '--field', 'customer=acme', '--field', 'amount=120'];

  it('refuses a Draft simulation (SIM_FINDER_SIMULATION_INACTIVE) and matches once it is Active; exit 0 each', () => {
    const ws = cloneWorkspace(registered);
    const before = kj(ws, invoice);
    expect(before.code).toBe(0);
    expect(Object.keys(before.json).sort()).toEqual(['ok', 'packet']);
    expect(before.json.packet).toMatchObject({ type: 'RefusePacket', reason_code: 'SIM_FINDER_SIMULATION_INACTIVE', simulation_id: 'send-invoice' });
    ok(ws, ['sim', 'activate', 'send-invoice']);
    const after = kj(ws, invoice);
    expect(after.code).toBe(0);
    expect(after.json.packet).toMatchObject({
      type: 'SimulationMatchPacket',
      reason_code: 'SIM_FINDER_MATCH_OK',
      simulation_id: 'send-invoice',
      score_bp: 10000,
      required_fields: { customer: 'acme', amount: '120' },
    });
    expect(after.json.packet.required_fields_fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(after.json.packet.catalog_snapshot_ref).toMatch(/^catalog:[0-9a-f]{64}$/);
    // a missing required field is a Clarify, still exit 0
    const clarify = kj(ws, ['find', 'send invoice', '--field', 'customer=acme']);
    expect(clarify.code).toBe(0);
    expect(clarify.json.packet).toMatchObject({ type: 'ClarifyPacket', reason_code: 'SIM_FINDER_CLARIFY_MISSING_FIELD', missing_field: 'amount' });
    // …which escalates to a Refuse after two attempts
    expect(kj(ws, ['find', 'send invoice', '--field', 'customer=acme', '--attempt', '3']).json.packet.reason_code).toBe('SIM_FINDER_REFUSE_AMBIGUOUS');
  });

  it('an unrelated utterance → MissingSimulationPacket, exit 0', () => {
    const r = kj(registered, ['find', 'something unrelated']);
    expect(r.code).toBe(0);
    expect(r.json.packet).toMatchObject({ type: 'MissingSimulationPacket', reason_code: 'SIM_FINDER_MISSING_SIMULATION' });
  });

  it('--lang is carried into the packet', () => {
    expect(ok(registered, ['find', 'ping', '--lang', 'FR']).packet.lang).toBe('fr');
  });

  it('writes nothing: the catalog, the policy and every file outside SQLite are unchanged', () => {
    const ws = cloneWorkspace(registered);
    ok(ws, ['sim', 'activate', 'send-invoice']);
    const sims = ok(ws, ['sim', 'list']);
    const rules = ok(ws, ['access', 'list']);
    const files = tree(ws);
    for (const args of [invoice, ['find', 'send invoice'], ['find', 'something unrelated'], ['find', 'void the invoice', '--field', 'customer=x']]) expect(kj(ws, args).code).toBe(0);
    expect(ok(ws, ['sim', 'list'])).toEqual(sims);
    expect(ok(ws, ['access', 'list'])).toEqual(rules);
    expect(tree(ws)).toEqual(files);
    expect(existsSync(kairPath(ws, 'contracts'))).toBe(true);
    expect(readdirSync(kairPath(ws, 'contracts')).filter((f) => f !== 'index.json')).toEqual([]);
  });

  it('does not create a database in a fresh workspace', () => {
    const ws = makeWorkspace();
    expect(ok(ws, ['find', 'send invoice']).packet.type).toBe('MissingSimulationPacket');
    expect(existsSync(kairPath(ws, 'kair.db'))).toBe(false);
  });

  it('--field without = → USAGE_ERROR (exit 2) naming the flag; --attempt 0 too', () => {
    const r = kj(registered, ['find', 'send invoice', '--field', 'customer']);
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--field' } });
    expect(r.json.error.message).toContain('--field');
    expect(kj(registered, ['find', 'x', '--field', '=v']).json.error.details.flag).toBe('--field');
    expect(kj(registered, ['find', 'x', '--attempt', '0']).json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--attempt' } });
  });
});
