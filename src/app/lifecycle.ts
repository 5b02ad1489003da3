/** Use cases of the §4 lifecycle commands (run/resume live in run.ts). */
import { DEFAULT_MAX_INPUT_BYTES, parseJsonInput, parsedOrNull } from '../domain/json-input.js';
import { quotedPath, readInputFile, readStdinText } from '../store/fs/input.js';
import { canonicalHash, canonicalJson, sha256Hex } from '../domain/canonical.js';
import type { Contract, EventDraft, HistoryEvent } from '../domain/contract.js';
import type { DpcAddition } from '../domain/dpc.js';
import { applyDpc, foldDpcStates, newDpc, resolveAddition } from '../domain/dpc.js';
import { kairError } from '../domain/errors.js';
import { assertId, isValidId, slugify } from '../domain/ids.js';
import {
  checkControls,
  decideAccept,
  decideApprove,
  decideGrant,
  decidePause,
  decidePlan,
  decidePropose,
  decideRequestApproval,
  decideRequire,
  decideReview,
  decideRewind,
} from '../domain/lifecycle.js';
import type { Plan } from '../domain/plan.js';
import { jsonText } from '../domain/chain.js';
import { writeText } from '../store/fs/contract-writes.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Boundary } from '../store/port.js';
import type { Ctx } from './context.js';
import { readContract } from './read.js';
import type { SigningKey } from './signatures.js';
import { readAllowedSigners, resolveSigningKey, signApproval, signedApprovers, verifiedApprovers } from './signatures.js';
import type { Decision } from './mutate.js';
import { mutate } from './mutate.js';
import type { Dpc } from '../domain/dpc.js';

export interface ContractResult {
  contract: Contract;
}

// ---- DPC helpers: the event records the addition and the sha of the new file; the file is
// derived from history and written once the event is durable.

export async function readDpc(ctx: Ctx, c: Contract): Promise<Dpc> {
  const text = await (await ctx.storage()).contracts.dpc(c.id);
  let dpc: Dpc | null = null;
  try {
    dpc = text === null ? null : (JSON.parse(text) as Dpc);
  } catch {
    // unreadable: shown as a fresh one, as a missing file is (verify reports it)
  }
  return dpc ?? newDpc(c.intent, c.created_at);
}

/**
 * The DPC as history has it, and how the file on disk relates to it: `current`, `behind` (an
 * earlier state: a kill after the event, before the file) or `foreign` (content history never
 * had). Histories written before dpc events carried `dpc_sha256` may have timestamps that differ
 * from the file by a millisecond; their files count as behind, never foreign.
 */
export async function dpcFromHistory(ctx: Ctx, id: string): Promise<{ dpc: Dpc; file: DpcFileStatus }> {
  const store = (await ctx.storage()).contracts;
  const events = (await store.history(id)).map((s) => s.event);
  return dpcFileStatus(events, await store.dpc(id))!;
}

export type DpcFileStatus = 'current' | 'behind' | 'foreign' | 'missing';

/** How a DPC file's text relates to the DPC these events fold to (null: they hold no DPC). */
export function dpcFileStatus(events: HistoryEvent[], text: string | null): { dpc: Dpc; file: DpcFileStatus } | null {
  const states = foldDpcStates(events);
  const dpc = states[states.length - 1];
  if (!dpc) return null;
  if (text === null) return { dpc, file: 'missing' };
  if (text === jsonText(dpc)) return { dpc, file: 'current' };
  const legacy = events.some((e) => e.type === 'dpc' && typeof e.data.dpc_sha256 !== 'string');
  return { dpc, file: legacy || states.some((s) => jsonText(s) === text) ? 'behind' : 'foreign' };
}

export async function dpcChange(ctx: Ctx, c: Contract, add: DpcAddition): Promise<{ draft: EventDraft; write: (b: Boundary) => Promise<void> }> {
  const found = await dpcFromHistory(ctx, c.id);
  if (found.file === 'foreign') {
    throw kairError('INTEGRITY_FAILED', `${c.id}: dpc/dpc_v1.json differs from every state its history recorded; nothing was written; run \`kair verify ${c.id}\``, { contract_id: c.id, kind: 'dpc_mismatch' });
  }
  const added = resolveAddition(found.dpc, add);
  const at = ctx.now();
  const text = jsonText(applyDpc(found.dpc, added, at));
  return {
    draft: { type: 'dpc', state: c.state, data: { added, at, dpc_sha256: sha256Hex(text) } },
    // Derived from the event that records its sha (the store writes it after the commit point).
    write: (b) => b.putDpc(text),
  };
}

