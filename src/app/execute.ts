/**
 * The run loop of §8: steps in plan order, a locked check at every step boundary (user pause,
 * --pause-at, controls still granted), the Kimi lane once per run, manual steps recorded, and
 * run-result.json + `run.finished` at the end. The contract lock is held only at boundaries, so
 * `pause`, `revoke` and `status` work from another shell while a run is in progress.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Contract, EventDraft, PauseInfo } from '../domain/contract.js';
import { missingControls } from '../domain/contract.js';
import type { ErrorCode, ErrorDetails } from '../domain/errors.js';
import { exitCodeOf } from '../domain/errors.js';
import { effectiveCaps, usdToMicros } from '../domain/kimi.js';
import type { Plan, PlanStep } from '../domain/plan.js';
import { stepLane } from '../domain/plan-routing.js';
import type { PauseReason } from '../domain/states.js';
import type { KimiRunObject } from '../lanes/kimi/envelopes.js';
import { envelopeRepo, runKimiLane } from '../lanes/kimi/envelopes.js';
import { providerFor } from '../lanes/kimi/provider.js';
import type { StepRequest } from '../lanes/aec/dispatcher.js';
import { dispatchStep } from '../lanes/aec/dispatcher.js';
import { jsonText, writeFileAtomicSync } from '../store/fs/atomic.js';
import { sha256Hex } from '../domain/canonical.js';
import { stepAnchors } from '../store/sqlite/chain.js';
import type { SqliteExecutionStore } from '../store/sqlite/executor.js';
import { readOnly } from '../store/port.js';
import { openExecution } from './db.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { RowAnchor } from '../store/sqlite/chain.js';
import type { Ctx } from './context.js';
import { dpcChange } from './lifecycle.js';
import { mutate } from './mutate.js';
import type { Interrupts } from './interrupt.js';
import { yieldToSignals } from './interrupt.js';
import { stoppoint } from '../store/failpoint.js';

export interface StepResult {
  id: string;
  lane: 'kimi' | 'aec' | 'manual';
  status: 'PENDING' | 'COMPLETED' | 'REPLAYED' | 'PAUSED' | 'FAILED' | 'REFUSED';
  reason_code: string | null;
  simulation_id?: string;
  outcome?: unknown;
  idempotency_key?: string;
  proof_refs?: string[];
  question?: string;
  intake_id?: string;
  /** A kimi step that reuses the COMPLETED envelope of an earlier run of the same plan. */
  reused_from?: string;
}

export interface RunOutcome {
  contract: Contract;
  run_id: string;
  status: 'COMPLETED' | 'FAILED' | 'PAUSED';
  steps: StepResult[];
  kimi?: KimiRunObject;
  error?: { code: ErrorCode; message: string; details: ErrorDetails };
  /** Why a PAUSED run paused. */
  pause_reason?: PauseReason;
  artifacts: { run_request: string; run_result: string; run_result_sealed: string };
  started_at: string;
}

export function runDir(ctx: Ctx, id: string, runId: string): string {
  return join(paths.runs(ctx.ws, id), runId);
}

export interface ArtifactRecord {
  /** Relative to the workspace. */
  path: string;
  /** Of the bytes written: what history records and `verify` checks. */
  sha256: string;
}

/**
 * Writes an immutable run artifact into the run's own folder, before the event that records its
 * hash (a kill in between leaves a file no event names). Returns its record and its text, from
 * which the derived copies are written once the event is durable.
 */
function writeArtifact(ctx: Ctx, id: string, runId: string, name: string, doc: unknown): ArtifactRecord & { text: string } {
  const file = join(runDir(ctx, id, runId), name);
  const text = jsonText(doc);
  writeFileAtomicSync(file, text);
  return { path: rel(ctx.ws, file), sha256: sha256Hex(text), text };
}

/** A derived copy of a recorded artifact (the latest copies, a run's result pointer). */
function writeCopy(file: string, text: string): void {
  writeFileAtomicSync(file, text, { derived: true });
}

/** The next run-result.<n>.json of a run: each run segment (run, then each resume) seals its own. */
function nextSegment(ctx: Ctx, id: string, runId: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(runDir(ctx, id, runId))) {
      const m = /^run-result\.(\d+)\.json$/.exec(f);
      if (m) n = Math.max(n, Number(m[1]));
    }
  } catch {
    // no folder yet
  }
  return n + 1;
}

