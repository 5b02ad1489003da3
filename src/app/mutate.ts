/**
 * The one path by which a lifecycle command changes a contract: lock → load from history (with
 * repairs) → decide → the commit point (fenced append) → derived files (snapshot, DPC, index…).
 * A gate refusal (exit 3) is itself recorded as one `gate.blocked` event before it is rethrown.
 *
 * The history append is the commit point. Everything after it is derived and repaired by the
 * next writer, so its failure never changes the command's outcome: it becomes a warning.
 */
import type { Contract, EventDraft, HistoryEvent } from '../domain/contract.js';
import { exitCodeOf, isKairError, kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { gateBlocked } from '../domain/lifecycle.js';
import { assertContract, indexEntry, readJsonFile } from '../store/fs/contracts.js';
import { appendToHistory, compactIndex, updateIndex, writeSnapshot } from '../store/fs/contract-writes.js';
import { truncateTorn } from '../store/fs/history.js';
import { INDEX_LOCK, acquireLock, contractLock, sleepMs } from '../store/fs/lock.js';
import { runnerVerdict } from '../store/fs/pid.js';
import { listDir, sweepTemps } from '../store/fs/temp.js';
import type { SnapshotStatus } from '../store/fs/writer-load.js';
import { loadForWrite } from '../store/fs/writer-load.js';
import { cancelOpenEnvelopes } from '../lanes/kimi/recovery.js';
import { hasExecutionStore, withExecution } from './db.js';
import { paths } from '../store/fs/workspace.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalHash } from '../domain/canonical.js';
import { writeFileAtomicSync } from '../store/fs/atomic.js';
import type { Ctx } from './context.js';

export interface Decision<T> {
  drafts: EventDraft[];
  result?: T;
  /** Runs after the events are durable (e.g. writing derived files such as the DPC). */
  after?: (c: Contract, events: HistoryEvent[]) => void;
}

export interface MutateOptions {
  /**
   * This command appends again under a later mutate (a run's start and step boundaries, a
   * rollback's start): history is the commit log, and the snapshot and the index entry are
   * checkpoints written once, after the command's last append (decision 029). Until then a
   * reader rolls the snapshot forward from history; a kill in between leaves them behind, which
   * the next writer repairs and `verify` reports as a warning. Saves a snapshot and an index
   * write (two fsyncs, an index lock) per boundary.
   */
  checkpointsLater?: boolean;
  /**
   * The history tail the command decided on before it took the lock (a plan provider is asked
   * outside the lock): anything appended since is CONCURRENT_WRITE, reported at once (deciding
   * again would commit an answer given for another state).
   */
  expectTail?: { seq: number; hash: string };
}

export interface Mutated<T> {
  contract: Contract;
  events: HistoryEvent[];
  result: T | undefined;
}

export function lockWho(ctx: Ctx) {
  return { actor: ctx.actor(), command: ctx.command, now: ctx.now };
}

/** Repairs found under the lock: a torn last line, a RUNNING contract whose runner died. */
async function repairs(ctx: Ctx, c: Contract, tornBytes: number): Promise<EventDraft[]> {
  const drafts: EventDraft[] = [];
  if (tornBytes > 0) {
    truncateTorn(paths.history(ctx.ws, c.id), tornBytes);
    drafts.push({ type: 'recovery', state: c.state, data: { kind: 'torn_line', bytes: tornBytes } });
  }
  if (c.running && runnerVerdict(c.running) === 'dead') {
    const state = 'PAUSED';
    const pause = c.state === 'PAUSED' && c.pause ? c.pause : { requested_by: ctx.actor(), reason: 'CRASHED', step_id: c.running.step_id };
    // SQLite first, then the event that reports it (SPEC §14 Integrity).
    const runId = c.running.run_id;
    const cancelled = hasExecutionStore(ctx) ? await withExecution(ctx, (store) => cancelOpenEnvelopes(store, runId, ctx.now())) : { ids: [], rows: [] };
    drafts.push({ type: 'recovery', state, data: { kind: 'crashed_run', run_id: c.running.run_id, pid: c.running.pid, pause, cancelled_envelopes: cancelled.ids, ...(cancelled.rows.length ? { rows: cancelled.rows } : {}) } });
  }
  return drafts;
}

/** Contracts whose folders this process has swept of temp files (once per command is enough). */
const swept = new Set<string>();

/**
 * Temp files a killed writer left in the contract's folders. Only holders of this contract's
 * lock write there, and we hold it, so their writers are dead. A run's older folders were the
 * latest when their last writer died and were swept by the next one.
 */
function sweepContract(ctx: Ctx, c: Contract): void {
  if (swept.has(c.id)) return;
  swept.add(c.id);
  const ws = ctx.ws;
  const dir = paths.contract(ws, c.id);
  const runs = paths.runs(ws, c.id);
  const latestRun = c.runs[c.runs.length - 1];
  // The next run's folder too: a run killed before run.started leaves its request's temp there.
  const nextRun = `${c.id}-run-${c.runs.length + 1}`;
  sweepTemps([dir, join(dir, 'plan'), join(dir, 'dpc'), paths.checkpoints(ws, c.id), runs, ...(latestRun ? [join(runs, latestRun)] : []), join(runs, nextRun)]);
  derived(ctx, `plan/plan_v1.json of ${c.id}`, () => repairPlanCopy(ctx, c));
  assertNoLostRuns(c, runs);
}

/**
 * A run folder holding results of a run that history does not know means events were cut off
 * the history: a writer would reuse that run id and launder the loss. (A folder with only a
 * run-request.json is a run whose start was never recorded: the next run reuses it.)
 */
function assertNoLostRuns(c: Contract, runs: string): void {
  let folders: string[];
  try {
    folders = readdirSync(runs);
  } catch {
    return;
  }
  const known = new Set(c.runs);
  for (const f of folders) {
    if (known.has(f) || f.endsWith('.json')) continue;
    let files: string[];
    try {
      files = readdirSync(join(runs, f));
    } catch {
      continue;
    }
    if (files.some((n) => /^run-result(\.\d+)?\.json$/.test(n))) {
      throw kairError('INTEGRITY_FAILED', `${c.id}: artifacts/run/${f} holds run results but history has no run ${f} (history truncated); nothing was written; run \`kair verify ${c.id}\``, { contract_id: c.id, kind: 'history_truncated' });
    }
  }
}

/**
 * plan_v1.json left behind by a kill between the `plan` event and its copy (missing, or an
 * earlier plan that was kept by sha) is rewritten from the copy kept by sha. Any other content
 * is left for `verify` to report, and `run` refuses it as stale.
 */
function repairPlanCopy(ctx: Ctx, c: Contract): void {
  if (!c.plan_sha256) return;
  const current = readJsonFile<unknown>(paths.plan(ctx.ws, c.id));
  const sha = current === null ? null : canonicalHash(current);
  if (sha === c.plan_sha256) return;
  if (current === null || !existsSync(paths.planBySha(ctx.ws, c.id, sha!))) return;
  const kept = readJsonFile<unknown>(paths.planBySha(ctx.ws, c.id, c.plan_sha256));
  if (kept === null || canonicalHash(kept) !== c.plan_sha256) return;
  writeFileAtomicSync(paths.plan(ctx.ws, c.id), JSON.stringify(kept, null, 2) + '\n', { derived: true });
}

/** Runs a derived write after the commit point: a failure is reported, never the outcome. */
export function derived(ctx: Ctx, what: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    const why = isKairError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
    ctx.warn(`${what} was not updated (${why}); the next command repairs it`);
  }
}

