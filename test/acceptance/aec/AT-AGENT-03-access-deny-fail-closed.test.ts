/**
 * Seed 001 §13 AT-AGENT-03, §8 (access precheck, fail closed; the SimulationExecutor re-enforces
 * access as the final hard gate); SPEC §9.3, §9.5 (no matching rule → deny; require-ap →
 * ACCESS_AP_REQUIRED; each decision appended with the policy snapshot version), §14 (any actor may
 * run an approved contract). Through the built CLI; the executor's own gate also in-process.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../../../src/store/sqlite/db.js';
import { accessRepo } from '../../../src/lanes/aec/access.js';
import { catalogRepo } from '../../../src/lanes/aec/catalog.js';
import { ledgerRepo } from '../../../src/lanes/aec/ledger.js';
import { executeSimulation, type DispatchEnvelope } from '../../../src/lanes/aec/executor.js';
import type { Json } from '../../helpers/cli.js';
import { NOW, cloneWorkspace, kj, makeTempDir, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, catalogWorkspace, ledgerRows, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

const INVOICE = { id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } };

/** Contract `inv` (one send-invoice step) approved by alice, not run yet. */
let base: string;

beforeAll(() => {
  base = catalogWorkspace();
  approveContract(base, 'inv', simPlan([INVOICE]));
});

const as = (actor: string) => ({ env: { KAIR_ACTOR: actor } });

/** Runs `inv` as `actor` (confirming, so the access gate is reached) and checks the fail-closed refusal. */
function expectRefused(ws: string, actor: string, code: 'ACCESS_SCOPE_VIOLATION' | 'ACCESS_AP_REQUIRED', decision: 'deny' | 'require-ap', rule: Json) {
  const policyVersion = ok(ws, ['access', 'list']).policy_snapshot_version;
  const r = kj(ws, ['run', 'inv', '--confirm', 'yes'], as(actor));
  expect(r.code, r.stdout + r.stderr).toBe(3);
  expect(r.json).toMatchObject({ ok: false, contract_id: 'inv', state: 'FAILED', status: 'FAILED', error: { code, details: { step_id: 'send' } } });
  expect(r.json.steps).toEqual([expect.objectContaining({ id: 'send', status: 'REFUSED', reason_code: code, simulation_id: 'send-invoice' })]);
  expect(ok(ws, ['status', 'inv']).contract.state).toBe('FAILED');

  // One access decision, by the precheck, with the policy snapshot version in force.
  const decisions = tableRows(ws, 'agent_execution_access_decision_ledger', 'run_id = ?', r.json.run_id);
  expect(decisions).toEqual([
    expect.objectContaining({ actor, action: 'invoice:send', decision, checked_by: 'precheck', policy_snapshot_version: policyVersion, step_id: 'send', correlation_id: 'inv:v1' }),
  ]);
  expect(decisions[0].rule === null ? null : JSON.parse(decisions[0].rule)).toEqual(rule);

  // The halt links that decision; nothing was claimed or executed.
  const rows = ledgerRows(ws, 'run_id = ?', r.json.run_id);
  expect(rows.map((x) => [x.event, x.reason_code, x.actor])).toEqual([['HALTED', code, actor]]);
  expect(rows[0].access_decision_id).toBe(decisions[0].id);
  expect(rows[0].policy_snapshot_ref).toBe(`policy:v${policyVersion}`);
  expect(r.json.steps[0].proof_refs).toContain(`access_decision:${decisions[0].id}`);
  expect(ledgerRows(ws, "event IN ('CLAIMED', 'SUCCEEDED', 'FAILED', 'REJECTED')")).toEqual([]);
  expect(tableRows(ws, 'agent_execution_access_decision_ledger', "checked_by = 'executor'")).toEqual([]);
  return r.json;
}

