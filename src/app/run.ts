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
import { readDiskPlan } from './lifecycle.js';
import { mutate } from './mutate.js';
import type { AecOptions, ArtifactRecord, RunOutcome, StepResult } from './execute.js';
import { executeSteps, runDir, writeLatestRequest, writeRunRequest } from './execute.js';
import { readDb } from './db.js';
import type { Db } from '../store/sqlite/db.js';
import { openDb } from '../store/sqlite/db.js';
import { envelopeRepo } from '../lanes/kimi/envelopes.js';
import { changeLogMismatches } from '../lanes/aec/change-log.js';
import { effectiveCaps, microsToUsd, planBudgetOverCaps, preflight, stubPricing, usdToMicros } from '../domain/kimi.js';
import { readHistory } from '../store/fs/history.js';
import { assertContract } from '../store/fs/contracts.js';
import { loadForWrite } from '../store/fs/writer-load.js';

export interface RunOptions {
  confirm?: string;
  confirmAll?: boolean;
  lang?: string;
  pauseAt?: string;
  dryRun: boolean;
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

export type RunResult = ({ dry_run: true; contract_id: string; lanes: string[]; steps: Routing['steps']; kimi_estimate: { tokens: number; costUSD: number; runtimeSec: number } | null }) | (RunOutcome & { dry_run?: false });

/** Gates after the state check, in §14 order; returns the plan and its routing. */
/**
 * The run's one SQLite connection: opened by the gates when they need it (the change-log check)
 * and handed to the steps, which close it, so a run opens and checkpoints the database once.
 */
interface DbSlot {
  db?: Db;
}

function gates(ctx: Ctx, c: Contract, opts: { pauseAt?: string }, slot: DbSlot = {}): { plan: Plan; routing: Routing } {
  const onDisk = readDiskPlan(ctx, c.id);
  assertRunnable(c, onDisk.sha256, ctx.config);
  const plan = onDisk.plan as Plan;
  const routing = route(c, plan);
  if (routing.eligible) {
    const caps = effectiveCaps(plan, ctx.config); // SCOPE_NOT_ALLOWED
    const over = planBudgetOverCaps(plan, ctx.config.kimi.defaults);
    if (over.length) {
      const o = over[0]!;
      throw kairError('BUDGET_EXCEEDED', `the plan's budget.${o.key} ${o.value} is above the workspace cap ${o.cap} now in force (kimi.defaults.${o.key}); nothing was spent`, { over, caps });
    }
  }
  if (opts.pauseAt !== undefined && !plan.steps.some((s) => s.id === opts.pauseAt)) {
    throw kairError('USAGE_ERROR', `--pause-at ${opts.pauseAt}: no such step in the plan (steps: ${plan.steps.map((s) => s.id).join(', ')})`, { flag: '--pause-at' });
  }
  if (routing.lanes.includes('aec')) assertCatalogIntact(ctx, slot);
  return { plan, routing };
}

/**
 * The AEC lane decides and executes from the catalog and the access policy: a simulation or a
 * rule changed behind kair's back (an executor turned into `sh -c`, a rule inserted by hand)
 * must never be acted on. Nothing is written before this refusal.
 */
function assertCatalogIntact(ctx: Ctx, slot: DbSlot): void {
  if (!slot.db && !existsSync(paths.db(ctx.ws))) return;
  slot.db ??= openDb(paths.db(ctx.ws));
  const bad = changeLogMismatches(slot.db);
  if (bad.length === 0) return;
  throw kairError('INTEGRITY_FAILED', `the AEC catalog or access policy was changed outside kair (${bad[0]!.message}${bad.length > 1 ? `, and ${bad.length - 1} more` : ''}); nothing was run — see \`kair verify\``, { problems: bad.length });
}

/** Runs the run's start; if it does not get as far as the steps, the gates' connection is closed here. */
function withSlot<T>(slot: DbSlot, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    slot.db?.close();
    throw e;
  }
}

/** Micro-dollars of COMPLETED Kimi runs of this contract (0 before the database exists). */
function spentMicros(ctx: Ctx, id: string): number {
  return readDb(ctx, () => 0, (db) => envelopeRepo(db).completedSpendMicros(id));
}

function estimate(ctx: Ctx, plan: Plan, routing: Routing) {
  if (!routing.eligible) return null;
  const caps = effectiveCaps(plan, ctx.config);
  const e = stubPricing((plan.details?.features ?? []).length, caps.maxAgents);
  return { tokens: e.tokens, costUSD: microsToUsd(e.costMicros), runtimeSec: e.runtimeSec };
}