/** A decision whose state-changing event is followed by a DPC event in the same append. */
async function withDpc<T>(ctx: Ctx, c: Contract, draft: EventDraft, add: DpcAddition, result?: T): Promise<Decision<T>> {
  const change = await dpcChange(ctx, { ...c, state: draft.state }, add);
  return { drafts: [draft, change.draft], result, after: (_c, _e, b) => change.write(b) };
}

// ---- propose

export async function propose(ctx: Ctx, intent: string, opts: { id?: string; requires?: string[] }): Promise<ContractResult> {
  if (!intent.trim()) throw kairError('USAGE_ERROR', 'propose needs a non-empty intent', { argument: 'intent' });
  if (opts.id !== undefined) assertId(opts.id);
  const requires = opts.requires?.length ? opts.requires : [];
  checkControls(requires, null);
  void ctx.ws; // no workspace (exit 4) before a bad config
  checkControls(requires, ctx.config.controls.registry);
  const at = ctx.now();
  const store = (await ctx.storage()).contracts;
  const base = slugify(intent);
  const created = await store.create({
    // Without --id the slug is chosen where two proposes never pick the same one.
    id: opts.id ?? (async (taken) => {
      for (let n = 1; ; n++) {
        const cand = n === 1 ? base : `${base}-${n}`;
        if (isValidId(cand) && !(await taken(cand))) return cand;
      }
    }),
    drafts: (id) => [decidePropose(id, intent, [...new Set(requires)].sort())],
    dpcText: jsonText(newDpc(intent, at)),
    lockTimeoutMs: ctx.lockTimeoutMs,
    warn: (m) => ctx.warn(m),
    meta: { at, actor: ctx.actor(), command: ctx.command },
  });
  return { contract: created.contract };
}

// ---- plan

export type PlanSource = { kind: 'file'; path: string } | { kind: 'inline'; text: string } | { kind: 'stdin' };

/** The plan's JSON from one source, within `limit` bytes; stdin is read asynchronously (see store/fs/input.ts). */
export async function readPlanSource(src: PlanSource, limit = DEFAULT_MAX_INPUT_BYTES): Promise<unknown> {
  const where = src.kind === 'file' ? quotedPath(src.path) : src.kind === 'inline' ? '--plan-json' : 'stdin';
  const tooLarge = (max: number) =>
    kairError('PLAN_INVALID', `${where}: larger than ${max} bytes (limits.max_input_bytes)`, { problems: [{ path: '(root)', message: `larger than ${max} bytes` }] });
  let text: string;
  if (src.kind === 'file') text = readInputFile(src.path, { flag: '--file', limit, tooLarge });
  else if (src.kind === 'inline') text = src.text;
  else text = await readStdinText(limit, tooLarge);
  if (Buffer.byteLength(text) > limit) throw tooLarge(limit);
  const parsed = parseJsonInput(text);
  if (!parsed.ok) {
    throw kairError('PLAN_INVALID', `${where}: ${parsed.message}`, { problems: [{ path: '(root)', message: parsed.message }] });
  }
  return parsed.value;
}

/** What a generated plan adds to `planContract`: the tail it was asked on, the DPC evidence of the call, the event's record of it, a file kept before the event. */
export interface PlanExtras {
  expectTail?: { seq: number; hash: string };
  evidence?: NonNullable<DpcAddition['evidence']>;
  eventData?: Record<string, unknown>;
  beforeEvent?: (b: Boundary) => Promise<void>;
}

