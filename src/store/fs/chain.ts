/** Sealing, appending and checking hash-chained history events (the write side of history.jsonl). */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { GENESIS_HASH, canonicalJson, canonicalJsonOfParsed, sha256Hex } from '../../domain/canonical.js';
import type { EventDraft, HistoryEvent } from '../../domain/contract.js';
import { kairError } from '../../domain/errors.js';
import { lastLine } from './history.js';
import type { ProcessIdentity } from './pid.js';
import { processVerdict, selfIdentity } from './pid.js';

export function hashEvent(e: Omit<HistoryEvent, 'hash'>): string {
  return sha256Hex(e.prev + canonicalJson(e));
}

/** hashEvent of an event read back with JSON.parse: the same digest, cheaper (see canonicalJsonOfParsed). */
function hashParsedEvent(e: Omit<HistoryEvent, 'hash'>): string {
  return sha256Hex(e.prev + canonicalJsonOfParsed(e));
}

export function sealEvent(
  draft: EventDraft,
  meta: { seq: number; at: string; actor: string; prev: string },
): HistoryEvent {
  // Keys in canonical order (the hash is appended last): an event whose data is in order too is
  // then re-derived by verify with one JSON.stringify (canonicalJsonOfParsed). Only the order of
  // the top-level keys is chosen here; data is written as the command built it.
  const unsealed = {
    actor: meta.actor,
    at: meta.at,
    data: draft.data,
    prev: meta.prev,
    seq: meta.seq,
    state: draft.state,
    type: draft.type,
  };
  return { ...unsealed, hash: hashEvent(unsealed) };
}

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

export interface ChainProblem {
  seq: number;
  message: string;
}

/** Walks a whole chain: seq order, prev links and hashes. */
export function checkChain(events: HistoryEvent[]): ChainProblem[] {
  const problems: ChainProblem[] = [];
  let prev = GENESIS_HASH;
  events.forEach((e, i) => {
    if (e.seq !== i + 1) problems.push({ seq: e.seq, message: `line ${i + 1} has seq ${e.seq}, expected ${i + 1}` });
    if (e.prev !== prev) problems.push({ seq: e.seq, message: `event ${e.seq}: prev does not match the hash of event ${i}` });
    const { hash, ...rest } = e;
    if (hashParsedEvent(rest) !== hash) problems.push({ seq: e.seq, message: `event ${e.seq}: hash does not match its content` });
    prev = hash;
  });
  return problems;
}

/** A `checkpoint` event is appended whenever seq reaches a multiple of this. */
export const CHECKPOINT_EVERY = 64;

/**
 * Checks that `events` continue the chain after `head`: consecutive seq, each prev the hash
 * before it, each hash its content's. Returns the first broken link's message, or null.
 */
export function checkLinks(events: HistoryEvent[], head: { seq: number; hash: string }): string | null {
  let { seq, hash: prev } = head;
  for (const e of events) {
    if (e.seq !== seq + 1) return `history event after ${seq} has seq ${e.seq}`;
    if (e.prev !== prev) return `history event ${e.seq} does not link to event ${seq}`;
    const { hash, ...rest } = e;
    if (hashParsedEvent(rest) !== hash) return `history event ${e.seq} does not match its hash`;
    seq = e.seq;
    prev = hash;
  }
  return null;
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