/** The latest copy of run-request.json, written with the run's other checkpoints at its end. */
export function writeLatestRequest(ctx: Ctx, id: string, text: string): void {
  writeCopy(join(paths.runs(ctx.ws, id), 'run-request.json'), text);
}

export function writeRunRequest(ctx: Ctx, c: Contract, runId: string, plan: Plan, lanes: string[]): ArtifactRecord & { text: string } {
  const caps = effectiveCaps(plan, ctx.config);
  return writeArtifact(ctx, c.id, runId, 'run-request.json', {
    version: 'kair.run-request.v1',
    run_id: runId,
    contract_id: c.id,
    contract_version: c.version,
    plan_sha256: c.plan_sha256,
    actor: ctx.actor(),
    requested_at: ctx.now(),
    approvals: c.approvals.filter((a) => a.valid && a.plan_sha256 === c.plan_sha256),
    controls: { required: c.controls.required, granted: c.controls.granted },
    lanes,
    steps: plan.steps.map((s) => ({ id: s.id, lane: stepLane(s) })),
    budget: { maxCostUSD: caps.maxCostUSD, maxAgents: caps.maxAgents, maxRuntimeSec: caps.maxRuntimeSec },
    scopes: plan.scopes ?? [],
  });
}

type Boundary = { kind: 'go'; contract: Contract } | { kind: 'pause'; reason: PauseReason; pause: PauseInfo };

/** What the AEC lane needs from the command line (`run`/`resume`). */
export interface AecOptions {
  /** Answers the first confirmation the run reaches, then is used up. */
  confirm?: string;
  /** `--confirm-all`: `confirm` answers every confirmation of this invocation (CI). */
  confirmAll?: boolean;
  lang?: string;
  retryInDoubt: boolean;
  /** Dispatch a step even though an earlier version of the contract already succeeded with it. */
  allowRepeat?: boolean;
}

/** What a dispatch request of an AEC step takes from the contract and its plan step (the run, its dry run). */
export function stepRequest(ctx: Ctx, c: Contract, runId: string, step: PlanStep): Omit<StepRequest, 'confirm' | 'retry_in_doubt'> {
  const sim = step.simulation!;
  return {
    tenant_id: ctx.config.workspace_id,
    contract_id: c.id,
    contract_version: c.version,
    run_id: runId,
    step_id: step.id,
    actor: ctx.actor(),
    plan_sha256: c.plan_sha256 ?? '',
    utterance: sim.utterance,
    fields: sim.fields ?? {},
    lang: sim.lang ?? 'en',
    ...(sim.attempt === undefined ? {} : { finder_attempt: sim.attempt }),
    controls_granted: c.controls.granted,
    now: ctx.now,
  };
}

/**
 * Executes steps from `from` on. `done` holds the results of steps already finished in this
 * run (resume). `pauseAt` pauses before that step unless the run resumes at it.
 */
