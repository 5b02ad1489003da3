/**
 * `kair run` / `kair resume`: the gates of §8 and §14 (state → approvals → on-disk plan hash →
 * controls → routing), the dry run, and the lane dispatch. The lanes land in their own issues;
 * until then an approved plan that needs one is refused after every gate has passed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Contract } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { assertRunnable, assertTransition } from '../domain/lifecycle.js';
import type { Plan } from '../domain/plan.js';
import { isKimiEligible, stepLane } from '../domain/plan-routing.js';
import { readJsonFile } from '../store/fs/contracts.js';
import { runnerVerdict, selfIdentity } from '../store/fs/pid.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';
import { assertMayRunHere } from './actors.js';
import { readDiskPlan } from './lifecycle.js';
import { mutate } from './mutate.js';
import { verifiedApprovers } from './signatures.js';
import type { AecOptions, ArtifactRecord, RunOutcome, StepResult } from './execute.js';
import { executeSteps, runDir, stepRequest, writeRunRequest } from './execute.js';
import { hasExecutionStore, openExecution, readOnlyTransaction } from './db.js';
import type { SqliteExecutionStore } from '../store/sqlite/executor.js';
import { openExecutionStore } from '../store/sqlite/executor.js';
import type { SqlExecutor } from '../store/port.js';
import { readOnly } from '../store/port.js';
import { envelopeRepo, findReusable } from '../lanes/kimi/envelopes.js';
import { changeLogMismatches } from '../lanes/aec/change-log.js';
import { CHAINS, checkChainTable } from '../store/sqlite/chain.js';
import { effectiveCaps, microsToUsd, planBudgetOverCaps, preflight, stubPricing, usdToMicros } from '../domain/kimi.js';
import { readHistory } from '../store/fs/history.js';
import type { Interrupts } from './interrupt.js';
import { assertSpendVouched } from './spend-vouch.js';
import type { ErrorCode } from '../domain/errors.js';
import { CONFIRM_LEXICON, parseConfirmation } from '../domain/aec/confirm.js';
import { decideGates } from '../domain/aec/gates.js';
import { haltMessage, predictStep } from '../lanes/aec/dispatcher.js';

export interface RunOptions {
  confirm?: string;
  confirmAll?: boolean;
  lang?: string;
  pauseAt?: string;
  dryRun: boolean;
  /** Ask for a new Kimi envelope instead of reusing an earlier run's. */
  regenerate?: boolean;
  allowRepeat?: boolean;
  /** SIGINT/SIGTERM handling installed by the caller for the run's duration. */
  interrupts?: Interrupts;
}

export function assertNoLiveRunner(c: Contract): void {
  if (c.running && runnerVerdict(c.running) !== 'dead') {
    throw kairError('LOCK_BUSY', `${c.id} is being run by pid ${c.running.pid} (${c.running.run_id}, since ${c.running.since}); wait for it to stop`, {
      contract_id: c.id,
      holder: { pid: c.running.pid, run_id: c.running.run_id, since: c.running.since },
    });
  }
}

export interface Routing {
  eligible: boolean;
  lanes: string[];
  steps: { id: string; lane: 'kimi' | 'aec' | 'manual' }[];
}

/** Routing of §8 step 2; throws NO_EXECUTION_REQUIRED when nothing needs executing. */
export function route(c: Contract, plan: Plan): Routing {
  const eligible = isKimiEligible(plan);
  const steps = plan.steps.map((s) => ({ id: s.id, lane: stepLane(s) }));
  const hasSim = steps.some((s) => s.lane === 'aec');
  const kimiStepInIneligible = !eligible && steps.some((s) => s.lane === 'kimi');
  if ((!eligible && !hasSim) || kimiStepInIneligible) {
    throw kairError('NO_EXECUTION_REQUIRED', 'No execution required (reuse sufficient)', {
      contract_id: c.id,
      strategy: plan.strategy ?? null,
      requires_kimi: plan.details?.requiresKimi ?? false,
    });
  }
  const lanes = [...new Set([...(eligible ? ['kimi'] : []), ...(hasSim ? ['aec'] : [])])];
  return { eligible, lanes, steps };
}

