/** Handlers of the mutating commands: options → use case → Output. */
import { writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Ctx } from '../app/context.js';
import { inputLimit } from '../app/context.js';
import * as life from '../app/lifecycle.js';
import { readContract } from '../app/read.js';
import * as runApp from '../app/run.js';
import * as rollbackApp from '../app/rollback.js';
import { unlock as unlockApp } from '../app/unlock.js';
import { verify as verifyApp } from '../app/verify.js';
import { head as headApp } from '../app/head.js';
import { init as initApp } from '../app/init.js';
import { withInterrupts } from '../app/interrupt.js';
import type { Contract } from '../domain/contract.js';
import { CONFIRM_LEXICON, isConfirmLang, normalizeLang } from '../domain/aec/confirm.js';
import { isKairError, kairError } from '../domain/errors.js';
import type { Output } from './registry.js';
import type { Parsed } from './parse.js';
import { confirmOptions } from './parse.js';
import { contractSummary, escapeControls, table } from './render/text.js';
import type { Paint } from './io.js';

const contractOut = (c: Contract, headline: string, extra: Record<string, unknown> = {}): Output => ({
  json: { contract: c, ...extra },
  text: (p: Paint) => `${headline}\n${contractSummary(c, p)}`,
});

export async function init(p: Parsed, ctx: Ctx): Promise<Output> {
  const str = (k: string) => p.opts[k] as string | undefined;
  const { root: _root, ...r } = await initApp({ dir: ctx.dirFlag, cwd: ctx.cwd, env: ctx.env, backend: str('backend'), workspaceId: str('workspaceId'), schema: str('schema'), urlEnv: str('urlEnv'), actor: ctx.actor });
  const root = _root; // shown to the person at the terminal; --json carries relative paths only (§2)
  const next = [
    'Next steps:',
    '  kair propose "<what you want done>" --id <id>',
    '  kair plan <id> --file plan.json',
    '  kair request-approval <id> && kair approve <id>',
    '  kair run <id>',
  ].join('\n');
  const shared = r.backend === 'postgres' ? ` (PostgreSQL, workspace ${r.workspace_id ?? '?'}${r.tenant ? `, ${r.tenant}` : ''}; share it with \`kair init --backend postgres --workspace-id ${r.workspace_id ?? '<id>'}\`)` : '';
  return { json: r, text: () => `${r.created ? `Initialized a kair workspace in ${root}/.kair` : `Workspace already initialized in ${root}/.kair (config kept)`}${shared}\n${next}` };
}

function splitControls(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
}

export async function propose(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await life.propose(ctx, p.args[0]!, { id: p.opts.id as string | undefined, requires: splitControls(p.opts.requires as string[] | undefined) });
  return { ...contractOut(r.contract, `Proposed ${r.contract.id}`), primary: r.contract.id };
}

