/**
 * Seed 001 §13 AT-AGENT-11, §9 (key = correlation_id + step_id + simulation_id +
 * required_fields_fingerprint + policy_snapshot_version); SPEC §9.6 (sha256 of the canonical JSON
 * of those five; correlation_id = <contract>:v<version>), §14 "AEC details" (the fingerprint hashes
 * the step's whole `fields`; a step that already succeeded with another simulation or fields
 * fingerprint is AEC_IDEMPOTENCY_CONFLICT, exit 3, FAILED — new values need a rewind; a key that
 * differs only in policy version replays).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../../src/domain/canonical.js';
import { fieldsFingerprint } from '../../../src/domain/aec/finder.js';
import { idempotencyKey } from '../../../src/domain/aec/gates.js';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, kj, makeTempDir, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, registerSimulation, simPlan, tableRows } from '../../helpers/aec.js';
import type { SimStep } from '../../helpers/aec.js';

afterAll(removeWorkspaces);


/** The recipe, written out independently of the dispatcher. */
const recipe = (p: { correlation_id: string; step_id: string; simulation_id: string; fields: Record<string, string>; policy_snapshot_version: number }): string =>
  sha256Hex(
    canonicalJson({
      correlation_id: p.correlation_id,
      step_id: p.step_id,
      simulation_id: p.simulation_id,
      required_fields_fingerprint: sha256Hex(canonicalJson(p.fields)),
      policy_snapshot_version: p.policy_snapshot_version,
    }),
  );

/** Fixtures + `heartbeat` (noop, no required fields), Active and allowed to alice. */
let base: string;

beforeAll(() => {
  base = catalogWorkspace();
  registerSimulation(base, { id: 'heartbeat', title: 'Heartbeat', examples: ['heartbeat'], required_fields: [], impact: 'none', access_action: 'system:heartbeat', executor: { kind: 'builtin', name: 'noop' } }, { allow: 'alice' });
});

/** plan (from FAILED/REWOUND) → request-approval → approve, as alice: a new approval, no rewind. */
function replan(ws: string, id: string, steps: SimStep[]): void {
  const file = join(makeTempDir('kair-plan-'), `${id}.json`);
  writeFileSync(file, JSON.stringify(simPlan(steps)));
  ok(ws, ['plan', id, '--file', file], asAlice);
  ok(ws, ['request-approval', id], asAlice);
  ok(ws, ['approve', id], asAlice);
}

const ACME = { id: 'void-a', utterance: 'void invoice', fields: { customer: 'acme' } };
const GLOBEX = { id: 'void-b', utterance: 'void invoice', fields: { customer: 'globex' } };
const PIZZA = { id: 'last', utterance: 'order a pizza' };
const PING = { id: 'last', utterance: 'ping' };

