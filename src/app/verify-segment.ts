/**
 * One stretch of a history, checked and folded without keeping it (decision 037): what verify's
 * fast path runs on the main thread and, for the stretches before it, in worker threads. A line
 * is parsed, its seq, prev and hash are checked, it is folded into the state and dropped; each
 * checkpoint event must vouch for the fold before it. Only the offsets of lines a later check can
 * look at are kept (see mayMatter). The answer is null as soon as anything is not as a writer
 * leaves it: verify then takes its exact single-core path, which reports each problem as before.
 * The worker's bundle includes this file, so it imports only from domain/.
 */
import { canonicalJson, canonicalJsonOfParsed, sha256Hex } from '../domain/canonical.js';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { applyEvent } from '../domain/contract.js';

/** Types a check after the chain reads (plan, DPC, artifacts, signatures, prompts, SQLite anchors, checkpoint files). */
const READ_BY_A_CHECK = new Set(['propose', 'plan', 'dpc', 'approve', 'rewind', 'run.started', 'step.finished', 'checkpoint']);

/**
 * Whether a check after the chain may look at `e`: its type is one a check reads, its data is
 * not a plain object, or it carries a field a check reads whatever the type (artifacts, the
 * SQLite anchors). Grants, revokes and the like — most of a long history — are not kept. A check
 * that starts reading another type or field must be added here (test/e2e/verify-fast.test.ts
 * compares this path with the exact one).
 */
export function mayMatter(e: HistoryEvent): boolean {
  if (READ_BY_A_CHECK.has(e.type)) return true;
  const d = e.data as unknown;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return true;
  const data = d as Record<string, unknown>;
  return data.artifacts !== undefined || data.envelope_id !== undefined || data.cancelled_envelopes !== undefined || data.rows !== undefined;
}

/** The chain check's hash test (chain.ts hashParsedEvent): the event without `hash`, canonical, after `prev`. */
function hashesToItself(e: HistoryEvent): boolean {
  const { hash, ...rest } = e;
  return sha256Hex(rest.prev + canonicalJsonOfParsed(rest)) === hash;
}

export interface SegmentStart {
  /** Seq of the first line. */
  seq: number;
  /** The hash the first line must link to. */
  prev: string;
  /** The fold before the first line (null at the start of a history). */
  state: Contract | null;
}

export interface SegmentEnd {
  lines: number;
  lastHash: string;
  state: Contract | null;
  /** [start, end) byte offsets of the lines a later check may look at. */
  kept: number[];
  /** The fold at `wantSeq`, when that seq is in the segment. */
  wanted?: Contract;
}

/**
 * Checks and folds the lines in bytes [from, to) of `buf` (whole lines, each ending with a
 * newline). Null when anything is off. `want` names a seq whose fold is returned (the snapshot's).
 */
export function checkSegment(buf: Buffer, from: number, to: number, start: SegmentStart, wantSeq: number | null): SegmentEnd | null {
  let state = start.state;
  let prev = start.prev;
  let seq = start.seq;
  const kept: number[] = [];
  let wanted: Contract | undefined;
  try {
    for (let s = from, nl = buf.indexOf(0x0a, s); s < to; s = nl + 1, nl = buf.indexOf(0x0a, s)) {
      if (nl < 0 || nl >= to) return null;
      const e = JSON.parse(buf.toString('utf8', s, nl)) as HistoryEvent;
      if (typeof e !== 'object' || e === null || Array.isArray(e)) return null;
      if (e.seq !== seq || e.prev !== prev || !hashesToItself(e)) return null;
      if (e.type === 'checkpoint') {
        const d = e.data as { through_seq?: unknown; state_sha256?: unknown } | null;
        if (!state || d?.through_seq !== seq - 1 || sha256Hex(canonicalJson(state)) !== d.state_sha256) return null;
      }
      state = applyEvent(state, e);
      if (seq === wantSeq) wanted = state;
      if (mayMatter(e)) kept.push(s, nl);
      prev = e.hash;
      seq++;
    }
  } catch {
    return null; // a line that does not parse, a number canonical JSON refuses, a fold that throws
  }
  return { lines: seq - start.seq, lastHash: prev, state, kept, ...(wanted ? { wanted } : {}) };
}