export async function plan(p: Parsed, ctx: Ctx): Promise<Output> {
  const [id, source] = p.args as [string, string | undefined];
  const generating = p.opts.generate === true || p.opts.refine !== undefined;
  if (generating || p.opts.instructions !== undefined || p.opts.provider !== undefined || p.opts.debug !== undefined) return generatePlan(p, ctx);
  const given = [p.opts.file !== undefined, p.opts.planJson !== undefined, source === '-'].filter(Boolean).length;
  if (source !== undefined && source !== '-') {
    throw kairError('USAGE_ERROR', `unexpected argument ${JSON.stringify(source)}: give the plan with --file F, --plan-json '<json>' or - for stdin`, { argument: source });
  }
  if (given !== 1) {
    throw kairError('USAGE_ERROR', 'give the plan exactly one way: --file F, --plan-json \'<json>\' or - (stdin)', { flags: ['--file', '--plan-json', '-'] });
  }
  const src: life.PlanSource =
    p.opts.file !== undefined ? { kind: 'file', path: resolve(ctx.cwd, p.opts.file as string) } : p.opts.planJson !== undefined ? { kind: 'inline', text: p.opts.planJson as string } : { kind: 'stdin' };
  const input = await life.readPlanSource(src, inputLimit(ctx));
  // zod is loaded here only: the other commands never pay for it.
  const { renderPlanMarkdown, validatePlan } = await import('../domain/plan.js');
  // Plan problems are argument errors (exit 2) even outside a workspace; the caps of the
  // workspace's config join them when there is one, so every problem is listed at once.
  let caps = { maxCostUSD: Infinity, maxAgents: Infinity, maxRuntimeSec: Infinity, allowedScopes: [] as string[] };
  try {
    caps = ctx.config.kimi.defaults;
  } catch {
    // no workspace or an invalid config: planContract reports it once the plan itself is valid
  }
  const checked = validatePlan(input, caps);
  const r = await life.planContract(ctx, id, input, () => checked);
  await life.writePlanMarkdown(ctx, id, renderPlanMarkdown(checked.plan!, r.plan_sha256));
  return { ...contractOut(r.contract, `Planned ${id} (sha256 ${r.plan_sha256.slice(0, 12)}); approvals voided`, { plan_sha256: r.plan_sha256 }), primary: r.plan_sha256 };
}

/** `plan --generate | --refine`: the plan comes from a plan provider (app/plan-generate.ts). */
async function generatePlan(p: Parsed, ctx: Ctx): Promise<Output> {
  const [id, source] = p.args as [string, string | undefined];
  const others = [p.opts.file !== undefined && '--file', p.opts.planJson !== undefined && '--plan-json', source !== undefined && (source === '-' ? '-' : JSON.stringify(source))].filter(Boolean);
  if (p.opts.generate === true && p.opts.refine !== undefined) {
    throw kairError('USAGE_ERROR', 'give either --generate or --refine "<feedback>", not both', { flags: ['--generate', '--refine'] });
  }
  if (p.opts.generate !== true && p.opts.refine === undefined) {
    const flag = ['--instructions', '--provider', '--debug'].find((f) => p.opts[f.slice(2)] !== undefined)!;
    throw kairError('USAGE_ERROR', `${flag} goes with --generate or --refine "<feedback>"`, { flag, hint: `kair plan ${id} --generate ${flag}${flag === '--debug' ? '' : ' …'}` });
  }
  if (others.length) {
    throw kairError('USAGE_ERROR', `--generate/--refine makes the plan; ${others.join(', ')} cannot be given with it`, { flags: others });
  }
  const feedback = p.opts.refine as string | undefined;
  if (feedback !== undefined && !feedback.trim()) throw kairError('USAGE_ERROR', '--refine needs the feedback: kair plan <id> --refine "<what to change>"', { flag: '--refine' });
  const json = p.opts.json === true;
  const { generatePlan: generate } = await import('../app/plan-generate.js');
  // --debug writes to stderr as it goes (the payload before the call, which may fail); with --json nothing extra.
  const debug = p.opts.debug === true && !json ? (what: 'payload' | 'dpc', text: string, path?: string) => debugOut(what, text, path) : undefined;
  const r = await generate(ctx, id, {
    mode: feedback === undefined ? 'generate' : 'refine',
    ...(feedback === undefined ? {} : { feedback }),
    ...(p.opts.instructions === undefined ? {} : { instructions: p.opts.instructions as string }),
    ...(p.opts.provider === undefined ? {} : { provider: p.opts.provider as string }),
    ...(debug ? { debug } : {}),
  });
  const pl = r.planner;
  return contractOut(
    r.contract,
    `Planned ${id} with the ${pl.provider} planner (model ${pl.model}, ${pl.tokens_in} tokens in, ${pl.tokens_out} out; plan sha256 ${r.plan_sha256.slice(0, 12)}); approvals voided\nprompt kept at ${pl.prompt_ref}`,
    { plan_sha256: r.plan_sha256, planner: pl },
  );
}

