/** Use cases of the §4 lifecycle commands (run/resume live in run.ts). */
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_MAX_INPUT_BYTES, parseJsonInput } from '../domain/json-input.js';
import { quotedPath, readInputFile, readStdinText } from '../store/fs/input.js';
import { canonicalHash, canonicalJson, sha256Hex } from '../domain/canonical.js';
import type { Contract, EventDraft, HistoryEvent } from '../domain/contract.js';
import type { DpcAddition } from '../domain/dpc.js';
import { applyDpc, foldDpcStates, newDpc, resolveAddition } from '../domain/dpc.js';
import { kairError } from '../domain/errors.js';
import { assertId, isValidId, slugify, uniqueSlug } from '../domain/ids.js';
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
import { assertContract, contractExists, indexEntry, readJsonFile, readTextFile } from '../store/fs/contracts.js';
import { appendPendingEntry, createContract, settleIndex, updateIndex, writeText } from '../store/fs/contract-writes.js';
import { fsyncDir, jsonText, writeFileAtomicSync } from '../store/fs/atomic.js';
import { readHistory } from '../store/fs/history.js';
import { PROPOSE_LOCK, contractLock, withLock } from '../store/fs/lock.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';
import { readContract } from './read.js';
import type { SigningKey } from './signatures.js';
import { readAllowedSigners, resolveSigningKey, signApproval, signedApprovers, verifiedApprovers } from './signatures.js';
import type { Decision } from './mutate.js';
import { derived, lockWho, mutate } from './mutate.js';
import type { Dpc } from '../domain/dpc.js';

export interface ContractResult {
  contract: Contract;
}

// ---- DPC helpers: the event records the addition and the sha of the new file; the file is
// derived from history and written once the event is durable.

export function readDpc(ctx: Ctx, c: Contract): Dpc {
  return readJsonFile<Dpc>(paths.dpc(ctx.ws, c.id)) ?? newDpc(c.intent, c.created_at);
}

/**
 * The DPC as history has it, and how the file on disk relates to it: `current`, `behind` (an
 * earlier state: a kill after the event, before the file) or `foreign` (content history never
 * had). Histories written before dpc events carried `dpc_sha256` may have timestamps that differ
 * from the file by a millisecond; their files count as behind, never foreign.
 */
export function dpcFromHistory(ctx: Ctx, id: string): { dpc: Dpc; file: DpcFileStatus } {
  return dpcFileStatus(readHistory(paths.history(ctx.ws, id)).events, readTextFile(paths.dpc(ctx.ws, id)))!;
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

export function dpcChange(ctx: Ctx, c: Contract, add: DpcAddition): { draft: EventDraft; write: () => void } {
  const found = dpcFromHistory(ctx, c.id);
  if (found.file === 'foreign') {
    throw kairError('INTEGRITY_FAILED', `${c.id}: dpc/dpc_v1.json differs from every state its history recorded; nothing was written; run \`kair verify ${c.id}\``, { contract_id: c.id, kind: 'dpc_mismatch' });
  }
  const added = resolveAddition(found.dpc, add);
  const at = ctx.now();
  const text = jsonText(applyDpc(found.dpc, added, at));
  return {
    draft: { type: 'dpc', state: c.state, data: { added, at, dpc_sha256: sha256Hex(text) } },
    // Derived from the event that records its sha: a power cut that loses the rename brings back
    // the previous DPC, a state history recorded (behind), which the next DPC change rewrites.
    write: () => writeFileAtomicSync(paths.dpc(ctx.ws, c.id), text, { derived: true }),
  };
}

/** A decision whose state-changing event is followed by a DPC event in the same append. */
function withDpc<T>(ctx: Ctx, c: Contract, draft: EventDraft, add: DpcAddition, result?: T): Decision<T> {
  const change = dpcChange(ctx, { ...c, state: draft.state }, add);
  return { drafts: [draft, change.draft], result, after: () => change.write() };
}

// ---- propose

export function propose(ctx: Ctx, intent: string, opts: { id?: string; requires?: string[] }): ContractResult {
  if (!intent.trim()) throw kairError('USAGE_ERROR', 'propose needs a non-empty intent', { argument: 'intent' });
  if (opts.id !== undefined) assertId(opts.id);
  const requires = opts.requires?.length ? opts.requires : [];
  checkControls(requires, null);
  const ws = ctx.ws;
  checkControls(requires, ctx.config.controls.registry);
  const at = ctx.now();
  const actor = ctx.actor();
  const locks = paths.locks(ws);
  // The index entry goes in before the folder is renamed into place, marked pending (decision
  // 028): a propose killed after its rename is still listed, one killed before is not.
  let pendingWritten = false;
  const create = (id: string) => {
    const dpc = newDpc(intent, at);
    const draft = decidePropose(id, intent, [...new Set(requires)].sort());
    return createContract(ws, id, draft, { at, actor }, dpc, null, (c) => {
      try {
        appendPendingEntry(ws, c);
        pendingWritten = true;
      } catch {
        // derived: written again after the rename below
      }
    });
  };
  let created;
  if (opts.id) {
    const id = opts.id;
    created = withLock(locks, contractLock(id), lockWho(ctx), ctx.lockTimeoutMs, () => create(id));
  } else {
    // The slug is chosen and created under the index lock so two proposes never pick the same one.
    created = withLock(locks, PROPOSE_LOCK, lockWho(ctx), ctx.lockTimeoutMs, () => {
      const id = uniqueSlug(slugify(intent), (cand) => !isValidId(cand) || contractExists(ws, cand));
      return create(id);
    });
  }
  const c = created.contract;
  derived(ctx, `the index entry of ${c.id}`, () => (pendingWritten ? settleIndex(ws, lockWho(ctx)) : updateIndex(ws, lockWho(ctx), ctx.lockTimeoutMs, [indexEntry(c)])));
  return { contract: c };
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
  beforeEvent?: () => void;
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
  const r = await mutate(ctx, id, 'plan', (c) => {
    const decided = decidePlan(c, { sha, title: plan.title, steps: plan.steps.length });
    const draft = extras.eventData ? { ...decided, data: { ...decided.data, ...extras.eventData } } : decided;
    extras.beforeEvent?.();
    // Kept by sha before the event names it (a kill here leaves an orphan no event names);
    // plan_v1.json is the current plan's derived copy, written once the event is durable.
    // Both names live in plan/: one fsync of the folder, before the event, makes both durable.
    writeText(paths.planBySha(ctx.ws, id, sha), canonicalJson(input) + '\n', { derived: true });
    const writeCopy = () => writeText(paths.plan(ctx.ws, id), JSON.stringify(input, null, 2) + '\n', { derived: true });
    // A first plan's copy may go first (no event names a plan yet, so it is an orphan until
    // then), which makes a missing plan_v1.json always a tamper, never a kill. A later plan's
    // copy is derived (repaired from plan/<sha>.json by the next writer).
    if (c.plan_sha256 === null) writeCopy();
    fsyncDir(`${paths.contract(ctx.ws, id)}/plan`);
    const dpc = withDpc(ctx, c, draft, { evidence: [...(extras.evidence ?? []), { kind: 'plan', ref: rel(ctx.ws, paths.plan(ctx.ws, id)), note: `sha256 ${sha}` }] });
    return {
      ...dpc,
      after: (next, events) => {
        if (c.plan_sha256 !== null) writeCopy();
        dpc.after?.(next, events);
      },
    };
  }, extras.expectTail ? { expectTail: extras.expectTail } : {});
  return { contract: r.contract, plan_sha256: sha };
}

function withoutSchemaKey(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, '$schema')) return v;
  const { $schema: _schema, ...rest } = v as Record<string, unknown>;
  return rest;
}

