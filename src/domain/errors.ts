/**
 * The one error type and the code catalog. Every code maps to exactly one exit status (but
 * INTERRUPTED: 130, or 143 for SIGTERM, see exitForError); the `satisfies` clause makes
 * forgetting a code a type error.
 */

export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  REFUSED: 3,
  NOT_FOUND: 4,
  EXECUTION: 5,
  BUSY: 6,
  INTEGRITY: 7,
  /** 128 + the signal: a run stopped by SIGINT (130) or SIGTERM (143), as a shell reports a kill by it. */
  INTERRUPTED: 130,
  TERMINATED: 143,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const ERROR_CATALOG = {
  // 0: success reason codes (kept in the catalog so every reason code has a page)
  AEC_DISPATCH_OK: EXIT.OK,
  AEC_IDEMPOTENT_REPLAY: EXIT.OK,
  SIM_FINDER_MATCH_OK: EXIT.OK,
  KIMI_OK: EXIT.OK,
  KIMI_REUSED: EXIT.OK,
  MANUAL_RECORDED: EXIT.OK,
  // 1
  INTERNAL_ERROR: EXIT.INTERNAL,
  // 2
  USAGE_ERROR: EXIT.USAGE,
  PLAN_INVALID: EXIT.USAGE,
  INVALID_ID: EXIT.USAGE,
  INVALID_CONTROL: EXIT.USAGE,
  CONTROL_UNKNOWN: EXIT.USAGE,
  CONFIG_INVALID: EXIT.USAGE,
  SIMULATION_INVALID: EXIT.USAGE,
  SIGNING_FAILED: EXIT.USAGE,
  SIGNING_UNAVAILABLE: EXIT.USAGE,
  PLANNER_NOT_CONFIGURED: EXIT.USAGE,
  BACKEND_CONFIG_INVALID: EXIT.USAGE,
  // 3
  INVALID_TRANSITION: EXIT.REFUSED,
  APPROVAL_REQUIRED: EXIT.REFUSED,
  APPROVAL_STALE: EXIT.REFUSED,
  CONTROLS_MISSING: EXIT.REFUSED,
  CONTROL_REVOKED: EXIT.REFUSED,
  SELF_APPROVAL_FORBIDDEN: EXIT.REFUSED,
  NO_EXECUTION_REQUIRED: EXIT.REFUSED,
  SCOPE_NOT_ALLOWED: EXIT.REFUSED,
  CONTRACT_EXISTS: EXIT.REFUSED,
  SIMULATION_EXISTS: EXIT.REFUSED,
  AEC_IN_DOUBT: EXIT.REFUSED,
  AEC_PACKET_INVALID: EXIT.REFUSED,
  AEC_POLICY_SNAPSHOT_MISSING: EXIT.REFUSED,
  AEC_ARTIFACT_FINGERPRINT_MISSING: EXIT.REFUSED,
  AEC_ROLLBACK_REF_MISSING: EXIT.REFUSED,
  AEC_IDEMPOTENCY_CONFLICT: EXIT.REFUSED,
  AEC_CONFIRM_REQUIRED: EXIT.REFUSED,
  AEC_CONFIRM_DECLINED: EXIT.REFUSED,
  AEC_CONFIRM_AMBIGUOUS_REJECTED: EXIT.REFUSED,
  ACCESS_SCOPE_VIOLATION: EXIT.REFUSED,
  ACCESS_AP_REQUIRED: EXIT.REFUSED,
  SIMULATION_NOT_REGISTERED: EXIT.REFUSED,
  SIMULATION_NOT_ACTIVE: EXIT.REFUSED,
  SIM_FINDER_MISSING_SIMULATION: EXIT.REFUSED,
  SIM_FINDER_SIMULATION_INACTIVE: EXIT.REFUSED,
  SIM_FINDER_REFUSE_POLICY_BLOCKED: EXIT.REFUSED,
  SIM_FINDER_REFUSE_AMBIGUOUS: EXIT.REFUSED,
  SIM_FINDER_CLARIFY_AMBIGUOUS: EXIT.REFUSED,
  SIM_FINDER_CLARIFY_LOW_CONFIDENCE: EXIT.REFUSED,
  SIM_FINDER_CLARIFY_MISSING_FIELD: EXIT.REFUSED,
  NOT_OWNER: EXIT.REFUSED,
  NOT_ADMIN: EXIT.REFUSED,
  SLO_BREACHED: EXIT.REFUSED,
  SIGNATURE_REQUIRED: EXIT.REFUSED,
  SIGNATURE_INVALID: EXIT.REFUSED,
  AEC_REPEAT_BLOCKED: EXIT.REFUSED,
  ROLLBACK_UNAVAILABLE: EXIT.REFUSED,
  DOCTOR_FAILED: EXIT.REFUSED,
  WORKSPACE_NOT_EMPTY: EXIT.REFUSED,
  // 4
  CONTRACT_NOT_FOUND: EXIT.NOT_FOUND,
  WORKSPACE_NOT_FOUND: EXIT.NOT_FOUND,
  SIMULATION_NOT_FOUND: EXIT.NOT_FOUND,
  RUN_NOT_FOUND: EXIT.NOT_FOUND,
  PLAN_NOT_FOUND: EXIT.NOT_FOUND,
  // 5
  BUDGET_EXCEEDED: EXIT.EXECUTION,
  RUNTIME_EXCEEDED: EXIT.EXECUTION,
  CONTRACT_BUDGET_EXCEEDED: EXIT.EXECUTION,
  AEC_EXECUTOR_FAILED: EXIT.EXECUTION,
  AEC_STEP_TIMEOUT: EXIT.EXECUTION,
  PLANNER_FAILED: EXIT.EXECUTION,
  // 6
  LOCK_BUSY: EXIT.BUSY,
  CONCURRENT_WRITE: EXIT.BUSY,
  BACKEND_UNAVAILABLE: EXIT.BUSY,
  // 7
  INTEGRITY_FAILED: EXIT.INTEGRITY,
  AEC_REPLAY_MISMATCH: EXIT.INTEGRITY,
  // 130, or 143 when the signal was SIGTERM (exitCodeOf alone cannot know: see exitForError)
  INTERRUPTED: EXIT.INTERRUPTED,
} as const satisfies Record<string, ExitCode>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export const ERROR_CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];

export type ErrorDetails = Record<string, unknown>;

export class KairError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  /** Top-level members of the --json error document besides `ok` and `error` (e.g. a run's steps). */
  payload: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.payload = undefined;
    this.name = 'KairError';
    this.code = code;
    this.details = details;
  }
}

export function kairError(code: ErrorCode, message: string, details: ErrorDetails = {}): KairError {
  return new KairError(code, message, details);
}

export function exitCodeOf(code: ErrorCode): ExitCode {
  return ERROR_CATALOG[code];
}

/** The one code whose exit depends on the error: INTERRUPTED is 143 when SIGTERM stopped the run. */
export function exitForError(e: Pick<KairError, 'code' | 'details'>): ExitCode {
  return e.code === 'INTERRUPTED' && e.details.signal === 'SIGTERM' ? EXIT.TERMINATED : exitCodeOf(e.code);
}

/** By shape, not instanceof: the CLI is two bundles, each with its own copy of this class. */
export function isKairError(e: unknown): e is KairError {
  return e instanceof Error && e.name === 'KairError' && typeof (e as KairError).code === 'string' && (e as KairError).code in ERROR_CATALOG;
}