export interface DryRunStep {
  id: string;
  lane: 'kimi' | 'aec' | 'manual';
  /** What the real run would do at this step now (every step is evaluated, even after a stop). */
  status: 'ok' | 'replay' | 'needs_confirmation' | 'refused' | 'failed';
  reason_code: string;
  simulation_id?: string;
  message?: string;
  /** For needs_confirmation: what the gates after the confirmation decide once it is answered yes. */
  after_confirmation?: string;
}

export type RunResult = ({ dry_run: true; contract_id: string; lanes: string[]; steps: DryRunStep[]; kimi_estimate: { tokens: number; costUSD: number; runtimeSec: number } | null }) | (RunOutcome & { dry_run?: false });

/** Gates after the state check, in §14 order; returns the plan and its routing. */
/**
 * The run's one execution store: opened by the gates when they need it (the change-log check)
 * and handed to the steps, which close it, so a run opens and checkpoints the database once.
 */
interface DbSlot {
  store?: SqliteExecutionStore;
}

/** The slot's store, opened when the workspace has one (a gate never creates it). */
function slotStore(ctx: Ctx, slot: DbSlot): SqliteExecutionStore | undefined {
  if (!slot.store && hasExecutionStore(ctx)) slot.store = openExecution(ctx);
  return slot.store;
}

async function gates(ctx: Ctx, c: Contract, opts: { pauseAt?: string; kimiReuseFrom?: () => readonly string[] }, slot: DbSlot = {}, command: 'run' | 'resume' = 'run'): Promise<{ plan: Plan; routing: Routing }> {
  const onDisk = await readDiskPlan(ctx, c.id);
  // Signatures are checked only when required: with require_signed false no ssh-keygen runs here.
  assertRunnable(c, onDisk.sha256, ctx.config, ctx.config.approvals.require_signed ? verifiedApprovers(ctx, c) : undefined);
  // After the approvals: whoever asks, an unapproved or stale plan is told to get approval first.
  assertMayRunHere(ctx, c, command);
  const plan = onDisk.plan as Plan;
  const routing = route(c, plan);
  if (routing.eligible) {
    const caps = effectiveCaps(plan, ctx.config); // SCOPE_NOT_ALLOWED
    const over = planBudgetOverCaps(plan, ctx.config.kimi.defaults);
    // A run that will reuse an earlier run's envelope spends nothing, so no money gate applies to
    // it (scopes, just above, still do). Looked up only when the gate would refuse.
    if (over.length && !(await willReuseKimi(ctx, c, slot, opts.kimiReuseFrom))) {
      const o = over[0]!;
      throw kairError('BUDGET_EXCEEDED', `the plan's budget.${o.key} ${o.value} is above the workspace cap ${o.cap} now in force (kimi.defaults.${o.key}); nothing was spent`, { over, caps });
    }
  }
  if (opts.pauseAt !== undefined && !plan.steps.some((s) => s.id === opts.pauseAt)) {
    throw kairError('USAGE_ERROR', `--pause-at ${opts.pauseAt}: no such step in the plan (steps: ${plan.steps.map((s) => s.id).join(', ')})`, { flag: '--pause-at' });
  }
  const store = (routing.lanes.includes('aec') || routing.eligible) && slotStore(ctx, slot);
  // One read transaction for the execution side's gates.
  if (store) {
    await readOnly(store, async (sql) => {
      if (routing.lanes.includes('aec')) await assertCatalogIntact(sql);
      if (routing.eligible) await assertSpendVouched(ctx, c.id, c.runs.length, sql);
    });
  }
  return { plan, routing };
}

/** Whether the Kimi lane will reuse one of these runs' COMPLETED envelope (the lane's own rule). */
async function willReuseKimi(ctx: Ctx, c: Contract, slot: DbSlot, candidates: (() => readonly string[]) | undefined): Promise<boolean> {
  if (!candidates || (!slot.store && !hasExecutionStore(ctx))) return false;
  const runs = candidates();
  if (runs.length === 0) return false;
  const store = slotStore(ctx, slot)!;
  return (await readOnly(store, (sql) => findReusable(envelopeRepo(sql), c.id, c.plan_sha256 ?? '', runs))) !== undefined;
}