function writeSnapshotIfOurs(ctx: Ctx, c: Contract, status: SnapshotStatus): void {
  if (status === 'foreign') {
    // Content history never had is evidence: never overwritten (delete it to have it rebuilt).
    ctx.warn(`contract.json of ${c.id} differs from its history and was left as it is; \`kair verify ${c.id}\` reports it, and deleting it lets kair rebuild it`);
    return;
  }
  derived(ctx, `contract.json of ${c.id}`, () => writeSnapshot(ctx.ws, c));
}

export async function mutate<T>(ctx: Ctx, id: string, command: string, decide: (c: Contract) => Decision<T> | Promise<Decision<T>>, opts: MutateOptions = {}): Promise<Mutated<T>> {
  assertId(id);
  void ctx.config; // an invalid config fails the command before anything else is touched
  assertContract(ctx.ws, id);
  const deadline = Date.now() + ctx.lockTimeoutMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      return await mutateOnce(ctx, id, command, decide, opts);
    } catch (e) {
      // Another writer appended first: decide again on the new state, until --lock-timeout.
      if (!isKairError(e) || e.code !== 'CONCURRENT_WRITE' || Date.now() >= deadline || opts.expectTail) throw e;
      sleepMs(wait + Math.floor(Math.random() * 5));
    }
  }
}

