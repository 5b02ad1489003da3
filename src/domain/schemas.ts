/**
 * zod schemas of the documents kair publishes, the source of docs/schemas/*.json (a test fails
 * when a generated schema drifts from the committed file). The plan schema is the validator
 * itself; the config is validated by hand on the hot path (domain/config.ts) and this schema
 * is kept equal to it by a test over sample documents.
 */
import * as z from 'zod';
import { CONTROL_PATTERN } from './ids.js';
import { PlanSchema } from './plan.js';
import { isCents } from './config.js';

const money = z.number().positive().refine(isCents, { error: 'at most 2 decimals' });

export const ConfigSchema = z.strictObject({
  workspace_id: z.string().min(1),
  controls: z.strictObject({ registry: z.array(z.string().regex(CONTROL_PATTERN)) }),
  approvals: z.strictObject({ min: z.int().positive(), forbid_self: z.boolean() }),
  kimi: z.strictObject({
    provider: z.literal('stub'),
    defaults: z.strictObject({
      maxCostUSD: money,
      maxAgents: z.int().positive(),
      maxRuntimeSec: z.int().positive(),
      allowedScopes: z.array(z.string().min(1)),
    }),
    max_cost_usd_per_contract: money,
  }),
});

const state = z.enum(['DRAFT', 'PLANNED', 'AWAITING_APPROVAL', 'APPROVED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'ACCEPTED', 'REWOUND']);
const sha = z.string().regex(/^[0-9a-f]{64}$/);

export const ContractSchema = z.strictObject({
  id: z.string(),
  intent: z.string(),
  state,
  version: z.int().positive(),
  versions: z.array(z.strictObject({ version: z.int().positive(), plan_sha256: sha.nullable(), created_at: z.string(), superseded_by: z.int().optional(), reason: z.string().optional() })),
  plan_sha256: sha.nullable(),
  controls: z.strictObject({ required: z.array(z.string()), granted: z.array(z.string()) }),
  approvals: z.array(z.strictObject({ actor: z.string(), at: z.string(), plan_sha256: sha, valid: z.boolean() })),
  runs: z.array(z.string()),
  pause: z.strictObject({ requested_by: z.string(), reason: z.string(), step_id: z.string().nullable() }).optional(),
  running: z.strictObject({ run_id: z.string(), pid: z.int(), since: z.string(), step_id: z.string().nullable(), alive: z.boolean().optional() }).optional(),
  created_at: z.string(),
  updated_at: z.string(),
  history_seq: z.int().positive(),
  history_head: sha,
});

export const HistoryEventSchema = z.strictObject({
  seq: z.int().positive(),
  at: z.string(),
  type: z.enum(['propose', 'plan', 'require', 'grant', 'revoke', 'request-approval', 'approve', 'run.started', 'step.finished', 'run.finished', 'kimi.started', 'kimi.completed', 'kimi.aborted', 'pause', 'resume', 'review', 'accept', 'rewind', 'dpc', 'gate.blocked', 'recovery']),
  actor: z.string(),
  state,
  data: z.record(z.string(), z.unknown()),
  prev: sha,
  hash: sha,
});

export const PUBLISHED_SCHEMAS: Record<string, z.ZodType> = {
  plan: PlanSchema,
  config: ConfigSchema,
  contract: ContractSchema,
  'history-event': HistoryEventSchema,
};

export function jsonSchemaOf(name: string): unknown {
  return { $id: `https://kair.dev/schemas/${name}.json`, ...z.toJSONSchema(PUBLISHED_SCHEMAS[name]!, { unrepresentable: 'any' }) };
}