/** Renders PLAN.md for the plan on disk (kept out of planContract so zod-free paths can call it). */
export function writePlanMarkdown(ctx: Ctx, id: string, markdown: string): void {
  // A rendering of plan_v1.json for people: nothing reads it back or records its hash.
  writeText(paths.planMd(ctx.ws, id), markdown, { derived: true });
}

/**
 * The plan on disk and the sha256 of its canonical form; both null when it is missing or
 * unparsable (which counts as stale). One read, so a caller runs the plan whose hash it checked.
 */
export function readDiskPlan(ctx: Ctx, id: string): { plan: unknown; sha256: string | null } {
  const plan = readJsonFile<unknown>(paths.plan(ctx.ws, id));
  if (plan === null) return { plan, sha256: null };
  const sha = canonicalHash(plan);
  // The copy kept by sha must say the same (kept since plans are stored by sha; older ones have none).
  const kept = paths.planBySha(ctx.ws, id, sha);
  if (existsSync(kept) && canonicalHash(readJsonFile<unknown>(kept)) !== sha) return { plan: null, sha256: null };
  return { plan, sha256: sha };
}

export function diskPlanSha(ctx: Ctx, id: string): string | null {
  return readDiskPlan(ctx, id).sha256;
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

function proposerOf(ctx: Ctx, id: string): string {
  const text = readFileSync(paths.history(ctx.ws, id), 'utf8');
  const first = text.slice(0, text.indexOf('\n'));
  return (JSON.parse(first) as { actor: string }).actor;
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
    assertContract(ctx.ws, id);
    key = resolveSigningKey(ctx, opts.key);
  }
  const r = await mutate(ctx, id, 'approve', (c) => {
    const actor = ctx.actor();
    const events = key ? readHistory(paths.history(ctx.ws, id)).events : [];
    const draft = decideApprove(c, {
      actor,
      proposer: proposerOf(ctx, id),
      diskPlanSha: diskPlanSha(ctx, id),
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
    const c = readContract(ctx, id);
    return { contract: c, dpc: readDpc(ctx, c), changed: false };
  }
  const r = await mutate(ctx, id, 'dpc', (c) => {
    const change = dpcChange(ctx, c, add);
    return { drafts: [change.draft], after: () => change.write() };
  });
  return { contract: r.contract, dpc: readDpc(ctx, r.contract), changed: true };
}