const DPC_PREVIEW_LINES = 40;

function debugOut(what: 'payload' | 'dpc', text: string, path?: string): void {
  if (what === 'payload') {
    writeSync(2, escapeControls(`--- planner prompt payload ---\n${text}\n`, false));
    return;
  }
  const lines = text.trimEnd().split('\n');
  const preview = lines.length > DPC_PREVIEW_LINES ? [...lines.slice(0, DPC_PREVIEW_LINES), `… (${lines.length - DPC_PREVIEW_LINES} more lines)`] : lines;
  writeSync(2, escapeControls(`--- DPC: ${path} ---\n${preview.join('\n')}\n`, false));
}

export async function require(p: Parsed, ctx: Ctx): Promise<Output> {
  const [id, ...controls] = p.args as [string, ...string[]];
  const r = await life.requireControls(ctx, id, controls);
  return contractOut(r.contract, `Required ${controls.join(', ')} on ${id}`);
}

export async function grant(p: Parsed, ctx: Ctx, kind: 'grant' | 'revoke'): Promise<Output> {
  const [id, ...controls] = p.args as [string, ...string[]];
  const r = await life.grantOrRevoke(ctx, kind, id, controls);
  // A name outside the registry is granted (a registry may lag a new integration) but flagged:
  // `local:reed` is more likely a typo than a new control.
  const registry = kind === 'grant' ? ctx.config.controls.registry : null;
  const outside = registry ? [...new Set(controls.filter((c) => !registry.includes(c)))] : [];
  // One warning, names capped: a grant of thousands of names must not print thousands of lines.
  const names = outside.length > 10 ? `${outside.slice(0, 10).join(', ')} and ${outside.length - 10} more` : outside.join(', ');
  const warnings = outside.length ? [`${names} ${outside.length === 1 ? 'is' : 'are'} not in controls.registry (see \`kair grant list\`); granted anyway`] : [];
  for (const w of warnings) ctx.warn(w);
  return contractOut(r.contract, `${kind === 'grant' ? 'Granted' : 'Revoked'} ${controls.join(', ')} ${kind === 'grant' ? 'to' : 'from'} ${id}`, warnings.length ? { warnings } : {});
}

export async function grantList(_p: Parsed, ctx: Ctx): Promise<Output> {
  const controls = [...ctx.config.controls.registry];
  return { json: { controls }, text: () => controls.join('\n') };
}

export async function simple(p: Parsed, ctx: Ctx, command: 'request-approval' | 'pause' | 'accept'): Promise<Output> {
  const id = p.args[0]!;
  const fn = { 'request-approval': life.requestApproval, pause: life.pause, accept: life.accept }[command];
  const r = await fn(ctx, id);
  const verb = { 'request-approval': 'Approval requested for', pause: 'Paused', accept: 'Accepted' }[command];
  if (command === 'request-approval' && r.contract.plan_sha256) {
    // The approver's two commands: read exactly this plan, then approve exactly it.
    const sha = r.contract.plan_sha256;
    const head = `${verb} ${id}: plan sha256 ${sha}\n  read it:    kair show ${id}\n  approve it: kair approve ${id} --expect-sha ${sha.slice(0, 12)}`;
    return contractOut(r.contract, head, { plan_sha256: sha });
  }
  return contractOut(r.contract, `${verb} ${id}`);
}

/** `--expect-sha`: 8 to 64 hex digits (a shorter prefix could match a plan nobody read). */
function expectShaOption(value: unknown): { expectSha?: string } {
  if (value === undefined) return {};
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{8,64}$/.test(value)) {
    throw kairError('USAGE_ERROR', `--expect-sha expects 8 to 64 hex digits of the plan's sha256, got ${JSON.stringify(String(value).slice(0, 80))}`, {
      flag: '--expect-sha',
      value,
      hint: 'copy the sha `kair show <id>` or `kair request-approval` printed',
    });
  }
  return { expectSha: value.toLowerCase() };
}

