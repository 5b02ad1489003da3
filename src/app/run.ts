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
import { isKimiEligible, stepLane } from '../domain/plan.js';
import { readJsonFile } from '../store/fs/contracts.js';
import { isPidAlive } from '../store/fs/pid.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Output } from '../cli/registry.js';
import type { Ctx } from './context.js';
import { diskPlanSha } from './lifecycle.js';
import { mutate } from './mutate.js';
import { readContract } from './read.js';

export interface RunOptions {
  confirm?: string;
  lang?: string;
  pauseAt?: string;
  dryRun: boolean;
}

export function assertNoLiveRunner(c: Contract): void {
  if (c.running && isPidAlive(c.running.pid)) {
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

export function loadApprovedPlan(ctx: Ctx, id: string): Plan {
  return readJsonFile<Plan>(paths.plan(ctx.ws, id)) as Plan;
}

export function runCommand(ctx: Ctx, id: string, opts: RunOptions): Output {
  assertId(id);
  let routing: Routing | undefined;
  let plan: Plan | undefined;
  const check = (c: Contract) => {
    assertTransition(c, 'run');
    assertRunnable(c, diskPlanSha(ctx, id), ctx.config);
    plan = loadApprovedPlan(ctx, id);
    routing = route(c, plan);
    if (opts.pauseAt !== undefined && !plan.steps.some((s) => s.id === opts.pauseAt)) {
      throw kairError('USAGE_ERROR', `--pause-at ${opts.pauseAt}: no such step in the plan (steps: ${plan.steps.map((s) => s.id).join(', ')})`, { flag: '--pause-at' });
    }
  };
  if (opts.dryRun) {
    // A dry run writes nothing, gate refusals included.
    check(readContract(ctx, id));
    const r = routing!;
    const doc = { dry_run: true, contract_id: id, lanes: r.lanes, steps: r.steps };
    return { json: doc, text: () => `dry run: ${id} would run ${r.steps.map((s) => `${s.id} (${s.lane})`).join(', ')}` };
  }
  mutate(ctx, id, 'run', (c) => {
    check(c);
    throw kairError('INTERNAL_ERROR', `the ${routing!.lanes.join(' and ')} lane${routing!.lanes.length > 1 ? 's are' : ' is'} not in this build yet; ${id} passed every gate and was left ${c.state}`, {
      contract_id: id,
      lanes: routing!.lanes,
    });
  });
  throw new Error('unreachable');
}

export function resumeCommand(ctx: Ctx, id: string, _opts: { confirm?: string; lang?: string; retryInDoubt: boolean }): Output {
  assertId(id);
  mutate(ctx, id, 'resume', (c) => {
    assertTransition(c, 'resume');
    assertNoLiveRunner(c);
    assertRunnable(c, diskPlanSha(ctx, id), ctx.config);
    throw kairError('INTERNAL_ERROR', `resuming runs is not in this build yet; ${id} was left ${c.state}`, { contract_id: id });
  });
  throw new Error('unreachable');
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
