/**
 * Writing contracts. Order of a write: append + fsync the events, then the snapshot atomically,
 * then the index (a cache, repaired by the next command if a crash leaves it behind).
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GENESIS_HASH } from '../../domain/canonical.js';
import type { Contract, EventDraft, HistoryEvent } from '../../domain/contract.js';
import { fold } from '../../domain/contract.js';
import type { Dpc } from '../../domain/dpc.js';
import { kairError } from '../../domain/errors.js';
import type { AtomicWriteOptions } from './atomic.js';
import { fsyncDir, jsonText, writeFileAtomicSync, writeJsonAtomic } from './atomic.js';
import { remember } from './writer-load.js';
import { appendEvents, appendSealed, passFence } from './chain.js';
import { sealDrafts } from '../../domain/chain.js';
import type { IndexEntry } from './contracts.js';
import { indexEntry, loadContract, readTextFile, rebuildIndexEntries } from './contracts.js';
import type { StoredEntry } from './index-read.js';
import { CHECKPOINT_HEAD, folderExists, indexFiles, parseEntryLine, plainEntry, readCheckpoint } from './index-read.js';
import { INDEX_LOCK, PROPOSE_LOCK, contractLock, withLock } from './lock.js';
import { listDir, sweepTemps } from './temp.js';
import { isPidAlive } from './pid.js';
import type { Workspace } from './workspace.js';
import { paths } from './workspace.js';

export interface LockWho {
  actor: string;
  command: string;
  now: () => string;
}

/** Log size past which a writer folds the index log into the checkpoint (KAIR_INDEX_COMPACT_BYTES overrides, for tests). */
export function compactBytes(): number {
  const n = Number(process.env.KAIR_INDEX_COMPACT_BYTES);
  return Number.isSafeInteger(n) && n > 0 ? n : 64 * 1024;
}

/**
 * Records index entries (decision 028): one append to `index.log`, no workspace-wide lock, so
 * writers of different contracts never wait for each other. When the log has grown past
 * compactBytes() or the checkpoint is missing, the writer also folds the log into the
 * checkpoint if nobody else is doing so (the `_index` lock is tried, never waited for).
 * `timeoutMs` is kept for callers' sake: nothing here waits.
 */
export function updateIndex(ws: Workspace, who: LockWho, _timeoutMs: number, entries: IndexEntry[]): void {
  settleIndex(ws, who, appendIndexEntries(ws, entries));
}

/** Compacts when the log (of `size` bytes, measured when omitted) is due or the checkpoint is missing. */
export function settleIndex(ws: Workspace, who: LockWho, size?: number): void {
  let n = size;
  if (n === undefined) {
    try {
      n = statSync(indexFiles.log(ws)).size;
    } catch {
      n = 0;
    }
  }
  // Also when a killed holder left the `_index` lock or files in .kair/tmp/: only the lock's
  // next holder recovers and sweeps them, and writers no longer take it on every write.
  if (n > compactBytes() || !existsSync(indexFiles.checkpoint(ws)) || existsSync(`${paths.locks(ws)}/${INDEX_LOCK}.lock`) || stagingLeftovers(ws)) compactIndex(ws, who);
}

/** What a killed writer left in .kair/tmp/ (a live propose's folder is not a leftover): the compaction sweeps it. */
function stagingLeftovers(ws: Workspace): boolean {
  return listDir(paths.staging(ws)).some((n) => {
    const staged = /^propose-[a-z0-9_-]+-(\d+)-\d+$/.exec(n);
    return !staged || !isPidAlive(Number(staged[1]));
  });
}

/**
 * Appends `\n<entry>\n` records to index.log (not fsynced: the index is derived, and a lost
 * line is a lagging entry the next writer of that contract replaces). A compaction may rename
 * the log away between our open and our write; the line then landed in the log being folded,
 * perhaps after it was read, so when the file we wrote is no longer `index.log` the records are
 * appended again (an entry written twice is harmless: the later copy of an id wins). Returns the
 * log's size after the append.
 */
