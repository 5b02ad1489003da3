/** Sealing, appending and checking hash-chained history events (the write side of history.jsonl). */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CHECKPOINT_EVERY, sealEvent } from '../../domain/chain.js';
import type { EventDraft, HistoryEvent } from '../../domain/contract.js';
import { kairError } from '../../domain/errors.js';
import { lastLine } from './history.js';
import type { ProcessIdentity } from './pid.js';
import { processVerdict, selfIdentity } from './pid.js';

// Moved to src/domain/chain.ts (pure, shared with PostgreSQL); re-exported while branches still import them from here.
export { CHECKPOINT_EVERY, checkChain, checkLinks, hashEvent, sealEvent } from '../../domain/chain.js';
export type { ChainProblem } from '../../domain/chain.js';

/** Seals the drafts after `head` and appends them in one write + fsync. */
export function appendEvents(
  file: string,
  head: { seq: number; hash: string },
  drafts: EventDraft[],
  meta: { at: string; actor: string },
): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  let prev = head.hash;
  let seq = head.seq;
  for (const d of drafts) {
    const e = sealEvent(d, { seq: ++seq, at: meta.at, actor: meta.actor, prev });
    events.push(e);
    prev = e.hash;
  }
  appendSealed(file, events);
  return events;
}

export type FenceHolder = ProcessIdentity;

function concurrent(file: string, expected: { seq: number; hash: string }, found: string): never {
  const id = basename(dirname(file));
  throw kairError('CONCURRENT_WRITE', `another process wrote the history of ${id} at the same time (${found}); nothing was written, retry`, {
    contract_id: id,
    expected_seq: expected.seq,
  });
}

/**
 * The commit point's guard. Under the lock, the writer checks that the history's last complete
 * event is still exactly the head its decision was based on, then takes an O_EXCL marker for
 * the first seq it appends: two processes that both believe they hold the lock cannot both
 * pass it, so a chain can never fork. A marker left by a dead writer whose event never landed
 * is removed and taken again.
 */
export function passFence(file: string, fenceDir: string, head: { seq: number; hash: string }): void {
  const { event: last, tornBytes } = lastLine(file);
  if (last?.seq !== head.seq || last.hash !== head.hash || tornBytes > 0) {
    concurrent(file, head, last ? `its last event is ${last.seq}` : 'it changed');
  }
  mkdirSync(fenceDir, { recursive: true });
  const marker = join(fenceDir, String(head.seq + 1));
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(marker, 'wx');
      try {
        writeSync(fd, JSON.stringify(selfIdentity() satisfies FenceHolder));
      } finally {
        closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) concurrent(file, head, `seq ${head.seq + 1} is being written`);
      let holder: FenceHolder | null;
      try {
        holder = JSON.parse(readFileSync(marker, 'utf8')) as FenceHolder;
      } catch {
        holder = null; // a marker cut short by a kill: its writer is gone
      }
      const verdict = holder ? (holder.pid === process.pid && holder.host === hostname() ? 'dead' : processVerdict({ ...holder, pid_ns: holder.pid_ns ?? null, boot_id: holder.boot_id ?? null, pid_start: holder.pid_start ?? null })) : 'dead';
      if (verdict === 'alive') concurrent(file, head, `process ${holder!.pid} is appending seq ${head.seq + 1}`);
      if (verdict === 'remote') concurrent(file, head, `host ${holder!.host} is appending seq ${head.seq + 1}`);
      unlinkSync(marker);
    }
  }
  if ((head.seq + 1) % CHECKPOINT_EVERY === 0) pruneFences(fenceDir, head.seq + 1 - CHECKPOINT_EVERY);
}

/** Markers far behind the tail guard nothing: a writer there would fail the tail check first. */
function pruneFences(fenceDir: string, below: number): void {
  for (const name of readdirSync(fenceDir)) {
    const n = Number(name);
    if (Number.isInteger(n) && n < below) {
      try {
        unlinkSync(join(fenceDir, name));
      } catch {
        // another writer pruned it
      }
    }
  }
}

/** Appends sealed events in one write + fsync. */
export function appendSealed(file: string, events: HistoryEvent[]): void {
  if (events.length === 0) return;
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
