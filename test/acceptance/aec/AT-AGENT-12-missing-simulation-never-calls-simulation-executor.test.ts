/**
 * Seed 001 §13 AT-AGENT-12, §5.1 (MissingSimulationPacket: no dispatch attempt, no
 * SimulationExecutor call, no exception path), §14 ("MissingSimulationPacket path attempts dispatch
 * anyway" fails the build); SPEC §9.3 (Missing → a dev_intake row, **no executor call**).
 * A `command` simulation that counts its executions sits in the catalog, Active, allowed and with
 * `local:exec` granted, and shares a word with the utterance: it must still never run.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateFacts } from '../../../src/domain/aec/gates.js';
import { decideGates } from '../../../src/domain/aec/gates.js';
import type { Json } from '../../helpers/cli.js';
import { kj, makeTempDir, makeWorkspace, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, counterSimulation, ledgerRows, lineCount, passingFacts, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

const EXEC = { requires: ['local:exec'], grant: ['local:exec'] };

let ws: string;
let counter: string;

beforeAll(() => {
  ws = makeWorkspace();
  counter = join(makeTempDir('kair-count-'), 'tally.txt');
  counterSimulation(ws, 'tally', counter); // example "count tally"
});

describe('AT-AGENT-12-missing-simulation-never-calls-simulation-executor', () => {
  it('a near-miss utterance (below the match threshold) escalates to intake; the command simulation never runs and no dispatch is attempted', () => {
    const packet = ok(ws, ['find', 'count the pizzas']).packet;
    expect(packet).toMatchObject({ type: 'MissingSimulationPacket', reason_code: 'SIM_FINDER_MISSING_SIMULATION' });
    expect(packet.candidates[0]).toMatchObject({ simulation_id: 'tally', status: 'Active' });
    expect(packet.candidates[0].score_bp).toBeGreaterThan(0);
    expect(packet.candidates[0].score_bp).toBeLessThan(7000);

    approveContract(ws, 'miss', simPlan([{ id: 'count', utterance: 'count the pizzas' }]), EXEC);
    const r = kj(ws, ['run', 'miss'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.json).toMatchObject({ state: 'FAILED', error: { code: 'SIM_FINDER_MISSING_SIMULATION' } });
    expect(r.json.steps[0]).toMatchObject({ status: 'REFUSED', reason_code: 'SIM_FINDER_MISSING_SIMULATION', intake_id: expect.any(String) });

    // The executor was never called: its side effect did not happen …
    expect(lineCount(counter)).toBe(0);
    // … no claim, outcome, envelope or access check (precheck or executor) exists …
    const rows = ledgerRows(ws, "contract_id = 'miss'");
    expect(rows.map((x) => [x.event, x.reason_code, x.simulation_id, x.dispatch_envelope_ref, x.access_decision_id, x.confirmation_id])).toEqual([
      ['HALTED', 'SIM_FINDER_MISSING_SIMULATION', null, null, null, null],
    ]);
    expect(tableRows(ws, 'agent_execution_access_decision_ledger')).toEqual([]);
    expect(tableRows(ws, 'aec_refs', "kind = 'envelope'")).toEqual([]);
    // … and the recorded decision stopped at the first gate.
    const decision = JSON.parse(tableRows(ws, 'aec_refs', 'ref = ?', rows[0].decision_ref)[0].body);
    expect(decision.verdict).toEqual({ dispatch: false, replay: false, reason_code: 'SIM_FINDER_MISSING_SIMULATION', reached: ['packet'] });
    expect(decision.records.execution_plan).toBeNull();
    expect(decision.records.agent_step).toBeNull();
    expect(tableRows(ws, 'dev_intake', "contract_id = 'miss'")).toHaveLength(1);

    // Replay agrees: no dispatch. Stats: no dispatch at all.
    const replay = kj(ws, ['aec', 'replay', 'miss-run-1']);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    expect(replay.json.decisions).toEqual([expect.objectContaining({ same: true, recorded: { dispatch: false, reason_code: 'SIM_FINDER_MISSING_SIMULATION' } })]);
    expect(ok(ws, ['aec', 'stats']).stats).toMatchObject({ dispatches: 0, succeeded: 0 });

    // A retry is still no call.
    expect(kj(ws, ['run', 'miss'], asAlice).code).toBe(3);
    expect(lineCount(counter)).toBe(0);
    expect(ledgerRows(ws, "event <> 'HALTED'")).toEqual([]);
  });

  it('control: the same simulation does run when the Finder matches it (so the counter would have shown a call)', () => {
    approveContract(ws, 'hit', simPlan([{ id: 'count', utterance: 'count tally' }]), EXEC);
    const r = kj(ws, ['run', 'hit', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(lineCount(counter)).toBe(1);
    expect(ledgerRows(ws, "contract_id = 'hit'").map((x: Json) => x.event)).toEqual(['CLAIMED', 'SUCCEEDED']);
  });

  it('the gates never let a MissingSimulationPacket through, whatever the other facts say (in-process)', () => {
    const everythingAllowed: GateFacts = passingFacts({
      packet_type: 'MissingSimulationPacket',
      packet_reason_code: 'SIM_FINDER_MISSING_SIMULATION',
      retry_in_doubt: true,
      local_exec: { required: true, granted: true },
    });

    expect(decideGates(everythingAllowed)).toEqual({ dispatch: false, replay: false, reason_code: 'SIM_FINDER_MISSING_SIMULATION', reached: ['packet'] });
    // Even a stored success for the step is not replayed through a missing-simulation packet.
    expect(decideGates({ ...everythingAllowed, idempotency: { kind: 'succeeded', attempt: 1, idempotency_key: 'k', row_id: 1, same_target: true } })).toMatchObject({ dispatch: false, replay: false });
    expect(decideGates({ ...everythingAllowed, packet_valid: false })).toMatchObject({ dispatch: false, reason_code: 'AEC_PACKET_INVALID' });
  });
});