export function appendIndexEntries(ws: Workspace, entries: StoredEntry[]): number {
  const file = indexFiles.log(ws);
  const text = entries.map((e) => `\n${JSON.stringify(e)}\n`).join('');
  for (let attempt = 0; ; attempt++) {
    const fd = openSync(file, 'a');
    let st;
    try {
      writeSync(fd, text);
      st = fstatSync(fd);
    } finally {
      closeSync(fd);
    }
    let now;
    try {
      now = statSync(file);
    } catch {
      now = null;
    }
    if ((now && now.ino === st.ino && now.dev === st.dev) || attempt >= 3) return st.size;
  }
}

/** Folds the log into the checkpoint unless another process holds the `_index` lock. True when it did. */
export function compactIndex(ws: Workspace, who: LockWho): boolean {
  try {
    withLock(paths.locks(ws), INDEX_LOCK, who, 0, () => compactLocked(ws));
    return true;
  } catch {
    // Busy (another process compacts, or a holder on another host, never recovered
    // automatically) or failing: the entry is already in index.log and readers merge it, so the
    // command has nothing to report; the next writer tries again. A fold held up by another
    // host is reported by `verify` (index_behind, once the log is overdue) and `doctor`.
    return false;
  }
}

/**
 * The compaction, under the `_index` lock. Every step leaves files a reader merges to the same
 * index: (1) index.log is renamed to index.compacting.log (writers start a new log), unless a
 * killed compaction left one, which is folded first; (2) checkpoint + that log are merged and
 * the checkpoint is rewritten atomically; (3) the set-aside log is removed. Folding the same log
 * twice gives the same checkpoint. An unreadable checkpoint is rebuilt from the contract folders.
 * `stopAfter` ends it early, as a kill after that step would (the property test).
 */
export function compactLocked(ws: Workspace, stopAfter = 3): void {
  const compacting = indexFiles.compacting(ws);
  const leftover = existsSync(compacting);
  if (!leftover) {
    try {
      renameSync(indexFiles.log(ws), compacting);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  if (stopAfter < 2) return;
  const folded = new Map<string, StoredEntry>();
  const text = readTextFile(compacting);
  if (text !== null) {
    for (const line of text.split('\n')) {
      const e = line === '' ? null : parseEntryLine(line);
      if (e) folded.set(e.id, e);
    }
  }
  const fast = fastMerge(ws, readTextFile(indexFiles.checkpoint(ws)), folded);
  if (fast) writeIndexLines(ws, fast);
  else writeIndex(ws, slowMerge(ws, folded));
  if (stopAfter < 3) return;
  try {
    unlinkSync(compacting);
  } catch {
    // not there (nothing was set aside)
  }
  // A killed compaction's log is folded first; then the log written since, once.
  if (leftover && existsSync(indexFiles.log(ws))) compactLocked(ws);
}

/** A checkpoint line kair wrote (not pending): carried over as text, without parsing it. */
const PLAIN_LINE = /^\{"id":"([a-z0-9][a-z0-9_-]{0,79})","intent":"(?:[^"\\]|\\.)*","state":"[A-Z_]+","updated_at":"[^"\\]*","version":\d+\}$/;

/**
 * The merge of a sorted checkpoint with the set-aside log, line by line: lines the log does not
 * replace are copied as text (at 100,000 contracts, parsing every line was most of a
 * compaction). Null when the checkpoint is not in kair's sorted one-entry-per-line form.
 */
function fastMerge(ws: Workspace, text: string | null, folded: Map<string, StoredEntry>): string[] | null {
  if (text === null || !text.startsWith(CHECKPOINT_HEAD)) return null;
  const logIds = [...folded.keys()].sort();
  const out: string[] = [];
  let li = 0;
  let last = '';
  const emit = (e: StoredEntry) => {
    for (const x of e.pending ? settlePending(ws, e) : [e]) out.push(JSON.stringify(x));
  };
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i]!;
    if (line === '' || line === ']') continue;
    if (line.endsWith(',')) line = line.slice(0, -1);
    const m = PLAIN_LINE.exec(line);
    let e: StoredEntry | null = null;
    let id: string;
    if (m) id = m[1]!;
    else {
      e = parseEntryLine(line);
      if (!e) continue; // not an entry (a hand edit): dropped
      id = e.id;
    }
    if (id <= last) return null; // not sorted: the slow merge sorts it
    last = id;
    while (li < logIds.length && logIds[li]! < id) emit(folded.get(logIds[li++]!)!);
    if (li < logIds.length && logIds[li] === id) emit(folded.get(logIds[li++]!)!);
    else if (e) emit(e);
    else out.push(line);
  }
  while (li < logIds.length) emit(folded.get(logIds[li++]!)!);
  return out;
}

