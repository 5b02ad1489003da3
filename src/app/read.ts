/** Read-only use cases: they never lock and never write (§14 Integrity). */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId, isValidId } from '../domain/ids.js';
import type { State } from '../domain/states.js';
import { STATES } from '../domain/states.js';
import type { IndexEntry } from '../store/fs/contracts.js';
import { assertContract, indexEntry, listContractIds, loadContract } from '../store/fs/contracts.js';
import { folderExists, readIndexMerged, readIndexPage } from '../store/fs/index-read.js';
import { readHistory, readHistoryTail } from '../store/fs/history.js';
import { runnerVerdict } from '../store/fs/pid.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';

export function readContract(ctx: Ctx, id: string): Contract {
  assertId(id);
  const ws = ctx.ws;
  void ctx.config;
  assertContract(ws, id);
  return loadContract(ws, id).contract;
}

/** The snapshot as shown: a runner that died is visible as `running.alive: false`. */
export type ContractView = Omit<Contract, 'running'> & { running?: NonNullable<Contract['running']> & { alive: boolean } };

export function statusView(c: Contract): ContractView {
  if (!c.running) return c as ContractView;
  return { ...c, running: { ...c.running, alive: runnerVerdict(c.running) !== 'dead' } };
}

export function status(ctx: Ctx, id: string) {
  return { contract: statusView(readContract(ctx, id)) };
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

export function list(ctx: Ctx, opts: ListOptions): ListResult {
  // `--state approved` means APPROVED: states are upper case, people type lower.
  if (opts.state !== undefined) opts = { ...opts, state: opts.state.toUpperCase() };
  if (opts.state !== undefined && !(STATES as readonly string[]).includes(opts.state)) {
    throw kairError('USAGE_ERROR', `--state ${opts.state}: expected one of ${STATES.join(', ')}`, { flag: '--state', value: opts.state });
  }
  if (opts.after !== undefined && !isValidId(opts.after)) {
    throw kairError('USAGE_ERROR', `--after expects a contract id (the next_after of the previous page), got ${JSON.stringify(opts.after.slice(0, 80))}`, { flag: '--after', hint: 'pass the id printed as next_after, e.g. `kair list --limit 50 --after c0049`' });
  }
  const ws = ctx.ws;
  void ctx.config;
  if (opts.limit !== undefined) {
    // A page reads the logs and the checkpoint lines it needs, never the whole index (decision 028).
    const page = readIndexPage(ws, { after: opts.after, limit: opts.limit, state: opts.state, exists: (id) => folderExists(ws, id) });
    if (page) return { contracts: page.entries.map(row), next_after: page.next };
  }
  const index = readIndexMerged(ws).entries;
  const byId = new Map<string, IndexEntry>(index.map((e) => [e.id, e]));
  // The contract folders are the truth; the index only saves loading each one. One readdir, not
  // a stat per entry: with 10,000 contracts the stats were most of `list`'s time.
  const folders = new Set(listContractIds(ws));
  for (const id of [...byId.keys()]) if (!folders.has(id)) byId.delete(id);
  // Contracts the index has not caught up with yet (an index deleted or edited by hand).
  for (const id of folders) {
    if (byId.has(id) || !existsSync(paths.history(ws, id))) continue;
    try {
      byId.set(id, indexEntry(loadContract(ws, id).contract));
    } catch {
      /* verify reports broken contracts */
    }
  }
  let rows = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (opts.state) rows = rows.filter((r) => r.state === (opts.state as State));
  if (opts.after !== undefined) rows = rows.filter((r) => r.id > opts.after!);
  if (opts.limit === undefined) return { contracts: rows.map(row) };
  const more = rows.length > opts.limit;
  rows = rows.slice(0, opts.limit);
  return { contracts: rows.map(row), next_after: more ? (rows.at(-1)?.id ?? null) : null };
}

function row(r: IndexEntry): IndexEntry {
  return { id: r.id, intent: r.intent, state: r.state, version: r.version, updated_at: r.updated_at };
}

export function history(ctx: Ctx, id: string, opts: { limit?: number }): { events: HistoryEvent[] } {
  const c = readContract(ctx, id);
  const file = paths.history(ctx.ws, id);
  if (opts.limit !== undefined) {
    const last = readHistoryTail(file, 1).events.at(-1)?.seq ?? c.history_seq;
    const from = Math.max(1, last - opts.limit + 1);
    return { events: opts.limit === 0 ? [] : readHistoryTail(file, from).events.slice(-opts.limit) };
  }
  return { events: readHistory(file).events };
}

export interface ArtifactEntry {
  kind: string;
  path: string;
}

export function artifacts(ctx: Ctx, id: string) {
  const c = readContract(ctx, id);
  const ws = ctx.ws;
  const out: ArtifactEntry[] = [];
  const add = (kind: string, p: string) => existsSync(p) && out.push({ kind, path: rel(ws, p) });
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
  let extra: string[] = [];
  try {
    extra = readdirSync(runs).filter((n) => !c.runs.includes(n) && !n.endsWith('.json'));
  } catch {
    /* no runs yet */
  }
  for (const n of extra) add('run:other', join(runs, n));
  return { contract_id: id, runs: c.runs, artifacts: out };
}