export async function approve(p: Parsed, ctx: Ctx): Promise<Output> {
  const id = p.args[0]!;
  const r = await life.approve(ctx, id, { ...expectShaOption(p.opts.expectSha), sign: p.opts.sign === true, ...(p.opts.key === undefined ? {} : { key: p.opts.key as string }) });
  const head = r.recorded ? `Approved ${id} as ${ctx.actor()} (plan ${r.contract.plan_sha256?.slice(0, 12)})${r.signed ? ', signed' : ''}` : `${ctx.actor()} has already approved ${id}; nothing recorded`;
  return contractOut(r.contract, head, { recorded: r.recorded });
}

export async function review(p: Parsed, ctx: Ctx): Promise<Output> {
  const id = p.args[0]!;
  const r = await life.review(ctx, id);
  const summary = runApp.runSummary(ctx, r.contract);
  const { reviewedRun } = await import('../app/show.js');
  const { runHeadline, runLines } = await import('./show-handlers.js');
  const last = await reviewedRun(ctx, r.contract);
  const { formatUsd, usdToMicros } = await import('../domain/kimi.js');
  const cost = last?.kimi ? ` · Kimi: ${last.kimi.tokens} tokens, ${formatUsd(usdToMicros(last.kimi.cost_usd))}` : last ? ' · Kimi: none' : '';
  return {
    json: { contract: r.contract, run: summary, last_run: last },
    text: (paint) =>
      [`Reviewed ${id}`, contractSummary(r.contract, paint), ...(last ? [`${runHeadline(last)}${cost}`, runLines(last, paint)] : []), runApp.renderRunSummary(summary)].join('\n'),
  };
}

export async function rewind(p: Parsed, ctx: Ctx): Promise<Output> {
  const [id, reason] = p.args as [string, string];
  let rolledBack: rollbackApp.RollbackResult | null = null;
  for (const [key, flag] of [['confirm', '--confirm'], ['lang', '--lang']] as const) {
    if (p.opts[key] !== undefined && p.opts.rollback !== true) throw kairError('USAGE_ERROR', `${flag} answers the confirmations of --rollback; without --rollback a rewind asks nothing`, { flag, hint: `kair rewind ${id} "<reason>" --rollback ${flag} …` });
  }
  if (p.opts.rollback === true) {
    rolledBack = await rollbackApp.rollbackBeforeRewind(ctx, id, reason, { confirm: p.opts.confirm as string | undefined, lang: p.opts.lang as string | undefined });
    if (rolledBack?.error) throw rollbackError(rolledBack, `${id} was not rewound: `);
  }
  const r = await life.rewind(ctx, id, reason, runApp.assertNoLiveRunner);
  const head = `Rewound ${id} to version ${r.contract.version} (history kept)`;
  if (!rolledBack) return contractOut(r.contract, head, p.opts.rollback === true ? { rollback: null } : {});
  const rb = rolledBack;
  return {
    json: { contract: r.contract, rollback: rollbackDoc(rb) },
    text: (paint) => `${rollbackText(rb)}\n${head}\n${contractSummary(r.contract, paint)}`,
  };
}

function rollbackDoc(r: rollbackApp.RollbackResult) {
  return { contract_id: r.contract.id, run_id: r.run_id, state: r.contract.state, status: r.status, steps: r.steps };
}

function rollbackText(r: rollbackApp.RollbackResult): string {
  const head = r.steps.length === 0 ? `${r.run_id}: no AEC step succeeded; nothing to roll back` : `rollback of ${r.run_id} ${r.status}`;
  return [head, ...r.steps.map((s) => `  ${s.step_id.padEnd(16)} ${s.rollback_simulation_id.padEnd(16)} ${s.status.padEnd(10)} ${s.reason_code ?? ''}`)].join('\n');
}

