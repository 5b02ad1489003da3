/**
 * `run --dry-run` predicts the real run: for every gate a run can stop at, a dry run in one copy
 * of a workspace and the real run in a twin copy exit with the same status and error code, and
 * the dry run writes nothing at all (the .kair tree and every SQLite row are unchanged).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, catalogWorkspace, counterSimulation, registerSimulation, simPlan, fingerprint } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { cloneWorkspace, fixture, kair, kairPath, kj, makeTempDir, okAsync, planFile, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

async function approveAsync(ws: string, id: string, plan: Json | string, opts: { requires?: string[]; grant?: string[] } = {}): Promise<void> {
  const env = { env: ALICE };
  await okAsync(ws, ['propose', `Dry ${id}`, '--id', id, ...(opts.requires?.length ? ['--requires', opts.requires.join(',')] : [])], env);
  let file = typeof plan === 'string' ? fixture(plan) : join(makeTempDir('kair-plan-'), `${id}.json`);
  if (typeof plan !== 'string') writeFileSync(file, JSON.stringify(plan));
  else file = fixture(plan);
  await okAsync(ws, ['plan', id, '--file', file], env);
  for (const g of opts.grant ?? []) await okAsync(ws, ['grant', id, g], env);
  await okAsync(ws, ['request-approval', id], env);
  await okAsync(ws, ['approve', id], env);
}

const invoice = { customer: 'acme', amount: '120' };

/** id → how the real run is invoked (actor, flags) and the code both must report. */
const CASES: { id: string; why: string; actor?: string; flags?: string[]; code: string | null; exit: number }[] = [
  { id: 'missing', why: 'no simulation matches the step', code: 'SIM_FINDER_MISSING_SIMULATION', exit: 3 },
  { id: 'rollback', why: 'the rollback simulation is not registered', flags: ['--confirm', 'yes'], code: 'AEC_ROLLBACK_REF_MISSING', exit: 3 },
  { id: 'exec', why: 'a command executor without local:exec', code: 'CONTROLS_MISSING', exit: 3 },
  { id: 'norule', why: 'an actor without an access rule', actor: 'tester', code: 'ACCESS_SCOPE_VIOLATION', exit: 3 },
  { id: 'deny', why: 'an explicit deny rule', actor: 'bob', flags: ['--confirm', 'yes'], code: 'ACCESS_SCOPE_VIOLATION', exit: 3 },
  { id: 'ap', why: 'a require-ap rule', actor: 'carol', flags: ['--confirm', 'yes'], code: 'ACCESS_AP_REQUIRED', exit: 3 },
  { id: 'inactive', why: 'the matched simulation is not Active', code: 'SIM_FINDER_SIMULATION_INACTIVE', exit: 3 },
  { id: 'revoked', why: 'a required control was revoked', code: 'CONTROLS_MISSING', exit: 3 },
  { id: 'stale', why: 'the plan on disk was edited', code: 'APPROVAL_STALE', exit: 3 },
  { id: 'budget', why: 'the Kimi cost is over budget', code: 'BUDGET_EXCEEDED', exit: 5 },
  { id: 'runtime', why: 'the Kimi runtime is over the limit', code: 'RUNTIME_EXCEEDED', exit: 5 },
  { id: 'confirm', why: 'an unanswered confirmation', code: 'AEC_CONFIRM_REQUIRED', exit: 3 },
  { id: 'declined', why: 'a confirmation answered no', flags: ['--confirm', 'no'], code: 'AEC_CONFIRM_DECLINED', exit: 3 },
  { id: 'second', why: 'the second step stops, the first would run', code: 'SIM_FINDER_MISSING_SIMULATION', exit: 3 },
  { id: 'twoconfirm', why: 'one --confirm answers only the first confirmation', flags: ['--confirm', 'yes'], code: 'AEC_CONFIRM_REQUIRED', exit: 3 },
  { id: 'fine', why: 'every gate passes', code: null, exit: 0 },
  { id: 'pauseat', why: '--pause-at stops before the failing step', flags: ['--pause-at', 'bad'], code: null, exit: 0 },
];

