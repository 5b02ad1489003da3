/**
 * Seed 001 §13 AT-AGENT-07, §5.1 (MissingSimulationPacket → Dev Intake, deterministically; no
 * dispatch; user-visible escalation status only); SPEC §9.1 (inside a run an utterance with no
 * simulation is SIM_FINDER_MISSING_SIMULATION, exit 3), §9.3 (a `dev_intake` row), §5 (`intake
 * list --json`: {id, contract_id, step_id, utterance, created_at}), §14 (a missing-simulation step
 * carries `intake_id`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOW, cloneWorkspace, kj, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

let base: string;

beforeAll(() => {
  base = catalogWorkspace();
});

describe('AT-AGENT-07-missing-simulation-escalates-to-dev-intake', () => {
  it('an utterance no simulation matches: exit 3, SIM_FINDER_MISSING_SIMULATION, FAILED, a dev_intake row the step names, listed by `intake list`', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'pizza', simPlan([{ id: 'order', utterance: 'order a large pizza', fields: { size: 'large' }, lang: 'en' }, { id: 'after', utterance: 'ping' }]));
    expect(ok(ws, ['intake', 'list']).intake).toEqual([]);
    const packet = ok(ws, ['find', 'order a large pizza', '--field', 'size=large']).packet;
    expect(packet).toMatchObject({ type: 'MissingSimulationPacket', reason_code: 'SIM_FINDER_MISSING_SIMULATION' });

    const r = kj(ws, ['run', 'pizza'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.json).toMatchObject({ ok: false, contract_id: 'pizza', run_id: 'pizza-run-1', state: 'FAILED', status: 'FAILED', error: { code: 'SIM_FINDER_MISSING_SIMULATION' } });
    const step = r.json.steps[0];
    expect(step).toMatchObject({ id: 'order', lane: 'aec', status: 'REFUSED', reason_code: 'SIM_FINDER_MISSING_SIMULATION' });
    expect(step.intake_id).toEqual(expect.any(String));
    expect(step.simulation_id).toBeUndefined();
    expect(r.json.error.details.intake_id).toBe(step.intake_id);
    expect(r.json.steps[1]).toMatchObject({ id: 'after', status: 'PENDING', reason_code: null });

    // The dev_intake row, with what a developer needs to build the simulation.
    const intake = tableRows(ws, 'dev_intake');
    expect(intake).toEqual([
      expect.objectContaining({ id: step.intake_id, contract_id: 'pizza', correlation_id: 'pizza:v1', run_id: 'pizza-run-1', step_id: 'order', utterance: 'order a large pizza', lang: 'en', actor: 'alice', created_at: NOW }),
    ]);
    expect(JSON.parse(intake[0].fields)).toEqual({ size: 'large' });
    // It links the Finder's packet as recorded (the same packet `kair find` gives).
    const stored = JSON.parse(tableRows(ws, 'aec_refs', 'ref = ?', intake[0].finder_packet_ref)[0].body);
    expect(stored).toEqual(packet);

    // `kair intake list --json`.
    const listed = ok(ws, ['intake', 'list']).intake;
    expect(listed).toEqual([expect.objectContaining({ id: step.intake_id, contract_id: 'pizza', step_id: 'order', utterance: 'order a large pizza', created_at: NOW })]);

    // The ledger records the escalation and nothing else: no claim, no access check, no envelope.
    const rows = ledgerRows(ws, "contract_id = 'pizza'");
    expect(rows.map((x) => [x.event, x.reason_code, x.simulation_id, x.dispatch_envelope_ref])).toEqual([['HALTED', 'SIM_FINDER_MISSING_SIMULATION', null, null]]);
    expect(JSON.parse(rows[0].outcome)).toEqual({ reason_code: 'SIM_FINDER_MISSING_SIMULATION', intake_id: step.intake_id });
    expect(tableRows(ws, 'agent_execution_access_decision_ledger')).toEqual([]);
    expect(tableRows(ws, 'aec_refs', "kind = 'envelope'")).toEqual([]);
    expect(ok(ws, ['status', 'pizza']).contract.state).toBe('FAILED');
  });

  it('the escalation is deterministic: a retry of the same step names the same intake row; another step gets its own', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'pizza', simPlan([{ id: 'order', utterance: 'order a large pizza' }]));
    approveContract(ws, 'taxi', simPlan([{ id: 'ride', utterance: 'book a taxi to the airport' }]));
    const a = kj(ws, ['run', 'pizza'], asAlice);
    const b = kj(ws, ['run', 'pizza'], asAlice);
    const c = kj(ws, ['run', 'taxi'], asAlice);
    for (const r of [a, b, c]) {
      expect(r.code).toBe(3);
      expect(r.json.error.code).toBe('SIM_FINDER_MISSING_SIMULATION');
    }
    expect(b.json.run_id).toBe('pizza-run-2');
    expect(b.json.steps[0].intake_id).toBe(a.json.steps[0].intake_id);
    expect(c.json.steps[0].intake_id).not.toBe(a.json.steps[0].intake_id);
    expect(ok(ws, ['intake', 'list']).intake.map((x: { contract_id: string; step_id: string; utterance: string }) => [x.contract_id, x.step_id, x.utterance])).toEqual([
      ['pizza', 'order', 'order a large pizza'],
      ['taxi', 'ride', 'book a taxi to the airport'],
    ]);
    expect(ledgerRows(ws, "event <> 'HALTED'")).toEqual([]);
  });
});
