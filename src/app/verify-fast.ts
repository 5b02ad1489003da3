/**
 * verify's read of one history when nothing is wrong with it (decision 037). One pass parses
 * each line, checks its seq, prev and hash, folds it and drops it, keeping only the lines a later
 * check can look at (checkSegment). On a long history the first stretch, up to a checkpoint
 * event, goes to a worker thread (`verify` may use several cores): the main thread folds the rest
 * from that checkpoint's state file, which the worker's fold must hash to (as a writer folds from
 * the newest checkpoint). Anything unexpected — a line that does not parse, a broken link or hash,
 * a checkpoint that does not vouch for the fold, a torn tail, a worker that fails — returns null,
 * and verify takes its exact single-core path, which reports every problem as it always did.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import type { Worker as WorkerType } from 'node:worker_threads';
import { GENESIS_HASH, canonicalJson, sha256Hex } from '../domain/canonical.js';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import type { HistoryText } from '../store/fs/history.js';
import { checkSegment } from './verify-segment.js';

declare const __dirname: string | undefined;
declare const __KAIR_BUNDLED__: boolean | undefined;

export interface FastRead {
  /** The events a later check may look at, in order, and their lines (a text of those lines only). */
  kept: HistoryText;
  /** Every event of the history. */
  count: number;
  /** The fold at the tail and at the snapshot's seq. */
  states: Map<number, Contract>;
  /** Checkpoint events by seq (each vouches for the fold before it). */
  checkpoints: Map<number, HistoryEvent>;
}

/** History size from which a worker folds the first part (KAIR_VERIFY_WORKER_BYTES overrides, for tests). */
function workerBytes(): number {
  const n = Number(process.env.KAIR_VERIFY_WORKER_BYTES);
  return Number.isSafeInteger(n) && n > 0 ? n : 2 * 1024 * 1024;
}

/**
 * How much less than an equal share of the lines the main thread takes: it also starts Node and
 * the workers, reads the file and parses the lines the workers kept (balanced on instruction
 * counts per thread, decision 037).
 */
const MAIN_LESS = 0.06;

/** Threads to use: one per core (KAIR_VERIFY_THREADS overrides, for tests), at most 8, and none beyond one per workerBytes() of history. */
function threadsFor(size: number): number {
  const forced = Number(process.env.KAIR_VERIFY_THREADS);
  const cores = Number.isSafeInteger(forced) && forced > 0 ? forced : process.getBuiltinModule('node:os').availableParallelism();
  return Math.max(1, Math.min(cores, 8, Math.floor(size / workerBytes())));
}

interface Helper {
  worker: WorkerType;
  flags: Int32Array;
  kept: Int32Array;
  /** Its stretch: bytes [from, to), the lines from seq `seq` to before the next stretch's first. */
  from: number;
  to: number;
  seq: number;
}

/** A line's text. */
const lineAt = (buf: Buffer, s: number, e: number) => buf.toString('utf8', s, e);

/** How a writer's checkpoint line names its type (sealEvent writes keys in canonical order, no spaces). */
const CHECKPOINT_TYPE = '"type":"checkpoint"';

interface Boundary {
  /** Offset of the checkpoint event's line. */
  at: number;
  event: HistoryEvent;
  /** The line before it: the stretch before ends with it (and checks its hash). */
  before: HistoryEvent;
  /** The state its file holds, which hashes to the sha the event records. */
  state: Contract;
  stateText: string;
}

/**
 * A stretch boundary: the first checkpoint event after byte `from`, with the state its file
 * holds. Null when there is none near, or its file does not hash right (fewer threads then).
 */
function findStart(checkpointFile: (seq: number) => string, buf: Buffer, from: number): Boundary | null {
  for (let k = buf.indexOf(CHECKPOINT_TYPE, from), tries = 0; k >= 0 && tries < 4; k = buf.indexOf(CHECKPOINT_TYPE, k + 1), tries++) {
    const s = buf.lastIndexOf(0x0a, k) + 1;
    const nl = buf.indexOf(0x0a, k);
    if (s < 2 || nl < 0) return null;
    try {
      const event = JSON.parse(lineAt(buf, s, nl)) as HistoryEvent;
      const d = event.data as { through_seq?: unknown; state_sha256?: unknown };
      if (event.type !== 'checkpoint' || typeof event.seq !== 'number' || d.through_seq !== event.seq - 1 || typeof d.state_sha256 !== 'string') continue;
      const before = JSON.parse(lineAt(buf, buf.lastIndexOf(0x0a, s - 2) + 1, s - 1)) as HistoryEvent;
      if (before.seq !== event.seq - 1) return null;
      const stateText = readFileSync(checkpointFile(event.seq - 1), 'utf8');
      const state = JSON.parse(stateText) as Contract;
      if (sha256Hex(canonicalJson(state)) !== d.state_sha256) return null;
      return { at: s, event, before, state, stateText };
    } catch {
      return null;
    }
  }
  return null;
}

/** Starts a worker on bytes [from, to): from `start` (genesis when null) to a fold hashing to `endSha`. */
function startHelper(bytes: SharedArrayBuffer, from: number, to: number, start: Boundary | null, endSha: string): Helper | null {
  const flags = new Int32Array(new SharedArrayBuffer(16));
  const kept = new Int32Array(new SharedArrayBuffer(4 * (Math.ceil((to - from) / 64) + 2)));
  const seq = start ? start.event.seq : 1;
  try {
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    const workerData = { bytes, from, to, seq, prev: start ? start.before.hash : GENESIS_HASH, state: start ? start.stateText : null, endSha, flags: flags.buffer, kept: kept.buffer };
    const worker = new Worker(`${__dirname}/kair-verify-worker.cjs`, { workerData });
    worker.unref();
    worker.on('error', () => {}); // its flags say it failed
    return { worker, flags, kept, from, to, seq };
  } catch {
    return null;
  }
}

