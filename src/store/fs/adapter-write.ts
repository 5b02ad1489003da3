/**
 * The writing half of the local contract store (adapter.ts has the reads): the one path by which
 * a contract changes on the local backend — lock → load from history (with repairs) → decide →
 * the commit point (fenced append) → derived files (snapshot, DPC, plan copy, index).
 *
 * The history append is the commit point. Everything after it is derived and repaired by the
 * next writer, so its failure never changes the command's outcome: it becomes a warning.
 */
import { retryConcurrentWrite } from '../retry.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalHash } from '../../domain/canonical.js';
import { checkChain, indexEntry } from '../../domain/chain.js';
import type { Contract, EventDraft, HistoryEvent } from '../../domain/contract.js';
import { exitCodeOf, isKairError, kairError } from '../../domain/errors.js';
import { assertId } from '../../domain/ids.js';
import type { Boundary, ChainIssue, CreateRequest, MutateRequest, Mutation, WriteMeta } from '../port.js';
import type { LocalStoreOptions, LocalWriteSide, LocalWritesFactory } from './adapter.js';
import { fsyncDir, writeFileAtomicSync } from './atomic.js';
import { assertContract, contractExists, readJsonFile } from './contracts.js';
import type { LockWho } from './contract-writes.js';
import { appendPendingEntry, appendToHistory, compactIndex, createContract, settleIndex, updateIndex, writeSnapshot } from './contract-writes.js';
import { readHistoryText, truncateTorn } from './history.js';
import { INDEX_LOCK, PROPOSE_LOCK, acquireLock, contractLock } from './lock.js';
import { runnerVerdict } from './pid.js';
import { listDir, sweepTemps } from './temp.js';
import type { SnapshotStatus } from './writer-load.js';
import { loadForWrite } from './writer-load.js';
import type { Workspace } from './workspace.js';
import { paths } from './workspace.js';

type Warn = (message: string) => void;

/** Runs a derived write after the commit point: a failure is reported, never the outcome. */
function derived(warn: Warn | undefined, what: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    const why = isKairError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
    warn?.(`${what} was not updated (${why}); the next command repairs it`);
  }
}


export const localWrites: LocalWritesFactory = (ws, o) => new LocalWriter(ws, o);

/**
 * A boundary on the local backend. What history derives (the DPC, a later plan's copy) waits
 * for the append that records it and is then written as derived; what an event names (a plan
 * kept by sha, a run artifact) is written durably at once, before the event.
 */
class LocalBoundary implements Boundary {
  readonly events: HistoryEvent[] = [];
  private pending: { what: string; fn: () => void }[] = [];
  private committed = false;

  constructor(
    private readonly ws: Workspace,
    public contract: Contract,
    private readonly meta: { at: string; actor: string },
    private readonly warn: Warn | undefined,
  ) {}

  async append(drafts: EventDraft[]): Promise<HistoryEvent[]> {
    const r = appendToHistory(this.ws, this.contract, drafts, this.meta);
    this.contract = r.contract;
    this.events.push(...r.events);
    if (r.events.length > 0) {
      this.committed = true;
      for (const w of this.pending.splice(0)) derived(this.warn, w.what, w.fn);
    }
    return r.events;
  }

  /** A derived write: after the commit point (now, if it is passed). */
  private later(what: string, fn: () => void): void {
    if (this.committed) derived(this.warn, what, fn);
    else this.pending.push({ what, fn });
  }

  /** A refused decision's derived writes are never made: nothing recorded them. */
  discardPending(): void {
    this.pending = [];
  }

  async putPlan(sha: string, text: string, copy?: string): Promise<void> {
    const id = this.contract.id;
    // Kept by sha before the event names it (a kill here leaves an orphan no event names);
    // plan_v1.json is the current plan's derived copy. Both names live in plan/: one fsync of
    // the folder, before the event, makes both durable.
    writeFileAtomicSync(paths.planBySha(this.ws, id, sha), text, { derived: true });
    if (copy !== undefined) {
      const write = () => writeFileAtomicSync(paths.plan(this.ws, id), copy, { derived: true });
      // A first plan's copy may go first (no event names a plan yet, so it is an orphan until
      // then), which makes a missing plan_v1.json always a tamper, never a kill. A later plan's
      // copy is derived (repaired from plan/<sha>.json by the next writer).
      if (this.contract.plan_sha256 === null && !this.committed) write();
      else this.later('a derived file', write);
    }
    fsyncDir(`${paths.contract(this.ws, id)}/plan`);
  }

  async putDpc(text: string): Promise<void> {
    // Derived from the event that records its sha: a power cut that loses the rename brings back
    // the previous DPC, a state history recorded (behind), which the next DPC change rewrites.
    this.later('a derived file', () => writeFileAtomicSync(paths.dpc(this.ws, this.contract.id), text, { derived: true }));
  }

