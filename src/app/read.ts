/** Read-only use cases: they never lock and never write (§14 Integrity). */
import { join } from 'node:path';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId, isValidId } from '../domain/ids.js';
import { STATES } from '../domain/states.js';
import type { IndexEntry } from '../domain/chain.js';
import { runnerVerdict } from '../store/fs/pid.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';

export async function readContract(ctx: Ctx, id: string): Promise<Contract> {
  assertId(id);
  void ctx.ws;
  void ctx.config;
  return (await ctx.storage()).contracts.read(id);
}

/** The snapshot as shown: a runner that died is visible as `running.alive: false`. */
export type ContractView = Omit<Contract, 'running'> & { running?: NonNullable<Contract['running']> & { alive: boolean } };

export function statusView(c: Contract): ContractView {
  if (!c.running) return c as ContractView;
  return { ...c, running: { ...c.running, alive: runnerVerdict(c.running) !== 'dead' } };
}

export async function status(ctx: Ctx, id: string) {
  return { contract: statusView(await readContract(ctx, id)) };
}

export interface ListOptions {
  state?: string;
  /** At most this many contracts, with `next_after` naming the cursor of the next page. */
  limit?: number;
  /** Only contracts whose id sorts after this one (the `next_after` of the previous page). */
  after?: string;
}

export type ListResult = {
  contracts: IndexEntry[];
  next_after?: string | null;
};

export async function list(ctx: Ctx, opts: ListOptions): Promise<ListResult> {
  // `--state approved` means APPROVED: states are upper case, people type lower.
  if (opts.state !== undefined) opts = { ...opts, state: opts.state.toUpperCase() };
  if (opts.state !== undefined && !(STATES as readonly string[]).includes(opts.state)) {
    throw kairError('USAGE_ERROR', `--state ${opts.state}: expected one of ${STATES.join(', ')}`, { flag: '--state', value: opts.state });
  }
  if (opts.after !== undefined && !isValidId(opts.after)) {
    throw kairError('USAGE_ERROR', `--after expects a contract id (the next_after of the previous page), got ${JSON.stringify(opts.after.slice(0, 80))}`, { flag: '--after', hint: 'pass the id printed as next_after, e.g. `kair list --limit 50 --after c0049`' });
  }
  void ctx.ws;
  void ctx.config;
  const store = (await ctx.storage()).contracts;
  const page = { ...(opts.state !== undefined ? { state: opts.state } : {}), ...(opts.after !== undefined ? { after: opts.after } : {}) };
  if (opts.limit === undefined) return { contracts: (await store.listIndex(page)).map(row) };
  // One more than the page: whether there is a next page, without a second read.
  const rows = await store.listIndex({ ...page, limit: opts.limit + 1 });
  const more = rows.length > opts.limit;
  const shown = rows.slice(0, opts.limit);
  return { contracts: shown.map(row), next_after: more ? (shown.at(-1)?.id ?? null) : null };
}

function row(r: IndexEntry): IndexEntry {
  return { id: r.id, intent: r.intent, state: r.state, version: r.version, updated_at: r.updated_at };
}

export async function history(ctx: Ctx, id: string, opts: { limit?: number }): Promise<{ events: HistoryEvent[] }> {
  await readContract(ctx, id);
  const store = (await ctx.storage()).contracts;
  const stored = opts.limit !== undefined ? await store.historyTail(id, opts.limit) : await store.history(id);
  return { events: stored.map((s) => s.event) };
}

export interface ArtifactEntry {
  kind: string;
  path: string;
}

export async function artifacts(ctx: Ctx, id: string) {
  const c = await readContract(ctx, id);
  const ws = ctx.ws;
  // What the store holds under the contract, by workspace-relative path.
  const held = new Set(await (await ctx.storage()).contracts.artifacts(`${rel(ws, paths.contract(ws, id))}/`));
  const out: ArtifactEntry[] = [];
  const add = (kind: string, p: string) => held.has(rel(ws, p)) && out.push({ kind, path: rel(ws, p) });
  add('snapshot', paths.snapshot(ws, id));
  add('history', paths.history(ws, id));
  add('plan', paths.plan(ws, id));
  add('plan_md', paths.planMd(ws, id));
  add('dpc', paths.dpc(ws, id));
  const runs = paths.runs(ws, id);
  add('run_request', join(runs, 'run-request.json'));
  add('run_result', join(runs, 'run-result.json'));
  for (const runId of c.runs) {
    add(`run:${runId}:request`, join(runs, runId, 'run-request.json'));
    add(`run:${runId}:result`, join(runs, runId, 'run-result.json'));
  }
  // Run folders history does not name (a run whose start was never recorded).
  const prefix = `${rel(ws, runs)}/`;
  const extra = new Set<string>();
  for (const p of held) {
    if (!p.startsWith(prefix)) continue;
    const first = p.slice(prefix.length).split('/');
    if (first.length > 1 && !c.runs.includes(first[0]!) && !first[0]!.endsWith('.json')) extra.add(first[0]!);
  }
  for (const n of [...extra].sort()) out.push({ kind: 'run:other', path: rel(ws, join(runs, n)) });
  return { contract_id: id, runs: c.runs, artifacts: out };
}