let base: string;
beforeAll(async () => {
  base = catalogWorkspace();
  const ping = { id: 'ping', utterance: 'ping' };
  registerSimulation(base, { id: 'refund', title: 'Refund', examples: ['refund the order'], required_fields: [], impact: 'impactful', access_action: 'order:refund', rollback_simulation_id: 'unrefund', executor: { kind: 'builtin', name: 'echo' } }, { allow: 'alice' });
  registerSimulation(base, { id: 'drafty', title: 'Drafty', examples: ['archive the ledger'], required_fields: [], impact: 'none', access_action: 'ledger:archive', executor: { kind: 'builtin', name: 'noop' } }, { activate: false, allow: 'alice' });
  counterSimulation(base, 'tick', join(base, 'ticks.txt'));
  await Promise.all([
    approveAsync(base, 'missing', simPlan([{ id: 's1', utterance: 'frobnicate the quux' }])),
    approveAsync(base, 'rollback', simPlan([{ id: 's1', utterance: 'refund the order' }])),
    approveAsync(base, 'exec', simPlan([{ id: 's1', utterance: 'count tick' }])),
    approveAsync(base, 'norule', simPlan([ping])),
    approveAsync(base, 'deny', simPlan([{ id: 's1', utterance: 'send invoice', fields: invoice }])),
    approveAsync(base, 'ap', simPlan([{ id: 's1', utterance: 'send invoice', fields: invoice }])),
    approveAsync(base, 'inactive', simPlan([{ id: 's1', utterance: 'archive the ledger' }])),
    approveAsync(base, 'revoked', simPlan([ping]), { requires: ['local:read'], grant: ['local:read'] }),
    approveAsync(base, 'stale', simPlan([ping])),
    approveAsync(base, 'budget', 'run-budget-low.json'),
    approveAsync(base, 'runtime', 'run-runtime-exceeded.json'),
    approveAsync(base, 'confirm', simPlan([{ id: 's1', utterance: 'send invoice', fields: invoice }])),
    approveAsync(base, 'declined', simPlan([{ id: 's1', utterance: 'send invoice', fields: invoice }])),
    approveAsync(base, 'second', simPlan([ping, { id: 's2', utterance: 'frobnicate the quux' }])),
    approveAsync(base, 'twoconfirm', simPlan([{ id: 's1', utterance: 'send invoice', fields: invoice }, { id: 's2', utterance: 'send invoice', fields: { customer: 'beta', amount: '5' } }])),
    approveAsync(base, 'fine', simPlan([ping, { id: 'm', manual: true }])),
    approveAsync(base, 'pauseat', simPlan([ping, { id: 'bad', utterance: 'frobnicate the quux' }])),
  ]);
  await okAsync(base, ['revoke', 'revoked', 'local:read'], { env: ALICE });
  const plan = JSON.parse(readFileSync(planFile(base, 'stale'), 'utf8'));
  plan.title = 'edited by hand';
  writeFileSync(planFile(base, 'stale'), JSON.stringify(plan, null, 2));
}, 120_000);

describe('run --dry-run predicts the real run, gate by gate', () => {
  let dry: string;
  let real: string;
  beforeAll(() => {
    dry = cloneWorkspace(base);
    real = cloneWorkspace(base);
  });

  it.each(CASES)('$id: $why → exit $exit $code', (c) => {
    const opts = { env: { KAIR_ACTOR: c.actor ?? 'alice' } };
    const before = fingerprint(dry);
    const d = kj(dry, ['run', c.id, '--dry-run', ...(c.flags ?? [])], opts);
    expect(fingerprint(dry)).toEqual(before);
    const r = kj(real, ['run', c.id, ...(c.flags ?? [])], opts);
    expect({ exit: r.code, code: r.json.error?.code ?? null }).toEqual({ exit: c.exit, code: c.code });
    expect({ exit: d.code, code: d.json.error?.code ?? null }).toEqual({ exit: c.exit, code: c.code });
    if (d.json.steps) expect(d.json.dry_run).toBe(true);
  });

  it('reports a step that needs confirmation as needs_confirmation, with what follows once answered', () => {
    const d = kj(dry, ['run', 'deny', '--dry-run'], { env: { KAIR_ACTOR: 'bob' } });
    expect(d.code).toBe(3);
    expect(d.json.steps).toEqual([expect.objectContaining({ id: 's1', lane: 'aec', status: 'needs_confirmation', reason_code: 'AEC_CONFIRM_REQUIRED', after_confirmation: 'ACCESS_SCOPE_VIOLATION' })]);
  });

  it('evaluates every step, also after the first stop', () => {
    const d = kj(dry, ['run', 'second', '--dry-run'], { env: ALICE });
    expect(d.json.steps.map((s: Json) => [s.id, s.status, s.reason_code])).toEqual([
      ['ping', 'ok', 'AEC_DISPATCH_OK'],
      ['s2', 'refused', 'SIM_FINDER_MISSING_SIMULATION'],
    ]);
    expect(d.json.error.details).toMatchObject({ step_id: 's2', dry_run: true });
  });

  it('without --json it prints every step and its prediction on stdout, the first stop on stderr', () => {
    const r = kair(dry, ['run', 'second', '--dry-run'], { env: ALICE });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/ping\s+aec\s+ok\s+AEC_DISPATCH_OK/);
    expect(r.stdout).toMatch(/s2\s+aec\s+refused\s+SIM_FINDER_MISSING_SIMULATION/);
    expect(r.stderr).toContain('A real run would send it to dev intake');
  });

  it('--dry-run --confirm maybe is a usage error (exit 2), nothing written', () => {
    const before = fingerprint(dry);
    const d = kj(dry, ['run', 'confirm', '--dry-run', '--confirm', 'maybe'], { env: ALICE });
    expect(d.code).toBe(2);
    expect(d.json.error.code).toBe('USAGE_ERROR');
    expect(d.json.error.details.flag).toBe('--confirm');
    expect(fingerprint(dry)).toEqual(before);
  });

  it('a workspace without kair.db predicts the Finder on an empty catalog and creates no database', async () => {
    const ws = makeTempDir();
    expect(kj(ws, ['init']).code).toBe(0);
    await approveAsync(ws, 'lonely', simPlan([{ id: 's1', utterance: 'ping' }]));
    const d = kj(ws, ['run', 'lonely', '--dry-run'], { env: ALICE });
    expect({ exit: d.code, code: d.json.error.code }).toEqual({ exit: 3, code: 'SIM_FINDER_MISSING_SIMULATION' });
    expect(() => statSync(kairPath(ws, 'kair.db'))).toThrow();
  });
});
