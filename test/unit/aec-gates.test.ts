/** SPEC §9.3/§9.6/§14: the gates' order and codes, the idempotency key and the ledger view, without I/O. */
import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../src/domain/canonical.js';
import type { GateFacts, LedgerFact } from '../../src/domain/aec/gates.js';
import { passingFacts } from '../helpers/aec.js';
import { correlationId, decideGates, decisionHash, earlierSuccess, hasEffects, idempotencyKey, idempotencyView, PAUSING_HALTS } from '../../src/domain/aec/gates.js';

const pass = (): GateFacts => passingFacts();

const code = (f: GateFacts) => {
  const v = decideGates(f);
  return v.dispatch ? 'DISPATCH' : v.reason_code;
};

describe('decideGates: each gate and its code, in §9.3 order', () => {
  const cases: [string, (f: GateFacts) => void, string][] = [
    ['all pass', () => {}, 'DISPATCH'],
    ['invalid packet', (f) => (f.packet_valid = false), 'AEC_PACKET_INVALID'],
    ['clarify packet is relayed', (f) => Object.assign(f, { packet_type: 'ClarifyPacket', packet_reason_code: 'SIM_FINDER_CLARIFY_MISSING_FIELD' }), 'SIM_FINDER_CLARIFY_MISSING_FIELD'],
    ['refuse packet is relayed', (f) => Object.assign(f, { packet_type: 'RefusePacket', packet_reason_code: 'SIM_FINDER_REFUSE_POLICY_BLOCKED' }), 'SIM_FINDER_REFUSE_POLICY_BLOCKED'],
    ['missing packet is relayed', (f) => Object.assign(f, { packet_type: 'MissingSimulationPacket', packet_reason_code: 'SIM_FINDER_MISSING_SIMULATION' }), 'SIM_FINDER_MISSING_SIMULATION'],
    ['no policy snapshot', (f) => (f.policy_snapshot_ref = null), 'AEC_POLICY_SNAPSHOT_MISSING'],
    ['no fingerprint bundle', (f) => (f.artifact_fingerprint_bundle_ref = null), 'AEC_ARTIFACT_FINGERPRINT_MISSING'],
    ['impactful without rollback id', (f) => (f.rollback = { simulation_id: null, registered: false }), 'AEC_ROLLBACK_REF_MISSING'],
    ['rollback not registered', (f) => (f.rollback = { simulation_id: 'void-invoice', registered: false }), 'AEC_ROLLBACK_REF_MISSING'],
    ['already succeeded, same target', (f) => (f.idempotency = { kind: 'succeeded', attempt: 1, idempotency_key: 'k', row_id: 3, same_target: true }), 'AEC_IDEMPOTENT_REPLAY'],
    ['already succeeded, other target', (f) => (f.idempotency = { kind: 'succeeded', attempt: 1, idempotency_key: 'k', row_id: 3, same_target: false }), 'AEC_IDEMPOTENCY_CONFLICT'],
    ['in doubt', (f) => (f.idempotency = { kind: 'in_doubt', attempt: 1, idempotency_key: 'k' }), 'AEC_IN_DOUBT'],
    ['command without local:exec', (f) => (f.local_exec = { required: true, granted: false }), 'CONTROLS_MISSING'],
    ['no confirmation', (f) => (f.confirmation = null), 'AEC_CONFIRM_REQUIRED'],
    ['negative confirmation', (f) => (f.confirmation = 'negative'), 'AEC_CONFIRM_DECLINED'],
    ['ambiguous confirmation', (f) => (f.confirmation = 'ambiguous'), 'AEC_CONFIRM_AMBIGUOUS_REJECTED'],
    ['access denied', (f) => (f.access = 'deny'), 'ACCESS_SCOPE_VIOLATION'],
    ['no access decision fails closed', (f) => (f.access = null), 'ACCESS_SCOPE_VIOLATION'],
    ['access needs AP', (f) => (f.access = 'require-ap'), 'ACCESS_AP_REQUIRED'],
    ['not registered', (f) => (f.catalog = { registered: false, status: null }), 'SIMULATION_NOT_REGISTERED'],
    ['not Active', (f) => (f.catalog = { registered: true, status: 'Deprecated' }), 'SIMULATION_NOT_ACTIVE'],
    ['impact none needs no confirmation nor rollback', (f) => Object.assign(f, { impact: 'none', confirmation: null, rollback: { simulation_id: null, registered: false } }), 'DISPATCH'],
  ];
  it.each(cases)('%s → %s', (_name, edit, expected) => {
    const f = pass();
    edit(f);
    expect(code(f)).toBe(expected);
  });

  it('the first failing gate wins, in order', () => {
    const f = pass();
    Object.assign(f, { access: 'deny', confirmation: null, local_exec: { required: true, granted: false }, catalog: { registered: false, status: null } });
    expect(code(f)).toBe('CONTROLS_MISSING'); // local:exec comes right after the idempotency lookup (§14)
    f.local_exec = { required: true, granted: true };
    expect(code(f)).toBe('AEC_CONFIRM_REQUIRED');
    f.confirmation = 'affirmative';
    expect(code(f)).toBe('ACCESS_SCOPE_VIOLATION');
    f.access = 'allow';
    expect(code(f)).toBe('SIMULATION_NOT_REGISTERED');
    // A replay comes before confirmation and access: an earlier success needs neither again.
    Object.assign(f, { access: 'deny', confirmation: null, idempotency: { kind: 'succeeded', attempt: 2, idempotency_key: 'k', row_id: 1, same_target: true } });
    expect(code(f)).toBe('AEC_IDEMPOTENT_REPLAY');
  });

  it('reports the gates it evaluated (the dispatcher records only those)', () => {
    const f = pass();
    f.confirmation = null;
    expect(decideGates(f).reached).toEqual(['packet', 'refs', 'idempotency', 'local_exec', 'confirmation']);
    expect(decideGates(pass()).reached).toEqual(['packet', 'refs', 'idempotency', 'local_exec', 'confirmation', 'access', 'catalog']);
  });

  it('claims the next attempt: 1 when fresh, n+1 after a failure, n+1 for in doubt only with --retry-in-doubt', () => {
    const f = pass();
    expect(decideGates(f)).toMatchObject({ dispatch: true, attempt: 1 });
    f.idempotency = { kind: 'retry', next_attempt: 3 };
    expect(decideGates(f)).toMatchObject({ dispatch: true, attempt: 3 });
    f.idempotency = { kind: 'in_doubt', attempt: 2, idempotency_key: 'k' };
    f.retry_in_doubt = true;
    expect(decideGates(f)).toMatchObject({ dispatch: true, attempt: 3 });
  });

  it('confirmation required/ambiguous, in-doubt and a blocked repeat pause; everything else fails the run', () => {
    expect([...PAUSING_HALTS].sort()).toEqual(['AEC_CONFIRM_AMBIGUOUS_REJECTED', 'AEC_CONFIRM_REQUIRED', 'AEC_IN_DOUBT', 'AEC_REPEAT_BLOCKED']);
  });

  it('a success under an earlier version blocks the dispatch right after the idempotency gate, unless allowed; a replay is never a repeat', () => {
    const earlier = { earlier_run_id: 'c-run-1', allowed: false };
    // Checked before confirmation: an unanswered impactful step reports the repeat, not the question.
    expect(decideGates(passingFacts({ repeat: earlier, confirmation: null }))).toMatchObject({ dispatch: false, reason_code: 'AEC_REPEAT_BLOCKED', reached: ['packet', 'refs', 'idempotency'] });
    expect(decideGates(passingFacts({ repeat: { ...earlier, allowed: true } }))).toMatchObject({ dispatch: true });
    expect(decideGates(passingFacts({ repeat: { earlier_run_id: null, allowed: false } }))).toMatchObject({ dispatch: true });
    const replay = passingFacts({ repeat: earlier, idempotency: { kind: 'succeeded', attempt: 1, idempotency_key: 'k', row_id: 1, same_target: true } });
    expect(decideGates(replay)).toMatchObject({ replay: true, reason_code: 'AEC_IDEMPOTENT_REPLAY' });
  });

  it('earlierSuccess: another version, same simulation and fields, not rolled back; hasEffects: impact or a writing executor', () => {
    const s = (correlation_id: string, step_id: string, run_id: string, simulation_id = 'send', fields_fingerprint = 'f') => ({ correlation_id, step_id, run_id, simulation_id, fields_fingerprint });
    const target = { correlation_id: 'c:v3', simulation_id: 'send', fields_fingerprint: 'f' };
    expect(earlierSuccess([s('c:v3', 'a', 'c-run-5')], target)).toBeNull();
    expect(earlierSuccess([s('c:v1', 'a', 'c-run-1'), s('c:v2', 'b', 'c-run-2')], target)).toBe('c-run-2');
    expect(earlierSuccess([s('c:v1', 'a', 'c-run-1', 'other'), s('c:v1', 'b', 'c-run-1', 'send', 'g')], target)).toBeNull();
    expect(earlierSuccess([s('c:v1', 'a', 'c-run-1'), s('c:v1', 'rollback:a', 'c-run-1', 'void')], target)).toBeNull();
    expect(hasEffects({ impact: 'none', executor: { kind: 'builtin', name: 'noop' } })).toBe(false);
    expect(hasEffects({ impact: 'none', executor: { kind: 'builtin', name: 'write_file' } })).toBe(true);
    expect(hasEffects({ impact: 'none', executor: { kind: 'command', argv: ['x'] } })).toBe(true);
    expect(hasEffects({ impact: 'impactful', executor: { kind: 'builtin', name: 'echo' } })).toBe(true);
  });

  it('decisionHash depends on the decision, not on the facts', () => {
    const a = pass();
    const b = { ...pass(), policy_snapshot_ref: 'policy:v9' };
    expect(decisionHash(decideGates(a))).toBe(decisionHash(decideGates(b)));
    expect(decisionHash(decideGates({ ...a, access: 'deny' }))).not.toBe(decisionHash(decideGates(a)));
  });
});

