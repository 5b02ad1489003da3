/**
 * zod schemas of the documents kair publishes, the source of docs/schemas/*.json (a test fails
 * when a generated schema drifts from the committed file). The plan and simulation schemas are
 * the validators themselves; the config is validated by hand on the hot path (domain/config.ts)
 * and this schema is kept equal to it by a test over sample documents; what kair writes and
 * prints is in output-schemas.ts, checked against real output by test/e2e/json-schemas.test.ts.
 */
import * as z from 'zod';
import { SimulationSchema } from './aec/simulation.js';
import { isCents } from './config.js';
import { CONTROL_PATTERN } from './ids.js';
import * as out from './output-schemas.js';
import { PlanSchema } from './plan.js';

export { ContractSchema, HistoryEventSchema } from './output-schemas.js';

const money = z.number().positive().refine(isCents, { error: 'at most 2 decimals' });

/** Only `workspace_id` is required: omitted keys take their defaults (domain/config.ts). */
export const ConfigSchema = z.strictObject({
  $schema: z.string().optional(),
  workspace_id: z.string().min(1),
  controls: z.strictObject({ registry: z.array(z.string().regex(CONTROL_PATTERN)).optional() }).optional(),
  approvals: z
    .strictObject({
      min: z.int().positive().optional(),
      forbid_self: z.boolean().optional(),
      require_signed: z.boolean().optional(),
      allowed_signers_file: z.string().min(1).optional(),
    })
    .optional(),
  kimi: z
    .strictObject({
      provider: z.literal('stub').optional(),
      defaults: z
        .strictObject({
          maxCostUSD: money.optional(),
          maxAgents: z.int().positive().optional(),
          maxRuntimeSec: z.int().positive().optional(),
          allowedScopes: z.array(z.string().min(1)).optional(),
        })
        .optional(),
      max_cost_usd_per_contract: money.optional(),
    })
    .optional(),
  run: z.strictObject({ allowed_actors: z.array(z.string().regex(/^(?:[^@][\s\S]*|@proposer|@approvers)$/)).optional() }).optional(),
  policy: z.strictObject({ admins: z.array(z.string().regex(/^[^@][\s\S]*$/)).optional() }).optional(),
  slo: z
    .strictObject({
      dispatch_p95_ms: z.number().nonnegative().optional(),
      dispatch_p99_ms: z.number().nonnegative().optional(),
      error_rate: z.number().min(0).max(1).optional(),
      duplicate_side_effects: z.int().nonnegative().optional(),
    })
    .optional(),
  limits: z.strictObject({ max_input_bytes: z.int().positive().optional() }).optional(),
  planner: z
    .strictObject({
      provider: z.enum(['stub', 'openai-compatible']).optional(),
      base_url: z.string().url().optional(),
      model: z.string().min(1).optional(),
      api_key_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
      max_tokens: z.int().positive().optional(),
      timeout_ms: z.int().positive().optional(),
    })
    .optional(),
  backend: z
    .strictObject({
      kind: z.enum(['local', 'postgres']).optional(),
      url_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
      schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).optional(),
    })
    .optional(),
});

/** File name (without .json) → schema. `output-*` describe the `--json` documents. */
export const PUBLISHED_SCHEMAS: Record<string, z.ZodType> = {
  plan: PlanSchema,
  config: ConfigSchema,
  contract: out.ContractSchema,
  'history-event': out.HistoryEventSchema,
  dpc: out.DpcSchema,
  'run-request': out.RunRequestSchema,
  'run-result': out.RunResultSchema,
  simulation: SimulationSchema,
  'output-error': out.ErrorOutputSchema,
  'output-init': out.InitOutputSchema,
  'output-lifecycle': out.LifecycleOutputSchema,
  'output-status': out.StatusOutputSchema,
  'output-list': out.ListOutputSchema,
  'output-history': out.HistoryOutputSchema,
  'output-verify': out.VerifyOutputSchema,
  'output-head': out.HeadOutputSchema,
  'output-version': out.VersionOutputSchema,
  'output-version-flag': out.VersionFlagOutputSchema,
  'output-help': out.HelpOutputSchema,
  'output-completion': out.CompletionOutputSchema,
  'output-grant-list': out.GrantListOutputSchema,
  'output-sim-list': out.SimulationListOutputSchema,
  'output-sim-show': out.SimulationOutputSchema,
  'output-access-list': out.AccessListOutputSchema,
  'output-access-rule': out.AccessRuleOutputSchema,
  'output-access-log': out.AccessLogOutputSchema,
  'output-sim-log': out.SimLogOutputSchema,
  'output-find': out.FindOutputSchema,
  'output-intake-list': out.IntakeListOutputSchema,
  'output-envelopes': out.EnvelopesOutputSchema,
  'output-aec-ledger': out.AecLedgerOutputSchema,
  'output-aec-rebuild': out.AecRebuildOutputSchema,
  'output-aec-replay': out.AecReplayOutputSchema,
  'output-aec-stats': out.AecStatsOutputSchema,
  'output-aec-stats-check': out.AecStatsCheckOutputSchema,
  'output-aec-waiver': out.AecWaiverOutputSchema,
  'output-aec-waiver-list': out.AecWaiverListOutputSchema,
  'output-run': out.RunOutputSchema,
  'output-review': out.ReviewOutputSchema,
  'output-artifacts': out.ArtifactsOutputSchema,
  'output-dpc': out.DpcOutputSchema,
  'output-unlock': out.UnlockOutputSchema,
  'output-show': out.ShowOutputSchema,
  'output-diff': out.DiffOutputSchema,
  'output-rollback': out.RollbackOutputSchema,
  'output-config-get': out.ConfigGetOutputSchema,
  'output-config-set': out.ConfigSetOutputSchema,
  'output-access-apply': out.AccessApplyOutputSchema,
  'output-unrequire': out.UnrequireOutputSchema,
  'output-close': out.CloseOutputSchema,
  'output-doctor': out.DoctorOutputSchema,
  'output-artifacts-out': out.ArtifactsOutOutputSchema,
  'output-export': out.ExportOutputSchema,
  'output-import': out.ImportOutputSchema,
};

export function jsonSchemaOf(name: string): unknown {
  return { $id: `https://kair.dev/schemas/${name}.json`, ...z.toJSONSchema(PUBLISHED_SCHEMAS[name]!, { unrepresentable: 'any' }) };
}