export function runCommand(ctx: Ctx, id: string, opts: RunOptions): RunResult {
  assertId(id);
  if (opts.pauseAt !== undefined) assertId(opts.pauseAt, 'step');
  if (opts.dryRun) {
    // A dry run writes nothing, gate refusals included; it exits as the real run would.
    // The gates decide on history, never on contract.json, in a dry run too.
    assertContract(ctx.ws, id);
    const c = loadForWrite(ctx.ws, id).contract;
    assertTransition(c, 'run');
    const slot: DbSlot = {};
    let plan: Plan;
    let routing: Routing;
    try {
      ({ plan, routing } = gates(ctx, c, opts, slot));
    } finally {
      slot.db?.close();
    }
    const kimi_estimate = estimate(ctx, plan, routing);
    if (kimi_estimate) {
      const caps = effectiveCaps(plan, ctx.config);
      const pre = preflight({ costMicros: usdToMicros(kimi_estimate.costUSD), runtimeSec: kimi_estimate.runtimeSec }, caps, spentMicros(ctx, id), usdToMicros(ctx.config.kimi.max_cost_usd_per_contract));
      if (!pre.ok) throw kairError(pre.code, pre.summary, { dry_run: true, ...pre.details });
    }
    return { dry_run: true, contract_id: id, lanes: routing.lanes, steps: routing.steps, kimi_estimate };
  }
  let started!: { plan: Plan; routing: Routing; runId: string; at: string; request: ArtifactRecord & { text: string } };
  const slot: DbSlot = {};
  const m = withSlot(slot, () => mutate(ctx, id, 'run', (c) => {
    assertTransition(c, 'run');
    const { plan, routing } = gates(ctx, c, opts, slot);
    const runId = `${id}-run-${c.runs.length + 1}`;
    const request = writeRunRequest(ctx, c, runId, plan, routing.lanes);
    started = { plan, routing, runId, at: ctx.now(), request };
    return {
      drafts: [{ type: 'run.started', state: 'RUNNING', data: { run_id: runId, pid: process.pid, runner: selfIdentity(), step_id: plan.steps[0]!.id, plan_sha256: c.plan_sha256, lanes: routing.lanes, artifacts: [{ path: request.path, sha256: request.sha256 }] } }],
      after: () => writeLatestRequest(ctx, id, request.text),
    };
  }));
  return executeSteps(ctx, m.contract, started.plan, {
    ...(slot.db ? { db: slot.db } : {}),
    runId: started.runId,
    startedAt: started.at,
    request: started.request,
    eligible: started.routing.eligible,
    pauseAt: opts.pauseAt,
    resumedAt: null,
    done: [],
    aec: { ...(opts.confirm === undefined ? {} : { confirm: opts.confirm }), ...(opts.confirmAll ? { confirmAll: true } : {}), ...(opts.lang === undefined ? {} : { lang: opts.lang }), retryInDoubt: false },
  });
}

export function resumeCommand(ctx: Ctx, id: string, opts: AecOptions): RunResult {
  assertId(id);
  let resumed!: { plan: Plan; routing: Routing; runId: string; stepId: string | null };
  const slot: DbSlot = {};
  const m = withSlot(slot, () => mutate(ctx, id, 'resume', (c) => {
    assertTransition(c, 'resume');
    assertNoLiveRunner(c);
    const { plan, routing } = gates(ctx, c, {}, slot);
    const runId = c.runs[c.runs.length - 1]!;
    const stepId = c.pause?.step_id ?? null;
    resumed = { plan, routing, runId, stepId };
    return { drafts: [{ type: 'resume', state: 'RUNNING', data: { run_id: runId, pid: process.pid, runner: selfIdentity(), step_id: stepId } }] };
  }));
  const done = finishedSteps(ctx, id, resumed.runId);
  const startedAt = readJsonFile<{ requested_at?: string }>(join(runDir(ctx, id, resumed.runId), 'run-request.json'))?.requested_at ?? ctx.now();
  return executeSteps(ctx, m.contract, resumed.plan, { ...(slot.db ? { db: slot.db } : {}), runId: resumed.runId, startedAt, eligible: resumed.routing.eligible, resumedAt: resumed.stepId, done, aec: opts });
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

export function listEnvelopes(ctx: Ctx, contractId?: string): EnvelopeView[] {
  if (contractId !== undefined) assertId(contractId);
  return readDb(ctx, () => [], (db) =>
    envelopeRepo(db)
      .listEnvelopes(contractId ? { contractId } : {})
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
