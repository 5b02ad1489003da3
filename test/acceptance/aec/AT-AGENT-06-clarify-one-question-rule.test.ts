/**
 * Seed 001 §13 AT-AGENT-06, §6 (the one-question rule is Finder-owned: relay ClarifyPacket.question
 * unchanged, increase attempt_counter from the packet, stop dispatch, never a second question);
 * SPEC §9.2 (ambiguous / low confidence / missing field; after 2 clarify attempts → Refuse
 * SIM_FINDER_REFUSE_AMBIGUOUS), §9.3 (Clarify → the step halts with the question verbatim), §14
 * "Steps and history vocabulary" (a clarify step carries `question`, also the `error.message`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, history, kj, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, registerSimulation, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);


/** Fixtures + two near-identical export simulations (an ambiguous pair), all Active and allowed to alice. */
let base: string;

beforeAll(() => {
  base = catalogWorkspace();
  for (const kind of ['csv', 'pdf']) {
    registerSimulation(base, { id: `export-${kind}`, title: `Export the report as ${kind}`, examples: [`export the monthly report ${kind}`], required_fields: [], impact: 'none', access_action: 'report:export', executor: { kind: 'builtin', name: 'noop' } });
  }
  ok(base, ['access', 'allow', 'alice', 'report:export']);
});

const countQuestionMarks = (s: string) => [...s].filter((ch) => ch === '?').length;

/**
 * Runs a contract whose first (and only reached) step is a clarify: exit 3, one question relayed
 * verbatim from the Finder's packet (what `kair find` prints for the same input), nothing dispatched.
 */
function expectClarify(ws: string, contract: string, reason: string, findArgs: string[]): Json {
  const packet = ok(ws, ['find', ...findArgs]).packet;
  expect(packet).toMatchObject({ type: 'ClarifyPacket', reason_code: reason });
  expect(typeof packet.question).toBe('string');

  const r = kj(ws, ['run', contract], asAlice);
  expect(r.code, r.stdout + r.stderr).toBe(3);
  expect(r.json).toMatchObject({ ok: false, state: 'FAILED', status: 'FAILED', error: { code: reason } });
  const [step, ...rest] = r.json.steps;
  expect(step).toMatchObject({ lane: 'aec', status: 'REFUSED', reason_code: reason });
  // The question verbatim, as the step's `question` and as the error message; exactly one of it.
  expect(step.question).toBe(packet.question);
  expect(r.json.error.message).toBe(packet.question);
  expect(countQuestionMarks(step.question)).toBe(1);
  expect(r.json.steps.filter((s: Json) => 'question' in s)).toHaveLength(1);
  for (const s of rest) expect(s).toMatchObject({ status: 'PENDING', reason_code: null });

  // On disk: the halt and the packet it relayed; no claim, no confirmation, no access decision.
  const rows = ledgerRows(ws, 'run_id = ?', r.json.run_id);
  expect(rows.map((x) => [x.event, x.reason_code])).toEqual([['HALTED', reason]]);
  const stored = JSON.parse(tableRows(ws, 'aec_refs', 'ref = ?', rows[0].finder_packet_ref)[0].body);
  expect(stored.question).toBe(packet.question);
  expect(tableRows(ws, 'agent_execution_access_decision_ledger', 'run_id = ?', r.json.run_id)).toEqual([]);
  expect(tableRows(ws, 'agent_execution_confirmation_ledger', 'run_id = ?', r.json.run_id)).toEqual([]);
  expect(ledgerRows(ws, "contract_id = ? AND event NOT IN ('HALTED')", contract)).toEqual([]);
  // The history's step.finished event carries the same single question.
  const finished = history(ws, contract).filter((e) => e.type === 'step.finished' && e.data.run_id === r.json.run_id);
  expect(finished.map((e) => e.data.step.question)).toEqual([packet.question]);
  return r.json;
}

describe('AT-AGENT-06-clarify-one-question-rule', () => {
  it('a missing required field: one question for the first missing field, relayed verbatim; after 2 clarify attempts the Finder refuses', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'missing', simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme' } }, { id: 'after', utterance: 'ping' }]));
    const first = expectClarify(ws, 'missing', 'SIM_FINDER_CLARIFY_MISSING_FIELD', ['send invoice', '--field', 'customer=acme']);
    expect(first.steps[0].question).toContain('amount');

    // The attempt counter comes from the recorded clarifications: attempt 2 asks again (the same question) …
    const second = expectClarify(ws, 'missing', 'SIM_FINDER_CLARIFY_MISSING_FIELD', ['send invoice', '--field', 'customer=acme', '--attempt', '2']);
    expect(second.run_id).toBe('missing-run-2');

    // … attempt 3 is the Finder's refusal, with no question at all.
    const refusal = ok(ws, ['find', 'send invoice', '--field', 'customer=acme', '--attempt', '3']).packet;
    expect(refusal).toMatchObject({ type: 'RefusePacket', reason_code: 'SIM_FINDER_REFUSE_AMBIGUOUS' });
    const third = kj(ws, ['run', 'missing'], asAlice);
    expect(third.code).toBe(3);
    expect(third.json).toMatchObject({ state: 'FAILED', error: { code: 'SIM_FINDER_REFUSE_AMBIGUOUS', message: refusal.message } });
    expect(third.json.steps[0]).toMatchObject({ status: 'REFUSED', reason_code: 'SIM_FINDER_REFUSE_AMBIGUOUS' });
    expect(third.json.steps[0].question).toBeUndefined();
    expect(ledgerRows(ws, "contract_id = 'missing'").map((x) => x.reason_code)).toEqual([
      'SIM_FINDER_CLARIFY_MISSING_FIELD',
      'SIM_FINDER_CLARIFY_MISSING_FIELD',
      'SIM_FINDER_REFUSE_AMBIGUOUS',
    ]);
    // The packets the dispatcher recorded carry the attempt counter 1, 2, 3.
    const attempts = ledgerRows(ws, "contract_id = 'missing'").map((x) => JSON.parse(tableRows(ws, 'aec_refs', 'ref = ?', x.finder_packet_ref)[0].body).attempt);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('two candidates within the margin: SIM_FINDER_CLARIFY_AMBIGUOUS, one question naming both, relayed verbatim', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'ambiguous', simPlan([{ id: 'export', utterance: 'export the monthly report' }]));
    const j = expectClarify(ws, 'ambiguous', 'SIM_FINDER_CLARIFY_AMBIGUOUS', ['export the monthly report']);
    expect(j.steps[0].question).toContain('export-csv');
    expect(j.steps[0].question).toContain('export-pdf');
  });

  it('a top-1 below high confidence: SIM_FINDER_CLARIFY_LOW_CONFIDENCE, one question, relayed verbatim', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'unsure', simPlan([{ id: 'check', utterance: 'are you there now' }]));
    const j = expectClarify(ws, 'unsure', 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE', ['are you there now']);
    expect(j.steps[0].question).toContain('ping');
  });
});
