/**
 * The one path by which a lifecycle command changes a contract: lock → load (with repairs) →
 * decide → append events → snapshot → index. A gate refusal (exit 3) is itself recorded as one
 * `gate.blocked` event before it is rethrown.
 */
import type { Contract, EventDraft, HistoryEvent } from '../domain/contract.js';
import { exitCodeOf, isKairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { gateBlocked } from '../domain/lifecycle.js';
import { assertContract, indexEntry, loadContract } from '../store/fs/contracts.js';
import { commitEvents, updateIndex } from '../store/fs/contract-writes.js';
import { truncateTorn } from '../store/fs/history.js';
import { acquireLock } from '../store/fs/lock.js';
import { isPidAlive } from '../store/fs/pid.js';
import { cancelOpenEnvelopes } from '../lanes/kimi/recovery.js';
import { paths } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';

export interface Decision<T> {
  drafts: EventDraft[];
  result?: T;
  /** Runs after the events are durable (e.g. writing derived files such as the DPC). */
  after?: (c: Contract, events: HistoryEvent[]) => void;
}

export interface MutateOptions {
  /**
   * This command locks the contract again and the later mutate writes the index (a run's step
   * boundary: the run's end always records events). The entry is then written here only when it
   * would show a new state, so `list` follows the run while updated_at-only changes wait for the
   * end; a crash in between leaves the entry lagging, a verify warning the next command repairs.
   */
  indexLater?: boolean;
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
function repairs(ctx: Ctx, c: Contract, tornBytes: number): EventDraft[] {
  const drafts: EventDraft[] = [];
  if (tornBytes > 0) {
    truncateTorn(paths.history(ctx.ws, c.id), tornBytes);
    drafts.push({ type: 'recovery', state: c.state, data: { kind: 'torn_line', bytes: tornBytes } });
  }
  if (c.running && !isPidAlive(c.running.pid)) {
    const state = 'PAUSED';
    const pause = c.state === 'PAUSED' && c.pause ? c.pause : { requested_by: ctx.actor(), reason: 'CRASHED', step_id: c.running.step_id };
    // SQLite first, then the event that reports it (SPEC §14 Integrity).
    const cancelled = cancelOpenEnvelopes(paths.db(ctx.ws), c.running.run_id, ctx.now());
    drafts.push({ type: 'recovery', state, data: { kind: 'crashed_run', run_id: c.running.run_id, pid: c.running.pid, pause, cancelled_envelopes: cancelled.ids, ...(cancelled.rows.length ? { rows: cancelled.rows } : {}) } });
  }
  return drafts;
}

export function mutate<T>(ctx: Ctx, id: string, command: string, decide: (c: Contract) => Decision<T>, opts: MutateOptions = {}): Mutated<T> {
  assertId(id);
  const ws = ctx.ws;
  void ctx.config; // an invalid config fails the command before anything else is touched
  assertContract(ws, id);
  const lock = acquireLock(paths.locks(ws), id, lockWho(ctx), ctx.lockTimeoutMs);
  try {
    const loaded = loadContract(ws, id);
    const meta = { at: ctx.now(), actor: ctx.actor() };
    let c = loaded.contract;
    const fixes = repairs(ctx, c, loaded.tornBytes);
    const allEvents: HistoryEvent[] = [];
    if (fixes.length) {
      const r = commitEvents(ws, c, fixes, meta);
      c = r.contract;
      allEvents.push(...r.events);
    }
    let decision: Decision<T>;
    try {
      decision = decide(c);
    } catch (e) {
      if (isKairError(e) && exitCodeOf(e.code) === 3) {
        const r = commitEvents(ws, c, [gateBlocked(c, command, e.code, e.message)], meta);
        finishIndex(ctx, r.contract);
      } else if (allEvents.length) {
        finishIndex(ctx, c);
      }
      throw e;
    }
    const r = commitEvents(ws, c, decision.drafts, meta);
    allEvents.push(...r.events);
    decision.after?.(r.contract, r.events);
    // Nothing recorded (a repeat approve, a run's boundary check): the index is already right.
    const stateChanged = r.contract.state !== loaded.contract.state || r.contract.version !== loaded.contract.version;
    if (allEvents.length > 0 && (!opts.indexLater || stateChanged)) finishIndex(ctx, r.contract);
    return { contract: r.contract, events: allEvents, result: decision.result };
  } finally {
    lock.release();
  }
}

export function finishIndex(ctx: Ctx, c: Contract): void {
  updateIndex(ctx.ws, lockWho(ctx), ctx.lockTimeoutMs, [indexEntry(c)]);
}

