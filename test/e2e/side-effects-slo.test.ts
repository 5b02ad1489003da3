/**
 * Side effects are declared (`impact: "side_effecting"`), and the SLO gate (`aec stats --check`,
 * `aec waiver add`, whole-dispatch latency). Through the built CLI in temp workspaces; the
 * "registered before" simulation is written by the catalog repository in-process, as an older
 * kair (which took `impact: "none"` for any executor) wrote it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { catalogRepo } from '../../src/lanes/aec/catalog.js';
import { openDb } from '../../src/store/sqlite/db.js';
import { approveContract, ledgerRows, registerSimulation, simPlan, tableRows } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { BIN, NOW, ROOT, baseEnv, configFile, editConfig, kair, kairPath, kj, makeTempDir, makeWorkspace, ok, readJson, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const asAlice = { env: { KAIR_ACTOR: 'alice' } };
const writeDef = (impact: string) => ({ id: 'drop', title: 'Write a file', examples: ['write a file'], required_fields: ['path', 'content'], impact, access_action: 'file:write', executor: { kind: 'builtin', name: 'write_file' } });

function register(ws: string, def: Json) {
  const f = join(makeTempDir('kair-sim-'), 'sim.json');
  writeFileSync(f, JSON.stringify(def));
  return kj(ws, ['sim', 'register', '--file', f]);
}

describe('side effects are declared', () => {
  it.each([
    ['write_file', writeDef('none')],
    ['command', { ...writeDef('none'), id: 'cmd', executor: { kind: 'command', argv: ['true'], timeout_ms: 1000 } }],
  ])('a %s simulation with impact "none" is refused at register (SIMULATION_INVALID naming side_effecting), nothing written', (_kind, def) => {
    const ws = makeWorkspace();
    const r = register(ws, def);
    expect(r.code, r.stdout).toBe(2);
    expect(r.json.error.code).toBe('SIMULATION_INVALID');
    expect(r.json.error.message).toContain('side_effecting');
    expect(r.json.error.details.hint).toContain('side_effecting');
    expect(r.json.error.details.problems).toEqual([{ path: 'impact', message: expect.stringContaining('"side_effecting"') }]);
    expect(existsSync(kairPath(ws, 'kair.db'))).toBe(false);
  });

  it('side_effecting needs no rollback; its step pauses for confirmation and runs once confirmed', () => {
    const ws = makeWorkspace();
    registerSimulation(ws, writeDef('side_effecting'), { allow: 'alice' });
    approveContract(ws, 'w', simPlan([{ id: 'write', utterance: 'write a file', fields: { path: 'a.txt', content: 'hello' } }]));
    const out = kairPath(ws, 'outbox', 'a.txt');
    const run = kj(ws, ['run', 'w'], asAlice);
    expect(run.code, run.stdout + run.stderr).toBe(3);
    expect(run.json).toMatchObject({ state: 'PAUSED', error: { code: 'AEC_CONFIRM_REQUIRED' } });
    expect(run.json.error.message).toContain('side_effecting');
    expect(existsSync(out)).toBe(false);
    const resumed = kj(ws, ['resume', 'w', '--confirm', 'yes'], asAlice);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('hello');
  });

  it('--confirm answers one confirmation; --confirm-all answers every one of the invocation; both at once is USAGE_ERROR', () => {
    const ws = makeWorkspace();
    registerSimulation(ws, writeDef('side_effecting'), { allow: 'alice' });
    const plan = simPlan([
      { id: 'one', utterance: 'write a file', fields: { path: '1.txt', content: '1' } },
      { id: 'two', utterance: 'write a file', fields: { path: '2.txt', content: '2' } },
    ]);
    approveContract(ws, 'two', plan);
    approveContract(ws, 'both', plan);
    const once = kj(ws, ['run', 'two', '--confirm', 'yes'], asAlice);
    expect(once.code).toBe(3);
    expect(once.json.steps.map((x: Json) => x.status)).toEqual(['COMPLETED', 'PAUSED']);
    expect(kj(ws, ['run', 'both', '--confirm', 'yes', '--confirm-all', 'yes'], asAlice).json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flags: ['--confirm', '--confirm-all'] } });
    const all = kj(ws, ['run', 'both', '--confirm-all', 'yes'], asAlice);
    expect(all.code, all.stdout + all.stderr).toBe(0);
    expect(all.json.steps.map((x: Json) => x.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(tableRows(ws, 'agent_execution_confirmation_ledger', "correlation_id = 'both:v1'").map((r: Json) => r.result)).toEqual(['affirmative', 'affirmative']);
  });

  it('a write_file simulation registered with impact "none" before side_effecting existed still needs confirmation at dispatch; aec replay agrees', () => {
    const ws = makeWorkspace();
    const tenant = readJson(configFile(ws)).workspace_id as string;
    const db = openDb(kairPath(ws, 'kair.db'));
    try {
      // What an older kair wrote: the repository takes the definition as validated then.
      catalogRepo(db).registerSimulation(writeDef('none') as never, { actor: 'tester', now: NOW, tenant });
      catalogRepo(db).setStatus('drop', 'Active', NOW, { actor: 'tester', tenant });
    } finally {
      db.close();
    }
    ok(ws, ['access', 'allow', 'alice', 'file:write']);
    expect(kj(ws, ['verify']).code).toBe(0);
    approveContract(ws, 'old', simPlan([{ id: 'write', utterance: 'write a file', fields: { path: 'b.txt', content: 'x' } }]));
    const out = kairPath(ws, 'outbox', 'b.txt');
    const run = kj(ws, ['run', 'old'], asAlice);
    expect(run.code, run.stdout + run.stderr).toBe(3);
    expect(run.json.error.code).toBe('AEC_CONFIRM_REQUIRED');
    expect(existsSync(out)).toBe(false);
    expect(ok(ws, ['resume', 'old', '--confirm', 'yes'], asAlice).state).toBe('COMPLETED');
    expect(existsSync(out)).toBe(true);
    expect(kj(ws, ['aec', 'replay', 'old-run-1']).code).toBe(0);
  });
});

/** A workspace where alice ran one contract whose only step failed in the executor (error rate 1). */
function failedDispatchWorkspace(): string {
  const ws = makeWorkspace();
  registerSimulation(ws, { id: 'boom', title: 'Boom', examples: ['make it fail'], required_fields: [], impact: 'none', access_action: 'test:boom', executor: { kind: 'builtin', name: 'fail' } }, { allow: 'alice' });
  approveContract(ws, 'f', simPlan([{ id: 'boom', utterance: 'make it fail' }]));
  expect(kj(ws, ['run', 'f'], asAlice).code).toBe(5);
  return ws;
}

