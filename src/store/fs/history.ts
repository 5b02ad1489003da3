/**
 * history.jsonl: one hash-chained event per line. Appends are fsynced before anything that
 * depends on them is written. A last line without its newline is a torn write that was never
 * acknowledged; readers ignore it and the next writer truncates it.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
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

export interface HistoryRead {
  events: HistoryEvent[];
  /** Bytes of a torn last line (no trailing newline), 0 if none. */
  tornBytes: number;
  /** Line numbers (1-based) that are not valid JSON events. */
  badLines: number[];
}

function parseLines(text: string): HistoryRead {
  const lastNl = text.lastIndexOf('\n');
  const whole = text.slice(0, lastNl + 1);
  const tornBytes = Buffer.byteLength(text.slice(lastNl + 1));
  const events: HistoryEvent[] = [];
  const badLines: number[] = [];
  const lines = whole.split('\n');
  lines.pop();
  lines.forEach((line, i) => {
    try {
      events.push(JSON.parse(line) as HistoryEvent);
    } catch {
      badLines.push(i + 1);
    }
  });
  return { events, tornBytes, badLines };
}

export function readHistory(file: string): HistoryRead {
  return parseLines(readFileSync(file, 'utf8'));
}

/**
 * The complete events with seq > `afterSeq`, plus the one at `afterSeq` itself (to check the
 * link), reading only as much of the file's tail as needed.
 */
export function readHistoryTail(file: string, afterSeq: number): HistoryRead {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    let chunk = Math.min(size, 16 * 1024);
    for (;;) {
      const buf = Buffer.alloc(chunk);
      readSync(fd, buf, 0, chunk, size - chunk);
      let text = buf.toString('utf8');
      if (chunk < size) text = text.slice(text.indexOf('\n') + 1); // drop the partial first line
      const read = parseLines(text);
      const first = read.events[0];
      if (chunk === size || (first && first.seq <= Math.max(afterSeq, 1))) {
        read.events = read.events.filter((e) => e.seq >= afterSeq);
        return read;
      }
      chunk = Math.min(size, chunk * 4);
    }
  } finally {
    closeSync(fd);
  }
}

/** Cuts a torn last line off; returns the bytes removed. Callers hold the contract lock. */
export function truncateTorn(file: string, tornBytes: number): void {
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, fstatSync(fd).size - tornBytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
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
