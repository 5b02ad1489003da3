/**
 * zod schemas of what kair writes and prints: the contract snapshot, history lines, the DPC, the
 * run artifacts and every `--json` document. They exist to publish docs/schemas/*.json and to
 * check real output in tests; the CLI never imports this file (its read path must not load zod).
 * Objects are strict wherever the shape is fully known, so a renamed or extra key is drift.
 */
import * as z from 'zod';
import { SIMULATION_STATUSES, SimulationSchema } from './aec/simulation.js';
import { ERROR_CODES } from './errors.js';
import { CONTROL_PATTERN, ID_PATTERN } from './ids.js';
import { ENVELOPE_STATUSES, KIMI_RUN_STATUSES } from './kimi.js';
import { EVENT_TYPES, PAUSE_REASONS, STATES } from './states.js';

// ---- building blocks ----------------------------------------------------------------------

const state = z.enum(STATES);
const sha = z.string().regex(/^[0-9a-f]{64}$/);
const id = z.string().regex(ID_PATTERN);
const runId = z.string().regex(/^[a-z0-9][a-z0-9_-]*-run-[1-9][0-9]*$/);
const control = z.string().regex(CONTROL_PATTERN);
/** Relative to the workspace root, never absolute (SPEC §2). */
const relPath = z.string().regex(/^\.kair(\/|$)/);
const reasonCode = z.string().regex(/^[A-Z][A-Z0-9_]*$/);
const lane = z.enum(['kimi', 'aec', 'manual']);
const executionLane = z.enum(['kimi', 'aec']);
const ok = z.literal(true);

export const ErrorSchema = z.strictObject({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  details: z.record(z.string(), z.unknown()),
});

const approval = z.strictObject({ actor: z.string(), at: z.string(), plan_sha256: sha, valid: z.boolean() });
const controls = z.strictObject({ required: z.array(control), granted: z.array(control) });

// ---- documents on disk --------------------------------------------------------------------

export const ContractSchema = z.strictObject({
  id,
  intent: z.string(),
  state,
  version: z.int().positive(),
  versions: z.array(z.strictObject({ version: z.int().positive(), plan_sha256: sha.nullable(), created_at: z.string(), superseded_by: z.int().optional(), reason: z.string().optional() })),
  plan_sha256: sha.nullable(),
  controls,
  approvals: z.array(approval),
  runs: z.array(runId),
  pause: z.strictObject({ requested_by: z.string(), reason: z.enum(PAUSE_REASONS), step_id: z.string().nullable() }).optional(),
  /** `alive` is added by the read commands only (a dead runner shows as RUNNING, alive false). */
  running: z
    .strictObject({
      run_id: runId,
      pid: z.int(),
      since: z.string(),
      step_id: z.string().nullable(),
      alive: z.boolean().optional(),
      runner: z.strictObject({ host: z.string(), boot_id: z.string().nullable(), pid_ns: z.string().nullable(), pid: z.int(), pid_start: z.number().nullable() }).optional(),
    })
    .optional(),
  created_at: z.string(),
  updated_at: z.string(),
  history_seq: z.int().positive(),
  history_head: sha,
});

export const HistoryEventSchema = z.strictObject({
  seq: z.int().positive(),
  at: z.string(),
  type: z.enum(EVENT_TYPES),
  actor: z.string(),
  state,
  data: z.record(z.string(), z.unknown()),
  prev: sha,
  hash: sha,
});

export const DpcSchema = z.strictObject({
  version: z.literal('kair.dpc.v1'),
  topic: z.string(),
  assumptions: z.array(z.string()),
  constraints: z.array(z.string()),
  decisions: z.array(z.strictObject({ id: z.string().regex(/^d[1-9][0-9]*$/), decision: z.string(), status: z.enum(['active', 'superseded']), rationale: z.string().optional() })),
  open_questions: z.array(z.strictObject({ id: z.string().regex(/^q[1-9][0-9]*$/), question: z.string(), impact: z.string().optional() })),
  evidence: z.array(z.strictObject({ id: z.string().regex(/^e[1-9][0-9]*$/), kind: z.enum(['prompt', 'plan', 'diff', 'file', 'url', 'run']), ref: z.string(), note: z.string().optional() })),
  updated_at: z.string(),
  parent_dpc_id: z.string().optional(),
});