export async function planContract(ctx: Ctx, id: string, given: unknown, validate: (v: unknown) => { plan?: Plan; problems: { path: string; message: string }[] }, extras: PlanExtras = {}): Promise<ContractResult & { plan_sha256: string }> {
  assertId(id);
  const { plan, problems } = validate(given);
  if (!plan) {
    const head = problems.slice(0, 5).map((p) => `${p.path}: ${p.message}`).join('; ');
    throw kairError('PLAN_INVALID', `the plan has ${problems.length} problem(s): ${head}${problems.length > 5 ? '; …' : ''}`, { problems });
  }
  // `$schema` (an editor's pointer to docs/schemas/plan.json) is not part of the plan: it is
  // neither hashed nor kept, so adding it changes no sha and voids no approval.
  const input = withoutSchemaKey(given);
  const sha = canonicalHash(input);
  const r = await mutate(ctx, id, 'plan', async (c, b) => {
    const decided = decidePlan(c, { sha, title: plan.title, steps: plan.steps.length });
    const draft = extras.eventData ? { ...decided, data: { ...decided.data, ...extras.eventData } } : decided;
    await extras.beforeEvent?.(b);
    // Kept by sha before the event names it (a kill here leaves an orphan no event names), with
    // the current plan's display copy (the store orders the copy: see Boundary.putPlan).
    await b.putPlan(sha, canonicalJson(input) + '\n', JSON.stringify(input, null, 2) + '\n');
    return withDpc(ctx, c, draft, { evidence: [...(extras.evidence ?? []), { kind: 'plan', ref: rel(ctx.ws, paths.plan(ctx.ws, id)), note: `sha256 ${sha}` }] });
  }, extras.expectTail ? { expectTail: extras.expectTail } : {});
  return { contract: r.contract, plan_sha256: sha };
}

function withoutSchemaKey(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, '$schema')) return v;
  const { $schema: _schema, ...rest } = v as Record<string, unknown>;
  return rest;
}

/** Renders PLAN.md for the plan on disk (kept out of planContract so zod-free paths can call it). */
export async function writePlanMarkdown(ctx: Ctx, id: string, markdown: string): Promise<void> {
  // A rendering of plan_v1.json for people beside it: nothing reads it back or records its
  // hash, so it is a local file only (a shared backend has no folder to put it beside).
  if ((await ctx.storage()).kind !== 'local') return;
  writeText(paths.planMd(ctx.ws, id), markdown, { derived: true });
}

/**
 * The plan on disk and the sha256 of its canonical form; both null when it is missing or
 * unparsable (which counts as stale). One read, so a caller runs the plan whose hash it checked.
 */
export async function readDiskPlan(ctx: Ctx, id: string): Promise<{ plan: unknown; sha256: string | null }> {
  const store = (await ctx.storage()).contracts;
  const plan = parsedOrNull(await store.currentPlan(id));
  if (plan === null) return { plan, sha256: null };
  const sha = canonicalHash(plan);
  // The copy kept by sha must say the same (kept since plans are stored by sha; older ones have none).
  const kept = await store.plan(id, sha);
  if (kept !== null && canonicalHash(parsedOrNull(kept)) !== sha) return { plan: null, sha256: null };
  return { plan, sha256: sha };
}

export async function diskPlanSha(ctx: Ctx, id: string): Promise<string | null> {
  return (await readDiskPlan(ctx, id)).sha256;
}

// ---- controls

export async function requireControls(ctx: Ctx, id: string, controls: string[]): Promise<ContractResult> {
  assertId(id);
  checkControls(controls, null);
  const names = checkControls(controls, ctx.config.controls.registry);
  return { contract: (await mutate(ctx, id, 'require', (c) => ({ drafts: [decideRequire(c, names)] }))).contract };
}

export async function grantOrRevoke(ctx: Ctx, kind: 'grant' | 'revoke', id: string, controls: string[]): Promise<ContractResult> {
  assertId(id);
  const names = checkControls(controls, null);
  return { contract: (await mutate(ctx, id, kind, (c) => ({ drafts: [decideGrant(c, kind, names)] }))).contract };
}

// ---- approvals

export async function requestApproval(ctx: Ctx, id: string): Promise<ContractResult> {
  return { contract: (await mutate(ctx, id, 'request-approval', (c) => ({ drafts: [decideRequestApproval(c)] }))).contract };
}

async function proposerOf(ctx: Ctx, id: string): Promise<string> {
  const [first] = await (await ctx.storage()).contracts.history(id, { limit: 1 });
  return first!.event.actor;
}

export interface ApproveOptions {
  /** `--expect-sha`: refuse unless the current plan's sha starts with it. */
  expectSha?: string;
  /** `--sign`: sign the approval with an SSH key (docs/decisions/019). */
  sign?: boolean;
  /** `--key`: the key to sign with (default: git's user.signingKey). */
  key?: string;
}

