/**
 * `kair show` and `kair diff`: what an approver approves, read from history and the plans kept
 * by sha. Read-only (no lock, no write, no zod, no SQLite). A kept plan is shown only after its
 * content hashes to the sha it is filed under: a tampered plan is INTEGRITY_FAILED, never shown
 * as the plan someone approved.
 */
import { verifyApprovalSignatures } from './signatures.js';
import { sha256Hex } from '../domain/canonical.js';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { missingControls, validApprovers } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import type { NextStep } from '../domain/next-steps.js';
import { nextSteps, shortSha } from '../domain/next-steps.js';
import type { Json, PlanDiff } from '../domain/plan-diff.js';
import { diffPlans } from '../domain/plan-diff.js';
import type { PlanStep } from '../domain/plan.js';
import { stepLane } from '../domain/plan-routing.js';
import type { Ctx } from './context.js';
import { readContract } from './read.js';
import type { LastRun } from './status-extras.js';
import { historyEvents, lastRun, readKeptPlan } from './status-extras.js';

// Moved to status-extras.ts so that `status` does not load show's signature checks (decision 029).
export type { KeptPlan, LastRun, RunStepView } from './status-extras.js';
export { lastRun, readKeptPlan, statusExtras } from './status-extras.js';

const hint = (h: string) => ({ hint: h });

/**
 * review: the last run with what it cost, read from its sealed result as history recorded it
 * (the sha256 in `run.finished`). A result that no longer matches is not believed: no cost.
 */
export async function reviewedRun(ctx: Ctx, c: Contract): Promise<(LastRun & { kimi: { tokens: number; cost_usd: number } | null }) | null> {
  const events = await historyEvents(ctx, c.id);
  const run = await lastRun(ctx, c, events);
  if (!run) return null;
  let kimi: { tokens: number; cost_usd: number } | null = null;
  if (run.run_result) {
    try {
      const text = await (await ctx.storage()).contracts.artifact(run.run_result);
      if (text === null) throw new Error('missing');
      const recorded = recordedSha(events, run.run_result);
      if (recorded === sha256Hex(text)) {
        const k = (JSON.parse(text) as { kimi?: { result?: { tokensUsed?: number; costUSD?: number } } }).kimi?.result;
        if (k && typeof k.costUSD === 'number') kimi = { tokens: k.tokensUsed ?? 0, cost_usd: k.costUSD };
      } else {
        ctx.warn(`${run.run_result} differs from what history recorded; its cost is not shown (\`kair verify ${c.id}\`)`);
      }
    } catch {
      /* a missing result is a verify problem; the summary from history stands */
    }
  }
  return { ...run, kimi };
}

function recordedSha(events: HistoryEvent[], path: string): string | null {
  for (const e of [...events].reverse()) {
    const found = (e.data.artifacts as { path?: string; sha256?: string }[] | undefined)?.find((a) => a.path === path);
    if (found?.sha256) return found.sha256;
  }
  return null;
}

// ---- show

export interface ShowStep {
  id: string;
  lane: 'kimi' | 'aec' | 'manual';
  summary: string;
  simulation?: string;
}

export interface ApprovalView {
  actor: string;
  at: string;
  plan_sha256: string;
  valid: boolean;
  /** Bound to the plan shown (a valid approval of an earlier plan cannot exist: re-planning voids). */
  current: boolean;
  signed: boolean;
  /** Whether the signature checked out; null when unsigned or not checked. */
  verified: boolean | null;
}

export interface ShowResult {
  contract_id: string;
  intent: string;
  state: Contract['state'];
  version: number;
  plan_sha256: string | null;
  plan: { sha256: string; title: string; strategy: string | null; kimi_eligible: boolean; steps: ShowStep[] } | null;
  controls: { required: string[]; granted: string[]; missing: string[] };
  approvals: ApprovalView[];
  approvers: { valid: number; min: number };
  last_run: LastRun | null;
  next: NextStep[];
}

export function stepView(s: PlanStep): ShowStep {
  const lane = stepLane(s);
  return { id: s.id, lane, summary: s.summary, ...(lane === 'aec' && s.simulation ? { simulation: s.simulation.utterance } : {}) };
}

/**
 * Each approval with its signature state. A repeat approve that adds a signature is a second
 * event for the same approval, so events are matched by actor and plan sha, not by position;
 * signatures are checked with ssh-keygen only when one was recorded (docs/decisions/019).
 */
function approvalViews(ctx: Ctx, c: Contract, events: HistoryEvent[]): ApprovalView[] {
  const checks = events.some((e) => e.type === 'approve' && e.data.signature !== undefined) ? verifyApprovalSignatures(ctx, c.id, events) : [];
  return c.approvals.map((a) => {
    const mine = checks.filter((k) => k.actor === a.actor && k.plan_sha256 === a.plan_sha256);
    const signed = mine.some((k) => k.signed);
    return { actor: a.actor, at: a.at, plan_sha256: a.plan_sha256, valid: a.valid, current: a.plan_sha256 === c.plan_sha256, signed, verified: signed ? mine.some((k) => k.signed && k.verified) : null };
  });
}

