/**
 * The dispatcher's gates (SPEC §9.3, §14 "AEC details") as one pure function of recorded facts.
 * The dispatcher gathers the facts (reads only), asks `decideGates`, and persists the facts with
 * the verdict; `aec replay` rebuilds the facts from the persisted refs and must reach the same
 * verdict. Nothing here touches SQLite, the file system or the clock.
 */
import { canonicalHash, canonicalJson, sha256Hex } from '../canonical.js';
import type { ErrorCode } from '../errors.js';
import type { ConfirmResult } from './confirm.js';
import type { FinderPacket, SimulationStatus } from './finder.js';

export type LedgerEvent = 'HALTED' | 'CLAIMED' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'REJECTED' | 'REPLAYED';
/** Outcomes after which a new attempt may be claimed. */
export const RETRYABLE_OUTCOMES: readonly LedgerEvent[] = ['FAILED', 'TIMED_OUT', 'REJECTED'];

/** The fields of a ledger row the idempotency lookup reads, oldest first. */
export interface LedgerFact {
  row_id: number;
  event: LedgerEvent;
  attempt: number;
  idempotency_key: string;
  simulation_id: string | null;
  fields_fingerprint: string | null;
}

export type IdempotencyView =
  | { kind: 'fresh'; next_attempt: number }
  | { kind: 'retry'; next_attempt: number }
  | { kind: 'in_doubt'; attempt: number; idempotency_key: string }
  | { kind: 'succeeded'; attempt: number; idempotency_key: string; row_id: number; same_target: boolean };

export interface KeyParts {
  correlation_id: string;
  step_id: string;
  simulation_id: string | null;
  required_fields_fingerprint: string | null;
  policy_snapshot_version: number;
}

/** §9.6: sha256(canonical({correlation_id, step_id, simulation_id, required_fields_fingerprint, policy_snapshot_version})). */
export function idempotencyKey(p: KeyParts): string {
  return sha256Hex(
    canonicalJson({
      correlation_id: p.correlation_id,
      step_id: p.step_id,
      simulation_id: p.simulation_id,
      required_fields_fingerprint: p.required_fields_fingerprint,
      policy_snapshot_version: p.policy_snapshot_version,
    }),
  );
}

export function correlationId(contractId: string, version: number): string {
  return `${contractId}:v${version}`;
}

/**
 * What the ledger says about a step (all rows of one correlation_id and step_id): a success is
 * replayed when it was for the same simulation and fields (a differing policy version does not
 * matter), a claim with no outcome is in doubt, and a failed attempt may be followed by the next.
 */
export function idempotencyView(rows: readonly LedgerFact[], target: { simulation_id: string; fields_fingerprint: string }): IdempotencyView {
  const success = rows.find((r) => r.event === 'SUCCEEDED');
  if (success) {
    return {
      kind: 'succeeded',
      attempt: success.attempt,
      idempotency_key: success.idempotency_key,
      row_id: success.row_id,
      same_target: success.simulation_id === target.simulation_id && success.fields_fingerprint === target.fields_fingerprint,
    };
  }
  const claims = rows.filter((r) => r.event === 'CLAIMED');
  const last = claims[claims.length - 1];
  if (!last) return { kind: 'fresh', next_attempt: 1 };
  const outcome = rows.find((r) => r.attempt === last.attempt && r.idempotency_key === last.idempotency_key && RETRYABLE_OUTCOMES.includes(r.event));
  if (!outcome) return { kind: 'in_doubt', attempt: last.attempt, idempotency_key: last.idempotency_key };
  return { kind: 'retry', next_attempt: last.attempt + 1 };
}

/** Everything the gates look at, as recorded at decision time. */
export interface GateFacts {
  packet_type: FinderPacket['type'];
  packet_reason_code: FinderPacket['reason_code'];
  packet_valid: boolean;
  /** The effective impact (domain/aec/simulation.ts `effectiveImpact`). */
  impact: 'none' | 'side_effecting' | 'impactful' | 'irreversible' | null;
  policy_snapshot_ref: string | null;
  artifact_fingerprint_bundle_ref: string | null;
  rollback: { simulation_id: string | null; registered: boolean };
  idempotency: IdempotencyView | null;
  retry_in_doubt: boolean;
  local_exec: { required: boolean; granted: boolean };
  /** null: no answer was given (no --confirm, no prompt). */
  confirmation: ConfirmResult | null;
  access: 'allow' | 'deny' | 'require-ap' | null;
  catalog: { registered: boolean; status: SimulationStatus | null };
  /**
   * The same simulation and fields already succeeded under an earlier version of the contract
   * (`earlier_run_id`), and whether the run allows repeating it. Absent in decisions recorded
   * before this gate existed, and for rollbacks.
   */
  repeat?: { earlier_run_id: string | null; allowed: boolean } | null;
}

export type Gate = 'packet' | 'refs' | 'idempotency' | 'local_exec' | 'confirmation' | 'access' | 'catalog';

export type HaltCode = Exclude<ErrorCode, 'AEC_DISPATCH_OK' | 'AEC_IDEMPOTENT_REPLAY' | 'SIM_FINDER_MATCH_OK'>;

export type Verdict =
  | { dispatch: true; attempt: number; reached: Gate[] }
  | { dispatch: false; replay: true; attempt: number; reason_code: 'AEC_IDEMPOTENT_REPLAY'; reached: Gate[] }
  | { dispatch: false; replay: false; reason_code: HaltCode; reached: Gate[] };

/** Impactful, side-effecting and irreversible steps need confirmation; only impactful and irreversible ones a rollback. */
export const needsConfirmation = (impact: GateFacts['impact']): boolean => impact === 'side_effecting' || impact === 'impactful' || impact === 'irreversible';
const needsRollbackRef = (impact: GateFacts['impact']): boolean => impact === 'impactful' || impact === 'irreversible';