  async putArtifact(path: string, text: string): Promise<void> {
    const prefix = `.kair/contracts/${this.contract.id}/`;
    if (!path.startsWith(prefix) || path.split('/').some((s) => s === '..' || s === '.')) {
      throw kairError('INTERNAL_ERROR', `artifact path ${JSON.stringify(path.slice(0, 80))} is outside contract ${this.contract.id}`, { contract_id: this.contract.id });
    }
    writeFileAtomicSync(join(this.ws.root, path), text);
  }
}

class LocalWriter implements LocalWriteSide {
  /** Contracts whose folders this store has swept of temp files (once per command is enough). */
  private readonly swept = new Set<string>();

  constructor(
    private readonly ws: Workspace,
    private readonly o: LocalStoreOptions,
  ) {}

  private who(meta: WriteMeta): LockWho {
    return { actor: meta.actor, command: meta.command, now: this.o.now };
  }

  async load(id: string): Promise<Contract> {
    assertId(id);
    assertContract(this.ws, id);
    return loadForWrite(this.ws, id).contract;
  }

  checkChain(id: string): ChainIssue[] {
    const read = readHistoryText(paths.history(this.ws, id));
    return [...read.badLines.map((n) => ({ seq: n, message: `line ${n} is not valid JSON` })), ...checkChain(read.events)];
  }

  async create(req: CreateRequest): Promise<{ contract: Contract; events: HistoryEvent[] }> {
    const ws = this.ws;
    const who = this.who(req.meta);
    const locks = paths.locks(ws);
    // The index entry goes in before the folder is renamed into place, marked pending (decision
    // 028): a create killed after its rename is still listed, one killed before is not.
    let pendingWritten = false;
    const make = (id: string) => {
      const drafts = req.drafts(id);
      if (drafts.length < 1 || drafts.length > 2) throw kairError('INTERNAL_ERROR', 'a local contract is created with its propose event and at most one more', { contract_id: id });
      return createContract(ws, id, drafts[0]!, { at: req.meta.at, actor: req.meta.actor }, req.dpcText, drafts[1] ?? null, (c) => {
        try {
          appendPendingEntry(ws, c);
          pendingWritten = true;
        } catch {
          // derived: written again after the rename below
        }
      });
    };
    // A given id is created under that contract's lock; a chosen one is chosen and created under
    // the propose lock, so two creators never pick the same.
    const pick = req.id;
    const lock = acquireLock(locks, typeof pick === 'string' ? contractLock(pick) : PROPOSE_LOCK, who, req.lockTimeoutMs);
    let created: { contract: Contract; events: HistoryEvent[] };
    try {
      created = make(typeof pick === 'string' ? pick : await pick(async (cand) => contractExists(ws, cand)));
    } finally {
      lock.release();
    }
    const c = created.contract;
    derived(req.warn, `the index entry of ${c.id}`, () => (pendingWritten ? settleIndex(ws, who) : updateIndex(ws, who, req.lockTimeoutMs, [indexEntry(c)])));
    return created;
  }

  async mutate<T>(id: string, req: MutateRequest<T>): Promise<Mutation<T>> {
    assertId(id);
    assertContract(this.ws, id);
    return retryConcurrentWrite(req, () => this.mutateOnce(id, req));
  }

  private async mutateOnce<T>(id: string, req: MutateRequest<T>): Promise<Mutation<T>> {
    const ws = this.ws;
    const who = this.who(req.meta);
    const lock = acquireLock(paths.locks(ws), contractLock(id), who, req.lockTimeoutMs);
    try {
      const loaded = loadForWrite(ws, id);
      const tail = req.expectTail;
      if (tail && (loaded.contract.history_seq !== tail.seq || loaded.contract.history_head !== tail.hash)) {
        throw kairError('CONCURRENT_WRITE', `${id} changed while this command was preparing its change (event ${loaded.contract.history_seq} was recorded after event ${tail.seq}); nothing was written`, {
          contract_id: id,
          expected_seq: tail.seq,
          found_seq: loaded.contract.history_seq,
          hint: 'run the command again: it decides on the new state',
        });
      }
      this.sweepContract(loaded.contract, req.warn);
      const b = new LocalBoundary(ws, loaded.contract, { at: req.meta.at, actor: req.meta.actor }, req.warn);
      await b.append(await this.repairs(b.contract, loaded.tornBytes, req));
      let result: T;
      try {
        result = await req.decide(b);
      } catch (e) {
        b.discardPending();
        if (req.onRefusal && isKairError(e) && exitCodeOf(e.code) === 3) await req.onRefusal(b, e);
        if (b.events.length || loaded.snapshot === 'behind' || loaded.snapshot === 'missing') {
          this.writeSnapshotIfOurs(b.contract, loaded.snapshot, req.warn);
          if (b.events.length) this.finishIndex(b.contract, who, req);
        }
        throw e;
      }
      // What the decision queued without appending anything is dropped: no event names it.
      b.discardPending();
      const c = b.contract;
      if (req.checkpointsLater) return { contract: c, events: b.events, result };
      if (b.events.length || loaded.snapshot !== 'current') this.writeSnapshotIfOurs(c, loaded.snapshot, req.warn);
      // Nothing recorded (a repeat approve): the index is already right.
      if (b.events.length > 0) this.finishIndex(c, who, req);
      else this.tidyIndex(who);
      return { contract: c, events: b.events, result };
    } finally {
      try {
        lock.release();
      } catch (e) {
        req.warn?.(`the lock of ${id} could not be released (${(e as Error).message}); the next command recovers it`);
      }
    }
  }