describe('AT-AGENT-11-idempotency-key-includes-sim-and-field-fingerprint', () => {
  it('the key is sha256(canonical({correlation_id, step_id, simulation_id, required_fields_fingerprint, policy_snapshot_version})) in the run output, the ledger and the envelope', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'keys', simPlan([ACME, GLOBEX, { id: 'beat', utterance: 'heartbeat', fields: { customer: 'acme' } }]));
    const version = ok(ws, ['access', 'list']).policy_snapshot_version;
    const r = kj(ws, ['run', 'keys'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);

    const expected = {
      'void-a': recipe({ correlation_id: 'keys:v1', step_id: 'void-a', simulation_id: 'void-invoice', fields: ACME.fields, policy_snapshot_version: version }),
      'void-b': recipe({ correlation_id: 'keys:v1', step_id: 'void-b', simulation_id: 'void-invoice', fields: GLOBEX.fields, policy_snapshot_version: version }),
      beat: recipe({ correlation_id: 'keys:v1', step_id: 'beat', simulation_id: 'heartbeat', fields: { customer: 'acme' }, policy_snapshot_version: version }),
    };
    expect(Object.fromEntries(r.json.steps.map((s: Json) => [s.id, s.idempotency_key]))).toEqual(expected);
    expect(new Set(Object.values(expected)).size).toBe(3);

    for (const row of ledgerRows(ws, "contract_id = 'keys'")) {
      expect(row.idempotency_key).toBe(expected[row.step_id as keyof typeof expected]);
      expect(row.required_fields_fingerprint).toBe(fieldsFingerprint(row.step_id === 'void-b' ? GLOBEX.fields : ACME.fields));
      expect(row.policy_snapshot_ref).toBe(`policy:v${version}`);
      if (row.event === 'CLAIMED') {
        expect(JSON.parse(tableRows(ws, 'aec_refs', 'ref = ?', row.dispatch_envelope_ref)[0].body).idempotency_key).toBe(row.idempotency_key);
        const decision = JSON.parse(tableRows(ws, 'aec_refs', 'ref = ?', row.decision_ref)[0].body);
        expect(decision.records.agent_step).toMatchObject({ required_fields_fingerprint: row.required_fields_fingerprint, policy_snapshot_version: version });
      }
    }
  });

  it('each ingredient changes the key: simulation, fields fingerprint (the whole fields object), step, correlation and policy version', () => {
    const k = { correlation_id: 'c:v1', step_id: 's', simulation_id: 'void-invoice', required_fields_fingerprint: fieldsFingerprint({ customer: 'acme' }), policy_snapshot_version: 3 };
    const key = idempotencyKey(k);
    expect(key).toBe(recipe({ correlation_id: 'c:v1', step_id: 's', simulation_id: 'void-invoice', fields: { customer: 'acme' }, policy_snapshot_version: 3 }));
    const variants = [
      { ...k, simulation_id: 'heartbeat' },
      { ...k, required_fields_fingerprint: fieldsFingerprint({ customer: 'globex' }) },
      { ...k, required_fields_fingerprint: fieldsFingerprint({ customer: 'acme', note: 'extra field, not required' }) },
      { ...k, step_id: 't' },
      { ...k, correlation_id: 'c:v2' },
      { ...k, policy_snapshot_version: 4 },
    ];
    const keys = variants.map(idempotencyKey);
    expect(new Set([key, ...keys]).size).toBe(variants.length + 1);
    // Key order in the fields does not matter (canonical JSON).
    expect(fieldsFingerprint({ a: '1', b: '2' })).toBe(fieldsFingerprint({ b: '2', a: '1' }));
  });

  it('after a success, re-planning the step with other fields or another simulation without a rewind is AEC_IDEMPOTENCY_CONFLICT (exit 3); the same values replay; a rewind runs new ones', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'conf', simPlan([ACME, PIZZA]));
    const first = kj(ws, ['run', 'conf'], asAlice);
    expect(first.code).toBe(3);
    expect(first.json.error.code).toBe('SIM_FINDER_MISSING_SIMULATION');
    expect(first.json.steps[0]).toMatchObject({ id: 'void-a', status: 'COMPLETED' });
    const storedKey = first.json.steps[0].idempotency_key;

    const expectConflict = (runId: string, simulation: string, fields: Record<string, string>) => {
      const r = kj(ws, ['run', 'conf'], asAlice);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.json).toMatchObject({ run_id: runId, state: 'FAILED', status: 'FAILED', error: { code: 'AEC_IDEMPOTENCY_CONFLICT' } });
      expect(r.json.steps[0]).toMatchObject({ id: 'void-a', status: 'REFUSED', reason_code: 'AEC_IDEMPOTENCY_CONFLICT' });
      expect(r.json.steps[1]).toMatchObject({ status: 'PENDING' });
      const version = ok(ws, ['access', 'list']).policy_snapshot_version;
      const key = recipe({ correlation_id: 'conf:v1', step_id: 'void-a', simulation_id: simulation, fields, policy_snapshot_version: version });
      expect(r.json.steps[0].idempotency_key).toBe(key);
      expect(key).not.toBe(storedKey);
      expect(ledgerRows(ws, 'run_id = ?', runId).map((x) => [x.step_id, x.event, x.reason_code, x.idempotency_key])).toEqual([['void-a', 'HALTED', 'AEC_IDEMPOTENCY_CONFLICT', key]]);
    };

    // Same step, other fields (same simulation).
    replan(ws, 'conf', [{ ...ACME, fields: { customer: 'initech' } }, PING]);
    expect(ok(ws, ['status', 'conf']).contract.version).toBe(1);
    expectConflict('conf-run-2', 'void-invoice', { customer: 'initech' });

    // Same step, same fields object (same fingerprint), another simulation.
    replan(ws, 'conf', [{ ...ACME, utterance: 'heartbeat' }, PING]);
    expectConflict('conf-run-3', 'heartbeat', ACME.fields);

    // Back to the values that succeeded: replayed, then the next step runs.
    replan(ws, 'conf', [ACME, PING]);
    const same = kj(ws, ['run', 'conf'], asAlice);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    expect(same.json.steps.map((s: Json) => [s.id, s.status, s.reason_code])).toEqual([
      ['void-a', 'REPLAYED', 'AEC_IDEMPOTENT_REPLAY'],
      ['last', 'COMPLETED', 'AEC_DISPATCH_OK'],
    ]);
    expect(ledgerRows(ws, "contract_id = 'conf' AND step_id = 'void-a' AND event = 'CLAIMED'")).toHaveLength(1);

    // New values need a rewind: a new contract version is a new correlation, so a new key.
    ok(ws, ['rewind', 'conf', 'bill initech instead'], asAlice);
    replan(ws, 'conf', [{ ...ACME, fields: { customer: 'initech' } }, PING]);
    const v2 = kj(ws, ['run', 'conf'], asAlice);
    expect(v2.code, v2.stdout + v2.stderr).toBe(0);
    expect(v2.json.steps[0]).toMatchObject({ status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK', outcome: { executor: 'echo', fields: { customer: 'initech' } } });
    const version = ok(ws, ['access', 'list']).policy_snapshot_version;
    expect(v2.json.steps[0].idempotency_key).toBe(recipe({ correlation_id: 'conf:v2', step_id: 'void-a', simulation_id: 'void-invoice', fields: { customer: 'initech' }, policy_snapshot_version: version }));
    expect(ledgerRows(ws, "correlation_id = 'conf:v2' AND step_id = 'void-a'").map((x) => x.event)).toEqual(['CLAIMED', 'SUCCEEDED']);
  });
});
