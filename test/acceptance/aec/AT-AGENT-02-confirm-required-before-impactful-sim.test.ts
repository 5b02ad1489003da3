/**
 * Seed 001 §13 AT-AGENT-02, §7 (no confirm, no dispatch); SPEC §9.3 (confirmation gate), §9.4
 * (proof `confirm_parse:kair.confirm.v1:<lang>:<token>:<result>`, a token answers only the first
 * confirmation), §14 "Pause and revoke" (pause.reason). Through the built CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, kj, makeWorkspace, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, ledgerRows, setUpCatalog, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

const INVOICE = { id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } };

/** A workspace where contract `inv` (one send-invoice step) was run without --confirm and paused. */
let paused: string;
let firstRun: Json;

beforeAll(() => {
  paused = makeWorkspace();
  setUpCatalog(paused);
  approveContract(paused, 'inv', simPlan([INVOICE]));
  const r = kj(paused, ['run', 'inv'], asAlice);
  firstRun = { code: r.code, json: r.json };
});

/** Nothing reached the SimulationExecutor: no claim, no outcome, no executor access check, no envelope. */
function expectNoDispatch(ws: string, contract: string): void {
  const events = ledgerRows(ws, 'contract_id = ?', contract).map((x) => x.event);
  expect(events).not.toContain('CLAIMED');
  expect(events).not.toContain('SUCCEEDED');
  expect(events).not.toContain('FAILED');
  expect(tableRows(ws, 'agent_execution_access_decision_ledger', "checked_by = 'executor'")).toEqual([]);
  expect(tableRows(ws, 'aec_refs', "kind = 'envelope'")).toEqual([]);
}