const at = (time: string) => ({ env: { KAIR_NOW: time } });

describe('the SLO gate: aec stats --check', () => {
  it('an empty window passes with a no_data warning', () => {
    const ws = makeWorkspace();
    const r = kj(ws, ['aec', 'stats', '--check']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toMatchObject({ ok: true, window: '24h', breaches: [], waiver: null, warnings: [{ kind: 'no_data' }] });
  });

  it('a breach exits 3 SLO_BREACHED naming it; the window, a waiver by an admin (change-logged) and its expiry decide', () => {
    const ws = failedDispatchWorkspace();
    const r = kj(ws, ['aec', 'stats', '--check']);
    expect(r.code, r.stdout).toBe(3);
    expect(r.json).toMatchObject({ ok: false, error: { code: 'SLO_BREACHED' }, waiver: null, breaches: [{ metric: 'error_rate', value: 1, limit: 0.005 }] });
    expect(r.json.error.message).toContain('error_rate 1 > 0.005');
    const text = kair(ws, ['aec', 'stats', '--check']);
    expect(text.code).toBe(3);
    expect(text.stderr).toContain('error_rate 1 > 0.005');

    // Two days later the failure is outside a 24h window, inside a 3d one.
    expect(kj(ws, ['aec', 'stats', '--check', '--window', '24h'], at('2026-02-01T12:00:00Z')).json.warnings[0].kind).toBe('no_data');
    expect(kj(ws, ['aec', 'stats', '--check', '--window', '3d'], at('2026-02-01T12:00:00Z')).code).toBe(3);

    // A p95 limit of 0 ms is breached by any dispatch.
    editConfig(ws, (c) => (c.slo = { dispatch_p95_ms: 0 }));
    expect(kj(ws, ['aec', 'stats', '--check']).json.breaches.map((b: Json) => b.metric)).toEqual(['dispatch_p95_ms', 'error_rate']);

    const w = kj(ws, ['aec', 'waiver', 'add', '--until', '2026-01-31T00:00:00Z', '--reason', 'provider incident', '--by', 'root']);
    expect(w.code, w.stdout).toBe(0);
    expect(w.json.waiver).toEqual({ id: 'waiver-1', until: '2026-01-31T00:00:00.000Z', reason: 'provider incident', created_at: NOW, created_by: 'root' });
    const waived = kj(ws, ['aec', 'stats', '--check']);
    expect(waived.code, waived.stdout).toBe(0);
    expect(waived.json).toMatchObject({ ok: true, waiver: { id: 'waiver-1', created_by: 'root' }, warnings: [{ kind: 'waived' }] });
    expect(waived.json.breaches).toHaveLength(2);
    expect(tableRows(ws, 'change_log', "table_name = 'slo_waivers'").map((e: Json) => [e.action, e.actor, e.changed_at, JSON.parse(e.row_key)])).toEqual([['waive', 'root', NOW, { id: 'waiver-1' }]]);

    // Expired: the breach counts again.
    const later = kj(ws, ['aec', 'stats', '--check'], at('2026-01-31T06:00:00Z'));
    expect(later.code).toBe(3);
    expect(later.json.waiver).toBeNull();
    expect(ok(ws, ['aec', 'waiver', 'list'], at('2026-01-31T06:00:00Z')).waivers).toMatchObject([{ id: 'waiver-1', active: false, logged: true }]);
    expect(kj(ws, ['verify']).code).toBe(0);
  });

  it('a waiver written into the table by hand is not honoured and is a verify problem', () => {
    const ws = failedDispatchWorkspace();
    const db = new Database(kairPath(ws, 'kair.db'));
    db.prepare("INSERT INTO slo_waivers (id, tenant_id, until, reason, created_at, created_by) VALUES ('waiver-1', 'x', '2027-01-01T00:00:00.000Z', 'sneaky', ?, 'mallory')").run(NOW);
    db.close();
    const r = kj(ws, ['aec', 'stats', '--check']);
    expect(r.code).toBe(3);
    expect(r.json.warnings.map((w: Json) => w.kind)).toContain('waiver_unlogged');
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(7);
    expect(v.json.problems.map((p: Json) => p.kind)).toContain('row_mismatch');
  });

  it.each([
    [['--until', '2026-01-29T00:00:00Z', '--reason', 'r'], '--until'],
    [['--until', 'tomorrow', '--reason', 'r'], '--until'],
    [['--until', '2026-01-31T00:00:00', '--reason', 'r'], '--until'],
    [['--reason', 'r'], '--until'],
    [['--until', '2026-01-31T00:00:00Z'], '--reason'],
    [['--until', '2026-01-31T00:00:00Z', '--reason', 'a\u001b[2Jb'], '--reason'],
  ])('waiver add %j is USAGE_ERROR naming %s, nothing written', (args, flag) => {
    const ws = makeWorkspace();
    const r = kj(ws, ['aec', 'waiver', 'add', ...args]);
    expect(r.code, r.stdout).toBe(2);
    expect(r.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag } });
    expect(existsSync(kairPath(ws, 'kair.db'))).toBe(false);
  });

  it.each(['0h', '24', '1w', '-1d', '99999999999d'])('--window %s is USAGE_ERROR naming --window', (win) => {
    const ws = makeWorkspace();
    const r = kj(ws, ['aec', 'stats', '--check', `--window=${win}`]);
    expect(r.code).toBe(2);
    expect(r.json.error.details.flag).toBe('--window');
  });

  it('latency runs from the claim to the outcome: a dispatch stalled after its claim counts the stall (the executor alone is ~0 ms)', async () => {
    const ws = makeWorkspace();
    registerSimulation(ws, { id: 'ping', title: 'Ping', examples: ['ping'], required_fields: [], impact: 'none', access_action: 'system:ping', executor: { kind: 'builtin', name: 'noop' } }, { allow: 'alice' });
    approveContract(ws, 'p', simPlan([{ id: 'ping', utterance: 'ping' }]));
    const child = spawn(process.execPath, [BIN, 'run', 'p', '--json'], { cwd: ws, env: baseEnv({ KAIR_ACTOR: 'alice', KAIR_STOPPOINT: 'aec.claimed' }), stdio: 'ignore' });
    const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    try {
      const deadline = Date.now() + 20_000;
      while (procState(child.pid!) !== 'T') {
        if (Date.now() > deadline) throw new Error('the run never stopped after its claim');
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 400));
    } finally {
      process.kill(child.pid!, 'SIGCONT');
    }
    expect(await done).toBe(0);
    const outcome = ledgerRows(ws, "event = 'SUCCEEDED'");
    expect(outcome).toHaveLength(1);
    expect(outcome[0].latency_us).toBeGreaterThanOrEqual(400_000);
    expect(ok(ws, ['aec', 'stats']).stats.dispatch_latency_ms.p50).toBeGreaterThanOrEqual(400);
  });
});

describe('scripts/check_slo.sh: the guardrail runs the gate on a workspace', () => {
  it('exits 0 on a workspace within the SLO and 1 on one that breaches it', () => {
    const script = join(ROOT, 'scripts', 'check_slo.sh');
    const good = makeWorkspace();
    const r = spawnSync('bash', [script, good], { env: baseEnv(), encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const bad = failedDispatchWorkspace();
    const b = spawnSync('bash', [script, bad], { env: baseEnv(), encoding: 'utf8' });
    expect(b.status, b.stdout + b.stderr).toBe(1);
    expect(b.stderr).toContain('SLO_BREACHED');
  });
});

function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
  } catch {
    return 'gone';
  }
}
