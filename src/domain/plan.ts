/** kair.plan.v1: the strict plan schema, cap checks against config, and PLAN.md rendering. */
import * as z from 'zod';
import type { KimiCaps, Problem } from './config.js';
import { isCents } from './config.js';
import { ID_PATTERN } from './ids.js';
import { sortProblems, zodProblems } from './problems.js';

export { formatPath } from './problems.js';
import { stepLane } from './plan-routing.js';

export { isKimiEligible, stepLane } from './plan-routing.js';

const id = z.string().regex(ID_PATTERN, { error: `must match ${ID_PATTERN.source}` });

export const SimulationRequestSchema = z.strictObject({
  utterance: z.string().min(1),
  fields: z.record(z.string(), z.string()).optional(),
  lang: z.string().min(1).optional(),
  attempt: z.int().min(1).optional(),
});

export const StepSchema = z
  .strictObject({
    id,
    summary: z.string().min(1),
    details: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    tags: z.array(z.string()).optional(),
    risks: z.array(z.string()).optional(),
    lane: z.literal('kimi').optional(),
    simulation: SimulationRequestSchema.optional(),
  })
  .refine((s) => !(s.lane !== undefined && s.simulation !== undefined), {
    error: 'a step has at most one of lane "kimi" or simulation',
    path: ['lane'],
  });

export const PlanSchema = z.strictObject({
  // Lets an editor validate the file against docs/schemas/plan.json; dropped at validation, so
  // the plan's sha is the same with or without it.
  $schema: z.string().optional(),
  version: z.literal('kair.plan.v1'),
  title: z.string().min(1),
  strategy: z.enum(['INVENTORY', 'INVENTORY_PLUS_OSS', 'OSS', 'CUSTOM']).optional(),
  details: z
    .strictObject({
      requiresKimi: z.boolean().optional(),
      features: z.array(id).optional(),
    })
    .optional(),
  scopes: z.array(z.string().min(1)).optional(),
  budget: z
    .strictObject({
      maxCostUSD: z.number().positive().refine(isCents, { error: 'at most 2 decimals' }).optional(),
      maxAgents: z.int().positive().optional(),
      maxRuntimeSec: z.int().positive().optional(),
    })
    .optional(),
  steps: z.array(StepSchema).min(1).max(200),
});

export type Plan = z.infer<typeof PlanSchema>;
export type PlanStep = z.infer<typeof StepSchema>;

/** Every problem with the plan, each with its JSON path; empty when valid. */
export function validatePlan(input: unknown, caps: KimiCaps): { plan?: Plan; problems: Problem[] } {
  const parsed = PlanSchema.safeParse(input);
  const problems = zodProblems(parsed.error);
  // Duplicate step ids and budget caps are checked on the raw input too, so one pass reports all.
  const raw = input as { steps?: unknown; budget?: unknown } | null;
  if (raw && Array.isArray(raw.steps)) {
    const seen = new Set<string>();
    raw.steps.forEach((s, i) => {
      const sid = (s as { id?: unknown } | null)?.id;
      if (typeof sid !== 'string') return;
      if (seen.has(sid)) problems.push({ path: `steps[${i}].id`, message: `duplicate ${JSON.stringify(sid)}` });
      seen.add(sid);
    });
  }
  if (raw && typeof raw.budget === 'object' && raw.budget !== null) {
    const b = raw.budget as Record<string, unknown>;
    for (const key of ['maxCostUSD', 'maxAgents', 'maxRuntimeSec'] as const) {
      const v = b[key];
      if (typeof v === 'number' && v > caps[key]) {
        problems.push({ path: `budget.${key}`, message: `${v} is above the workspace cap ${caps[key]} (kimi.defaults.${key})` });
      }
    }
  }
  sortProblems(problems);
  if (problems.length > 0 || !parsed.success) return { problems };
  const { $schema: _schema, ...plan } = parsed.data;
  return { plan, problems };
}

export function renderPlanMarkdown(plan: Plan, sha: string): string {
  const lines = [`# ${plan.title}`, '', `- plan: \`kair.plan.v1\`, sha256 \`${sha}\``];
  if (plan.strategy) lines.push(`- strategy: ${plan.strategy}`);
  if (plan.details?.requiresKimi !== undefined) lines.push(`- requires Kimi: ${plan.details.requiresKimi ? 'yes' : 'no'}`);
  if (plan.details?.features?.length) lines.push(`- features: ${plan.details.features.join(', ')}`);
  if (plan.scopes?.length) lines.push(`- scopes: ${plan.scopes.join(', ')}`);
  if (plan.budget) {
    const b = plan.budget;
    const parts = [
      b.maxCostUSD !== undefined ? `max cost $${b.maxCostUSD}` : '',
      b.maxAgents !== undefined ? `${b.maxAgents} agents` : '',
      b.maxRuntimeSec !== undefined ? `${b.maxRuntimeSec}s runtime` : '',
    ].filter(Boolean);
    lines.push(`- budget: ${parts.join(', ')}`);
  }
  lines.push('', '## Steps', '');
  plan.steps.forEach((s, i) => {
    const lane = stepLane(s);
    const via = lane === 'aec' ? ` — simulation "${s.simulation?.utterance}"` : lane === 'kimi' ? ' — Kimi lane' : '';
    lines.push(`${i + 1}. **${s.id}**: ${s.summary}${via}`);
    if (typeof s.details === 'string') lines.push(`   ${s.details}`);
    if (s.risks?.length) lines.push(`   - risks: ${s.risks.join('; ')}`);
  });
  return lines.join('\n') + '\n';
}
