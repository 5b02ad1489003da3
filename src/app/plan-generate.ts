/**
 * `kair plan <id> --generate | --refine "<feedback>"`: a plan provider writes the plan. The
 * contract is read without the lock, the provider is asked (seconds, on a network), and the
 * answer is validated like `--file` and committed only if the history tail is still the one
 * the prompt was built from; else CONCURRENT_WRITE and nothing is written. The call is
 * recorded in the same append as the plan: the prompt payload kept by sha beside the DPC, and
 * prompt evidence (provider, model, prompt sha, tokens in and out) in the DPC.
 */
import { canonicalHash, canonicalJson } from '../domain/canonical.js';
import type { Contract } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { assertTransition } from '../domain/lifecycle.js';
import type { PlanMode, PromptPayload } from '../domain/planner/prompt.js';
import { buildPrompt, extractJson, payloadSha, promptPayload } from '../domain/planner/prompt.js';
import { isAllowed } from '../domain/states.js';
import { catalogRepo } from '../lanes/aec/catalog.js';
import { assertProviderName, selectProvider } from '../lanes/planner/provider.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Boundary, ContractStore } from '../store/port.js';
import { parsedOrNull } from '../domain/json-input.js';
import type { Ctx } from './context.js';
import { readOnlyTransaction } from './db.js';
import { dpcFromHistory, planContract, writePlanMarkdown } from './lifecycle.js';
import { mutate } from './mutate.js';

export interface GenerateOptions {
  mode: PlanMode;
  instructions?: string;
  feedback?: string;
  provider?: string;
  /** Receives the prompt payload before the call and the DPC after the commit (`--debug`). */
  debug?: (what: 'payload' | 'dpc', text: string, path?: string) => void;
}

export interface PlannerRecord {
  mode: PlanMode;
  provider: string;
  model: string;
  prompt_sha256: string;
  prompt_ref: string;
  tokens_in: number;
  tokens_out: number;
}

export const promptFile = (ctx: Ctx, id: string, sha: string) => `${paths.contract(ctx.ws, id)}/dpc/prompt-${sha}.json`;