/**
 * The AEC lane decides and executes from the catalog and the access policy: a simulation or a
 * rule changed behind kair's back (an executor turned into `sh -c`, a rule inserted by hand)
 * must never be acted on. Nothing is written before this refusal.
 */
async function assertCatalogIntact(sql: SqlExecutor): Promise<void> {
  // The policy versions too: policy snapshots (what each decision records) are rebuilt from them.
  const bad = [...(await changeLogMismatches(sql, ['simulations', 'access_policy'])), ...(await checkChainTable(sql, CHAINS.access_policy_versions))];
  if (bad.length === 0) return;
  throw kairError('INTEGRITY_FAILED', `the AEC catalog or access policy was changed outside kair (${bad[0]!.message}${bad.length > 1 ? `, and ${bad.length - 1} more` : ''}); nothing was run — see \`kair verify\``, { problems: bad.length });
}

/** Runs the run's start; if it does not get as far as the steps, the gates' store is closed here. */
async function withSlot<T>(slot: DbSlot, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    slot.store?.close();
    throw e;
  }
}

/** Micro-dollars of COMPLETED Kimi runs of this contract (0 before the database exists). */
function spentMicros(ctx: Ctx, id: string): Promise<number> {
  return readOnlyTransaction(ctx, () => 0, (sql) => envelopeRepo(sql).completedSpendMicros(id));
}

function estimate(ctx: Ctx, plan: Plan, routing: Routing) {
  if (!routing.eligible) return null;
  const caps = effectiveCaps(plan, ctx.config);
  const e = stubPricing((plan.details?.features ?? []).length, caps.maxAgents);
  return { tokens: e.tokens, costUSD: microsToUsd(e.costMicros), runtimeSec: e.runtimeSec };
}

export async function runCommand(ctx: Ctx, id: string, opts: RunOptions): Promise<RunResult> {
  assertId(id);
  if (opts.pauseAt !== undefined) assertId(opts.pauseAt, 'step');
  if (opts.dryRun) return dryRun(ctx, id, opts);
  let started!: { plan: Plan; routing: Routing; runId: string; at: string; request: ArtifactRecord & { text: string } };
  const slot: DbSlot = {};
  const m = await withSlot(slot, () => mutate(ctx, id, 'run', async (c) => {
    assertTransition(c, 'run');
    const runId = `${id}-run-${c.runs.length + 1}`;
    const { plan, routing } = await gates(ctx, c, { ...opts, kimiReuseFrom: () => kimiCandidates(ctx, c, runId, opts) }, slot);
    const request = writeRunRequest(ctx, c, runId, plan, routing.lanes);
    started = { plan, routing, runId, at: ctx.now(), request };
    return {
      drafts: [{ type: 'run.started', state: 'RUNNING', data: { run_id: runId, pid: process.pid, runner: selfIdentity(), step_id: plan.steps[0]!.id, plan_sha256: c.plan_sha256, lanes: routing.lanes, artifacts: [{ path: request.path, sha256: request.sha256 }] } }],
    };
  }, { checkpointsLater: true }));
  return executeSteps(ctx, m.contract, started.plan, {
    ...(slot.store ? { store: slot.store } : {}),
    kimiReuseFrom: started.routing.eligible ? kimiCandidates(ctx, m.contract, started.runId, opts) : [],
    runId: started.runId,
    startedAt: started.at,
    request: started.request,
    eligible: started.routing.eligible,
    pauseAt: opts.pauseAt,
    resumedAt: null,
    done: [],
    aec: { ...(opts.confirm === undefined ? {} : { confirm: opts.confirm }), ...(opts.confirmAll ? { confirmAll: true } : {}), ...(opts.lang === undefined ? {} : { lang: opts.lang }), retryInDoubt: false, allowRepeat: opts.allowRepeat === true },
    ...(opts.interrupts ? { interrupts: opts.interrupts } : {}),
  });
}

