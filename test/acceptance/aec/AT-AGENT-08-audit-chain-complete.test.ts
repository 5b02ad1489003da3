/**
 * Seed 001 §13 AT-AGENT-08, §10 (every step appends a ledger row linking the simulation entry,
 * access decision, confirmation and rollback ref; the chain is reconstructable), §17.2 (each
 * decision persists finder_packet_ref, policy_snapshot_ref, catalog_snapshot_ref,
 * access_decision_ref, confirmation_parse_proof_ref, idempotency_key, rollback_plan_ref; replay
 * gives the same decision), §14 (refs present; a step without policy snapshot or artifact
 * fingerprint refs fails); SPEC §9.3 (the seed's records persisted with the seed's field names;
 * AEC_ROLLBACK_REF_MISSING), §9.6 (`aec replay`), §11 (`verify` checks the ledger projection).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalHash } from '../../../src/domain/canonical.js';
import type { GateFacts } from '../../../src/domain/aec/gates.js';
import { decideGates } from '../../../src/domain/aec/gates.js';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, configFile, kj, makeWorkspace, readJson, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, ledgerRows, passingFacts, registerSimulation, setUpCatalog, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

const FIELDS = { customer: 'acme', amount: '120' };

/** `audit` (ping, then send-invoice) run with --confirm yes to COMPLETED. */
let ws: string;
let run: Json;

beforeAll(() => {
  ws = makeWorkspace();
  setUpCatalog(ws);
  approveContract(ws, 'audit', simPlan([{ id: 'ping', utterance: 'ping' }, { id: 'send', utterance: 'send invoice', fields: FIELDS }]));
  run = kj(ws, ['run', 'audit', '--confirm', 'yes'], asAlice);
});

const ref = (r: string): Json => {
  const rows = tableRows(ws, 'aec_refs', 'ref = ?', r);
  expect(rows, `aec_refs has ${r}`).toHaveLength(1);
  return JSON.parse(rows[0].body);
};
const sortedKeys = (o: object) => Object.keys(o).sort();

const SEED = {
  // Seed 001 §2.2 (dispatch envelope) and §4.1–§4.4.
  envelope: ['correlation_id', 'tenant_id', 'user_id', 'step_id', 'simulation_id', 'required_fields', 'confirmation_proof_ref', 'access_action', 'idempotency_key', 'policy_snapshot_ref', 'artifact_fingerprint_bundle_ref', 'rollback_plan_ref'],
  goal_request: ['correlation_id', 'tenant_id', 'user_id', 'thread_id', 'raw_user_utterance', 'normalized_intent', 'sim_finder_packet', 'confirm_state', 'idempotency_key', 'attempt_counter'],
  execution_plan: ['plan_id', 'finder_packet_ref', 'ordered_steps', 'required_confirmations', 'risk_level', 'access_actions_required', 'policy_snapshot_ref', 'created_at'],
  agent_step: ['step_id', 'simulation_id', 'required_fields', 'required_fields_fingerprint', 'policy_snapshot_version', 'confirmation_required', 'access_action', 'idempotency_key_recipe', 'retry_policy', 'rollback_plan_ref'],
  outcome: ['step_id', 'simulation_outcome', 'audit_event_id', 'proof_refs', 'dispatch_decision_hash', 'next_step', 'reason_code', 'user_visible_text'],
};

const facts = (over: Partial<GateFacts> = {}): GateFacts => passingFacts({ policy_snapshot_ref: 'policy:v6', ...over });

