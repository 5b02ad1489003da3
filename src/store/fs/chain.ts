/** Sealing, appending and checking hash-chained history events (the write side of history.jsonl). */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { GENESIS_HASH, canonicalJson, sha256Hex } from '../../domain/canonical.js';
import type { EventDraft, HistoryEvent } from '../../domain/contract.js';

export function hashEvent(e: Omit<HistoryEvent, 'hash'>): string {
  return sha256Hex(e.prev + canonicalJson(e));
}

export function sealEvent(
  draft: EventDraft,
  meta: { seq: number; at: string; actor: string; prev: string },
): HistoryEvent {
  const unsealed = {
    seq: meta.seq,
    at: meta.at,
    type: draft.type,
    actor: meta.actor,
    state: draft.state,
    data: draft.data,
    prev: meta.prev,
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
  if (events.length === 0) return events;
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
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
    if (hashEvent(rest) !== hash) problems.push({ seq: e.seq, message: `event ${e.seq}: hash does not match its content` });
    prev = hash;
  });
  return problems;
}
