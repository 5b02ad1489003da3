/**
 * Seed 001 §13 AT-AGENT-04, §8 (ACTIVE enforcement, fail closed on SIMULATION_NOT_REGISTERED /
 * SIMULATION_NOT_ACTIVE; the SimulationExecutor re-checks ACTIVE); SPEC §9.2 (a Draft top-1 →
 * SIM_FINDER_SIMULATION_INACTIVE; Deprecated/Disabled → SIM_FINDER_REFUSE_POLICY_BLOCKED), §14 "AEC
 * details" (from the CLI a non-Active top-1 yields the Finder's code; SIMULATION_NOT_* are tested
 * in-process with crafted inputs).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateFacts } from '../../../src/domain/aec/gates.js';
import { decideGates } from '../../../src/domain/aec/gates.js';
import { exitCodeOf } from '../../../src/domain/errors.js';
import { executeSimulation, type DispatchEnvelope } from '../../../src/lanes/aec/executor.js';
import { accessRepo } from '../../../src/lanes/aec/access.js';
import { catalogRepo } from '../../../src/lanes/aec/catalog.js';
import { ledgerRepo } from '../../../src/lanes/aec/ledger.js';
import { openDb } from '../../../src/store/sqlite/db.js';
import type { Json } from '../../helpers/cli.js';
import { NOW, cloneWorkspace, kj, makeTempDir, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, passingFactsNoImpact, registerSimulation, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);


/** Fixtures Active + `archive-report` registered but left Draft; `ping-c` (a ping step) and `archive-c` approved. */
let base: string;

beforeAll(() => {
  base = catalogWorkspace();
  registerSimulation(
    base,
    { id: 'archive-report', title: 'Archive the report', examples: ['archive the report'], required_fields: [], impact: 'none', access_action: 'report:archive', executor: { kind: 'builtin', name: 'noop' } },
    { activate: false, allow: 'alice' },
  );
  approveContract(base, 'ping-c', simPlan([{ id: 'ping', utterance: 'ping' }]));
  approveContract(base, 'archive-c', simPlan([{ id: 'archive', utterance: 'archive the report' }]));
});

/** `kair run` refused by the Finder's non-Active top-1: exit 3, FAILED, a HALTED row, no access check, no claim. */
function expectRefused(ws: string, contract: string, code: string, simulation: string): Json {
  const r = kj(ws, ['run', contract], asAlice);
  expect(r.code, r.stdout + r.stderr).toBe(3);
  expect(r.json).toMatchObject({ ok: false, contract_id: contract, state: 'FAILED', status: 'FAILED', error: { code } });
  expect(r.json.steps[0]).toMatchObject({ lane: 'aec', status: 'REFUSED', reason_code: code, simulation_id: simulation });
  const rows = ledgerRows(ws, 'run_id = ?', r.json.run_id);
  expect(rows.map((x) => [x.event, x.reason_code, x.dispatch_envelope_ref, x.access_decision_id])).toEqual([['HALTED', code, null, null]]);
  expect(tableRows(ws, 'agent_execution_access_decision_ledger', 'run_id = ?', r.json.run_id)).toEqual([]);
  expect(ledgerRows(ws, "contract_id = ? AND event <> 'HALTED'", contract)).toEqual([]);
  return r.json;
}

const permissive = (over: Partial<GateFacts> = {}): GateFacts => passingFactsNoImpact({ access: 'allow', ...over });