  /** Repairs found under the lock: a torn last line, a RUNNING contract whose runner died. */
  private async repairs<T>(c: Contract, tornBytes: number, req: MutateRequest<T>): Promise<EventDraft[]> {
    const drafts: EventDraft[] = [];
    if (tornBytes > 0) {
      truncateTorn(paths.history(this.ws, c.id), tornBytes);
      drafts.push({ type: 'recovery', state: c.state, data: { kind: 'torn_line', bytes: tornBytes } });
    }
    if (c.running && runnerVerdict(c.running) === 'dead') {
      const state = 'PAUSED';
      const pause = c.state === 'PAUSED' && c.pause ? c.pause : { requested_by: req.meta.actor, reason: 'CRASHED', step_id: c.running.step_id };
      // The execution side first, then the event that reports it (SPEC §14 Integrity).
      const cancelled = req.cancelRun ? await req.cancelRun(c.running.run_id, req.meta.at) : { ids: [], rows: [] };
      drafts.push({ type: 'recovery', state, data: { kind: 'crashed_run', run_id: c.running.run_id, pid: c.running.pid, pause, cancelled_envelopes: cancelled.ids, ...(cancelled.rows.length ? { rows: cancelled.rows } : {}) } });
    }
    return drafts;
  }

  /**
   * Temp files a killed writer left in the contract's folders. Only holders of this contract's
   * lock write there, and we hold it, so their writers are dead. A run's older folders were the
   * latest when their last writer died and were swept by the next one.
   */
  private sweepContract(c: Contract, warn: Warn | undefined): void {
    if (this.swept.has(c.id)) return;
    this.swept.add(c.id);
    const ws = this.ws;
    const dir = paths.contract(ws, c.id);
    const runs = paths.runs(ws, c.id);
    const latestRun = c.runs[c.runs.length - 1];
    // The next run's folder too: a run killed before run.started leaves its request's temp there.
    const nextRun = `${c.id}-run-${c.runs.length + 1}`;
    sweepTemps([dir, join(dir, 'plan'), join(dir, 'dpc'), paths.checkpoints(ws, c.id), runs, ...(latestRun ? [join(runs, latestRun)] : []), join(runs, nextRun)]);
    derived(warn, `plan/plan_v1.json of ${c.id}`, () => this.repairPlanCopy(c));
    assertNoLostRuns(c, runs);
  }

  /**
   * plan_v1.json left behind by a kill between the `plan` event and its copy (missing, or an
   * earlier plan that was kept by sha) is rewritten from the copy kept by sha. Any other content
   * is left for `verify` to report, and `run` refuses it as stale.
   */
  private repairPlanCopy(c: Contract): void {
    if (!c.plan_sha256) return;
    const ws = this.ws;
    const current = readJsonFile<unknown>(paths.plan(ws, c.id));
    const sha = current === null ? null : canonicalHash(current);
    if (sha === c.plan_sha256) return;
    if (current === null || !existsSync(paths.planBySha(ws, c.id, sha!))) return;
    const kept = readJsonFile<unknown>(paths.planBySha(ws, c.id, c.plan_sha256));
    if (kept === null || canonicalHash(kept) !== c.plan_sha256) return;
    writeFileAtomicSync(paths.plan(ws, c.id), JSON.stringify(kept, null, 2) + '\n', { derived: true });
  }

  private writeSnapshotIfOurs(c: Contract, status: SnapshotStatus, warn: Warn | undefined): void {
    if (status === 'foreign') {
      // Content history never had is evidence: never overwritten (delete it to have it rebuilt).
      warn?.(`contract.json of ${c.id} differs from its history and was left as it is; \`kair verify ${c.id}\` reports it, and deleting it lets kair rebuild it`);
      return;
    }
    derived(warn, `contract.json of ${c.id}`, () => writeSnapshot(this.ws, c));
  }

  /** The index entry after a commit: a cache, so a busy or failed index update is only a warning. */
  private finishIndex<T>(c: Contract, who: LockWho, req: MutateRequest<T>): void {
    derived(req.warn, `the index entry of ${c.id}`, () => updateIndex(this.ws, who, req.lockTimeoutMs, [indexEntry(c)]));
  }

  /**
   * A command that recorded nothing writes no index, so it would never meet what a killed index
   * writer left (a staged temp file, a lock folder of a dead holder). When there is such a thing,
   * it takes the index lock briefly (never waiting on a live holder) and compacts the index, which
   * recovers the lock and sweeps the staging folder.
   */
  private tidyIndex(who: LockWho): void {
    if (listDir(paths.staging(this.ws)).length === 0 && !existsSync(`${paths.locks(this.ws)}/${INDEX_LOCK}.lock`)) return;
    compactIndex(this.ws, who); // never waits; busy or failing, the next index writer does it
  }
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