export const RunRequestSchema = z.strictObject({
  version: z.literal('kair.run-request.v1'),
  run_id: runId,
  contract_id: id,
  contract_version: z.int().positive(),
  plan_sha256: sha,
  actor: z.string(),
  requested_at: z.string(),
  approvals: z.array(approval),
  controls,
  lanes: z.array(executionLane),
  steps: z.array(z.strictObject({ id, lane })),
  budget: z.strictObject({ maxCostUSD: z.number().positive(), maxAgents: z.int().positive(), maxRuntimeSec: z.int().positive() }),
  scopes: z.array(z.string()),
});

/** The seed 000 response object (camelCase, dollars as numbers). */
export const KimiObjectSchema = z.strictObject({
  executionEnvelopeId: z.string().regex(/^env_/),
  executionRunId: z.string().regex(/^kexec_/),
  status: z.enum(ENVELOPE_STATUSES),
  maxCostUSD: z.number().positive(),
  maxAgents: z.int().positive(),
  maxRuntimeSec: z.int().positive(),
  result: z.strictObject({
    tokensUsed: z.int().nonnegative(),
    costUSD: z.number().nonnegative(),
    summary: z.string(),
    status: z.enum(KIMI_RUN_STATUSES),
    runtimeSec: z.int().nonnegative(),
  }),
});

export const RunStepSchema = z.strictObject({
  id,
  lane,
  status: z.enum(['PENDING', 'COMPLETED', 'REPLAYED', 'PAUSED', 'FAILED', 'REFUSED']),
  reason_code: reasonCode.nullable(),
  simulation_id: id.optional(),
  outcome: z.unknown().optional(),
  idempotency_key: sha.optional(),
  proof_refs: z.array(z.string()).optional(),
  question: z.string().optional(),
  intake_id: z.string().optional(),
  reused_from: runId.optional(),
});

const runStatus = z.enum(['COMPLETED', 'FAILED', 'PAUSED']);

export const RunResultSchema = z.strictObject({
  version: z.literal('kair.run-result.v1'),
  run_id: runId,
  contract_id: id,
  status: runStatus,
  started_at: z.string(),
  finished_at: z.string(),
  kimi: KimiObjectSchema.optional(),
  steps: z.array(RunStepSchema),
  error: ErrorSchema.optional(),
});

// ---- --json documents ---------------------------------------------------------------------

/**
 * Any command's handled failure. Two failures carry more and have their own schema instead:
 * `verify` finding problems, and `run`/`resume` once the run has started.
 */
export const ErrorOutputSchema = z.strictObject({ ok: z.literal(false), error: ErrorSchema });

/** What `plan --generate/--refine` records of its provider call (also in the `plan` event's data). */
export const PlannerRecordSchema = z.strictObject({
  mode: z.enum(['generate', 'refine']),
  provider: z.enum(['stub', 'openai-compatible']),
  model: z.string(),
  prompt_sha256: sha,
  prompt_ref: relPath,
  tokens_in: z.int().nonnegative(),
  tokens_out: z.int().nonnegative(),
});

/** What `rollback` did to one succeeded step of the run, in the order it was undone (reverse step order). */
export const RollbackStepSchema = z.strictObject({
  step_id: id,
  simulation_id: id,
  rollback_simulation_id: id,
  status: z.enum(['PENDING', 'COMPLETED', 'REPLAYED', 'PAUSED', 'FAILED', 'REFUSED']),
  reason_code: reasonCode.nullable(),
  idempotency_key: sha,
  rollback_of: sha,
  outcome: z.unknown().optional(),
});

const rollbackDocument = { contract_id: id, run_id: runId, state, status: z.enum(['COMPLETED', 'FAILED']), steps: z.array(RollbackStepSchema) };

/**
 * rollback: the document (ok), or, once a dispatch has failed, the same with `error`. A refusal
 * before anything was dispatched is a plain error document.
 */
