/**
 * The one path by which a lifecycle command changes a contract: the storage port's
 * `ContractStore.mutate` (lock → load from history (with repairs) → decide → the commit point →
 * derived files; src/store/fs/adapter-write.ts locally, one transaction on PostgreSQL). A gate
 * refusal (exit 3) is itself recorded as one `gate.blocked` event before it is rethrown.
 *
 * On the local backend the history append is the commit point. Everything after it is derived
 * and repaired by the next writer, so its failure never changes the command's outcome: it
 * becomes a warning.
 */
import type { Contract, EventDraft, HistoryEvent } from '../domain/contract.js';
import { isKairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { gateBlocked } from '../domain/lifecycle.js';
import { cancelOpenEnvelopes } from '../lanes/kimi/recovery.js';
import { hasExecutionStore, withExecution } from './db.js';
import type { Boundary } from '../store/port.js';
import type { Ctx } from './context.js';

export interface Decision<T> {
  drafts: EventDraft[];
  result?: T;
  /**
   * Runs once the events are recorded: derived writes (the DPC through `b.putDpc`, a run's latest
   * copies). A failure is a warning, never the outcome.
   */
  after?: (c: Contract, events: HistoryEvent[], b: Boundary) => void | Promise<void>;
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

/** Runs a derived write after the commit point: a failure is reported, never the outcome. */
export function derived(ctx: Ctx, what: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    ctx.warn(`${what} was not updated (${whyOf(e)}); the next command repairs it`);
  }
}

function whyOf(e: unknown): string {
  return isKairError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
}

export async function mutate<T>(ctx: Ctx, id: string, command: string, decide: (c: Contract, b: Boundary) => Decision<T> | Promise<Decision<T>>, opts: MutateOptions = {}): Promise<Mutated<T>> {
  assertId(id);
  void ctx.config; // an invalid config fails the command before anything else is touched
  const store = (await ctx.storage()).contracts;
  const m = await store.mutate<T | undefined>(id, {
    lockTimeoutMs: ctx.lockTimeoutMs,
    meta: { at: ctx.now(), actor: ctx.actor(), command: ctx.command },
    ...(opts.expectTail ? { expectTail: opts.expectTail } : {}),
    ...(opts.checkpointsLater ? { checkpointsLater: true } : {}),
    warn: (m) => ctx.warn(m),
    // A crashed run's Kimi envelopes are cancelled in SQLite before the recovery event reports it.
    cancelRun: async (runId, at) => (hasExecutionStore(ctx) ? withExecution(ctx, (store) => cancelOpenEnvelopes(store, runId, at)) : { ids: [], rows: [] }),
    decide: async (b) => {
      const decision = await decide(b.contract, b);
      const events = await b.append(decision.drafts);
      // The commit point is passed: nothing below may change the outcome.
      if (decision.after) {
        try {
          await decision.after(b.contract, events, b);
        } catch (e) {
          ctx.warn(`a derived file was not updated (${whyOf(e)}); the next command repairs it`);
        }
      }
      return decision.result;
    },
    onRefusal: async (b, e) => {
      const err = e as { code: Parameters<typeof gateBlocked>[2]; message: string };
      await b.append([gateBlocked(b.contract, command, err.code, err.message)]);
    },
  });
  return { contract: m.contract, events: m.events, result: m.result };
}