describe('AT-AGENT-08-audit-chain-complete', () => {
  it('every ledger row links the finder packet, catalog snapshot, policy snapshot, fingerprint bundle and decision, all stored and content-addressed', () => {
    expect(run.code, JSON.stringify(run.json)).toBe(0);
    expect(run.json.steps.map((s: Json) => s.status)).toEqual(['COMPLETED', 'COMPLETED']);
    const rows = ledgerRows(ws, "contract_id = 'audit'");
    expect(rows.map((x) => [x.step_id, x.event])).toEqual([
      ['ping', 'CLAIMED'],
      ['ping', 'SUCCEEDED'],
      ['send', 'CLAIMED'],
      ['send', 'SUCCEEDED'],
    ]);
    for (const row of rows) {
      for (const col of ['finder_packet_ref', 'catalog_snapshot_ref', 'policy_snapshot_ref', 'artifact_fingerprint_bundle_ref', 'decision_ref', 'dispatch_envelope_ref']) {
        expect(row[col], `${row.event} ${row.step_id} ${col}`).toEqual(expect.any(String));
        ref(row[col]);
      }
      expect(row.idempotency_key).toMatch(/^[0-9a-f]{64}$/);
      expect(row.dispatch_decision_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row.access_decision_id).toEqual(expect.any(Number));
      // Content-addressed refs name the sha256 of their canonical body.
      for (const col of ['finder_packet_ref', 'catalog_snapshot_ref', 'artifact_fingerprint_bundle_ref', 'decision_ref', 'dispatch_envelope_ref']) {
        const [kind, hash] = (row[col] as string).split(':');
        expect(hash, `${row[col]} is the hash of its body`).toBe(canonicalHash(ref(row[col])));
        expect(kind).toMatch(/^[a-z]+$/);
      }
      expect(ref(row.policy_snapshot_ref)).toMatchObject({ version: Number(row.policy_snapshot_ref.slice('policy:v'.length)), rules: expect.any(Array) });
    }
  });

  it('the impactful claim links its access decision, its confirmation and its rollback plan, and the envelope carries all of them', () => {
    const [claim, success] = ledgerRows(ws, "contract_id = 'audit' AND step_id = 'send'");
    expect(claim.event).toBe('CLAIMED');

    const access = tableRows(ws, 'agent_execution_access_decision_ledger', 'id = ?', claim.access_decision_id);
    expect(access).toEqual([expect.objectContaining({ actor: 'alice', action: 'invoice:send', decision: 'allow', checked_by: 'precheck', step_id: 'send', correlation_id: 'audit:v1' })]);
    expect(claim.policy_snapshot_ref).toBe(`policy:v${access[0].policy_snapshot_version}`);
    // The outcome row links the executor's own (final) access decision.
    expect(tableRows(ws, 'agent_execution_access_decision_ledger', 'id = ?', success.access_decision_id)).toEqual([expect.objectContaining({ actor: 'alice', decision: 'allow', checked_by: 'executor' })]);

    const PROOF = 'confirm_parse:kair.confirm.v1:en:yes:affirmative';
    expect(tableRows(ws, 'agent_execution_confirmation_ledger', 'id = ?', claim.confirmation_id)).toEqual([expect.objectContaining({ step_id: 'send', result: 'affirmative', proof_ref: PROOF })]);
    expect(claim.confirmation_proof_ref).toBe(PROOF);
    expect(success.confirmation_id).toBe(claim.confirmation_id);

    expect(ref(claim.rollback_plan_ref)).toMatchObject({ simulation_id: 'void-invoice', for_simulation_id: 'send-invoice', step_id: 'send' });
    expect(success.rollback_plan_ref).toBe(claim.rollback_plan_ref);

    const workspaceId = readJson(configFile(ws)).workspace_id;
    const envelope = ref(claim.dispatch_envelope_ref);
    expect(sortedKeys(envelope)).toEqual([...SEED.envelope].sort());
    expect(envelope).toEqual({
      correlation_id: 'audit:v1',
      tenant_id: workspaceId,
      user_id: 'alice',
      step_id: 'send',
      simulation_id: 'send-invoice',
      required_fields: FIELDS,
      confirmation_proof_ref: PROOF,
      access_action: 'invoice:send',
      idempotency_key: claim.idempotency_key,
      policy_snapshot_ref: claim.policy_snapshot_ref,
      artifact_fingerprint_bundle_ref: claim.artifact_fingerprint_bundle_ref,
      rollback_plan_ref: claim.rollback_plan_ref,
    });
    expect(claim.tenant_id).toBe(workspaceId);

    // The run's step lists the proofs: access decisions, confirmation, rollback, envelope, decision.
    const step = run.json.steps[1];
    for (const r of [`access_decision:${claim.access_decision_id}`, `access_decision:${success.access_decision_id}`, PROOF, claim.rollback_plan_ref, claim.dispatch_envelope_ref, claim.decision_ref, claim.finder_packet_ref, claim.policy_snapshot_ref]) {
      expect(step.proof_refs).toContain(r);
    }
  });

  it("the decision record holds the seed's AgentGoalRequest, AgentExecutionPlan and AgentStep with the seed's field names", () => {
    const [claim] = ledgerRows(ws, "contract_id = 'audit' AND step_id = 'send' AND event = 'CLAIMED'");
    const decision = ref(claim.decision_ref);
    expect(decision.verdict).toMatchObject({ dispatch: true, attempt: 1 });
    expect(decision.facts).toMatchObject({ packet_type: 'SimulationMatchPacket', impact: 'impactful', confirmation: 'affirmative', access: 'allow', catalog: { registered: true, status: 'Active' } });
    const { goal_request, execution_plan, agent_step } = decision.records;
    expect(sortedKeys(goal_request)).toEqual(expect.arrayContaining([...SEED.goal_request].sort()));
    expect(sortedKeys(execution_plan)).toEqual(expect.arrayContaining([...SEED.execution_plan].sort()));
    expect(sortedKeys(agent_step)).toEqual(expect.arrayContaining([...SEED.agent_step].sort()));
    expect(goal_request).toMatchObject({ correlation_id: 'audit:v1', user_id: 'alice', raw_user_utterance: 'send invoice', sim_finder_packet: claim.finder_packet_ref, idempotency_key: claim.idempotency_key });
    expect(execution_plan).toMatchObject({ plan_id: 'audit:v1/send', finder_packet_ref: claim.finder_packet_ref, ordered_steps: ['send'], required_confirmations: ['send'], risk_level: 'impactful', access_actions_required: ['invoice:send'], policy_snapshot_ref: claim.policy_snapshot_ref });
    expect(agent_step).toMatchObject({ step_id: 'send', simulation_id: 'send-invoice', required_fields_fingerprint: claim.required_fields_fingerprint, confirmation_required: true, access_action: 'invoice:send', rollback_plan_ref: claim.rollback_plan_ref });
  });

  it("the outcome row persists the seed's AgentExecutionOutcome with the seed's field names (§4.4, including audit_event_id)", () => {
    const [, success] = ledgerRows(ws, "contract_id = 'audit' AND step_id = 'send'");
    const outcome = JSON.parse(success.outcome);
    expect(outcome).toMatchObject({ step_id: 'send', reason_code: 'AEC_DISPATCH_OK', simulation_outcome: { executor: 'echo', fields: FIELDS }, dispatch_decision_hash: success.dispatch_decision_hash });
    expect(sortedKeys(outcome)).toEqual(expect.arrayContaining([...SEED.outcome].sort()));
  });

  it('`kair aec replay` re-decides every decision of the run from the persisted refs (exit 0) and `kair verify` passes (exit 0)', () => {
    const replay = kj(ws, ['aec', 'replay', 'audit-run-1']);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    expect(replay.json).toMatchObject({ ok: true, run_id: 'audit-run-1' });
    const claims = ledgerRows(ws, "run_id = 'audit-run-1' AND event IN ('CLAIMED', 'HALTED', 'REPLAYED')");
    expect(replay.json.decisions.map((d: Json) => d.row_id)).toEqual(claims.map((x) => x.row_id));
    for (const d of replay.json.decisions) expect(d).toMatchObject({ same: true, problems: [], recorded: { dispatch: true }, replayed: { dispatch: true, reason_code: 'AEC_DISPATCH_OK' } });

    const verify = kj(ws, ['verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.json).toMatchObject({ ok: true, problems: [] });
  });

  it('an impactful simulation whose rollback simulation is not registered is refused before dispatch: AEC_ROLLBACK_REF_MISSING, exit 3', () => {
    const w = cloneWorkspace(ws);
    registerSimulation(
      w,
      { id: 'refund-payment', title: 'Refund a payment', examples: ['refund the payment'], required_fields: [], impact: 'irreversible', access_action: 'payment:refund', rollback_simulation_id: 'recharge-payment', executor: { kind: 'builtin', name: 'noop' } },
      { allow: 'alice' },
    );
    approveContract(w, 'refund', simPlan([{ id: 'refund', utterance: 'refund the payment' }]));
    const r = kj(w, ['run', 'refund', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.json).toMatchObject({ state: 'FAILED', error: { code: 'AEC_ROLLBACK_REF_MISSING' } });
    expect(r.json.steps[0]).toMatchObject({ status: 'REFUSED', reason_code: 'AEC_ROLLBACK_REF_MISSING', simulation_id: 'refund-payment' });
    expect(ledgerRows(w, "contract_id = 'refund'").map((x) => [x.event, x.reason_code, x.confirmation_id, x.access_decision_id])).toEqual([['HALTED', 'AEC_ROLLBACK_REF_MISSING', null, null]]);
  });

  it('a step lacking its policy snapshot or artifact fingerprint refs never dispatches (in-process, crafted facts)', () => {
    expect(decideGates(facts())).toMatchObject({ dispatch: true });
    expect(decideGates(facts({ policy_snapshot_ref: null }))).toEqual({ dispatch: false, replay: false, reason_code: 'AEC_POLICY_SNAPSHOT_MISSING', reached: ['packet', 'refs'] });
    expect(decideGates(facts({ artifact_fingerprint_bundle_ref: null }))).toEqual({ dispatch: false, replay: false, reason_code: 'AEC_ARTIFACT_FINGERPRINT_MISSING', reached: ['packet', 'refs'] });
    expect(decideGates(facts({ rollback: { simulation_id: null, registered: false } }))).toMatchObject({ dispatch: false, reason_code: 'AEC_ROLLBACK_REF_MISSING' });
    expect(decideGates(facts({ rollback: { simulation_id: 'void-invoice', registered: false } }))).toMatchObject({ dispatch: false, reason_code: 'AEC_ROLLBACK_REF_MISSING' });
    // Missing refs win over everything after them, even a stored success (no replay without refs).
    const succeeded = { kind: 'succeeded', attempt: 1, idempotency_key: 'k', row_id: 1, same_target: true } as const;
    expect(decideGates(facts({ policy_snapshot_ref: null, idempotency: succeeded }))).toMatchObject({ reason_code: 'AEC_POLICY_SNAPSHOT_MISSING' });
    expect(decideGates(facts({ artifact_fingerprint_bundle_ref: '', access: 'deny' }))).toMatchObject({ reason_code: 'AEC_ARTIFACT_FINGERPRINT_MISSING' });
  });
});