const rollbackDryRunDocument = {
  dry_run: z.literal(true),
  contract_id: id,
  run_id: runId,
  steps: z.array(
    z.strictObject({
      step_id: id,
      simulation_id: id,
      rollback_simulation_id: z.union([id, z.literal('')]),
      status: z.enum(['ok', 'replay', 'needs_confirmation', 'refused']),
      reason_code: reasonCode,
      fields: z.record(z.string(), z.string()),
      idempotency_key: sha.nullable(),
      rollback_of: sha,
      message: z.string().optional(),
      after_confirmation: reasonCode.optional(),
    }),
  ),
};

/** The dry run (`--dry-run`): the prediction, and with a predicted stop the stop as `error` (its exit code). */
export const RollbackOutputSchema = z.union([
  z.strictObject({ ok, ...rollbackDocument }),
  z.strictObject({ ok: z.literal(false), ...rollbackDocument, error: ErrorSchema }),
  z.strictObject({ ok, ...rollbackDryRunDocument }),
  z.strictObject({ ok: z.literal(false), ...rollbackDryRunDocument, error: ErrorSchema }),
]);

/** propose, plan (+ plan_sha256, + planner with --generate/--refine), require, grant, revoke, request-approval, approve (+ recorded), pause, accept, rewind (+ rollback with --rollback), grant (+ warnings). */
export const LifecycleOutputSchema = z.strictObject({ ok, contract: ContractSchema, plan_sha256: sha.optional(), recorded: z.boolean().optional(), planner: PlannerRecordSchema.optional(), warnings: z.array(z.string()).optional(), rollback: z.strictObject(rollbackDocument).nullable().optional() });

export const InitOutputSchema = z.strictObject({
  ok,
  created: z.boolean(),
  workspace: relPath,
  workspace_id: z.string().nullable(),
  config: relPath,
  backend: z.enum(['local', 'postgres']),
  /** postgres, when init reached the database: a new tenant, an existing one, or the one a killed init of this folder left. */
  tenant: z.enum(['created', 'joined', 'reused']).optional(),
  schema: z.string().optional(),
});

const nextStep = z.strictObject({ command: z.string(), why: z.string() });

/** The last run as history recorded it (show, status of a FAILED/PAUSED contract, review). */
const lastRun = z.strictObject({
  run_id: runId,
  status: z.enum(['RUNNING', 'COMPLETED', 'FAILED', 'PAUSED']),
  plan_sha256: sha.nullable(),
  reason: z.strictObject({ code: reasonCode, message: z.string() }).nullable(),
  failed_step: z.string().nullable(),
  steps: z.array(z.strictObject({ id: z.string(), lane, status: z.enum(['PENDING', 'COMPLETED', 'REPLAYED', 'PAUSED', 'FAILED', 'REFUSED']), reason_code: reasonCode.nullable() })),
  run_result: relPath.nullable(),
});

/** `plan_sha256` and `next` always; `last_run` only for a FAILED or PAUSED contract. */
export const StatusOutputSchema = z.strictObject({ ok, contract: ContractSchema, plan_sha256: sha.nullable(), last_run: lastRun.nullable().optional(), next: z.array(nextStep) });

export const ShowOutputSchema = z.strictObject({
  ok,
  contract_id: id,
  intent: z.string(),
  state,
  version: z.int().positive(),
  plan_sha256: sha.nullable(),
  plan: z
    .strictObject({
      sha256: sha,
      title: z.string(),
      strategy: z.string().nullable(),
      kimi_eligible: z.boolean(),
      steps: z.array(z.strictObject({ id: z.string(), lane, summary: z.string(), simulation: z.string().optional() })),
    })
    .nullable(),
  controls: z.strictObject({ required: z.array(control), granted: z.array(control), missing: z.array(control) }),
  approvals: z.array(
    z.strictObject({ actor: z.string(), at: z.string(), plan_sha256: sha, valid: z.boolean(), current: z.boolean(), signed: z.boolean(), verified: z.boolean().nullable() }),
  ),
  approvers: z.strictObject({ valid: z.int().nonnegative(), min: z.int().positive() }),
  last_run: lastRun.nullable(),
  next: z.array(nextStep),
});

const jsonValue = z.unknown();
const pathChange = { path: z.string(), op: z.enum(['add', 'remove', 'replace']), from: jsonValue, to: jsonValue };