async function mutateOnce<T>(ctx: Ctx, id: string, command: string, decide: (c: Contract) => Decision<T> | Promise<Decision<T>>, opts: MutateOptions): Promise<Mutated<T>> {
  const ws = ctx.ws;
  const lock = acquireLock(paths.locks(ws), contractLock(id), lockWho(ctx), ctx.lockTimeoutMs);
  try {
    const loaded = loadForWrite(ws, id);
    const tail = opts.expectTail;
    if (tail && (loaded.contract.history_seq !== tail.seq || loaded.contract.history_head !== tail.hash)) {
      throw kairError('CONCURRENT_WRITE', `${id} changed while this command was preparing its change (event ${loaded.contract.history_seq} was recorded after event ${tail.seq}); nothing was written`, {
        contract_id: id,
        expected_seq: tail.seq,
        found_seq: loaded.contract.history_seq,
        hint: 'run the command again: it decides on the new state',
      });
    }
    sweepContract(ctx, loaded.contract);
    const meta = { at: ctx.now(), actor: ctx.actor() };
    let c = loaded.contract;
    const allEvents: HistoryEvent[] = [];
    const commit = (drafts: EventDraft[]) => {
      const r = appendToHistory(ws, c, drafts, meta);
      c = r.contract;
      allEvents.push(...r.events);
      return r.events;
    };
    commit(await repairs(ctx, c, loaded.tornBytes));
    let decision: Decision<T>;
    try {
      decision = await decide(c);
    } catch (e) {
      if (isKairError(e) && exitCodeOf(e.code) === 3) commit([gateBlocked(c, command, e.code, e.message)]);
      if (allEvents.length || loaded.snapshot === 'behind' || loaded.snapshot === 'missing') {
        writeSnapshotIfOurs(ctx, c, loaded.snapshot);
        if (allEvents.length) finishIndex(ctx, c);
      }
      throw e;
    }
    const events = commit(decision.drafts);
    // The commit point is passed: nothing below may change the outcome.
    if (decision.after) derived(ctx, 'a derived file', () => decision.after!(c, events));
    if (opts.checkpointsLater) return { contract: c, events: allEvents, result: decision.result };
    if (allEvents.length || loaded.snapshot !== 'current') writeSnapshotIfOurs(ctx, c, loaded.snapshot);
    // Nothing recorded (a repeat approve): the index is already right.
    if (allEvents.length > 0) finishIndex(ctx, c);
    else tidyIndex(ctx);
    return { contract: c, events: allEvents, result: decision.result };
  } finally {
    try {
      lock.release();
    } catch (e) {
      ctx.warn(`the lock of ${id} could not be released (${(e as Error).message}); the next command recovers it`);
    }
  }
}

/**
 * A command that recorded nothing writes no index, so it would never meet what a killed index
 * writer left (a staged temp file, a lock folder of a dead holder). When there is such a thing,
 * it takes the index lock briefly (never waiting on a live holder) and compacts the index, which
 * recovers the lock and sweeps the staging folder.
 */
function tidyIndex(ctx: Ctx): void {
  if (listDir(paths.staging(ctx.ws)).length === 0 && !existsSync(`${paths.locks(ctx.ws)}/${INDEX_LOCK}.lock`)) return;
  compactIndex(ctx.ws, lockWho(ctx)); // never waits; busy or failing, the next index writer does it
}

/** The index entry after a commit: a cache, so a busy or failed index update is only a warning. */
export function finishIndex(ctx: Ctx, c: Contract): void {
  derived(ctx, `the index entry of ${c.id}`, () => updateIndex(ctx.ws, lockWho(ctx), ctx.lockTimeoutMs, [indexEntry(c)]));
}