/**
 * `run --dry-run`: the real run's gates for every step, AEC gates included (the dispatcher's own
 * `predictStep`), with nothing written: no intake, access-decision or ledger row, no history
 * event. It throws the first stop the real run would meet given the flags passed (its exit code),
 * carrying the whole prediction; without one it returns it.
 */
async function dryRun(ctx: Ctx, id: string, opts: RunOptions): Promise<RunResult> {
  if (opts.confirm !== undefined) assertDryRunAnswer(opts.confirm, opts.lang);
  // The gates decide on history, never on contract.json, in a dry run too.
  const c = await (await ctx.storage()).contracts.load(id);
  assertTransition(c, 'run');
  const slot: DbSlot = {};
  try {
    const reuseFrom = () => kimiCandidates(ctx, c, `${id}-run-${c.runs.length + 1}`, opts);
    const { plan, routing } = await gates(ctx, c, { ...opts, kimiReuseFrom: reuseFrom }, slot);
    const kimi_estimate = estimate(ctx, plan, routing);
    // The real run would reuse an earlier envelope: nothing spent, so no cost/runtime/cap stop.
    const reuses = routing.eligible && (await willReuseKimi(ctx, c, slot, reuseFrom));
    let kimiStop: { code: ErrorCode; message: string; details: Record<string, unknown> } | null = null;
    if (kimi_estimate && !reuses) {
      const caps = effectiveCaps(plan, ctx.config);
      const pre = preflight({ costMicros: usdToMicros(kimi_estimate.costUSD), runtimeSec: kimi_estimate.runtimeSec }, caps, await spentMicros(ctx, id), usdToMicros(ctx.config.kimi.max_cost_usd_per_contract));
      if (!pre.ok) kimiStop = { code: pre.code, message: pre.summary, details: { ...pre.details } };
    }
    // A workspace without a database is an empty catalog and policy: decided on an empty
    // in-memory database rather than by creating kair.db.
    const store = slotStore(ctx, slot) ?? (slot.store = openExecutionStore(':memory:'));
    const kimiAt = routing.eligible ? Math.max(0, plan.steps.findIndex((s) => stepLane(s) === 'kimi')) : -1;
    let confirm = opts.confirm === undefined ? null : { token: opts.confirm, ...(opts.lang === undefined ? {} : { lang: opts.lang }) };
    const steps: DryRunStep[] = [];
    let stop: { code: ErrorCode; message: string; details: Record<string, unknown> } | null = null;
    let reachable = true;
    const stopAt = (code: ErrorCode, message: string, details: Record<string, unknown>) => {
      if (reachable && !stop) stop = { code, message, details };
    };
    for (const [i, step] of plan.steps.entries()) {
      // --pause-at ends the real run (exit 0) before this step: nothing after it is reached.
      if (opts.pauseAt === step.id) reachable = false;
      const lane = stepLane(step);
      if (i === kimiAt && kimiStop) stopAt(kimiStop.code, kimiStop.message, { step_id: step.id, ...kimiStop.details });
      if (lane === 'manual') {
        steps.push({ id: step.id, lane, status: 'ok', reason_code: 'MANUAL_RECORDED' });
        continue;
      }
      if (lane === 'kimi') {
        steps.push(kimiStop ? { id: step.id, lane, status: 'failed', reason_code: kimiStop.code, message: kimiStop.message } : { id: step.id, lane, status: 'ok', reason_code: reuses ? 'KIMI_REUSED' : 'KIMI_OK' });
        continue;
      }
      const p = await predictStep(store, { ...stepRequest(ctx, c, `${id}-run-${c.runs.length + 1}`, step), confirm, retry_in_doubt: false, allow_repeat: opts.allowRepeat === true });
      if (p.confirmation_used && !opts.confirmAll) confirm = null;
      const simulation_id = p.packet.type === 'SimulationMatchPacket' ? { simulation_id: p.packet.simulation_id } : {};
      const v = p.verdict;
      if (v.dispatch) {
        steps.push({ id: step.id, lane, status: 'ok', reason_code: 'AEC_DISPATCH_OK', ...simulation_id });
        continue;
      }
      if (v.replay) {
        steps.push({ id: step.id, lane, status: 'replay', reason_code: 'AEC_IDEMPOTENT_REPLAY', ...simulation_id });
        continue;
      }
      // The halt messages speak to a paused run (`kair resume …`); before a run the next step is `kair run …`.
      const message = p.packet.type === 'ClarifyPacket' ? p.packet.question : haltMessage(v.reason_code, p.packet, p.facts.idempotency, '', id).replace(`\`kair resume ${id} `, `\`kair run ${id} `).replace('It was sent to dev intake.', 'A real run would send it to dev intake (`kair sim register` adds a simulation).');
      if (v.reason_code === 'AEC_CONFIRM_REQUIRED') {
        const after = decideGates({ ...p.facts, confirmation: 'affirmative' });
        steps.push({ id: step.id, lane, status: 'needs_confirmation', reason_code: v.reason_code, ...simulation_id, message, after_confirmation: after.dispatch ? 'AEC_DISPATCH_OK' : after.reason_code });
      } else {
        steps.push({ id: step.id, lane, status: 'refused', reason_code: v.reason_code, ...simulation_id, message });
      }
      stopAt(v.reason_code, message, { step_id: step.id, ...simulation_id });
    }
    const doc = { dry_run: true as const, contract_id: id, lanes: routing.lanes, steps, kimi_estimate };
    const first = stop as { code: ErrorCode; message: string; details: Record<string, unknown> } | null;
    if (first) {
      const e = kairError(first.code, `dry run: ${first.message}`, { dry_run: true, ...first.details, hint: first.code === 'AEC_CONFIRM_REQUIRED' ? `kair run ${id} --confirm yes` : `the real run would stop here; \`kair run ${id} --dry-run\` again once it is fixed` });
      e.payload = doc;
      throw e;
    }
    return doc;
  } finally {
    slot.store?.close();
  }
}