/** The gates in §9.3 order, first failure wins; `reached` lists the gates that were evaluated. */
export function decideGates(f: GateFacts): Verdict {
  const reached: Gate[] = ['packet'];
  const halt = (reason_code: HaltCode): Verdict => ({ dispatch: false, replay: false, reason_code, reached });
  if (!f.packet_valid) return halt('AEC_PACKET_INVALID');
  if (f.packet_type !== 'SimulationMatchPacket') return halt(f.packet_reason_code as HaltCode);

  reached.push('refs');
  if (!f.policy_snapshot_ref) return halt('AEC_POLICY_SNAPSHOT_MISSING');
  if (!f.artifact_fingerprint_bundle_ref) return halt('AEC_ARTIFACT_FINGERPRINT_MISSING');
  if (needsRollbackRef(f.impact) && (!f.rollback.simulation_id || !f.rollback.registered)) return halt('AEC_ROLLBACK_REF_MISSING');

  reached.push('idempotency');
  const idem = f.idempotency;
  if (!idem) return halt('AEC_PACKET_INVALID');
  if (idem.kind === 'succeeded') {
    if (!idem.same_target) return halt('AEC_IDEMPOTENCY_CONFLICT');
    return { dispatch: false, replay: true, attempt: idem.attempt, reason_code: 'AEC_IDEMPOTENT_REPLAY', reached };
  }
  if (idem.kind === 'in_doubt' && !f.retry_in_doubt) return halt('AEC_IN_DOUBT');
  const attempt = idem.kind === 'in_doubt' ? idem.attempt + 1 : idem.next_attempt;
  // A same-version success was replayed above: only a success under another version is a repeat.
  if (f.repeat?.earlier_run_id && !f.repeat.allowed) return halt('AEC_REPEAT_BLOCKED');

  reached.push('local_exec');
  if (f.local_exec.required && !f.local_exec.granted) return halt('CONTROLS_MISSING');

  if (needsConfirmation(f.impact)) {
    reached.push('confirmation');
    if (f.confirmation === null) return halt('AEC_CONFIRM_REQUIRED');
    if (f.confirmation === 'negative') return halt('AEC_CONFIRM_DECLINED');
    if (f.confirmation === 'ambiguous') return halt('AEC_CONFIRM_AMBIGUOUS_REJECTED');
  }

  reached.push('access');
  if (f.access === 'deny' || f.access === null) return halt('ACCESS_SCOPE_VIOLATION');
  if (f.access === 'require-ap') return halt('ACCESS_AP_REQUIRED');

  reached.push('catalog');
  if (!f.catalog.registered) return halt('SIMULATION_NOT_REGISTERED');
  if (f.catalog.status !== 'Active') return halt('SIMULATION_NOT_ACTIVE');

  return { dispatch: true, attempt, reached };
}

/** A hash of what was decided (not of the facts), so a replay compares decisions. */
export function decisionHash(v: Verdict): string {
  return canonicalHash(v.dispatch ? { dispatch: true, attempt: v.attempt } : { dispatch: false, reason_code: v.reason_code });
}

/** Halts that leave the contract PAUSED (the user can answer and resume); every other halt fails the run. */
export const PAUSING_HALTS: readonly HaltCode[] = ['AEC_CONFIRM_REQUIRED', 'AEC_CONFIRM_AMBIGUOUS_REJECTED', 'AEC_IN_DOUBT', 'AEC_REPEAT_BLOCKED'];

/** The ledger step of the rollback of plan step `stepId` (`:` cannot occur in a plan step id). */
export const rollbackStepId = (stepId: string): string => `rollback:${stepId}`;

/** A rollback's own idempotency key: one per original dispatch, whatever the policy version. */
export function rollbackKey(originalKey: string): string {
  return sha256Hex(canonicalJson({ rollback_of: originalKey }));
}

/**
 * Whether running a simulation again could repeat something in the world: any declared impact,
 * or an executor that writes (`write_file`, `command`) whatever impact it was registered with. A
 * no-op or an echo with impact "none" repeats nothing, so a rewound plan's health check is not
 * held up by the repeat check.
 */
export function hasEffects(sim: { impact: string; executor: unknown }): boolean {
  const e = sim.executor as { kind?: string; name?: string } | null;
  return sim.impact !== 'none' || e?.kind === 'command' || (e?.kind === 'builtin' && e.name === 'write_file');
}

/** What the repeat check reads of a contract's ledger: its successful outcomes. */
export interface SuccessFact {
  correlation_id: string;
  step_id: string;
  run_id: string;
  simulation_id: string | null;
  fields_fingerprint: string | null;
}

/**
 * The run of the latest success of this simulation with these fields under another version of
 * the contract that was not rolled back since, or null. Rollback rows themselves never count.
 */
export function earlierSuccess(successes: readonly SuccessFact[], target: { correlation_id: string; simulation_id: string; fields_fingerprint: string }): string | null {
  const rolledBack = new Set(successes.filter((s) => s.step_id.startsWith('rollback:')).map((s) => `${s.correlation_id}\u0000${s.step_id.slice('rollback:'.length)}`));
  let hit: string | null = null;
  for (const s of successes) {
    if (s.correlation_id === target.correlation_id || s.step_id.startsWith('rollback:')) continue;
    if (s.simulation_id !== target.simulation_id || s.fields_fingerprint !== target.fields_fingerprint) continue;
    if (rolledBack.has(`${s.correlation_id}\u0000${s.step_id}`)) continue;
    hit = s.run_id;
  }
  return hit;
}