export const DiffOutputSchema = z.strictObject({
  ok,
  contract_id: id,
  /** null: there was no plan before (every step is added). */
  from: sha.nullable(),
  to: sha,
  from_ref: z.enum(['approved', 'previous', 'current', 'sha']),
  to_ref: z.enum(['approved', 'previous', 'current', 'sha']),
  identical: z.boolean(),
  steps: z.strictObject({
    added: z.array(z.strictObject({ id: z.string(), index: z.int().nonnegative(), step: jsonValue })),
    removed: z.array(z.strictObject({ id: z.string(), index: z.int().nonnegative(), step: jsonValue })),
    moved: z.array(z.strictObject({ id: z.string(), from: z.int().nonnegative(), to: z.int().nonnegative() })),
    changed: z.array(z.strictObject({ id: z.string(), ...pathChange })),
  }),
  other: z.array(z.strictObject(pathChange)),
});

export const ListOutputSchema = z.strictObject({
  ok,
  contracts: z.array(z.strictObject({ id, intent: z.string(), state, version: z.int().positive(), updated_at: z.string() })),
  /** With --limit: the id to pass as --after for the next page, null on the last page. */
  next_after: id.nullable().optional(),
});

export const HistoryOutputSchema = z.strictObject({ ok, events: z.array(HistoryEventSchema) });

const finding = z.strictObject({ contract_id: id.optional(), kind: z.string(), message: z.string() });

export const VerifyOutputSchema = z.union([
  z.strictObject({ ok, problems: z.array(finding).length(0), warnings: z.array(finding), contracts: z.int().nonnegative(), events: z.int().nonnegative() }),
  z.strictObject({ ok: z.literal(false), problems: z.array(finding).min(1), warnings: z.array(finding), error: ErrorSchema }),
]);

export const HeadOutputSchema = z.strictObject({ ok, digest: sha, path: relPath, contracts: z.int().nonnegative(), chains: z.int().nonnegative() });

export const VersionOutputSchema = z.strictObject({
  ok,
  version: z.string(),
  node: z.string(),
  schema_versions: z.strictObject({
    contract: z.literal('kair.contract.v1'),
    plan: z.literal('kair.plan.v1'),
    dpc: z.literal('kair.dpc.v1'),
    run_request: z.literal('kair.run-request.v1'),
    run_result: z.literal('kair.run-result.v1'),
    confirm: z.literal('kair.confirm.v1'),
  }),
});

/** `kair --version --json` (the flag, not the command). */
export const VersionFlagOutputSchema = z.strictObject({ ok, version: z.string() });

export const HelpOutputSchema = z.strictObject({ ok, command: z.string().nullable(), help: z.string() });

export const CompletionOutputSchema = z.strictObject({ ok, shell: z.enum(['bash', 'zsh', 'fish']), script: z.string() });

export const GrantListOutputSchema = z.strictObject({ ok, controls: z.array(control) });

const simulationStatus = z.enum(SIMULATION_STATUSES);

export const SimulationViewSchema = SimulationSchema.extend({
  status: simulationStatus,
  created_at: z.string(),
  updated_at: z.string(),
  registered_by: z.string(),
});

/** sim show, sim register, sim activate|deprecate|disable. */
export const SimulationOutputSchema = z.strictObject({ ok, simulation: SimulationViewSchema });

export const SimulationListOutputSchema = z.strictObject({ ok, simulations: z.array(SimulationViewSchema) });

const accessRule = z.strictObject({ actor: z.string(), action: z.string(), decision: z.enum(['allow', 'deny', 'require-ap']) });

export const AccessListOutputSchema = z.strictObject({ ok, rules: z.array(accessRule), policy_snapshot_version: z.int().nonnegative() });

/** access allow|deny|require-ap. */
export const AccessRuleOutputSchema = z.strictObject({ ok, rule: accessRule, policy_snapshot_version: z.int().positive() });

