/**
 * What a writer loads: the contract folded from history (never from contract.json), with the
 * chain checked from the newest valid checkpoint to the tail, and how the snapshot on disk
 * relates to it. Kept apart from contracts.ts so the read-only commands do not load hashing.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GENESIS_HASH, canonicalJson, sha256Hex } from '../../domain/canonical.js';
import type { Contract } from '../../domain/contract.js';
import { applyEvent } from '../../domain/contract.js';
import { checkLinks } from './chain.js';
import { integrity, readJsonFile, readTextFile } from './contracts.js';
import type { HistoryRead } from './history.js';
import { lastLine, readHistory, readHistoryTail } from './history.js';
import { jsonText } from './atomic.js';
import type { Workspace } from './workspace.js';
import { paths } from './workspace.js';

/** How the snapshot on disk relates to history, as a writer found it. */
export type SnapshotStatus = 'current' | 'behind' | 'missing' | 'foreign';

export interface WriterLoad {
  /** Folded from history (from the newest valid checkpoint); the snapshot is never trusted. */
  contract: Contract;
  tornBytes: number;
  snapshot: SnapshotStatus;
}

/** Checkpoint files, newest first: `checkpoints/<through_seq>.json`. */
export function checkpointSeqs(ws: Workspace, id: string): number[] {
  let names: string[];
  try {
    names = readdirSync(paths.checkpoints(ws, id));
  } catch {
    return [];
  }
  return names
    .map((n) => (/^\d+\.json$/.test(n) ? Number(n.slice(0, -5)) : NaN))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => b - a);
}

/**
 * What this process last knew of each contract (by history file): the state after its own last
 * load or append, and the snapshot text it wrote for it. A command checks a chain once; its later
 * boundaries (a run's steps) only check that the tail is what they last saw, and fold what other
 * writers appended since (a pause, a revoke), link by link.
 */
const known = new Map<string, { contract: Contract; snapshotText?: string }>();

/** snapshotText: undefined keeps what this process knew of the snapshot, null forgets it. */
export function remember(ws: Workspace, c: Contract, snapshotText?: string | null): void {
  const file = paths.history(ws, c.id);
  // An append keeps the snapshot text this process last found to be a recorded state: a run's
  // boundaries write no snapshot (decision 029), and the next one still takes the fast path.
  const text = snapshotText === null ? undefined : (snapshotText ?? known.get(file)?.snapshotText);
  known.set(file, { contract: c, ...(text === undefined ? {} : { snapshotText: text }) });
}

/**
 * The state a writer decides on: folded from history, never taken from contract.json. It folds
 * from the newest checkpoint whose file hashes to what its `checkpoint` event recorded, checking
 * every link and hash from there to the tail (INTEGRITY_FAILED on any break); without one it
 * folds and checks the whole history.
 */
export function loadForWrite(ws: Workspace, id: string): WriterLoad {
  const file = paths.history(ws, id);
  const k = known.get(file);
  if (k) {
    const fast = fromKnown(ws, file, k);
    if (fast) return fast;
  }
  const { snapshotText, ...loaded } = loadChecked(ws, id, file);
  remember(ws, loaded.contract, snapshotText ?? null);
  return loaded;
}

/** The later boundaries of a command: the tail it last saw, plus what others appended since. */
function fromKnown(ws: Workspace, file: string, k: { contract: Contract; snapshotText?: string }): WriterLoad | null {
  const id = k.contract.id;
  const last = lastLine(file);
  let c = k.contract;
  if (last.event?.seq !== c.history_seq || last.event.hash !== c.history_head) {
    const tail = readHistoryTail(file, c.history_seq);
    const head = tail.events[0];
    if (tail.badLines.length || head?.seq !== c.history_seq || head.hash !== c.history_head) integrity(id, `history no longer holds event ${c.history_seq} as this command wrote it`);
    const broken = checkLinks(tail.events.slice(1), { seq: c.history_seq, hash: c.history_head });
    if (broken) integrity(id, broken);
    for (const e of tail.events.slice(1)) c = applyEvent(c, e);
  }
  const text = readTextFile(paths.snapshot(ws, id));
  // Only the common case is decided here: the snapshot is what this process wrote, or current.
  const current = text !== null && text === jsonText(c);
  if (text === null || (!current && text !== k.snapshotText)) return null;
  known.set(file, { contract: c, snapshotText: text });
  return { contract: c, tornBytes: last.tornBytes, snapshot: current ? 'current' : 'behind' };
}