export async function show(ctx: Ctx, id: string): Promise<ShowResult> {
  const c = await readContract(ctx, id);
  const events = await historyEvents(ctx, id);
  const kept = c.plan_sha256 ? await readKeptPlan(ctx, c, c.plan_sha256) : null;
  const run = await lastRun(ctx, c, events);
  const min = ctx.config.approvals.min;
  return {
    contract_id: c.id,
    intent: c.intent,
    state: c.state,
    version: c.version,
    plan_sha256: c.plan_sha256,
    plan: kept
      ? {
          sha256: kept.sha256,
          title: kept.plan.title,
          strategy: kept.plan.strategy ?? null,
          kimi_eligible: kept.plan.strategy === 'CUSTOM' || kept.plan.details?.requiresKimi === true,
          steps: kept.plan.steps.map(stepView),
        }
      : null,
    controls: { required: c.controls.required, granted: c.controls.granted, missing: missingControls(c) },
    approvals: approvalViews(ctx, c, events),
    approvers: { valid: validApprovers(c).length, min },
    last_run: run,
    next: nextSteps(c, { min, lastRun: run }),
  };
}

// ---- diff

export interface DiffResult extends PlanDiff {
  contract_id: string;
  from: string | null;
  to: string;
  /** How each side was chosen: a keyword (`approved`, `previous`, `current`) or `sha`. */
  from_ref: string;
  to_ref: string;
}

const HEX_PREFIX = /^[0-9a-fA-F]{8,64}$/;

/** The plan shas history names, oldest first (a sha planned twice appears twice). */
function plannedShas(events: HistoryEvent[]): string[] {
  return events.filter((e) => e.type === 'plan' && typeof e.data.plan_sha256 === 'string').map((e) => e.data.plan_sha256 as string);
}

/** The plan before the current one: the newest planned sha that differs from the current one. */
function previousSha(c: Contract, shas: string[]): string | null {
  for (let i = shas.length - 1; i >= 0; i--) if (shas[i] !== c.plan_sha256) return shas[i]!;
  return null;
}

function resolve(c: Contract, shas: string[], value: string, flag: '--from' | '--to'): string | null {
  const keywords = flag === '--from' ? ['approved', 'previous', 'current'] : ['current', 'approved', 'previous'];
  if (value === 'current') return c.plan_sha256;
  if (value === 'previous') return previousSha(c, shas);
  if (value === 'approved') {
    const bound = c.approvals.find((a) => a.valid && a.plan_sha256 === c.plan_sha256);
    if (bound) return bound.plan_sha256;
    const last = c.approvals[c.approvals.length - 1];
    throw kairError('PLAN_NOT_FOUND', `${c.id} has no valid approval, so no plan is approved${last ? ` (the last approval, by ${last.actor}, was of plan ${shortSha(last.plan_sha256)} and is void)` : ''}`, {
      contract_id: c.id,
      flag,
      value,
      ...hint(last ? `compare with the plan last approved: \`kair diff ${c.id} --from ${shortSha(last.plan_sha256)}\`` : `compare with the previous plan: \`kair diff ${c.id} --from previous\``),
    });
  }
  if (!HEX_PREFIX.test(value)) {
    throw kairError('USAGE_ERROR', `${flag} ${JSON.stringify(value.slice(0, 80))}: expected ${keywords.join(', ')}, or a plan sha256 (its first 8 or more hex digits)`, {
      flag,
      value,
      ...hint(`\`kair history ${c.id}\` lists the plan shas; \`kair show ${c.id}\` shows the current one`),
    });
  }
  const prefix = value.toLowerCase();
  const matches = [...new Set(shas)].filter((s) => s.startsWith(prefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw kairError('USAGE_ERROR', `${flag} ${prefix} matches ${matches.length} plans of ${c.id}: give more digits`, { flag, value, matches, ...hint('give more hex digits of the sha') });
  }
  throw kairError('PLAN_NOT_FOUND', `${c.id} never had a plan whose sha256 starts with ${prefix}`, {
    contract_id: c.id,
    flag,
    value: prefix,
    ...hint(`\`kair history ${c.id}\` lists the plans it had`),
  });
}

export async function diff(ctx: Ctx, id: string, opts: { from?: string; to?: string }): Promise<DiffResult> {
  const c = await readContract(ctx, id);
  const events = await historyEvents(ctx, id);
  if (!c.plan_sha256) {
    throw kairError('PLAN_NOT_FOUND', `${c.id} has no plan yet: nothing to compare`, { contract_id: c.id, ...hint(`give it one: \`kair plan ${c.id} --file <plan.json>\``) });
  }
  const shas = plannedShas(events);
  const approved = validApprovers(c).length > 0;
  const fromRef = opts.from ?? (approved ? 'approved' : 'previous');
  const toRef = opts.to ?? 'current';
  const from = resolve(c, shas, fromRef, '--from');
  const to = resolve(c, shas, toRef, '--to');
  if (to === null) {
    throw kairError('PLAN_NOT_FOUND', `${c.id} has no plan before its current one`, { contract_id: c.id, flag: '--to', value: toRef, ...hint('use --to current or a sha') });
  }
  const toPlan = (await readKeptPlan(ctx, c, to)).plan as unknown as Json;
  const fromPlan = from === null ? null : from === to ? toPlan : ((await readKeptPlan(ctx, c, from)).plan as unknown as Json);
  const d = diffPlans(fromPlan, toPlan);
  return { contract_id: c.id, from, to, from_ref: HEX_PREFIX.test(fromRef) ? 'sha' : fromRef, to_ref: HEX_PREFIX.test(toRef) ? 'sha' : toRef, ...d };
}