export async function approve(ctx: Ctx, id: string, opts: ApproveOptions = {}): Promise<ContractResult & { recorded: boolean; signed: boolean }> {
  assertId(id);
  if (opts.key !== undefined && !opts.sign) throw kairError('USAGE_ERROR', '--key is only used with --sign', { flag: '--key', hint: `kair approve ${id} --sign --key PATH` });
  // The key is found before the lock (git is asked at most once); signing itself happens under
  // the lock, on the contract as it is when the approval is decided.
  let key: SigningKey | undefined;
  if (opts.sign) {
    if (!(await (await ctx.storage()).contracts.exists(id))) throw kairError('CONTRACT_NOT_FOUND', `no contract ${JSON.stringify(id)} in this workspace (see \`kair list\`)`, { contract_id: id });
    key = resolveSigningKey(ctx, opts.key);
  }
  const r = await mutate(ctx, id, 'approve', async (c) => {
    const actor = ctx.actor();
    const events = key ? (await (await ctx.storage()).contracts.history(id)).map((s) => s.event) : [];
    const draft = decideApprove(c, {
      actor,
      proposer: await proposerOf(ctx, id),
      diskPlanSha: await diskPlanSha(ctx, id),
      config: ctx.config,
      signing: key !== undefined,
      signedApprovers: key ? (ctx.config.approvals.require_signed ? verifiedApprovers(ctx, c, events).approvers : signedApprovers(c, events)) : [],
      ...(opts.expectSha !== undefined ? { expectSha: opts.expectSha } : {}),
    });
    if (!draft) return { drafts: [] };
    if (key) {
      const fields = { workspace_id: ctx.config.workspace_id, contract_id: c.id, version: c.version, plan_sha256: c.plan_sha256!, actor, at: ctx.now() };
      draft.data.signature = signApproval(ctx, key, fields, readAllowedSigners(ctx));
    }
    return { drafts: [draft] };
  });
  const recorded = r.events.find((e) => e.type === 'approve');
  return { contract: r.contract, recorded: recorded !== undefined, signed: recorded?.data.signature !== undefined };
}

// ---- pause / review / accept / rewind

export async function pause(ctx: Ctx, id: string): Promise<ContractResult> {
  return { contract: (await mutate(ctx, id, 'pause', (c) => ({ drafts: [decidePause(c, ctx.actor())] }))).contract };
}

export async function review(ctx: Ctx, id: string): Promise<ContractResult & { run_id: string | null }> {
  const r = await mutate(ctx, id, 'review', (c) => ({ drafts: [decideReview(c)] }));
  return { contract: r.contract, run_id: r.contract.runs[r.contract.runs.length - 1] ?? null };
}

export async function accept(ctx: Ctx, id: string): Promise<ContractResult> {
  return { contract: (await mutate(ctx, id, 'accept', (c) => ({ drafts: [decideAccept(c)] }))).contract };
}

export async function rewind(ctx: Ctx, id: string, reason: string, assertNotRunning: (c: Contract) => void): Promise<ContractResult> {
  assertId(id);
  if (!reason.trim()) throw kairError('USAGE_ERROR', 'rewind needs a reason: kair rewind <id> "<reason>"', { argument: 'reason' });
  const r = await mutate(ctx, id, 'rewind', (c) => {
    assertNotRunning(c);
    const draft = decideRewind(c, reason);
    return withDpc(ctx, c, draft, {
      decisions: [{ decision: `Rewind to version ${c.version + 1}: ${reason}`, rationale: `supersedes version ${c.version} (${c.state})`, supersedes_active: true }],
    });
  });
  return { contract: r.contract };
}

// ---- dpc

export async function dpcAdd(ctx: Ctx, id: string, add: DpcAddition): Promise<{ contract: Contract; dpc: Dpc; changed: boolean }> {
  assertId(id);
  const empty = !add.assumptions?.length && !add.constraints?.length && !add.decisions?.length && !add.open_questions?.length && !add.evidence?.length;
  if (empty) {
    const c = await readContract(ctx, id);
    return { contract: c, dpc: await readDpc(ctx, c), changed: false };
  }
  const r = await mutate(ctx, id, 'dpc', async (c) => {
    const change = await dpcChange(ctx, c, add);
    return { drafts: [change.draft], after: (_c, _e, b) => change.write(b) };
  });
  return { contract: r.contract, dpc: await readDpc(ctx, r.contract), changed: true };
}
