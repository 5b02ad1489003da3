/**
 * What `status` adds to the snapshot (the plan sha, the last run when a run left the contract
 * FAILED or PAUSED, the next steps), and the pieces `show` shares with it. Kept apart from
 * show.ts so that `status` loads neither the signature checks nor write-file-atomic, and hashes
 * (node:crypto) only when it reads a kept plan (decision 029).
 */
import { canonicalHash } from '../domain/canonical.js';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import type { NextStep } from '../domain/next-steps.js';
import { nextSteps, shortSha } from '../domain/next-steps.js';
import type { Plan } from '../domain/plan.js';
import { stepLane } from '../domain/plan-routing.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';

export interface KeptPlan {
  sha256: string;
  plan: Plan;
}

const hint = (h: string) => ({ hint: h });

/**
 * The plan filed under `sha`, checked against it. Histories from before plans were kept by sha
 * have only plan_v1.json: it stands in for the current plan when it hashes to that sha.
 */
export async function readKeptPlan(ctx: Ctx, c: Contract, sha: string): Promise<KeptPlan> {
  const store = (await ctx.storage()).contracts;
  const where = rel(ctx.ws, paths.planBySha(ctx.ws, c.id, sha));
  const text = await store.plan(c.id, sha);
  if (text !== null) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (value === undefined || canonicalHash(value) !== sha) {
      throw kairError('INTEGRITY_FAILED', `${c.id}: the kept plan ${where} does not hash to ${shortSha(sha)}… (changed on disk); it is not shown`, {
        contract_id: c.id,
        kind: 'plan_mismatch',
        path: where,
        plan_sha256: sha,
        ...hint(`run \`kair verify ${c.id}\``),
      });
    }
    return { sha256: sha, plan: value as Plan };
  }
  if (sha === c.plan_sha256) {
    try {
      const copy: unknown = JSON.parse((await store.currentPlan(c.id)) ?? '');
      if (canonicalHash(copy) === sha) return { sha256: sha, plan: copy as Plan };
    } catch {
      /* reported below */
    }
  }
  throw kairError('PLAN_NOT_FOUND', `${c.id}: plan ${shortSha(sha)}… is named by its history but is not kept in ${rel(ctx.ws, paths.plan(ctx.ws, c.id)).replace(/plan_v1\.json$/, '')}`, {
    contract_id: c.id,
    plan_sha256: sha,
    ...hint(`run \`kair verify ${c.id}\`; \`kair history ${c.id}\` lists the plans it had`),
  });
}

// ---- the last run, from history alone (the artifacts are derived; history is the authority)

export interface RunStepView {
  id: string;
  lane: 'kimi' | 'aec' | 'manual';
  status: string;
  reason_code: string | null;
}

export interface LastRun {
  run_id: string;
  status: 'RUNNING' | 'COMPLETED' | 'FAILED' | 'PAUSED';
  plan_sha256: string | null;
  reason: { code: string; message: string } | null;
  failed_step: string | null;
  steps: RunStepView[];
  /** The sealed run result of the run's last segment, as recorded (path relative to the workspace). */
  run_result: string | null;
}

export async function lastRun(ctx: Ctx, c: Contract, events: HistoryEvent[]): Promise<LastRun | null> {
  const runId = c.runs[c.runs.length - 1];
  if (!runId) return null;
  let planSha: string | null = null;
  let status: LastRun['status'] = 'RUNNING';
  let reason: LastRun['reason'] = null;
  let runResult: string | null = null;
  const steps = new Map<string, RunStepView>();
  for (const e of events) {
    const d = e.data;
    if (d.run_id !== runId) continue;
    if (e.type === 'run.started') planSha = typeof d.plan_sha256 === 'string' ? d.plan_sha256 : null;
    if (e.type === 'run.started' || e.type === 'resume') {
      status = 'RUNNING';
      reason = null;
    }
    if (e.type === 'step.finished') {
      const s = d.step as Partial<RunStepView> | undefined;
      if (s && typeof s.id === 'string') steps.set(s.id, { id: s.id, lane: s.lane ?? 'manual', status: String(s.status), reason_code: s.reason_code ?? null });
    }
    if (e.type === 'run.finished') {
      status = d.status as LastRun['status'];
      const err = d.error as { code?: string; message?: string } | undefined;
      const pause = d.pause as { reason?: string; step_id?: string | null } | undefined;
      reason = err?.code ? { code: err.code, message: err.message ?? '' } : pause?.reason ? { code: pause.reason, message: pause.step_id ? `paused before ${pause.step_id}` : 'paused' } : null;
      const sealed = (d.artifacts as { path?: string }[] | undefined)?.find((a) => typeof a.path === 'string' && /run-result(\.\d+)?\.json$/.test(a.path));
      runResult = sealed?.path ?? null;
    }
    if (e.type === 'pause' && status === 'RUNNING') reason = { code: 'USER_REQUESTED', message: 'pause requested' };
    if (e.type === 'recovery' && d.kind === 'crashed_run') {
      status = 'PAUSED';
      reason = { code: 'CRASHED', message: `the runner (pid ${String(d.pid)}) died` };
    }
  }
  // Steps not reached are listed as PENDING, from the plan the run ran (when it is kept).
  let ordered = [...steps.values()];
  if (planSha) {
    try {
      const kept = (await readKeptPlan(ctx, c, planSha)).plan;
      ordered = kept.steps.map((s) => steps.get(s.id) ?? { id: s.id, lane: stepLane(s), status: 'PENDING', reason_code: null });
    } catch {
      /* the steps that finished are still worth showing */
    }
  }
  const failed = ordered.find((s) => s.status === 'FAILED' || s.status === 'REFUSED' || s.status === 'PAUSED');
  return { run_id: runId, status, plan_sha256: planSha, reason, failed_step: status === 'COMPLETED' ? null : (failed?.id ?? null), steps: ordered, run_result: runResult };
}

/** status: the snapshot plus the plan sha, and, where a run ended it there, why and what next. */
export async function statusExtras(ctx: Ctx, c: Contract): Promise<{ plan_sha256: string | null; last_run?: LastRun | null; next: NextStep[] }> {
  // Only a contract a run left FAILED or PAUSED reads its history: status stays a snapshot read otherwise.
  const run = c.state === 'FAILED' || c.state === 'PAUSED' ? await lastRun(ctx, c, await historyEvents(ctx, c.id)) : undefined;
  return { plan_sha256: c.plan_sha256, ...(run !== undefined ? { last_run: run } : {}), next: nextSteps(c, { min: ctx.config.approvals.min, lastRun: run ?? null }) };
}

/** A contract's whole history, through the storage port. */
export async function historyEvents(ctx: Ctx, id: string): Promise<HistoryEvent[]> {
  return (await (await ctx.storage()).contracts.history(id)).map((s) => s.event);
}