/** One change-log entry: who changed which catalog or policy row, how, and the sha256 of the row it left. */
export const ChangeLogEntrySchema = z.strictObject({
  id: z.int().positive(),
  changed_at: z.string(),
  actor: z.string(),
  action: z.string(),
  table: z.enum(['simulations', 'access_policy', 'slo_waivers']),
  key: z.record(z.string(), z.string()),
  change: z.record(z.string(), z.unknown()),
  row_sha256: sha,
  prev_hash: sha,
  row_hash: sha,
});

export const AccessLogOutputSchema = z.strictObject({ ok, entries: z.array(ChangeLogEntrySchema) });

export const SimLogOutputSchema = z.strictObject({ ok, simulation_id: z.string(), entries: z.array(ChangeLogEntrySchema) });

const scoreBp = z.int().min(0).max(10000);
const clarifyCode = z.enum(['SIM_FINDER_CLARIFY_AMBIGUOUS', 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE', 'SIM_FINDER_CLARIFY_MISSING_FIELD']);
const packetBase = {
  utterance: z.string(),
  lang: z.string(),
  attempt: z.int().positive(),
  catalog_snapshot_ref: z.string().regex(/^catalog:[0-9a-f]{64}$/),
  candidates: z.array(z.strictObject({ simulation_id: id, score_bp: scoreBp, status: simulationStatus })),
  packet_hash: sha,
};

export const FinderPacketSchema = z.discriminatedUnion('type', [
  z.strictObject({
    ...packetBase,
    type: z.literal('SimulationMatchPacket'),
    reason_code: z.enum(['SIM_FINDER_MATCH_OK', 'ROLLBACK_REF']),
    simulation_id: id,
    score_bp: scoreBp,
    required_fields: z.record(z.string(), z.string()),
    required_fields_fingerprint: sha,
    simulation: SimulationSchema.extend({ status: simulationStatus }),
  }),
  z.strictObject({
    ...packetBase,
    type: z.literal('ClarifyPacket'),
    reason_code: clarifyCode,
    question: z.string(),
    simulation_id: id.optional(),
    score_bp: scoreBp,
    missing_field: z.string().optional(),
  }),
  z.strictObject({
    ...packetBase,
    type: z.literal('RefusePacket'),
    reason_code: z.enum(['SIM_FINDER_SIMULATION_INACTIVE', 'SIM_FINDER_REFUSE_POLICY_BLOCKED', 'SIM_FINDER_REFUSE_AMBIGUOUS']),
    simulation_id: id.optional(),
    score_bp: scoreBp.optional(),
    message: z.string(),
    escalated_from: clarifyCode.optional(),
  }),
  z.strictObject({
    ...packetBase,
    type: z.literal('MissingSimulationPacket'),
    reason_code: z.literal('SIM_FINDER_MISSING_SIMULATION'),
    score_bp: scoreBp,
    message: z.string(),
  }),
]);

export const FindOutputSchema = z.strictObject({ ok, packet: FinderPacketSchema });

export const IntakeListOutputSchema = z.strictObject({
  ok,
  intake: z.array(
    z.strictObject({ id: z.string().regex(/^intake-\d+$/), contract_id: id, step_id: id, utterance: z.string(), created_at: z.string(), run_id: runId, fields: z.record(z.string(), z.string()), lang: z.string() }),
  ),
});

const LEDGER_EVENTS = ['HALTED', 'CLAIMED', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'REPLAYED'] as const;
const ref = z.string().regex(/^[a-z_]+:/);

/** One agent_execution_ledger row (SPEC §9.6): every row links its refs; outcome is the seed's AgentExecutionOutcome or a halt's reason. */
export const LedgerRowSchema = z.strictObject({
  row_id: z.int().positive(),
  tenant_id: z.string(),
  plan_id: z.string(),
  correlation_id: z.string().regex(/^[a-z0-9][a-z0-9_-]*:v\d+$/),
  contract_id: id,
  run_id: runId,
  step_id: id,
  simulation_id: id.nullable(),
  required_fields_fingerprint: sha.nullable(),
  idempotency_key: sha,
  attempt: z.int().positive(),
  event: z.enum(LEDGER_EVENTS),
  reason_code: reasonCode,
  actor: z.string(),
  finder_packet_ref: ref,
  catalog_snapshot_ref: ref,
  policy_snapshot_ref: ref.nullable(),
  artifact_fingerprint_bundle_ref: ref.nullable(),
  access_decision_id: z.int().positive().nullable(),
  confirmation_id: z.int().positive().nullable(),
  confirmation_proof_ref: z.string().nullable(),
  rollback_plan_ref: ref.nullable(),
  dispatch_envelope_ref: ref.nullable(),
  decision_ref: ref,
  dispatch_decision_hash: sha,
  outcome: z.unknown(),
  latency_us: z.int().nonnegative().nullable(),
  created_at: z.string(),
  /** The hash chain of the contract's ledger rows: row_hash = sha256(prev_hash + canonical row JSON). */
  prev_hash: sha,
  row_hash: sha,
});

export const AecLedgerOutputSchema = z.strictObject({ ok, rows: z.array(LedgerRowSchema) });

const currentRow = z.strictObject({
  tenant_id: z.string(),
  correlation_id: z.string(),
  step_id: id,
  plan_id: z.string(),
  contract_id: id,
  run_id: runId,
  simulation_id: id.nullable(),
  idempotency_key: sha,
  attempt: z.int().nonnegative(),
  status: z.enum(LEDGER_EVENTS),
  reason_code: reasonCode,
  success_row_id: z.int().positive().nullable(),
  last_row_id: z.int().positive(),
  rows: z.int().positive(),
  updated_at: z.string(),
});

const rebuildDocument = {
  check: z.boolean(),
  rows: z.int().nonnegative(),
  drift_count: z.int().nonnegative(),
  drift: z.array(z.strictObject({ tenant_id: z.string(), correlation_id: z.string(), step_id: id, kind: z.enum(['extra', 'missing', 'different']), stored: currentRow.nullable(), expected: currentRow.nullable() })),
};

/** `aec rebuild [--check]`; a failed check is exit 7 with the drift and `error`. */
export const AecRebuildOutputSchema = z.union([z.strictObject({ ok, ...rebuildDocument }), z.strictObject({ ok: z.literal(false), ...rebuildDocument, error: ErrorSchema })]);

const replayDocument = {
  run_id: runId,
  decisions: z.array(
    z.strictObject({
      row_id: z.int().positive(),
      step_id: id,
      event: z.enum(LEDGER_EVENTS),
      recorded: z.strictObject({ dispatch: z.boolean(), reason_code: reasonCode }),
      replayed: z.strictObject({ dispatch: z.boolean(), reason_code: reasonCode }).nullable(),
      same: z.boolean(),
      problems: z.array(z.string()),
    }),
  ),
};

/** `aec replay <run_id>`; a mismatch is exit 7 AEC_REPLAY_MISMATCH with every decision. */
export const AecReplayOutputSchema = z.union([z.strictObject({ ok, ...replayDocument }), z.strictObject({ ok: z.literal(false), ...replayDocument, error: ErrorSchema })]);

const ms = z.number().nonnegative().nullable();

/** `aec stats`: seed 001 §14.2 figures from the ledger. */
export const AecStatsOutputSchema = z.strictObject({
  ok,
  stats: z.strictObject({
    rows: z.int().nonnegative(),
    dispatches: z.int().nonnegative(),
    succeeded: z.int().nonnegative(),
    failed: z.int().nonnegative(),
    timed_out: z.int().nonnegative(),
    rejected: z.int().nonnegative(),
    in_doubt: z.int().nonnegative(),
    replayed: z.int().nonnegative(),
    halted: z.int().nonnegative(),
    dispatch_latency_ms: z.strictObject({ p50: ms, p95: ms, p99: ms }),
    execution_error_rate: z.number().min(0).max(1),
    duplicate_side_effects: z.int().nonnegative(),
  }),
});

const waiver = z.strictObject({ id: z.string().regex(/^waiver-[1-9][0-9]*$/), until: z.string(), reason: z.string(), created_at: z.string(), created_by: z.string() });
const sloMetric = z.enum(['dispatch_p95_ms', 'dispatch_p99_ms', 'error_rate', 'duplicate_side_effects']);
const sloCheckDocument = {
  window: z.string(),
  since: z.string(),
  now: z.string(),
  stats: AecStatsOutputSchema.shape.stats,
  slo: z.strictObject({ dispatch_p95_ms: z.number().nonnegative(), dispatch_p99_ms: z.number().nonnegative(), error_rate: z.number().min(0).max(1), duplicate_side_effects: z.int().nonnegative() }),
  breaches: z.array(z.strictObject({ metric: sloMetric, value: z.number(), limit: z.number() })),
  /** The waiver in force (the one lasting longest), or null. */
  waiver: waiver.nullable(),
  /** `no_data` (an empty window passes), `waived`, `waiver_unlogged` (a waiver written outside kair, not honoured). */
  warnings: z.array(z.strictObject({ kind: z.string(), message: z.string() })),
};

/** `aec stats --check`: passes (breaches empty, or waived), or exit 3 SLO_BREACHED with the same figures. */
export const AecStatsCheckOutputSchema = z.union([
  z.strictObject({ ok, ...sloCheckDocument }),
  z.strictObject({ ok: z.literal(false), ...sloCheckDocument, breaches: sloCheckDocument.breaches.min(1), waiver: z.null(), error: ErrorSchema }),
]);

/** `aec waiver add`. */
export const AecWaiverOutputSchema = z.strictObject({ ok, waiver });

/** `aec waiver list`: `logged` false = the row differs from its change-log entry and is never honoured. */
export const AecWaiverListOutputSchema = z.strictObject({ ok, waivers: z.array(waiver.extend({ logged: z.boolean(), active: z.boolean() })) });

export const EnvelopesOutputSchema = z.strictObject({
  ok,
  envelopes: z.array(
    z.strictObject({
      id: z.string().regex(/^env_/),
      contract_id: id,
      run_id: runId,
      plan_sha256: sha,
      actor: z.string(),
      provider: z.literal('kimi'),
      max_cost_usd: z.number().positive(),
      max_agents: z.int().positive(),
      max_runtime_sec: z.int().positive(),
      allowed_scopes: z.array(z.string()),
      status: z.enum(ENVELOPE_STATUSES),
      created_at: z.string(),
    }),
  ),
});

const runDocument = {
  contract_id: id,
  run_id: runId,
  state,
  status: runStatus,
  kimi: KimiObjectSchema.optional(),
  steps: z.array(RunStepSchema),
  artifacts: z.strictObject({ run_request: relPath, run_result: relPath, run_result_sealed: relPath }),
};

const dryRunDocument = {
  dry_run: z.literal(true),
  contract_id: id,
  lanes: z.array(executionLane),
  steps: z.array(
    z.strictObject({
      id,
      lane,
      status: z.enum(['ok', 'replay', 'needs_confirmation', 'refused', 'failed']),
      reason_code: reasonCode,
      simulation_id: z.string().optional(),
      message: z.string().optional(),
      after_confirmation: reasonCode.optional(),
    }),
  ),
  kimi_estimate: z.strictObject({ tokens: z.int().nonnegative(), costUSD: z.number().nonnegative(), runtimeSec: z.int().nonnegative() }).nullable(),
};

/**
 * run and resume: the run document (ok when COMPLETED or paused by the user, else with `error`)
 * or the dry run. A refusal before the run starts is a plain error document.
 */
export const RunOutputSchema = z.union([
  z.strictObject({ ok, ...runDocument }),
  z.strictObject({ ok: z.literal(false), ...runDocument, error: ErrorSchema }),
  z.strictObject({ ok, ...dryRunDocument }),
  // A dry run that predicts a stop: the whole prediction and the stop as `error` (its exit code).
  z.strictObject({ ok: z.literal(false), ...dryRunDocument, error: ErrorSchema }),
  // run --allow-noop when nothing needed executing: exit 0, nothing written.
  z.strictObject({ ok, contract_id: id, no_execution_required: z.literal(true), message: z.string() }),
]);

export const ReviewOutputSchema = z.strictObject({
  ok,
  contract: ContractSchema,
  run: z.strictObject({ run_id: runId.nullable(), run_result: relPath.nullable(), run_request: relPath.nullable(), result: RunResultSchema.nullable() }),
  /** The run summary from history; `kimi` from the sealed result when it matches what history recorded. */
  last_run: lastRun.extend({ kimi: z.strictObject({ tokens: z.int().nonnegative(), cost_usd: z.number().nonnegative() }).nullable() }).nullable(),
});

const artifactKind = z.string().regex(/^(snapshot|history|plan|plan_md|dpc|run_request|run_result|run:other|run:[a-z0-9][a-z0-9_-]*:(request|result))$/);

export const ArtifactsOutputSchema = z.strictObject({
  ok,
  contract_id: id,
  runs: z.array(runId),
  artifacts: z.array(z.strictObject({ kind: artifactKind, path: relPath })),
});

export const DpcOutputSchema = z.strictObject({ ok, contract_id: id, dpc: DpcSchema });

/** `artifacts <id> --out DIR`: what was written (`written`) or found already there with the same bytes. */
export const ArtifactsOutOutputSchema = z.strictObject({
  ok,
  contract_id: id,
  out: z.string(),
  files: z.array(z.strictObject({ kind: artifactKind, path: relPath, sha256: sha, written: z.boolean() })),
  written: z.int().nonnegative(),
  unchanged: z.int().nonnegative(),
});

const transferCounts = {
  backend: z.enum(['local', 'postgres']),
  workspace_id: z.string(),
  contracts: z.int().nonnegative(),
  events: z.int().nonnegative(),
  /** Rows per execution table of kair.db. */
  rows: z.record(z.string(), z.int().nonnegative()),
};

/** `export --to DIR`: DIR/.kair/ written from this workspace (`backend` is the source's). */
export const ExportOutputSchema = z.strictObject({ ok, to: z.string(), workspace: z.string(), files: z.int().nonnegative(), ...transferCounts });

/** `import --from DIR`: DIR/.kair/ loaded into this workspace (`backend` is the target's). */
export const ImportOutputSchema = z.strictObject({ ok, from: z.string(), ...transferCounts });


/** Who held a lock: enough to prove, on the same host, that the process died. */
export const LockHolderSchema = z.strictObject({
  host: z.string(),
  boot_id: z.string().nullable(),
  pid_ns: z.string().nullable(),
  pid: z.int().positive(),
  pid_start: z.int().nullable(),
  actor: z.string(),
  command: z.string(),
  since: z.string(),
});

export const UnlockOutputSchema = z.strictObject({ ok, lock: z.string().regex(/^(contract-[a-z0-9][a-z0-9_-]*|_index|_propose)$/), removed: LockHolderSchema.nullable(), contract: ContractSchema.optional() });

// ---- config, access apply, unrequire, close, doctor ------------------------------------------

const configProblem = z.strictObject({ path: z.string(), message: z.string() });

export const ConfigGetOutputSchema = z.strictObject({ ok, key: z.string(), value: z.unknown(), source: z.enum(['file', 'default']) });

export const ConfigSetOutputSchema = z.strictObject({ ok, key: z.string(), value: z.unknown(), previous: z.unknown(), config_sha256: sha, problems: z.array(configProblem) });

export const AccessApplyOutputSchema = z.strictObject({
  ok,
  dry_run: z.boolean(),
  added: z.array(accessRule),
  removed: z.array(accessRule),
  changed: z.array(z.strictObject({ actor: z.string(), action: z.string(), from: z.enum(['allow', 'deny', 'require-ap']), to: z.enum(['allow', 'deny', 'require-ap']) })),
  unchanged: z.int().nonnegative(),
  policy_snapshot_version: z.int().nonnegative(),
});

export const UnrequireOutputSchema = z.strictObject({ ok, contract: ContractSchema, removed: z.array(control) });

export const CloseOutputSchema = z.strictObject({ ok, contract: ContractSchema, recorded: z.boolean(), cancelled_envelopes: z.array(z.string()) });

const doctorFinding = z.strictObject({ check: z.string(), status: z.enum(['pass', 'warn', 'fail']), message: z.string(), hint: z.string() });

/** doctor: the findings; when one fails, also `error` (DOCTOR_FAILED, exit 3). */
export const DoctorOutputSchema = z.union([
  z.strictObject({ ok, findings: z.array(doctorFinding) }),
  z.strictObject({ ok: z.literal(false), findings: z.array(doctorFinding), error: ErrorSchema }),
]);