/** Checkpoint and log merged by id and sorted; an unreadable checkpoint is rebuilt from the folders. */
function slowMerge(ws: Workspace, folded: Map<string, StoredEntry>): StoredEntry[] {
  const cp = readCheckpoint(ws);
  let entries: StoredEntry[];
  if (cp) {
    const byId = new Map<string, StoredEntry>();
    for (const e of cp.entries) byId.set(e.id, e);
    for (const [id, e] of folded) byId.set(id, e);
    entries = [...byId.values()];
  } else {
    // The folders are the truth; from the log only proposes still in flight are kept.
    entries = rebuildIndexEntries(ws);
    const have = new Set(entries.map((e) => e.id));
    for (const e of folded.values()) if (e.pending && !have.has(e.id)) entries.push(e);
  }
  entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return entries.flatMap((e) => (e.pending ? settlePending(ws, e) : [e]));
}

/**
 * A `pending` entry is a propose's, appended before its folder was renamed into place. Once the
 * folder exists it is an ordinary entry. Without a folder it is dropped only when no propose can
 * still be holding it: a propose holds its lock from before the append until after the rename,
 * so a lock seen absent first and a folder seen absent next means that propose died or failed.
 */
function settlePending(ws: Workspace, e: StoredEntry): StoredEntry[] {
  const locks = paths.locks(ws);
  const held = existsSync(`${locks}/${contractLock(e.id)}.lock`) || existsSync(`${locks}/${PROPOSE_LOCK}.lock`);
  if (folderExists(ws, e.id)) return [plainEntry(e)];
  return held ? [e] : [];
}

/**
 * Writes the checkpoint (caller holds the `_index` lock): a JSON array, one entry per line,
 * sorted by id, so a page is found by binary search and read alone. It is written in .kair/tmp/
 * and renamed into place, so a killed write leaves its temp file where one small readdir finds
 * it, not among 10,000 contract folders; the index lock's holder sweeps it.
 */
export function writeIndex(ws: Workspace, index: StoredEntry[]): void {
  writeIndexLines(ws, index.map((e) => JSON.stringify(e)));
}

function writeIndexLines(ws: Workspace, lines: string[]): void {
  const staging = paths.staging(ws);
  sweepTemps([staging]);
  const staged = join(staging, 'index.json');
  const body = lines.join(',\n');
  writeFileAtomicSync(staged, CHECKPOINT_HEAD + body + (body ? '\n' : '') + ']\n', { derived: true });
  renameSync(staged, paths.index(ws));
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
  const { contract: cur, events, checkpoints } = sealDrafts(c, drafts, meta);
  // Each checkpoint's state is on disk before the event that names it.
  for (const cp of checkpoints) writeFileAtomicSync(join(paths.checkpoints(ws, c.id), `${cp.through}.json`), cp.state + '\n', { derived: true });
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
  /** The first DPC, or its text (jsonText of it) as the storage port passes it. */
  dpc: Dpc | string,
  dpcEvent: EventDraft | null,
  /** Runs after the folder is built and before it is renamed into place (the index's pending entry). */
  beforeRename?: (c: Contract) => void,
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
    writeFileAtomicSync(join(tmp, 'dpc', 'dpc_v1.json'), typeof dpc === 'string' ? dpc : jsonText(dpc));
    fsyncDir(tmp);
    beforeRename?.(contract);
    try {
      renameSync(tmp, join(root, id));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        if (beforeRename) restoreEntry(ws, id);
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

/** After a pending entry whose propose lost to a folder already there: that contract's entry again. */
function restoreEntry(ws: Workspace, id: string): void {
  try {
    appendIndexEntries(ws, [indexEntry(loadContract(ws, id).contract)]);
  } catch {
    // a broken contract is verify's business; a compaction settles the pending entry
  }
}

/** The pending index entry a propose appends before its folder exists (see settlePending). */
export function appendPendingEntry(ws: Workspace, c: Contract): void {
  appendIndexEntries(ws, [{ ...indexEntry(c), pending: true }]);
}

export function writeText(file: string, text: string, opts: AtomicWriteOptions = {}): void {
  writeFileAtomicSync(file, text, opts);
}