export async function executeSteps(
  ctx: Ctx,
  c0: Contract,
  plan: Plan,
  run: {
    runId: string;
    startedAt: string;
    eligible: boolean;
    pauseAt?: string;
    resumedAt?: string | null;
    done: StepResult[];
    aec: AecOptions;
    /** The run-request.json this process wrote (a resumed run reads it back for its hash). */
    request?: ArtifactRecord & { text?: string };
    /** A store the gates already opened; the steps use it and close it at the end. */
    store?: SqliteExecutionStore;
    /** Earlier runs whose COMPLETED Kimi envelope this run may reuse, newest first. */
    kimiReuseFrom?: readonly string[];
    /** SIGINT/SIGTERM handling for this run: it stops before the next step (PAUSED, INTERRUPTED). */
    interrupts?: Interrupts;
  },
): Promise<RunOutcome> {
  const id = c0.id;
  const results: StepResult[] = plan.steps.map((s) => run.done.find((d) => d.id === s.id) ?? { id: s.id, lane: stepLane(s), status: 'PENDING', reason_code: null });
  let kimi: KimiRunObject | undefined;
  // Events of the step just finished wait for the next locked boundary (or the end of the run),
  // so "after step k" and "before step k+1" are one lock, one append, one snapshot write.
  const pending: Pending[] = [];
  let error: RunOutcome['error'];
  let store: SqliteExecutionStore | undefined = run.store;
  const kimiStepIds = plan.steps.filter((s) => stepLane(s) === 'kimi').map((s) => s.id);
  const envelopeFirst = run.eligible && kimiStepIds.length === 0;

  let reusedFrom = run.done.find((d) => d.lane === 'kimi' && d.reused_from)?.reused_from;
  const runKimi = async (): Promise<{ ok: boolean; reused: boolean }> => {
    store ??= openExecution(ctx);
    const caps = effectiveCaps(plan, ctx.config);
    const r = await runKimiLane(store, providerFor(ctx.config), {
      contractId: id,
      runId: run.runId,
      planSha256: c0.plan_sha256 ?? '',
      actor: ctx.actor(),
      features: plan.details?.features ?? [],
      caps,
      perContractCapMicros: usdToMicros(ctx.config.kimi.max_cost_usd_per_contract),
      now: ctx.now,
      reuseFrom: run.kimiReuseFrom ?? [],
    });
    kimi = r.kimi;
    if (r.reused_from) reusedFrom = r.reused_from;
    // The last event names the rows as the lane left them (SQLite has committed; cross-anchoring).
    const rows = r.rows;
    r.events.forEach((e, n) => {
      const anchors = n === r.events.length - 1 ? { rows } : {};
      pending.push((c) => ({ type: e.type, state: c.state, data: { run_id: run.runId, envelope_id: r.kimi.executionEnvelopeId, message: e.message, ...anchors } }));
    });
    if (!r.ok && r.error) error = r.error;
    return { ok: r.ok, reused: r.reused };
  };

  let status: RunOutcome['status'] = 'COMPLETED';
  let pauseReason: PauseReason | undefined;
  let pause: PauseInfo | undefined;
  let kimiRan = run.done.some((d) => d.lane === 'kimi' && d.status === 'COMPLETED');
  const progress = ctx.progress;
  let confirm = run.aec.confirm === undefined ? null : { token: run.aec.confirm, ...(run.aec.lang === undefined ? {} : { lang: run.aec.lang }) };
  let firstBoundary = true;
  let stepRows: RowAnchor[] | undefined;
  try {
    for (let i = 0; i < plan.steps.length; i++) {
      const step = plan.steps[i]!;
      const result = results[i]!;
      if (result.status === 'COMPLETED' || result.status === 'REPLAYED') continue;
      // The one place between steps where a signal handler can run (the boundary writes never yield to the event loop: their promises are settled).
      if (run.interrupts) {
        stoppoint(`run.before:${step.id}`);
        await yieldToSignals();
        const sig = run.interrupts.received();
        if (sig) {
          status = 'PAUSED';
          pauseReason = 'INTERRUPTED';
          pause = { requested_by: ctx.actor(), reason: 'INTERRUPTED', step_id: step.id };
          error = { code: 'INTERRUPTED', message: `interrupted by ${sig}; the run paused before step ${step.id} (\`kair resume ${id}\` continues)`, details: { signal: sig, step_id: step.id } };
          run.interrupts.acted();
          break;
        }
      }
      if (plan.steps.length > 1) progress?.(`${run.runId} [${i + 1}/${plan.steps.length}] ${step.id} (${stepLane(step)})…`);
      const pauseHere = run.pauseAt !== undefined && run.pauseAt === step.id && run.resumedAt !== step.id;
      // The caller's run/resume mutate, just now, was the locked boundary before the first step.
      const boundary = firstBoundary ? pauseAtOnly(ctx, c0, step.id, pauseHere) : await checkBoundary(ctx, id, step.id, pauseHere, pending);
      firstBoundary = false;
      if (boundary.kind === 'pause') {
        status = 'PAUSED';
        pauseReason = boundary.reason;
        pause = boundary.pause;
        if (boundary.reason === 'CONTROL_REVOKED') {
          error = { code: 'CONTROL_REVOKED', message: `a required control was revoked; the run paused before ${step.id}`, details: { step_id: step.id, missing: missingControls(await (await ctx.storage()).contracts.read(id)) } };
        }
        break;
      }
      if (envelopeFirst && !kimiRan) {
        const k = await runKimi();
        kimiRan = true;
        if (!k.ok) {
          status = 'FAILED';
          break;
        }
      }
      const lane = stepLane(step);
      if (lane === 'kimi') {
        if (!kimiRan) {
          const k = await runKimi();
          kimiRan = true;
          Object.assign(result, { status: k.ok ? 'COMPLETED' : 'FAILED', reason_code: k.ok ? (k.reused ? 'KIMI_REUSED' : 'KIMI_OK') : (error?.code ?? 'INTERNAL_ERROR'), ...(reusedFrom ? { reused_from: reusedFrom } : {}) });
        } else {
          Object.assign(result, { status: 'COMPLETED', reason_code: 'KIMI_REUSED', ...(reusedFrom ? { reused_from: reusedFrom } : {}) });
        }
      } else if (lane === 'manual') {
        Object.assign(result, { status: 'COMPLETED', reason_code: 'MANUAL_RECORDED' });
      } else {
        store ??= openExecution(ctx);
        const c = boundary.contract;
        const o = await dispatchStep(store, ctx.ws, {
          ...stepRequest(ctx, c, run.runId, step),
          confirm,
          // Asked only when a step needs an answer: whether stdin is a terminal is not free to learn.
          ...(confirm === null ? { ask: (question: string) => ctx.ask?.(question) ?? null } : {}),
          retry_in_doubt: run.aec.retryInDoubt,
          allow_repeat: run.aec.allowRepeat === true,
          ...(run.interrupts ? { signal: run.interrupts.signal } : {}),
        });
        if (o.confirmation_used && run.aec.confirmAll !== true) confirm = null;
        Object.assign(result, {
          status: o.status,
          reason_code: o.reason_code,
          ...(o.simulation_id === undefined ? {} : { simulation_id: o.simulation_id }),
          ...(o.outcome === undefined || o.outcome === null ? {} : { outcome: (o.outcome as { simulation_outcome?: unknown }).simulation_outcome ?? o.outcome }),
          idempotency_key: o.idempotency_key,
          proof_refs: o.proof_refs,
          ...(o.question === undefined ? {} : { question: o.question }),
          ...(o.intake_id === undefined ? {} : { intake_id: o.intake_id }),
        });
        stepRows = o.rows;
        if (o.status === 'PAUSED') {
          pauseReason = o.reason_code as PauseReason;
          pause = { requested_by: ctx.actor(), reason: pauseReason, step_id: step.id };
        }
        if (o.status !== 'COMPLETED' && o.status !== 'REPLAYED') error = { code: o.reason_code, message: o.message, details: { step_id: step.id, ...o.details } };
        if (o.reason_code === 'INTERRUPTED') {
          const sig = run.interrupts?.received() ?? 'SIGINT';
          error = { code: 'INTERRUPTED', message: `interrupted by ${sig} while step ${step.id} ran; its command was killed and the step is in doubt (check its effect, then \`kair resume ${id} --retry-in-doubt\`)`, details: { signal: sig, ...o.details } };
          run.interrupts?.acted();
        }
      }
      const next = plan.steps[i + 1]?.id ?? null;
      const finished = { ...result };
      // An AEC step names every ledger row of this step of this run, those of a crashed earlier try
      // included: as the step's last transaction left them (an interrupted step has none, so they are read).
      const s = store;
      const rows = lane === 'aec' && s ? { rows: stepRows ?? (await readOnly(s, (sql) => stepAnchors(sql, run.runId, step.id))) } : {};
      stepRows = undefined;
      pending.push((c) => ({ type: 'step.finished', state: c.state, data: { run_id: run.runId, step: finished, next_step_id: next, ...rows } }));
      const ended = result.status as StepResult['status'];
      if (ended === 'PAUSED') {
        status = 'PAUSED';
        break;
      }
      if (ended !== 'COMPLETED' && ended !== 'REPLAYED') {
        status = 'FAILED';
        break;
      }
    }
    if (run.eligible && !kimi && kimiRan) {
      // A resumed run shows the envelope it reuses (§14: resume reuses its COMPLETED envelope).
      store ??= openExecution(ctx);
      const from = reusedFrom ?? run.runId;
      kimi = (await readOnly(store, (sql) => envelopeRepo(sql).findCompletedForRun(from)))?.kimi;
    }
  } finally {
    progress?.(null);
    store?.close();
  }
  return await finishRun(ctx, id, { ...run, status, results, kimi, error, pauseReason, pause }, pending);
}

