/**
 * Sealing and checking hash-chained history events, and the text forms both storage backends
 * write: pure functions, so the local store and PostgreSQL seal, check and fold with the same
 * code and give byte-identical lines and hashes for the same drafts.
 */
import { GENESIS_HASH, canonicalJson, canonicalJsonOfParsed, sha256Hex } from './canonical.js';
import type { Contract, EventDraft, HistoryEvent } from './contract.js';
import { applyEvent } from './contract.js';

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

/** A checkpoint a sealed boundary carries: the canonical state through `through` (its event names its sha). */
export interface SealedCheckpoint {
  through: number;
  state: string;
}

/**
 * Seals `drafts` after `c`, on both backends: each event chained to the one before, and a
 * `checkpoint` event put in wherever seq reaches a multiple of CHECKPOINT_EVERY, naming the sha of
 * the canonical state folded through the previous event. The store keeps each checkpoint's state
 * (a file, a row) with the events.
 */
export function sealDrafts(c: Contract, drafts: EventDraft[], meta: { at: string; actor: string }): { contract: Contract; events: HistoryEvent[]; checkpoints: SealedCheckpoint[] } {
  const events: HistoryEvent[] = [];
  const checkpoints: SealedCheckpoint[] = [];
  let cur = c;
  const seal = (d: EventDraft) => {
    const e = sealEvent(d, { seq: cur.history_seq + 1, at: meta.at, actor: meta.actor, prev: cur.history_head });
    events.push(e);
    cur = applyEvent(cur, e);
  };
  for (const d of drafts) {
    if ((cur.history_seq + 1) % CHECKPOINT_EVERY === 0) {
      const state = canonicalJson(cur);
      checkpoints.push({ through: cur.history_seq, state });
      seal({ type: 'checkpoint', state: cur.state, data: { through_seq: cur.history_seq, state_sha256: sha256Hex(state) } });
    }
    seal(d);
  }
  return { contract: cur, events, checkpoints };
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

/** How kair writes a JSON file (and the snapshot's text on every backend): two-space indent, a final newline. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** A contract's row in the index: what `list` shows. */
export interface IndexEntry {
  id: string;
  intent: string;
  state: string;
  updated_at: string;
  version: number;
}

export function indexEntry(c: Contract): IndexEntry {
  return { id: c.id, intent: c.intent, state: c.state, updated_at: c.updated_at, version: c.version };
}