/** Waits for a worker: its kept offsets when its stretch is as a writer leaves it, else null. */
function helperResult(h: Helper, lines: number): number[] | null {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const state = Atomics.load(h.flags, 0);
    if (state === 2) return h.flags[1] === 1 && h.flags[2] === lines ? Array.from(h.kept.subarray(0, h.flags[3])) : null;
    // A worker that never started (a thread that could not run its bundle): the exact path instead.
    if (state === 0 && Date.now() > deadline) return null;
    Atomics.wait(h.flags, 0, state, 50);
  }
}

/**
 * Splits the history at checkpoint events into one stretch per thread and starts a worker on
 * each but the last. Returns the workers and where the main thread's stretch starts.
 */
function startHelpers(buf: Buffer, bytes: SharedArrayBuffer | null, checkpointFile: (seq: number) => string): { helpers: Helper[]; mine: Boundary | null } {
  const size = buf.length;
  const threads = bytes ? threadsFor(size) : 1;
  // Only the built CLI has the worker's bundle next to it; unbundled runs use one thread.
  if (threads < 2 || typeof __KAIR_BUNDLED__ !== 'boolean' || typeof __dirname !== 'string' || !existsSync(`${__dirname}/kair-verify-worker.cjs`)) return { helpers: [], mine: null };
  const share = (1 + MAIN_LESS) / threads;
  const bounds: Boundary[] = [];
  for (let i = 1; i < threads; i++) {
    const b = findStart(checkpointFile, buf, Math.floor(size * share * i));
    if (b && (bounds.length === 0 || b.at > bounds[bounds.length - 1]!.at)) bounds.push(b);
  }
  const helpers: Helper[] = [];
  let prev: Boundary | null = null;
  for (const b of bounds) {
    const h = bytes ? startHelper(bytes, prev ? prev.at : 0, b.at, prev, (b.event.data as { state_sha256: string }).state_sha256) : null;
    if (!h) break;
    helpers.push(h);
    prev = b;
  }
  return { helpers, mine: prev };
}
export function fastRead(file: string, checkpointFile: (seq: number) => string, snapSeq: number | null): FastRead | null {
  // KAIR_VERIFY_FAST=0 keeps verify on its exact path (tests compare the two).
  if (process.env.KAIR_VERIFY_FAST === '0') return null;
  const fd = openSync(file, 'r');
  let buf: Buffer;
  let bytes: SharedArrayBuffer | null = null;
  let size: number;
  try {
    size = fstatSync(fd).size;
    // Read straight into shared memory when a worker will read it too.
    if (size >= workerBytes() && size < 2 ** 31) bytes = new SharedArrayBuffer(size);
    buf = bytes ? Buffer.from(bytes) : Buffer.allocUnsafe(size);
    for (let at = 0; at < size; ) {
      const n = readSync(fd, buf, at, size - at, at);
      if (n === 0) return null;
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  if (size === 0 || buf[size - 1] !== 0x0a) return null; // empty, or a torn tail: the exact path
  const { helpers, mine: from } = startHelpers(buf, bytes, checkpointFile);
  let done = false;
  try {
    const first = from ? { seq: from.event.seq, prev: from.before.hash, state: from.state } : { seq: 1, prev: GENESIS_HASH, state: null };
    // The snapshot's state, if it lies in a worker's stretch, is not sent back: the exact path then.
    if (snapSeq !== null && snapSeq < first.seq) return null;
    const mine = checkSegment(buf, from ? from.at : 0, size, first, snapSeq);
    if (!mine || !mine.state) return null;
    let offsets: number[] = [];
    for (let i = 0; i < helpers.length; i++) {
      const h = helpers[i]!;
      const theirs = helperResult(h, (i + 1 < helpers.length ? helpers[i + 1]!.seq : first.seq) - h.seq);
      if (!theirs) return null;
      offsets = offsets.concat(theirs);
    }
    offsets = offsets.concat(mine.kept);
    done = true;
    const kept: HistoryText = { events: [], starts: [], text: '', tornBytes: 0, badLines: [] };
    const parts: string[] = [];
    let at = 0;
    const checkpoints = new Map<number, HistoryEvent>();
    for (let i = 0; i < offsets.length; i += 2) {
      const line = lineAt(buf, offsets[i]!, offsets[i + 1]!);
      const e = JSON.parse(line) as HistoryEvent;
      kept.events.push(e);
      kept.starts.push(at);
      parts.push(line);
      at += line.length + 1;
      if (e.type === 'checkpoint') checkpoints.set(e.seq, e);
    }
    kept.text = parts.length ? parts.join('\n') + '\n' : '';
    const count = first.seq - 1 + mine.lines;
    const states = new Map<number, Contract>();
    if (mine.wanted) states.set(snapSeq!, mine.wanted);
    states.set(count, mine.state);
    return { kept, count, states, checkpoints };
  } finally {
    // Given up early: the exact path takes over, and the workers' answers no longer matter.
    if (!done) for (const h of helpers) void h.worker.terminate();
  }
}