type Pending = (c: Contract) => EventDraft;

function pauseAtOnly(ctx: Ctx, c: Contract, stepId: string, pauseHere: boolean): Boundary {
  return pauseHere ? { kind: 'pause', reason: 'PAUSE_AT', pause: { requested_by: ctx.actor(), reason: 'PAUSE_AT', step_id: stepId } } : { kind: 'go', contract: c };
}

/**
 * The locked boundary before a step: records what the previous step left pending, then checks
 * for a user pause, --pause-at, or a required control revoked.
 */
async function checkBoundary(ctx: Ctx, id: string, stepId: string, pauseHere: boolean, pending: Pending[]): Promise<Boundary> {
  let b!: Boundary;
  await mutate(ctx, id, 'run', (c) => {
    const drafts = pending.splice(0).map((f) => f(c));
    b = { kind: 'go', contract: c };
    if (c.state === 'PAUSED' && c.pause) {
      b = { kind: 'pause', reason: c.pause.reason, pause: { ...c.pause, step_id: stepId } };
    } else if (missingControls(c).length > 0) {
      b = { kind: 'pause', reason: 'CONTROL_REVOKED', pause: { requested_by: ctx.actor(), reason: 'CONTROL_REVOKED', step_id: stepId } };
    } else if (pauseHere) {
      b = { kind: 'pause', reason: 'PAUSE_AT', pause: { requested_by: ctx.actor(), reason: 'PAUSE_AT', step_id: stepId } };
    }
    return { drafts };
  }, { checkpointsLater: true });
  return b;
}

