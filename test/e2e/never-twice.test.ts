/**
 * Money and effects are never repeated by accident: a retry reuses the Kimi envelope it already
 * paid for, a rewound contract does not send the same invoice again unless told to, and
 * `kair rollback` undoes a run's effects in reverse order exactly once — run twice or by eight
 * processes at once. Every case goes through the built CLI and checks the SQLite ledger, the
 * side-effect files and the history it leaves.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PUBLISHED_SCHEMAS } from '../../src/domain/schemas.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, openLedger, registerSimulation, simPlan } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { editConfig, fixture, history, kairAsync, kj, makeTempDir, ok, readJson, removeWorkspaces, snapshot } from '../helpers/cli.js';
import { seedKimiSuccess } from '../helpers/kimi.js';

afterAll(removeWorkspaces);

const INVOICE = { id: 'send-invoice', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } };

function expectSchema(name: string, d: unknown): void {
  const r = PUBLISHED_SCHEMAS[name]!.safeParse(d);
  expect(r.success, r.success ? '' : `${JSON.stringify(r.error.issues)}\n${JSON.stringify(d)}`).toBe(true);
}

/** plan → request-approval → approve as alice (after a rewind or a failure). */
function replan(ws: string, id: string, plan: Json): void {
  const file = join(makeTempDir('kair-plan-'), `${id}.json`);
  writeFileSync(file, JSON.stringify(plan));
  ok(ws, ['plan', id, '--file', file], asAlice);
  ok(ws, ['request-approval', id], asAlice);
  ok(ws, ['approve', id], asAlice);
}