describe('AT-AGENT-04-sim-not-active-fail-closed', () => {
  it('a Draft top-1 is refused (SIM_FINDER_SIMULATION_INACTIVE, exit 3) and dispatches nothing until it is activated', () => {
    const ws = cloneWorkspace(base);
    const find = ok(ws, ['find', 'archive the report']).packet;
    expect(find).toMatchObject({ type: 'RefusePacket', reason_code: 'SIM_FINDER_SIMULATION_INACTIVE', simulation_id: 'archive-report' });

    const j = expectRefused(ws, 'archive-c', 'SIM_FINDER_SIMULATION_INACTIVE', 'archive-report');
    expect(j.error.message).toBe(find.message);
    expect(ok(ws, ['status', 'archive-c']).contract.state).toBe('FAILED');

    ok(ws, ['sim', 'activate', 'archive-report']);
    const retry = kj(ws, ['run', 'archive-c'], asAlice);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.json.steps[0]).toMatchObject({ status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK', simulation_id: 'archive-report' });
  });

  it('a Deprecated or Disabled top-1 is refused (SIM_FINDER_REFUSE_POLICY_BLOCKED, exit 3); re-activated, the retry dispatches', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['sim', 'deprecate', 'ping']);
    expect(ok(ws, ['find', 'ping']).packet).toMatchObject({ type: 'RefusePacket', reason_code: 'SIM_FINDER_REFUSE_POLICY_BLOCKED', simulation_id: 'ping' });
    expectRefused(ws, 'ping-c', 'SIM_FINDER_REFUSE_POLICY_BLOCKED', 'ping');

    ok(ws, ['sim', 'disable', 'ping']);
    const j = expectRefused(ws, 'ping-c', 'SIM_FINDER_REFUSE_POLICY_BLOCKED', 'ping');
    expect(j.run_id).toBe('ping-c-run-2');

    ok(ws, ['sim', 'activate', 'ping']);
    const retry = kj(ws, ['run', 'ping-c'], asAlice);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.json).toMatchObject({ run_id: 'ping-c-run-3', state: 'COMPLETED' });
    expect(ledgerRows(ws, "contract_id = 'ping-c'").map((x) => x.event)).toEqual(['HALTED', 'HALTED', 'CLAIMED', 'SUCCEEDED']);
  });

  it('the catalog gate fails closed (in-process, crafted facts): SIMULATION_NOT_REGISTERED, SIMULATION_NOT_ACTIVE for every non-Active status, exit 3', () => {
    expect(decideGates(permissive())).toMatchObject({ dispatch: true });
    const notRegistered = decideGates(permissive({ catalog: { registered: false, status: null } }));
    expect(notRegistered).toEqual({ dispatch: false, replay: false, reason_code: 'SIMULATION_NOT_REGISTERED', reached: ['packet', 'refs', 'idempotency', 'local_exec', 'access', 'catalog'] });
    for (const status of ['Draft', 'Deprecated', 'Disabled'] as const) {
      expect(decideGates(permissive({ catalog: { registered: true, status } }))).toMatchObject({ dispatch: false, reason_code: 'SIMULATION_NOT_ACTIVE' });
    }
    // Impactful, confirmed and allowed still does not get past a non-Active catalog entry.
    expect(
      decideGates(permissive({ impact: 'irreversible', rollback: { simulation_id: 'undo', registered: true }, confirmation: 'affirmative', catalog: { registered: true, status: 'Disabled' } })),
    ).toMatchObject({ dispatch: false, reason_code: 'SIMULATION_NOT_ACTIVE' });
    expect(exitCodeOf('SIMULATION_NOT_REGISTERED')).toBe(3);
    expect(exitCodeOf('SIMULATION_NOT_ACTIVE')).toBe(3);
    expect(exitCodeOf('SIM_FINDER_SIMULATION_INACTIVE')).toBe(3);
    expect(exitCodeOf('SIM_FINDER_REFUSE_POLICY_BLOCKED')).toBe(3);
  });

  it('the SimulationExecutor re-checks ACTIVE itself (in-process): a simulation disabled after the precheck, or unknown, is rejected before any side effect', () => {
    const db = openDb(':memory:');
    try {
      const by = { actor: 'tester', now: NOW };
      const root = makeTempDir('kair-at04-');
      catalogRepo(db).registerSimulation(
        { id: 'drop', title: 'Write a file', examples: ['write a file'], required_fields: ['path', 'content'], impact: 'none', access_action: 'file:write', executor: { kind: 'builtin', name: 'write_file' } },
        by,
      );
      catalogRepo(db).setStatus('drop', 'Disabled', NOW);
      accessRepo(db).setRule('alice', 'file:write', 'allow', by);
      const envelope = (simulation_id: string): DispatchEnvelope => ({
        correlation_id: 'c:v1',
        tenant_id: 'ws_test',
        user_id: 'alice',
        step_id: 's',
        simulation_id,
        required_fields: { path: 'out.txt', content: 'x' },
        confirmation_proof_ref: null,
        access_action: 'file:write',
        idempotency_key: 'k',
        policy_snapshot_ref: 'policy:v1',
        artifact_fingerprint_bundle_ref: 'fingerprints:x',
        rollback_plan_ref: null,
      });
      const deps = { db, ledger: ledgerRepo(db), ws: { root, kairDir: join(root, '.kair') }, run_id: 'c-run-1', controls_granted: [], now: () => NOW } as Parameters<typeof executeSimulation>[1];
      expect(executeSimulation(envelope('drop'), deps)).toMatchObject({ event: 'REJECTED', reason_code: 'SIMULATION_NOT_ACTIVE', outcome: { rejected_by: 'SimulationExecutor' } });
      expect(executeSimulation(envelope('nowhere'), deps)).toMatchObject({ event: 'REJECTED', reason_code: 'SIMULATION_NOT_REGISTERED' });
      // Nothing was written to the outbox; once Active, the same envelope writes it.
      const out = join(root, '.kair', 'outbox', 'out.txt');
      expect(existsSync(out)).toBe(false);
      catalogRepo(db).setStatus('drop', 'Active', NOW);
      expect(executeSimulation(envelope('drop'), deps)).toMatchObject({ event: 'SUCCEEDED', reason_code: 'AEC_DISPATCH_OK' });
      expect(existsSync(out)).toBe(true);
    } finally {
      db.close();
    }
  });
});