async function finishRun(
  ctx: Ctx,
  id: string,
  r: {
    runId: string;
    startedAt: string;
    request?: ArtifactRecord & { text?: string };
    status: RunOutcome['status'];
    results: StepResult[];
    kimi?: KimiRunObject;
    error?: RunOutcome['error'];
    pauseReason?: PauseReason;
    pause?: PauseInfo;
  },
  pending: Pending[],
): Promise<RunOutcome> {
  const finishedAt = ctx.now();
  const doc = {
    version: 'kair.run-result.v1',
    run_id: r.runId,
    contract_id: id,
    status: r.status,
    started_at: r.startedAt,
    finished_at: finishedAt,
    ...(r.kimi ? { kimi: r.kimi } : {}),
    steps: r.results,
    ...(r.error ? { error: r.error } : {}),
  };
  const requestFile = join(runDir(ctx, id, r.runId), 'run-request.json');
  const request = r.request ? { path: r.request.path, sha256: r.request.sha256 } : { path: rel(ctx.ws, requestFile), sha256: sha256Hex(readFileSync(requestFile)) };
  const pointer = join(runDir(ctx, id, r.runId), 'run-result.json');
  let result!: ArtifactRecord & { text: string };
  const contract = (await mutate(ctx, id, 'run', async (c) => {
    result = writeArtifact(ctx, id, r.runId, `run-result.${nextSegment(ctx, id, r.runId)}.json`, doc);
    const sealed = { path: result.path, sha256: result.sha256 };
    const drafts: EventDraft[] = [
      ...pending.splice(0).map((f) => f(c)),
      {
        type: 'run.finished',
        state: r.status,
        data: { run_id: r.runId, status: r.status, artifacts: [request, sealed], ...(r.pause ? { pause: r.pause } : {}), ...(r.error ? { error: { code: r.error.code, message: r.error.message } } : {}) },
      },
    ];
    if (r.error && exitCodeOf(r.error.code) === 3) drafts.push({ type: 'gate.blocked', state: r.status, data: { command: ctx.command, code: r.error.code, message: r.error.message } });
    const dpc = await dpcChange(ctx, { ...c, state: r.status }, { evidence: [{ kind: 'run', ref: rel(ctx.ws, pointer), note: `${r.runId} ${r.status}` }] });
    drafts.push(dpc.draft);
    return {
      drafts,
      after: async (_c, _e, b) => {
        // The latest copies are checkpoints too: written once, after the run's last append.
        if (r.request?.text !== undefined) writeLatestRequest(ctx, id, r.request.text);
        writeCopy(pointer, result.text);
        writeCopy(join(paths.runs(ctx.ws, id), 'run-result.json'), result.text);
        await dpc.write(b);
      },
    };
  })).contract;
  return {
    contract,
    run_id: r.runId,
    status: r.status,
    steps: r.results,
    kimi: r.kimi,
    error: r.error,
    pause_reason: r.pauseReason,
    artifacts: { run_request: request.path, run_result: rel(ctx.ws, pointer), run_result_sealed: result.path },
    started_at: r.startedAt,
  };
}
