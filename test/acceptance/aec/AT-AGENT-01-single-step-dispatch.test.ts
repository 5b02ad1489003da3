/**
 * Seed 001 §13 AT-AGENT-01, §3.1 (Phase 1: one simulation per agent cycle); SPEC §8 (run-result
 * steps), §9.3 (AEC_DISPATCH_OK), §9.6 (claim row committed before the executor, then the outcome).
 * Through the built CLI, with the SQLite ledgers read read-only.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, history, kj, ok, readJson, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

let base: string;

beforeAll(() => {
  base = catalogWorkspace();
});

const refBody = (ws: string, ref: string): Json => {
  const rows = tableRows(ws, 'aec_refs', 'ref = ?', ref);
  expect(rows, `aec_refs holds ${ref}`).toHaveLength(1);
  return JSON.parse(rows[0].body);
};

describe('AT-AGENT-01-single-step-dispatch', () => {
  it('an approved plan with one impact-none simulation step: exit 0, COMPLETED, AEC_DISPATCH_OK, exactly one CLAIMED and one SUCCEEDED row', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'one', simPlan([{ id: 'ping', utterance: 'ping' }]));

    const r = kj(ws, ['run', 'one'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, contract_id: 'one', run_id: 'one-run-1', state: 'COMPLETED', status: 'COMPLETED' });
    expect(r.json.error).toBeUndefined();
    expect(r.json.steps).toHaveLength(1);
    const step = r.json.steps[0];
    expect(step).toMatchObject({ id: 'ping', lane: 'aec', status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK', simulation_id: 'ping', outcome: { executor: 'noop' } });
    expect(step.idempotency_key).toMatch(/^[0-9a-f]{64}$/);
    expect(Array.isArray(step.proof_refs)).toBe(true);
    expect(step.proof_refs.length).toBeGreaterThan(0);

    // Rows on disk: one claim, committed before the one outcome, for the same key and attempt 1.
    const rows = ledgerRows(ws, 'contract_id = ?', 'one');
    expect(rows.map((x) => [x.event, x.reason_code, x.attempt])).toEqual([
      ['CLAIMED', 'AEC_DISPATCH_OK', 1],
      ['SUCCEEDED', 'AEC_DISPATCH_OK', 1],
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ run_id: 'one-run-1', step_id: 'ping', simulation_id: 'ping', correlation_id: 'one:v1', plan_id: 'one:v1/ping', actor: 'alice', idempotency_key: step.idempotency_key });
    }
    expect(rows[0].row_id).toBeLessThan(rows[1].row_id);
    expect(rows[0].outcome).toBeNull();
    expect(JSON.parse(rows[1].outcome)).toMatchObject({ step_id: 'ping', reason_code: 'AEC_DISPATCH_OK', simulation_outcome: { executor: 'noop' } });

    // The projection says the step succeeded.
    expect(tableRows(ws, 'agent_execution_current', 'correlation_id = ?', 'one:v1')).toEqual([
      expect.objectContaining({ step_id: 'ping', status: 'SUCCEEDED', attempt: 1, idempotency_key: step.idempotency_key, success_row_id: rows[1].row_id, rows: 2 }),
    ]);

    // run-result.json (kair.run-result.v1) carries the step with its key and proof refs.
    expect(r.json.artifacts.run_result).toBe('.kair/contracts/one/artifacts/run/one-run-1/run-result.json');
    const result = readJson(join(ws, r.json.artifacts.run_result));
    expect(result).toMatchObject({ version: 'kair.run-result.v1', run_id: 'one-run-1', contract_id: 'one', status: 'COMPLETED' });
    expect(result.steps).toEqual(r.json.steps);
    expect(result.steps[0].idempotency_key).toBe(step.idempotency_key);
    expect(result.steps[0].proof_refs).toEqual(step.proof_refs);

    // Every proof ref the step names that is a stored document is in aec_refs.
    for (const ref of step.proof_refs as string[]) {
      if (/^(packet|catalog|policy|fingerprints|envelope|decision|rollback):/.test(ref)) refBody(ws, ref);
    }

    // History: one step.finished for the step, the run finished COMPLETED.
    const evs = history(ws, 'one');
    expect(evs.filter((e) => e.type === 'step.finished').map((e) => e.data.step.status)).toEqual(['COMPLETED']);
    expect(evs.filter((e) => e.type === 'run.finished').map((e) => e.data.status)).toEqual(['COMPLETED']);
    expect(ok(ws, ['status', 'one']).contract.state).toBe('COMPLETED');
  });

  it('one simulation per cycle: two simulation steps are two separate claims, each its own single-step plan, in strict sequence', () => {
    const ws = cloneWorkspace(base);
    approveContract(
      ws,
      'two',
      simPlan([
        { id: 'first', utterance: 'ping' },
        { id: 'second', utterance: 'void invoice', fields: { customer: 'acme' } },
      ]),
    );
    const r = kj(ws, ['run', 'two'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.steps.map((s: Json) => [s.id, s.status, s.reason_code, s.simulation_id])).toEqual([
      ['first', 'COMPLETED', 'AEC_DISPATCH_OK', 'ping'],
      ['second', 'COMPLETED', 'AEC_DISPATCH_OK', 'void-invoice'],
    ]);
    expect(r.json.steps[1].outcome).toEqual({ executor: 'echo', fields: { customer: 'acme' } });
    expect(r.json.steps[0].idempotency_key).not.toBe(r.json.steps[1].idempotency_key);

    const rows = ledgerRows(ws, 'contract_id = ?', 'two');
    // Strict sequence: the second step is claimed only after the first one's outcome.
    expect(rows.map((x) => [x.step_id, x.event, x.plan_id])).toEqual([
      ['first', 'CLAIMED', 'two:v1/first'],
      ['first', 'SUCCEEDED', 'two:v1/first'],
      ['second', 'CLAIMED', 'two:v1/second'],
      ['second', 'SUCCEEDED', 'two:v1/second'],
    ]);
    const claims = rows.filter((x) => x.event === 'CLAIMED');
    expect(new Set(claims.map((x) => x.idempotency_key)).size).toBe(2);
    expect(new Set(claims.map((x) => x.finder_packet_ref)).size).toBe(2);
    expect(new Set(claims.map((x) => x.dispatch_envelope_ref)).size).toBe(2);

    // Each claim's decision record holds a single-step AgentExecutionPlan and exactly one envelope.
    for (const claim of claims) {
      const decision = refBody(ws, claim.decision_ref);
      expect(decision.verdict.dispatch).toBe(true);
      expect(decision.records.execution_plan).toMatchObject({ plan_id: claim.plan_id, ordered_steps: [claim.step_id], finder_packet_ref: claim.finder_packet_ref });
      expect(decision.records.agent_step).toMatchObject({ step_id: claim.step_id, simulation_id: claim.simulation_id });
      const envelope = refBody(ws, claim.dispatch_envelope_ref);
      expect(envelope).toMatchObject({ step_id: claim.step_id, simulation_id: claim.simulation_id, idempotency_key: claim.idempotency_key, correlation_id: 'two:v1' });
    }

    expect(tableRows(ws, 'agent_execution_current', 'correlation_id = ?', 'two:v1').map((x) => [x.step_id, x.plan_id, x.status])).toEqual([
      ['first', 'two:v1/first', 'SUCCEEDED'],
      ['second', 'two:v1/second', 'SUCCEEDED'],
    ]);
    expect(ok(ws, ['aec', 'stats']).stats).toMatchObject({ dispatches: 2, succeeded: 2, duplicate_side_effects: 0 });
  });
});