/** With --dry-run, --confirm must be a yes or a no: an answer the real run would reject is a usage error. */
export function assertDryRunAnswer(token: string, lang: string | undefined): void {
  const langs = lang !== undefined ? [lang] : Object.keys(CONFIRM_LEXICON);
  if (langs.some((l) => parseConfirmation(token, l).result !== 'ambiguous')) return;
  throw kairError('USAGE_ERROR', `--confirm ${JSON.stringify(token.slice(0, 80))} is not a yes or a no${lang !== undefined ? ` in ${lang}` : ''}: a dry run predicts an answer, not an ambiguous one`, {
    flag: '--confirm',
    hint: 'use --confirm yes (or no), or leave --confirm out to see which steps need confirmation',
  });
}

export async function resumeCommand(ctx: Ctx, id: string, opts: AecOptions & { interrupts?: Interrupts }): Promise<RunResult> {
  assertId(id);
  let resumed!: { plan: Plan; routing: Routing; runId: string; stepId: string | null };
  const slot: DbSlot = {};
  const m = await withSlot(slot, () => mutate(ctx, id, 'resume', async (c) => {
    assertTransition(c, 'resume');
    assertNoLiveRunner(c);
    const runId = c.runs[c.runs.length - 1]!;
    // A resumed run first finds its own envelope again, then an earlier run's.
    const { plan, routing } = await gates(ctx, c, { kimiReuseFrom: () => [runId, ...earlierRunsOfPlan(ctx, c, runId)] }, slot, 'resume');
    const stepId = c.pause?.step_id ?? null;
    resumed = { plan, routing, runId, stepId };
    return { drafts: [{ type: 'resume', state: 'RUNNING', data: { run_id: runId, pid: process.pid, runner: selfIdentity(), step_id: stepId } }] };
  }, { checkpointsLater: true }));
  const done = finishedSteps(ctx, id, resumed.runId);
  const startedAt = readJsonFile<{ requested_at?: string }>(join(runDir(ctx, id, resumed.runId), 'run-request.json'))?.requested_at ?? ctx.now();
  // A resumed run that reused an earlier envelope before its pause finds the same one again.
  const kimiReuseFrom = resumed.routing.eligible ? earlierRunsOfPlan(ctx, m.contract, resumed.runId) : [];
  return executeSteps(ctx, m.contract, resumed.plan, { ...(slot.store ? { store: slot.store } : {}), kimiReuseFrom, runId: resumed.runId, startedAt, eligible: resumed.routing.eligible, resumedAt: resumed.stepId, done, aec: opts, ...(opts.interrupts ? { interrupts: opts.interrupts } : {}) });
}