const envelopes = (ws: string, id: string): Json[] => ok(ws, ['envelopes', '--contract', id]).envelopes;
/** Sum of COMPLETED Kimi run rows of a contract, in micro-dollars (what the per-contract cap counts). */
function spentMicros(ws: string, id: string): number {
  const db = openLedger(ws);
  try {
    return (db.prepare("SELECT COALESCE(SUM(r.cost_micros), 0) AS n FROM kimi_execution_runs r JOIN execution_envelopes e ON e.id = r.envelope_id WHERE e.contract_id = ? AND r.status = 'COMPLETED'").get(id) as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('Kimi reuse on retry', () => {
  it('a contract that FAILED at its AEC step, run again three times, pays for one envelope; --regenerate asks for a new one; a rewind never reuses', () => {
    const ws = catalogWorkspace();
    const plan = readJson(fixture('mixed-lanes.json'));
    approveContract(ws, 'chat', plan);
    // tester has no access rule: the AEC step is refused after the Kimi step completed.
    const first = kj(ws, ['run', 'chat', '--confirm', 'yes']);
    expect(first.code, first.stdout + first.stderr).toBe(3);
    expect(first.json).toMatchObject({ state: 'FAILED', kimi: seedKimiSuccess('chat-run-1'), error: { code: 'ACCESS_SCOPE_VIOLATION' } });
    expect(first.json.steps[0]).toEqual({ id: 'generate', lane: 'kimi', status: 'COMPLETED', reason_code: 'KIMI_OK' });

    for (const runId of ['chat-run-2', 'chat-run-3']) {
      const again = kj(ws, ['run', 'chat', '--confirm', 'yes']);
      expect(again.code, again.stdout + again.stderr).toBe(3);
      expect(again.json.run_id).toBe(runId);
      // The reused object is printed unchanged: it names the envelope of the run that paid.
      expect(again.json.kimi).toEqual(seedKimiSuccess('chat-run-1'));
      expect(again.json.steps[0]).toEqual({ id: 'generate', lane: 'kimi', status: 'COMPLETED', reason_code: 'KIMI_REUSED', reused_from: 'chat-run-1' });
      expectSchema('output-run', again.json);
    }
    const done = kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.json.steps[0]).toMatchObject({ reason_code: 'KIMI_REUSED', reused_from: 'chat-run-1' });
    expect(readJson(join(ws, done.json.artifacts.run_result)).kimi).toEqual(seedKimiSuccess('chat-run-1'));
    expect(envelopes(ws, 'chat').map((e) => e.id)).toEqual(['env_chat-run-1']);
    expect(spentMicros(ws, 'chat')).toBe(20_000);
    // The reusing runs recorded no Kimi events: one started/completed pair for the whole contract.
    expect(history(ws, 'chat').filter((e) => e.type.startsWith('kimi.')).map((e) => e.data.run_id)).toEqual(['chat-run-1', 'chat-run-1']);

    // --regenerate pays again, within every cap.
    const ws2 = catalogWorkspace();
    approveContract(ws2, 'chat', plan);
    expect(kj(ws2, ['run', 'chat', '--confirm', 'yes']).code).toBe(3);
    const regen = kj(ws2, ['run', 'chat', '--confirm', 'yes', '--regenerate']);
    expect(regen.code).toBe(3);
    expect(regen.json.kimi).toEqual(seedKimiSuccess('chat-run-2'));
    expect(regen.json.steps[0]).toEqual({ id: 'generate', lane: 'kimi', status: 'COMPLETED', reason_code: 'KIMI_OK' });
    expect(envelopes(ws2, 'chat').map((e) => e.id)).toEqual(['env_chat-run-1', 'env_chat-run-2']);

    // A rewound contract is a new version: its first run generates, even with the same plan.
    ok(ws2, ['rewind', 'chat', 'start over'], asAlice);
    replan(ws2, 'chat', plan);
    const v2 = kj(ws2, ['run', 'chat', '--confirm', 'yes']);
    expect(v2.json.steps[0].reason_code).toBe('KIMI_OK');
    expect(envelopes(ws2, 'chat')).toHaveLength(3);
    expect(ok(ws2, ['verify']).problems).toEqual([]);
  });
});

describe('repeat after rewind', () => {
  it('rewind, re-plan, re-approve, run: the invoice already sent under v1 is not sent again (AEC_REPEAT_BLOCKED) until --allow-repeat; an effect-free ping runs again', () => {
    const ws = catalogWorkspace();
    const plan = simPlan([{ id: 'ping', utterance: 'ping' }, INVOICE]);
    approveContract(ws, 'chat', plan);
    expect(kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice).code).toBe(0);
    ok(ws, ['rewind', 'chat', 'wrong template'], asAlice);
    replan(ws, 'chat', plan);

    const blocked = kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice);
    expect(blocked.code, blocked.stdout + blocked.stderr).toBe(3);
    expect(blocked.json).toMatchObject({ run_id: 'chat-run-2', state: 'PAUSED', status: 'PAUSED', error: { code: 'AEC_REPEAT_BLOCKED', details: { step_id: 'send-invoice', earlier_run_id: 'chat-run-1' } } });
    expect(blocked.json.steps[0]).toMatchObject({ id: 'ping', status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK' });
    expect(blocked.json.steps[1]).toMatchObject({ id: 'send-invoice', status: 'PAUSED', reason_code: 'AEC_REPEAT_BLOCKED' });
    expect(snapshot(ws, 'chat').pause).toMatchObject({ reason: 'AEC_REPEAT_BLOCKED', step_id: 'send-invoice' });
    expectSchema('output-run', blocked.json);
    const sent = () => ledgerRows(ws, "simulation_id = 'send-invoice' AND event IN ('CLAIMED', 'SUCCEEDED')").map((r) => `${r.correlation_id} ${r.event}`);
    expect(sent()).toEqual(['chat:v1 CLAIMED', 'chat:v1 SUCCEEDED']);
    // The refusal is a ledger decision: replay reproduces it from its refs.
    expect(ledgerRows(ws, "run_id = 'chat-run-2' AND step_id = 'send-invoice'").map((r) => `${r.event} ${r.reason_code}`)).toEqual(['HALTED AEC_REPEAT_BLOCKED']);
    expect(kj(ws, ['aec', 'replay', 'chat-run-2']).code).toBe(0);

    const resumed = kj(ws, ['resume', 'chat', '--allow-repeat', '--confirm', 'yes'], asAlice);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.json.steps[1]).toMatchObject({ status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK' });
    expect(sent()).toEqual(['chat:v1 CLAIMED', 'chat:v1 SUCCEEDED', 'chat:v2 CLAIMED', 'chat:v2 SUCCEEDED']);
    expect(kj(ws, ['aec', 'replay', 'chat-run-2']).code).toBe(0);
    expect(ok(ws, ['verify']).problems).toEqual([]);
  });

  it('rewind --rollback undoes the v1 invoice first (void-invoice), so the v2 run sends it without --allow-repeat', () => {
    const ws = catalogWorkspace();
    approveContract(ws, 'chat', simPlan([INVOICE]));
    expect(kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice).code).toBe(0);
    const r = kj(ws, ['rewind', 'chat', 'wrong amount', '--rollback'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.contract).toMatchObject({ state: 'REWOUND', version: 2 });
    expect(r.json.rollback).toMatchObject({ run_id: 'chat-run-1', status: 'COMPLETED', steps: [{ step_id: 'send-invoice', rollback_simulation_id: 'void-invoice', status: 'COMPLETED', outcome: { executor: 'echo', fields: { customer: 'acme', amount: '120' } } }] });
    expectSchema('output-lifecycle', r.json);
    expect(history(ws, 'chat').map((e) => e.type).slice(-4)).toEqual(['rollback.started', 'rollback.finished', 'rewind', 'dpc']);

    replan(ws, 'chat', simPlan([INVOICE]));
    const v2 = kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice);
    expect(v2.code, v2.stdout + v2.stderr).toBe(0);
    expect(ok(ws, ['verify']).problems).toEqual([]);
  });

  it('rewind --rollback does not rewind when the rollback is refused', () => {
    const ws = catalogWorkspace();
    approveContract(ws, 'chat', simPlan([INVOICE, { id: 'ping', utterance: 'ping' }]));
    expect(kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice).code).toBe(0);
    const r = kj(ws, ['rewind', 'chat', 'x', '--rollback'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('ROLLBACK_UNAVAILABLE');
    expect(snapshot(ws, 'chat')).toMatchObject({ state: 'COMPLETED', version: 1 });
  });
});

/**
 * A workspace where contract `two` has run two steps (`a` for acme, `b` for beta), each with a
 * side-effecting rollback that appends the customer to `log`: one line per rollback side effect.
 */
function twoStepRun(log: string): string {
  const ws = catalogWorkspace();
  registerSimulation(
    ws,
    {
      id: 'unbill',
      title: 'Unbill a customer',
      examples: ['unbill customer'],
      required_fields: ['customer'],
      impact: 'impactful',
      rollback_simulation_id: 'void-invoice',
      access_action: 'bill:undo',
      executor: { kind: 'command', argv: ['node', '-e', "require('fs').appendFileSync(process.argv[1], process.argv[2] + '\\n')", log, '{customer}'], timeout_ms: 20_000 },
    },
    { allow: 'alice' },
  );
  registerSimulation(ws, { id: 'bill', title: 'Bill a customer', examples: ['bill customer'], required_fields: ['customer'], impact: 'impactful', rollback_simulation_id: 'unbill', access_action: 'invoice:send', executor: { kind: 'builtin', name: 'echo' } });
  approveContract(ws, 'two', simPlan([{ id: 'a', utterance: 'bill customer', fields: { customer: 'acme' } }, { id: 'b', utterance: 'bill customer', fields: { customer: 'beta' } }]), { requires: ['local:exec'], grant: ['local:exec'] });
  expect(kj(ws, ['run', 'two', '--confirm', 'yes'], asAlice).code).toBe(3); // b asks again
  expect(kj(ws, ['resume', 'two', '--confirm', 'yes'], asAlice).code).toBe(0);
  return ws;
}

const lines = (file: string): string[] => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

const rollbackRows = (ws: string) => ledgerRows(ws, "step_id LIKE 'rollback:%' AND event IN ('CLAIMED', 'SUCCEEDED')").map((r) => `${r.step_id} ${r.event}`);

describe('kair rollback', () => {
  it('a two-step run is rolled back in reverse order, once: pre-checked first, one --confirm for all, state unchanged, a second rollback replays', () => {
    const log = join(makeTempDir('kair-rb-'), 'unbill.log');
    const ws = twoStepRun(log);

    // Both rollbacks need confirmation: without --confirm nothing at all is dispatched.
    const refused = kj(ws, ['rollback', 'two-run-1'], asAlice);
    expect(refused.code).toBe(3);
    expect(refused.json.error).toMatchObject({ code: 'AEC_CONFIRM_REQUIRED', details: { step_id: 'b', run_id: 'two-run-1' } });
    expect(lines(log)).toEqual([]);
    expect(ledgerRows(ws, "step_id LIKE 'rollback:%'")).toEqual([]);
    expect(history(ws, 'two').at(-1)).toMatchObject({ type: 'gate.blocked', data: { command: 'rollback', code: 'AEC_CONFIRM_REQUIRED' } });

    const r = kj(ws, ['rollback', 'two-run-1', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expectSchema('output-rollback', r.json);
    expect(r.json).toMatchObject({ contract_id: 'two', run_id: 'two-run-1', state: 'COMPLETED', status: 'COMPLETED' });
    expect(r.json.steps.map((s: Json) => [s.step_id, s.rollback_simulation_id, s.status])).toEqual([
      ['b', 'unbill', 'COMPLETED'],
      ['a', 'unbill', 'COMPLETED'],
    ]);
    expect(lines(log)).toEqual(['beta', 'acme']);
    expect(rollbackRows(ws)).toEqual(['rollback:b CLAIMED', 'rollback:b SUCCEEDED', 'rollback:a CLAIMED', 'rollback:a SUCCEEDED']);
    expect(snapshot(ws, 'two').state).toBe('COMPLETED');
    const types = history(ws, 'two').map((e) => e.type);
    expect(types.filter((t) => t.startsWith('rollback.'))).toEqual(['rollback.started', 'rollback.finished']);
    expect(history(ws, 'two').at(-1)!.data).toMatchObject({ run_id: 'two-run-1', status: 'COMPLETED' });

    const again = kj(ws, ['rollback', 'two-run-1', '--confirm', 'yes'], asAlice);
    expect(again.code).toBe(0);
    expect(again.json.steps.map((s: Json) => s.status)).toEqual(['REPLAYED', 'REPLAYED']);
    expect(lines(log)).toEqual(['beta', 'acme']);
    expect(rollbackRows(ws)).toHaveLength(4);
    // Rollback decisions replay like run decisions, and every row is anchored in history.
    expect(kj(ws, ['aec', 'replay', 'two-run-1']).code).toBe(0);
    const v = ok(ws, ['verify']);
    expect(v.problems).toEqual([]);
    expect(v.warnings).toEqual([]);
  });

  it('8 processes rolling back the same run at once: every rollback side effect happens exactly once', async () => {
    const log = join(makeTempDir('kair-rb-'), 'unbill.log');
    const ws = twoStepRun(log);
    const all = await Promise.all(Array.from({ length: 8 }, () => kairAsync(ws, ['rollback', 'two-run-1', '--confirm', 'yes', '--json', '--lock-timeout', '60000'], asAlice)));
    for (const r of all) expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(lines(log).sort()).toEqual(['acme', 'beta']);
    expect(rollbackRows(ws).sort()).toEqual(['rollback:a CLAIMED', 'rollback:a SUCCEEDED', 'rollback:b CLAIMED', 'rollback:b SUCCEEDED']);
    expect(all.filter((r) => r.json.steps.every((s: Json) => s.status === 'COMPLETED'))).toHaveLength(1);
    expect(history(ws, 'two').filter((e) => e.type === 'rollback.started')).toHaveLength(1);
    expect(ok(ws, ['verify']).problems).toEqual([]);
  });

  it('a succeeded step without a rollback simulation: ROLLBACK_UNAVAILABLE before anything is dispatched', () => {
    const ws = catalogWorkspace();
    approveContract(ws, 'chat', simPlan([INVOICE, { id: 'ping', utterance: 'ping' }]));
    expect(kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice).code).toBe(0);
    const r = kj(ws, ['rollback', 'chat-run-1'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'ROLLBACK_UNAVAILABLE', details: { run_id: 'chat-run-1', steps: [{ step_id: 'ping', simulation_id: 'ping' }] } });
    expect(r.json.error.details.hint).toBeTruthy();
    expectSchema('output-error', r.json);
    expect(ledgerRows(ws, "step_id LIKE 'rollback:%'")).toEqual([]);
    expect(history(ws, 'chat').map((e) => e.type).filter((t) => t.startsWith('rollback.'))).toEqual([]);
    expect(snapshot(ws, 'chat').state).toBe('COMPLETED');
  });

  it('NOT_OWNER: run.allowed_actors applies to rollback; unknown runs and bad ids are refused', () => {
    const ws = catalogWorkspace();
    approveContract(ws, 'chat', simPlan([INVOICE]));
    expect(kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice).code).toBe(0);
    editConfig(ws, (c) => {
      c.run = { allowed_actors: ['@proposer'] };
    });
    const r = kj(ws, ['rollback', 'chat-run-1', '--actor', 'mallory']);
    expect(r.code).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'NOT_OWNER', details: { actor: 'mallory', allowed_actors: ['@proposer'] } });
    expect(ledgerRows(ws, "step_id LIKE 'rollback:%'")).toEqual([]);
    expect(kj(ws, ['rollback', 'chat-run-1'], asAlice).code).toBe(0);

    expect(kj(ws, ['rollback', 'chat-run-9']).json.error.code).toBe('RUN_NOT_FOUND');
    expect(kj(ws, ['rollback', 'nobody-run-1']).code).toBe(4);
    const bad = kj(ws, ['rollback', '../x-run-1']);
    expect([bad.code, bad.json.error.code]).toEqual([2, 'INVALID_ID']);
  });
});