describe('idempotency key (§9.6 recipe)', () => {
  const parts = { correlation_id: correlationId('inv', 1), step_id: 'send', simulation_id: 'send-invoice', required_fields_fingerprint: 'f'.repeat(64), policy_snapshot_version: 3 };
  it('is sha256 of the canonical JSON of exactly the five parts', () => {
    expect(parts.correlation_id).toBe('inv:v1');
    expect(idempotencyKey(parts)).toBe(sha256Hex(canonicalJson(parts)));
    expect(idempotencyKey(parts)).toMatch(/^[0-9a-f]{64}$/);
  });
  it.each(Object.keys(parts))('changes with %s', (k) => {
    const changed = { ...parts, [k]: typeof parts[k as keyof typeof parts] === 'number' ? 4 : 'other' };
    expect(idempotencyKey(changed)).not.toBe(idempotencyKey(parts));
  });
});

describe('idempotencyView: what the ledger says about a step', () => {
  const target = { simulation_id: 's', fields_fingerprint: 'fp' };
  let n = 0;
  const row = (event: LedgerFact['event'], attempt: number, extra: Partial<LedgerFact> = {}): LedgerFact => ({ row_id: ++n, event, attempt, idempotency_key: 'k1', simulation_id: 's', fields_fingerprint: 'fp', ...extra });

  it('fresh with no rows, or only halts', () => {
    expect(idempotencyView([], target)).toEqual({ kind: 'fresh', next_attempt: 1 });
    expect(idempotencyView([row('HALTED', 1)], target)).toEqual({ kind: 'fresh', next_attempt: 1 });
  });
  it('in doubt when the last claim has no outcome', () => {
    expect(idempotencyView([row('CLAIMED', 1)], target)).toEqual({ kind: 'in_doubt', attempt: 1, idempotency_key: 'k1' });
    expect(idempotencyView([row('CLAIMED', 1), row('FAILED', 1), row('CLAIMED', 2)], target)).toMatchObject({ kind: 'in_doubt', attempt: 2 });
  });
  it('retry after FAILED, TIMED_OUT or REJECTED', () => {
    for (const e of ['FAILED', 'TIMED_OUT', 'REJECTED'] as const) expect(idempotencyView([row('CLAIMED', 1), row(e, 1)], target)).toEqual({ kind: 'retry', next_attempt: 2 });
  });
  it('a success is replayed for the same simulation and fields whatever the key (policy version), else conflicts', () => {
    const rows = [row('CLAIMED', 1, { idempotency_key: 'old' }), row('SUCCEEDED', 1, { idempotency_key: 'old' })];
    expect(idempotencyView(rows, target)).toMatchObject({ kind: 'succeeded', same_target: true, idempotency_key: 'old', attempt: 1 });
    expect(idempotencyView(rows, { ...target, fields_fingerprint: 'other' })).toMatchObject({ kind: 'succeeded', same_target: false });
    expect(idempotencyView(rows, { ...target, simulation_id: 'x' })).toMatchObject({ kind: 'succeeded', same_target: false });
  });
});