/** The runs whose envelope a new run may reuse: none with --regenerate. */
function kimiCandidates(ctx: Ctx, c: Contract, runId: string, opts: { regenerate?: boolean }): string[] {
  return opts.regenerate === true ? [] : earlierRunsOfPlan(ctx, c, runId);
}

/**
 * Earlier runs of the contract's current version and plan sha, newest first, from history: the
 * runs whose Kimi envelope a retry may reuse. A rewind starts a new version (same plan sha or
 * not), so a run of an earlier version never lends its envelope.
 */
function earlierRunsOfPlan(ctx: Ctx, c: Contract, runId: string): string[] {
  const out: string[] = [];
  let version = 1;
  for (const e of readHistory(paths.history(ctx.ws, c.id)).events) {
    if (e.type === 'rewind') version = e.data.version as number;
    else if (e.type === 'run.started' && version === c.version && e.data.plan_sha256 === c.plan_sha256 && e.data.run_id !== runId) out.push(e.data.run_id as string);
  }
  return out.reverse();
}

/** Steps this run already completed, from history (a resume never repeats one). */
function finishedSteps(ctx: Ctx, id: string, runId: string): StepResult[] {
  const out = new Map<string, StepResult>();
  for (const e of readHistory(paths.history(ctx.ws, id)).events) {
    if (e.type !== 'step.finished' || e.data.run_id !== runId) continue;
    const s = e.data.step as StepResult;
    if (s.status === 'COMPLETED' || s.status === 'REPLAYED') out.set(s.id, s);
  }
  return [...out.values()];
}

export interface RunSummary {
  run_id: string | null;
  run_result: string | null;
  run_request: string | null;
  result: unknown;
}

export function runSummary(ctx: Ctx, c: Contract): RunSummary {
  const runId = c.runs[c.runs.length - 1] ?? null;
  if (!runId) return { run_id: null, run_result: null, run_request: null, result: null };
  const dir = join(paths.runs(ctx.ws, c.id), runId);
  const res = join(dir, 'run-result.json');
  const req = join(dir, 'run-request.json');
  return {
    run_id: runId,
    run_result: existsSync(res) ? rel(ctx.ws, res) : null,
    run_request: existsSync(req) ? rel(ctx.ws, req) : null,
    result: readJsonFile(res),
  };
}

export function renderRunSummary(s: RunSummary): string {
  if (!s.run_id) return 'no runs yet';
  return [`run ${s.run_id}`, s.run_request ? `  request ${s.run_request}` : '', s.run_result ? `  result  ${s.run_result}` : ''].filter(Boolean).join('\n');
}

export interface EnvelopeView {
  id: string;
  contract_id: string;
  run_id: string;
  plan_sha256: string;
  actor: string;
  provider: string;
  max_cost_usd: number;
  max_agents: number;
  max_runtime_sec: number;
  allowed_scopes: string[];
  status: string;
  created_at: string;
}

export function listEnvelopes(ctx: Ctx, contractId?: string): Promise<EnvelopeView[]> {
  if (contractId !== undefined) assertId(contractId);
  return readOnlyTransaction(ctx, () => [], async (sql) =>
    (await envelopeRepo(sql).listEnvelopes(contractId ? { contractId } : {}))
      .map((e) => ({
        id: e.id,
        contract_id: e.contract_id,
        run_id: e.run_id,
        plan_sha256: e.plan_sha256,
        actor: e.actor,
        provider: e.provider,
        max_cost_usd: microsToUsd(e.max_cost_micros),
        max_agents: e.max_agents,
        max_runtime_sec: e.max_runtime_sec,
        allowed_scopes: e.allowed_scopes,
        status: e.status,
        created_at: e.created_at,
      })),
  );
}