describe('AT-AGENT-02-confirm-required-before-impactful-sim', () => {
  it('an impactful step without --confirm pauses the run: exit 3, AEC_CONFIRM_REQUIRED, PAUSED, nothing dispatched', () => {
    expect(firstRun.code).toBe(3);
    const j = firstRun.json;
    expect(j).toMatchObject({ ok: false, contract_id: 'inv', run_id: 'inv-run-1', state: 'PAUSED', status: 'PAUSED' });
    expect(j.error.code).toBe('AEC_CONFIRM_REQUIRED');
    expect(j.error.details).toMatchObject({ step_id: 'send' });
    expect(j.steps).toEqual([expect.objectContaining({ id: 'send', lane: 'aec', status: 'PAUSED', reason_code: 'AEC_CONFIRM_REQUIRED', simulation_id: 'send-invoice' })]);

    const c = ok(paused, ['status', 'inv']).contract;
    expect(c.state).toBe('PAUSED');
    expect(c.pause).toMatchObject({ reason: 'AEC_CONFIRM_REQUIRED', step_id: 'send' });

    // The decision is on record (HALTED), with no confirmation and no access decision: the gate
    // stopped the cycle before access and before the executor.
    expect(ledgerRows(paused, 'contract_id = ?', 'inv').map((x) => [x.event, x.reason_code])).toEqual([['HALTED', 'AEC_CONFIRM_REQUIRED']]);
    expect(tableRows(paused, 'agent_execution_confirmation_ledger')).toEqual([]);
    expect(tableRows(paused, 'agent_execution_access_decision_ledger')).toEqual([]);
    expectNoDispatch(paused, 'inv');
  });

  it('resume --confirm yes dispatches: exit 0, COMPLETED, confirmation row with proof confirm_parse:kair.confirm.v1:en:yes:affirmative', () => {
    const ws = cloneWorkspace(paused);
    const r = kj(ws, ['resume', 'inv', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, run_id: 'inv-run-1', state: 'COMPLETED', status: 'COMPLETED' });
    const step = r.json.steps[0];
    expect(step).toMatchObject({ id: 'send', status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK', simulation_id: 'send-invoice', outcome: { executor: 'echo', fields: INVOICE.fields } });
    const PROOF = 'confirm_parse:kair.confirm.v1:en:yes:affirmative';
    expect(step.proof_refs).toContain(PROOF);

    const confirmations = tableRows(ws, 'agent_execution_confirmation_ledger');
    expect(confirmations).toEqual([
      expect.objectContaining({ run_id: 'inv-run-1', step_id: 'send', actor: 'alice', lexicon: 'kair.confirm.v1', lang: 'en', token: 'yes', normalized: 'yes', result: 'affirmative', source: 'flag', proof_ref: PROOF }),
    ]);
    const rows = ledgerRows(ws, 'contract_id = ?', 'inv');
    expect(rows.map((x) => [x.event, x.reason_code])).toEqual([
      ['HALTED', 'AEC_CONFIRM_REQUIRED'],
      ['CLAIMED', 'AEC_DISPATCH_OK'],
      ['SUCCEEDED', 'AEC_DISPATCH_OK'],
    ]);
    const claim = rows[1];
    expect(claim.confirmation_id).toBe(confirmations[0].id);
    expect(claim.confirmation_proof_ref).toBe(PROOF);
    expect(ok(ws, ['status', 'inv']).contract.state).toBe('COMPLETED');
  });

  it('resume --confirm no declines: exit 3, AEC_CONFIRM_DECLINED, the run FAILED, nothing dispatched', () => {
    const ws = cloneWorkspace(paused);
    const r = kj(ws, ['resume', 'inv', '--confirm', 'no'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ ok: false, state: 'FAILED', status: 'FAILED', error: { code: 'AEC_CONFIRM_DECLINED' } });
    expect(r.json.steps[0]).toMatchObject({ id: 'send', status: 'REFUSED', reason_code: 'AEC_CONFIRM_DECLINED' });
    expect(tableRows(ws, 'agent_execution_confirmation_ledger')).toEqual([
      expect.objectContaining({ token: 'no', result: 'negative', proof_ref: 'confirm_parse:kair.confirm.v1:en:no:negative' }),
    ]);
    expect(ok(ws, ['status', 'inv']).contract.state).toBe('FAILED');
    expectNoDispatch(ws, 'inv');
  });

  it('resume --confirm ok is ambiguous: exit 3, AEC_CONFIRM_AMBIGUOUS_REJECTED, stays PAUSED; a later yes still dispatches', () => {
    const ws = cloneWorkspace(paused);
    const r = kj(ws, ['resume', 'inv', '--confirm', 'ok'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ ok: false, state: 'PAUSED', status: 'PAUSED', error: { code: 'AEC_CONFIRM_AMBIGUOUS_REJECTED' } });
    expect(r.json.steps[0]).toMatchObject({ id: 'send', status: 'PAUSED', reason_code: 'AEC_CONFIRM_AMBIGUOUS_REJECTED' });
    expect(ok(ws, ['status', 'inv']).contract.pause).toMatchObject({ reason: 'AEC_CONFIRM_AMBIGUOUS_REJECTED', step_id: 'send' });
    expect(tableRows(ws, 'agent_execution_confirmation_ledger')).toEqual([
      expect.objectContaining({ token: 'ok', result: 'ambiguous', proof_ref: 'confirm_parse:kair.confirm.v1:en:ok:ambiguous' }),
    ]);
    expectNoDispatch(ws, 'inv');

    const again = kj(ws, ['resume', 'inv', '--confirm', 'yes'], asAlice);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.json.steps[0]).toMatchObject({ status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK' });
    expect(ledgerRows(ws, "contract_id = 'inv' AND event = 'SUCCEEDED'")).toHaveLength(1);
  });

  it('run --confirm answers only the first confirmation: a second impactful step pauses again before dispatch', () => {
    const ws = cloneWorkspace(paused);
    approveContract(ws, 'pair', simPlan([INVOICE, { ...INVOICE, id: 'send-again', fields: { customer: 'globex', amount: '80' } }]));
    const r = kj(ws, ['run', 'pair', '--confirm', 'yes'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ state: 'PAUSED', error: { code: 'AEC_CONFIRM_REQUIRED', details: { step_id: 'send-again' } } });
    expect(r.json.steps.map((s: Json) => [s.id, s.status, s.reason_code])).toEqual([
      ['send', 'COMPLETED', 'AEC_DISPATCH_OK'],
      ['send-again', 'PAUSED', 'AEC_CONFIRM_REQUIRED'],
    ]);
    expect(ledgerRows(ws, "contract_id = 'pair' AND step_id = 'send-again'").map((x) => x.event)).toEqual(['HALTED']);
    expect(tableRows(ws, 'agent_execution_confirmation_ledger', "correlation_id = 'pair:v1'").map((x) => [x.step_id, x.result])).toEqual([['send', 'affirmative']]);

    const done = kj(ws, ['resume', 'pair', '--confirm', 'confirm'], asAlice);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.json.steps.map((s: Json) => s.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(ledgerRows(ws, "contract_id = 'pair' AND event = 'SUCCEEDED'").map((x) => x.step_id)).toEqual(['send', 'send-again']);
  });
});