function rollbackError(r: rollbackApp.RollbackResult, prefix = '') {
  const err = r.error!;
  const e = kairError(err.code, prefix + err.message, { ...err.details, hint: (err.details.hint as string | undefined) ?? `fix the cause, then \`kair rollback ${r.run_id}\` resumes where it stopped` });
  e.payload = rollbackDoc(r);
  (e as { text?: string }).text = rollbackText(r);
  return e;
}

function rollbackDryRunText(r: rollbackApp.RollbackDryRun): string {
  const fields = (f: Record<string, string>) => Object.entries(f).map(([k, v]) => `${k}=${v}`).join(', ');
  return [
    r.steps.length === 0 ? `dry run of rollback ${r.run_id}: no AEC step succeeded; nothing would be dispatched` : `dry run of rollback ${r.run_id} (in this order); nothing was written`,
    ...r.steps.map((s) => `  ${s.step_id.padEnd(16)} ${(s.rollback_simulation_id || '-').padEnd(16)} ${s.status.padEnd(18)} ${s.reason_code}${s.after_confirmation ? ` (then ${s.after_confirmation})` : ''}${Object.keys(s.fields).length ? `  ${fields(s.fields)}` : ''}`),
  ].join('\n');
}

export async function rollback(p: Parsed, ctx: Ctx): Promise<Output> {
  if (p.opts.dryRun === true) {
    try {
      const d = await rollbackApp.rollbackDryRun(ctx, p.args[0]!, { confirm: p.opts.confirm as string | undefined, lang: p.opts.lang as string | undefined, retryInDoubt: p.opts.retryInDoubt === true });
      return { json: { ...d }, text: () => rollbackDryRunText(d) };
    } catch (e) {
      // A predicted stop carries the whole prediction: show it, not only the first stop.
      const payload = (e as { payload?: { dry_run?: boolean } }).payload;
      if (payload?.dry_run === true) (e as { text?: string }).text = rollbackDryRunText(payload as unknown as rollbackApp.RollbackDryRun);
      throw e;
    }
  }
  const r = await rollbackApp.rollbackCommand(ctx, p.args[0]!, { confirm: p.opts.confirm as string | undefined, lang: p.opts.lang as string | undefined, retryInDoubt: p.opts.retryInDoubt === true });
  if (r.error) throw rollbackError(r);
  return { json: rollbackDoc(r), text: () => rollbackText(r) };
}

export async function dpc(p: Parsed, ctx: Ctx): Promise<Output> {
  const list = (k: string) => (p.opts[k] as string[] | undefined) ?? [];
  const r = await life.dpcAdd(ctx, p.args[0]!, {
    assumptions: list('addAssumption'),
    constraints: list('addConstraint'),
    decisions: list('addDecision').map((decision) => ({ decision })),
    open_questions: list('addQuestion').map((question) => ({ question })),
  });
  return { json: { contract_id: r.contract.id, dpc: r.dpc }, text: () => JSON.stringify(r.dpc, null, 2) };
}

export async function verify(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await verifyApp(ctx, p.args[0], { sinceHead: p.opts.sinceHead as string | undefined });
  const ok = r.problems.length === 0;
  const lines = [
    ...r.problems.map((x) => `problem  ${x.contract_id ?? '-'}  ${x.kind}: ${x.message}`),
    ...r.warnings.map((x) => `warning  ${x.contract_id ?? '-'}  ${x.kind}: ${x.message}`),
    `${ok ? 'ok' : 'FAILED'}: ${r.contracts} contract(s), ${r.events} event(s), ${r.problems.length} problem(s), ${r.warnings.length} warning(s)`,
  ];
  if (!ok) {
    const e = kairError('INTEGRITY_FAILED', `verify found ${r.problems.length} problem(s)`, { problems: r.problems.length });
    e.payload = { problems: r.problems, warnings: r.warnings };
    (e as { text?: string }).text = lines.join('\n');
    throw e;
  }
  return { json: { problems: r.problems, warnings: r.warnings, contracts: r.contracts, events: r.events }, text: () => lines.join('\n') };
}