export async function generatePlan(ctx: Ctx, id: string, o: GenerateOptions): Promise<{ contract: Contract; plan_sha256: string; planner: PlannerRecord }> {
  assertId(id);
  // Arguments before the workspace (exit 2 before 4).
  if (o.provider !== undefined) assertProviderName(o.provider);
  if (o.instructions !== undefined && !o.instructions.trim()) throw kairError('USAGE_ERROR', '--instructions needs text', { flag: '--instructions' });
  const cfg = ctx.config.planner;
  const provider = selectProvider(o.provider, cfg, ctx.env);
  const store = (await ctx.storage()).contracts;
  // The state the prompt is built from; the commit checks that the tail is still this one.
  const c = await store.load(id);
  const tail = { seq: c.history_seq, hash: c.history_head };
  if (!isAllowed('plan', c.state)) {
    // Recorded as a refusal like any `plan` in this state (unless the contract moved meanwhile).
    await mutate(ctx, id, 'plan', (now) => {
      assertTransition(now, 'plan');
      return { drafts: [] };
    }, { expectTail: tail });
  }
  const found = await dpcFromHistory(ctx, id);
  if (found.file === 'foreign') {
    throw kairError('INTEGRITY_FAILED', `${id}: dpc/dpc_v1.json differs from every state its history recorded; nothing was written; run \`kair verify ${id}\``, { contract_id: id, kind: 'dpc_mismatch' });
  }
  const currentPlan = o.mode === 'refine' ? await readCurrentPlan(store, c) : undefined;
  const catalog = await readOnlyTransaction(ctx, () => [], (sql) => catalogRepo(sql).catalogEntries());
  const caps = ctx.config.kimi.defaults;
  const prompt = buildPrompt({
    mode: o.mode,
    contractId: id,
    intent: c.intent,
    ...(o.instructions === undefined ? {} : { instructions: o.instructions }),
    ...(o.mode === 'refine' ? { feedback: o.feedback ?? '', currentPlan } : {}),
    required: c.controls.required,
    dpc: found.dpc,
    simulations: catalog,
    caps,
  });
  const payload = promptPayload(prompt, provider.name, provider.model, provider.maxTokens);
  const sha = payloadSha(payload);
  o.debug?.('payload', JSON.stringify(payload, null, 2));

  const answer = await provider.complete(payload);
  const parsed = extractJson(answer.text);
  if (!parsed.ok) {
    throw kairError('PLAN_INVALID', `the ${provider.name} planner's answer is not a plan: ${parsed.message}; nothing was written`, {
      provider: provider.name,
      model: provider.model,
      prompt_sha256: sha,
      problems: [{ path: '(root)', message: parsed.message }],
      hint: 'run the command again, or give the plan yourself with --file',
    });
  }
  const { renderPlanMarkdown, validatePlan } = await import('../domain/plan.js');
  const checked = validatePlan(parsed.value, caps);
  if (!checked.plan) {
    const head = checked.problems.slice(0, 5).map((p) => `${p.path}: ${p.message}`).join('; ');
    throw kairError('PLAN_INVALID', `the plan from the ${provider.name} planner has ${checked.problems.length} problem(s): ${head}${checked.problems.length > 5 ? '; …' : ''}; nothing was written`, {
      provider: provider.name,
      model: provider.model,
      prompt_sha256: sha,
      problems: checked.problems,
      hint: 'run the command again (add --instructions to steer it), or give the plan yourself with --file',
    });
  }
  const file = promptFile(ctx, id, sha);
  const record: PlannerRecord = { mode: o.mode, provider: provider.name, model: provider.model, prompt_sha256: sha, prompt_ref: rel(ctx.ws, file), tokens_in: answer.tokens_in, tokens_out: answer.tokens_out };
  const r = await planContract(ctx, id, parsed.value, () => checked, {
    expectTail: tail,
    eventData: { planner: record },
    // Kept by sha before the event names it, like the plan (an orphan if the command is killed here).
    beforeEvent: (b) => keepPrompt(store, b, rel(ctx.ws, file), payload, sha),
    evidence: [
      {
        kind: 'prompt',
        ref: record.prompt_ref,
        note: `${o.mode} by ${record.provider} (model ${record.model}): prompt sha256 ${sha}, ${record.tokens_in} tokens in, ${record.tokens_out} tokens out`,
      },
    ],
  });
  await writePlanMarkdown(ctx, id, renderPlanMarkdown(checked.plan, r.plan_sha256));
  if (o.debug) o.debug('dpc', (await store.dpc(id)) ?? '(missing)', rel(ctx.ws, paths.dpc(ctx.ws, id)));
  return { contract: r.contract, plan_sha256: r.plan_sha256, planner: record };
}

async function keepPrompt(store: ContractStore, b: Boundary, path: string, payload: PromptPayload, sha: string): Promise<void> {
  if (canonicalHash(parsedOrNull(await store.artifact(path))) === sha) return;
  await b.putArtifact(path, canonicalJson(payload) + '\n');
}

/** The plan a refine revises: plan_v1.json when it is the current plan, else the copy kept by sha. */
async function readCurrentPlan(store: ContractStore, c: Contract): Promise<unknown> {
  if (!c.plan_sha256) {
    throw kairError('USAGE_ERROR', `${c.id} has no plan to refine`, { contract_id: c.id, flag: '--refine', hint: `kair plan ${c.id} --generate (or --file plan.json) first` });
  }
  // plan_v1.json first: it keeps the key order the plan was written in.
  for (const text of [await store.currentPlan(c.id), await store.plan(c.id, c.plan_sha256)]) {
    const plan = parsedOrNull(text);
    if (plan !== null && canonicalHash(plan) === c.plan_sha256) return plan;
  }
  throw kairError('INTEGRITY_FAILED', `${c.id}: the current plan (sha256 ${c.plan_sha256.slice(0, 12)}) is not on disk as history recorded it; nothing was written; run \`kair verify ${c.id}\``, { contract_id: c.id, kind: 'plan_mismatch' });
}