/** snapshotText: the snapshot's text when it is current or behind (a state history recorded). */
function loadChecked(ws: Workspace, id: string, file: string): WriterLoad & { snapshotText?: string } {
  let base: Contract | null = null;
  let tail: HistoryRead | null = null;
  const checkpoints = checkpointSeqs(ws, id);
  for (const k of checkpoints) {
    const state = readJsonFile<Contract>(join(paths.checkpoints(ws, id), `${k}.json`));
    if (!state || state.history_seq !== k) continue;
    const read = readHistoryTail(file, k + 1);
    const cp = read.events[0];
    if (!cp || cp.seq !== k + 1 || cp.type !== 'checkpoint') continue;
    const d = cp.data as { through_seq?: unknown; state_sha256?: unknown };
    if (d.through_seq !== k || d.state_sha256 !== sha256Hex(canonicalJson(state)) || cp.prev !== state.history_head) continue;
    base = state;
    tail = read;
    break;
  }
  if (!tail) tail = readHistory(file);
  if (tail.badLines.length) integrity(id, 'a history line is not valid JSON');
  const broken = checkLinks(tail.events, base ? { seq: base.history_seq, hash: base.history_head } : { seq: 0, hash: GENESIS_HASH });
  if (broken) integrity(id, broken);
  const text = readTextFile(paths.snapshot(ws, id));
  let snap: Contract | null;
  try {
    snap = text === null ? null : (JSON.parse(text) as Contract);
  } catch {
    snap = null;
  }
  let atSnap: Contract | null = null;
  let c = base;
  for (const e of tail.events) {
    c = applyEvent(c, e);
    if (snap && e.seq === snap.history_seq) atSnap = c;
  }
  if (!c) integrity(id, 'history is empty');
  // Something recorded past the tail means acknowledged events were cut off: appending now
  // would launder the loss into the chain.
  if (snap && snap.history_seq > c.history_seq) integrity(id, `history ends at event ${c.history_seq} but contract.json records event ${snap.history_seq} (history truncated)`);
  const newestCheckpoint = checkpoints[0];
  if (newestCheckpoint !== undefined && newestCheckpoint >= c.history_seq) integrity(id, `history ends at event ${c.history_seq} but a checkpoint covers event ${newestCheckpoint} (history truncated)`);
  let snapshot: SnapshotStatus = 'missing';
  if (text !== null && !snap) snapshot = 'foreign';
  else if (snap) {
    if (snap.history_seq === c.history_seq && (text === jsonText(c) || canonicalJson(snap) === canonicalJson(c))) snapshot = 'current';
    else if (snap.history_seq < c.history_seq && atSnap && canonicalJson(snap) === canonicalJson(atSnap)) snapshot = 'behind';
    else if (base && snap.history_seq < base.history_seq) snapshot = snapshotBehindCheckpoint(file, snap) ? 'behind' : 'foreign';
    else snapshot = 'foreign';
  }
  return { contract: c, tornBytes: tail.tornBytes, snapshot, ...(text !== null && (snapshot === 'current' || snapshot === 'behind') ? { snapshotText: text } : {}) };
}

/** A snapshot older than the newest checkpoint: compare it with a full fold (rare: a writer skipped a whole checkpoint span). */
function snapshotBehindCheckpoint(file: string, snap: Contract): boolean {
  let c: Contract | null = null;
  for (const e of readHistory(file).events) {
    c = applyEvent(c, e);
    if (e.seq === snap.history_seq) return canonicalJson(c) === canonicalJson(snap);
  }
  return false;
}