export async function head(_p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await headApp(ctx);
  return {
    json: { digest: r.digest, path: r.path, contracts: r.preimage.contracts.length, chains: r.preimage.chains.length },
    text: () => r.digest,
  };
}

function dryRunText(r: Extract<runApp.RunResult, { dry_run: true }>): string {
  return [
    `dry run of ${r.contract_id}: lanes ${r.lanes.join(', ')}; nothing was written`,
    ...r.steps.map((s) => `  ${s.id.padEnd(16)} ${s.lane.padEnd(7)} ${s.status.padEnd(18)} ${s.reason_code}${s.after_confirmation ? ` (then ${s.after_confirmation})` : ''}`),
    r.kimi_estimate ? `  kimi estimate: ${r.kimi_estimate.tokens} tokens, $${r.kimi_estimate.costUSD}, ${r.kimi_estimate.runtimeSec}s` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** §8 step 5/6: the run document, and its exit status (0 ok or user pause, 3 gate, 5 failure). */
function runOutput(r: runApp.RunResult): Output {
  if (r.dry_run) {
    return { json: { ...r }, text: () => dryRunText(r) };
  }
  const doc = {
    contract_id: r.contract.id,
    run_id: r.run_id,
    state: r.contract.state,
    status: r.status,
    ...(r.kimi ? { kimi: r.kimi } : {}),
    steps: r.steps,
    artifacts: r.artifacts,
  };
  const userPause = r.status === 'PAUSED' && (r.pause_reason === 'USER_REQUESTED' || r.pause_reason === 'PAUSE_AT');
  const text = () =>
    [
      `${r.run_id} ${r.status}${userPause ? ` (${r.pause_reason}; \`kair resume ${r.contract.id}\` continues)` : r.status === 'PAUSED' ? ` (${r.pause_reason})` : ''}`,
      ...r.steps.map((s) => `  ${s.id.padEnd(16)} ${s.lane.padEnd(7)} ${s.status.padEnd(10)} ${s.reason_code ?? ''}`),
      r.kimi ? `  kimi: ${r.kimi.result.summary}` : '',
      ...r.steps.filter((s) => s.question).map((s) => `  ${s.id} asks: ${s.question}`),
      ...r.steps.filter((s) => s.intake_id).map((s) => `  ${s.id} went to dev intake as ${s.intake_id} (\`kair intake list\`)`),
      `  result: ${r.artifacts.run_result}`,
    ]
      .filter(Boolean)
      .join('\n');
  if (r.status === 'COMPLETED' || userPause) return { json: doc, text, primary: r.run_id };
  const err = r.error ?? { code: 'INTERNAL_ERROR' as const, message: `run ended ${r.status}`, details: {} };
  const e = kairError(err.code, err.message, err.details);
  e.payload = doc;
  (e as { text?: string }).text = text();
  throw e;
}

/** `--confirm TOKEN` answers the first confirmation, `--confirm-all TOKEN` every one of this invocation. */
export async function run(p: Parsed, ctx: Ctx): Promise<Output> {
  const dryRun = p.opts.dryRun === true;
  const opts = {
    ...confirmOptions(p.opts, dryRun),
    pauseAt: p.opts.pauseAt as string | undefined,
    dryRun,
    regenerate: p.opts.regenerate === true,
    allowRepeat: p.opts.allowRepeat === true,
  };
  try {
    if (opts.dryRun) {
      // A dry run writes nothing: a signal keeps its default action there.
      try {
        return runOutput(await runApp.runCommand(ctx, p.args[0]!, opts));
      } catch (e) {
        // A predicted stop carries the whole prediction: show it, not only the first stop.
        const payload = (e as { payload?: { dry_run?: boolean } }).payload;
        if (payload?.dry_run === true) (e as { text?: string }).text = dryRunText(payload as Extract<runApp.RunResult, { dry_run: true }>);
        throw e;
      }
    }
    return runOutput(await withInterrupts((interrupts) => runApp.runCommand(ctx, p.args[0]!, { ...opts, interrupts })));
  } catch (e) {
    // A pipeline that runs whatever is approved may count "nothing to execute" as success.
    if (p.opts.allowNoop === true && isKairError(e) && e.code === 'NO_EXECUTION_REQUIRED') {
      return { json: { contract_id: p.args[0]!, no_execution_required: true, message: e.message }, text: () => `${p.args[0]}: ${e.message}; nothing executed` };
    }
    throw e;
  }
}

export async function resume(p: Parsed, ctx: Ctx): Promise<Output> {
  // `--confirm TOKEN --lang xx` is an answer: recorded on the confirmation ledger as ambiguous, as
  // the acceptance test AT-AGENT-10 requires, and the refusal then names the unknown language.
  // Without --confirm there is no answer to record, so an unknown --lang is the usage error it is
  // at run and find (docs/decisions/027).
  const answered = p.opts.confirm !== undefined;
  const unknownLang = answered && p.opts.lang !== undefined && !isConfirmLang(normalizeLang(String(p.opts.lang)));
  try {
    return runOutput(await withInterrupts((interrupts) => runApp.resumeCommand(ctx, p.args[0]!, {
      ...confirmOptions(p.opts, false, !answered),
      retryInDoubt: p.opts.retryInDoubt === true,
      allowRepeat: p.opts.allowRepeat === true,
      interrupts,
    })));
  } catch (e) {
    if (unknownLang && isKairError(e) && e.code === 'AEC_CONFIRM_AMBIGUOUS_REJECTED') {
      const langs = Object.keys(CONFIRM_LEXICON);
      const given = String(p.opts.lang).slice(0, 80);
      e.message = `${e.message}: --lang ${JSON.stringify(given)} is not a language of the confirmation lexicon (one of ${langs.join(', ')})`;
      Object.assign(e.details, { flag: '--lang', lang: given, languages: langs, hint: `answer again in a language of the lexicon: kair resume ${p.args[0]} --confirm yes --lang en (languages: ${langs.join(', ')})` });
    }
    throw e;
  }
}

export { readContract };

export async function envelopes(p: Parsed, ctx: Ctx): Promise<Output> {
  const list = await runApp.listEnvelopes(ctx, p.opts.contract as string | undefined);
  return {
    json: { envelopes: list },
    text: (paint) =>
      list.length === 0
        ? 'no envelopes yet'
        : table(
            list.map((e) => [e.id, e.contract_id, e.run_id, e.status, `$${e.max_cost_usd}`, String(e.max_agents), e.created_at]),
            ['ID', 'CONTRACT', 'RUN', 'STATUS', 'BUDGET', 'AGENTS', 'CREATED'],
            paint,
          ),
  };
}

export async function unlock(p: Parsed, ctx: Ctx): Promise<Output> {
  const r = await unlockApp(ctx, { id: p.args[0], index: p.opts.index === true, propose: p.opts.propose === true }, p.opts.force === true);
  const h = r.removed;
  const text = () =>
    h
      ? `Removed lock ${r.lock} of pid ${h.pid} on ${h.host} (actor ${h.actor}, command ${h.command}, since ${h.since})${r.contract ? `; recorded in the history of ${r.contract.id}` : ''}`
      : r.found
        ? `Removed lock ${r.lock} (it had no holder record)${r.contract ? `; recorded in the history of ${r.contract.id}` : ''}`
        : `Lock ${r.lock} is not held: nothing to remove`;
  return { json: { lock: r.lock, removed: h, ...(r.contract ? { contract: r.contract } : {}) }, text };
}
