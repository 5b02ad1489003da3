/**
 * Writing contracts. Order of a write: append + fsync the events, then the snapshot atomically,
 * then the index (a cache, repaired by the next command if a crash leaves it behind).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GENESIS_HASH, canonicalJson, sha256Hex } from '../../domain/canonical.js';
import type { Contract, EventDraft, HistoryEvent } from '../../domain/contract.js';
import { applyEvent, fold } from '../../domain/contract.js';
import type { Dpc } from '../../domain/dpc.js';
import { kairError } from '../../domain/errors.js';
import type { AtomicWriteOptions } from './atomic.js';
import { fsyncDir, jsonText, writeFileAtomicSync, writeJsonAtomic } from './atomic.js';
import { remember } from './writer-load.js';
import { CHECKPOINT_EVERY, appendEvents, appendSealed, passFence, sealEvent } from './chain.js';
import type { IndexEntry } from './contracts.js';
import { readIndex, rebuildIndexEntries } from './contracts.js';
import { INDEX_LOCK, withLock } from './lock.js';
import { sweepTemps } from './temp.js';
import type { Workspace } from './workspace.js';
import { paths } from './workspace.js';

export interface LockWho {
  actor: string;
  command: string;
  now: () => string;
}

/** Short locked read-modify-write of the index; rebuilds it from the contracts when unreadable. */
export function updateIndex(ws: Workspace, who: LockWho, timeoutMs: number, entries: IndexEntry[]): void {
  withLock(paths.locks(ws), INDEX_LOCK, who, timeoutMs, () => {
    writeIndex(ws, upsertById(readIndex(ws) ?? rebuildIndexEntries(ws), entries));
  });
}

/**
 * Writes the index (caller holds its lock) as one line of JSON: it is a cache for programs, and
 * with 10,000 contracts printing it indented cost a twentieth of a `grant`. It is written in
 * .kair/tmp/ and renamed into place, so a killed write leaves its temp file where one small
 * readdir finds it, not among 10,000 contract folders; the index lock's holder sweeps it.
 */
export function writeIndex(ws: Workspace, index: IndexEntry[]): void {
  const staging = paths.staging(ws);
  sweepTemps([staging]);
  const staged = join(staging, 'index.json');
  writeFileAtomicSync(staged, JSON.stringify(index) + '\n', { derived: true });
  renameSync(staged, paths.index(ws));
}

/**
 * The index with `entries` put in place, sorted by id. An index kair wrote is sorted with unique
 * ids, so each entry is placed by binary search; any other (edited by hand) is rebuilt whole.
 */
export function upsertById(index: IndexEntry[], entries: IndexEntry[]): IndexEntry[] {
  if (!index.every((e, i) => i === 0 || index[i - 1]!.id < e.id)) {
    const byId = new Map(index.map((e) => [e.id, e]));
    for (const e of entries) byId.set(e.id, e);
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  const out = index.slice();
  for (const e of entries) {
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (out[mid]!.id < e.id) lo = mid + 1;
      else hi = mid;
    }
    out.splice(lo, lo < out.length && out[lo]!.id === e.id ? 1 : 0, e);
  }
  return out;
}

/**
 * The commit point: passes the fence (the history still ends at `c`'s head; nobody else is
 * appending that seq), seals the drafts, inserting a `checkpoint` event wherever seq reaches a
 * multiple of CHECKPOINT_EVERY (its state file is written first, under a name no event names
 * yet), and appends them in one write + fsync. Caller holds the lock. Returns the new state.
 */
export function appendToHistory(
  ws: Workspace,
  c: Contract,
  drafts: EventDraft[],
  meta: { at: string; actor: string },
): { contract: Contract; events: HistoryEvent[] } {
  if (drafts.length === 0) return { contract: c, events: [] };
  const file = paths.history(ws, c.id);
  passFence(file, paths.fence(ws, c.id), { seq: c.history_seq, hash: c.history_head });
  const events: HistoryEvent[] = [];
  let cur = c;
  const seal = (d: EventDraft) => {
    const e = sealEvent(d, { seq: cur.history_seq + 1, at: meta.at, actor: meta.actor, prev: cur.history_head });
    events.push(e);
    cur = applyEvent(cur, e);
  };
  for (const d of drafts) {
    if ((cur.history_seq + 1) % CHECKPOINT_EVERY === 0) {
      const text = canonicalJson(cur);
      writeFileAtomicSync(join(paths.checkpoints(ws, c.id), `${cur.history_seq}.json`), text + '\n', { derived: true });
      seal({ type: 'checkpoint', state: cur.state, data: { through_seq: cur.history_seq, state_sha256: sha256Hex(text) } });
    }
    seal(d);
  }
  appendSealed(file, events);
  remember(ws, cur);
  return { contract: cur, events };
}

/** appendToHistory then the snapshot, for callers that own the whole sequence (the scale bench). */
export function commitEvents(ws: Workspace, c: Contract, drafts: EventDraft[], meta: { at: string; actor: string }): { contract: Contract; events: HistoryEvent[] } {
  const r = appendToHistory(ws, c, drafts, meta);
  if (r.events.length) writeSnapshot(ws, r.contract);
  return r;
}

/** The snapshot: derived from history, written after the commit point. */
export function writeSnapshot(ws: Workspace, c: Contract): void {
  const text = jsonText(c);
  writeFileAtomicSync(paths.snapshot(ws, c.id), text, { derived: true });
  remember(ws, c, text);
}

/**
 * Creates a contract whole or not at all: the folder is built under a temporary name and
 * renamed into place. CONTRACT_EXISTS when the id is taken.
 */
export function createContract(
  ws: Workspace,
  id: string,
  draft: EventDraft,
  meta: { at: string; actor: string },
  dpc: Dpc,
  dpcEvent: EventDraft | null,
): { contract: Contract; events: HistoryEvent[] } {
  const root = paths.contracts(ws);
  mkdirSync(root, { recursive: true });
  if (existsSync(join(root, id))) {
    throw kairError('CONTRACT_EXISTS', `contract ${id} already exists`, { contract_id: id });
  }
  // Staged in .kair/tmp/ (the writer's pid in the name), not among the contract folders: a
  // killed propose leaves it where one small readdir finds and sweeps it.
  const tmp = join(paths.staging(ws), `propose-${id}-${process.pid}-${Date.now()}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const drafts = dpcEvent ? [draft, dpcEvent] : [draft];
    const events = appendEvents(join(tmp, 'history.jsonl'), { seq: 0, hash: GENESIS_HASH }, drafts, meta);
    const contract = fold(events) as Contract;
    // The folder's own fsync below makes this name durable; dpc/ needs its own for dpc_v1.json.
    writeJsonAtomic(join(tmp, 'contract.json'), contract, { derived: true });
    writeJsonAtomic(join(tmp, 'dpc', 'dpc_v1.json'), dpc);
    fsyncDir(tmp);
    try {
      renameSync(tmp, join(root, id));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        throw kairError('CONTRACT_EXISTS', `contract ${id} already exists`, { contract_id: id });
      }
      throw e;
    }
    fsyncDir(root);
    return { contract, events };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function writeText(file: string, text: string, opts: AtomicWriteOptions = {}): void {
  writeFileAtomicSync(file, text, opts);
}