describe('AT-AGENT-03-access-deny-fail-closed', () => {
  it('an actor with no rule is denied (fail closed): ACCESS_SCOPE_VIOLATION, exit 3, FAILED, no claim', () => {
    const ws = cloneWorkspace(base);
    expectRefused(ws, 'dave', 'ACCESS_SCOPE_VIOLATION', 'deny', null);
  });

  it('an explicit deny rule (bob): ACCESS_SCOPE_VIOLATION; once the policy allows him, a retry under the same approval dispatches', () => {
    const ws = cloneWorkspace(base);
    expectRefused(ws, 'bob', 'ACCESS_SCOPE_VIOLATION', 'deny', { actor: 'bob', action: 'invoice:send', decision: 'deny' });

    const allowed = ok(ws, ['access', 'allow', 'bob', 'invoice:send']);
    const retry = kj(ws, ['run', 'inv', '--confirm', 'yes'], as('bob'));
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.json).toMatchObject({ run_id: 'inv-run-2', state: 'COMPLETED' });
    expect(retry.json.steps[0]).toMatchObject({ status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK' });
    // The new decisions carry the new policy version; the executor re-checked access itself.
    expect(tableRows(ws, 'agent_execution_access_decision_ledger', "run_id = 'inv-run-2'").map((x) => [x.actor, x.decision, x.checked_by, x.policy_snapshot_version])).toEqual([
      ['bob', 'allow', 'precheck', allowed.policy_snapshot_version],
      ['bob', 'allow', 'executor', allowed.policy_snapshot_version],
    ]);
  });

  it('a require-ap rule (carol): ACCESS_AP_REQUIRED, exit 3, FAILED, no claim', () => {
    const ws = cloneWorkspace(base);
    expectRefused(ws, 'carol', 'ACCESS_AP_REQUIRED', 'require-ap', { actor: 'carol', action: 'invoice:send', decision: 'require-ap' });
  });

  it('the SimulationExecutor re-enforces access itself as the final gate (in-process, an envelope for a denied actor)', () => {
    const db = openDb(':memory:');
    try {
      const by = { actor: 'tester', now: NOW };
      catalogRepo(db).registerSimulation({ id: 'ping', title: 'Ping', examples: ['ping'], required_fields: [], impact: 'none', access_action: 'system:ping', executor: { kind: 'builtin', name: 'noop' } }, by);
      catalogRepo(db).setStatus('ping', 'Active', NOW);
      accessRepo(db).setRule('carol', 'system:ping', 'require-ap', by);
      const root = makeTempDir('kair-at03-');
      const envelope = (user: string): DispatchEnvelope => ({
        correlation_id: 'c:v1',
        tenant_id: 'ws_test',
        user_id: user,
        step_id: 's',
        simulation_id: 'ping',
        required_fields: {},
        confirmation_proof_ref: null,
        access_action: 'system:ping',
        idempotency_key: 'k',
        policy_snapshot_ref: 'policy:v1',
        artifact_fingerprint_bundle_ref: 'fingerprints:x',
        rollback_plan_ref: null,
      });
      const deps = { db, ledger: ledgerRepo(db), ws: { root, kairDir: join(root, '.kair') }, run_id: 'c-run-1', controls_granted: [], now: () => NOW } as Parameters<typeof executeSimulation>[1];
      /** The executor's own access decision, whether it hands it back or records it itself. */
      const decisionOf = (res: unknown): Json => {
        const r = res as { access_decision?: Json; access_decision_id?: number };
        return r.access_decision ?? db.prepare('SELECT * FROM agent_execution_access_decision_ledger WHERE id = ?').get(r.access_decision_id);
      };

      const dave = executeSimulation(envelope('dave'), deps);
      expect(dave).toMatchObject({ event: 'REJECTED', reason_code: 'ACCESS_SCOPE_VIOLATION', outcome: { rejected_by: 'SimulationExecutor' } });
      expect(decisionOf(dave)).toMatchObject({ actor: 'dave', action: 'system:ping', decision: 'deny', checked_by: 'executor', policy_snapshot_version: 1 });
      const carol = executeSimulation(envelope('carol'), deps);
      expect(carol).toMatchObject({ event: 'REJECTED', reason_code: 'ACCESS_AP_REQUIRED', outcome: { rejected_by: 'SimulationExecutor' } });
      expect(decisionOf(carol)).toMatchObject({ actor: 'carol', decision: 'require-ap', checked_by: 'executor', policy_snapshot_version: 1 });
    } finally {
      db.close();
    }
  });
});
