/**
 * Contract persistence: snapshot + history per contract, and the index cache.
 * Order of a write: append + fsync the events, then the snapshot atomically, then the index.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Contract, EventDraft, HistoryEvent } from '../../domain/contract.js';
import { fold } from '../../domain/contract.js';
import { GENESIS_HASH } from '../../domain/canonical.js';
import { kairError } from '../../domain/errors.js';
import type { Dpc } from '../../domain/dpc.js';
import { writeFileAtomicSync, writeJsonAtomic, fsyncDir } from './atomic.js';
import { appendEvents, readHistory, readHistoryTail } from './history.js';
import { withLock } from './lock.js';
import type { Workspace } from './workspace.js';
import { paths, rel } from './workspace.js';

export interface Loaded {
  contract: Contract;
  /** Bytes of a torn last history line that the next writer must cut off. */
  tornBytes: number;
  /** True when the snapshot on disk was behind the history and was rolled forward. */
  rolledForward: boolean;
}

export function contractExists(ws: Workspace, id: string): boolean {
  return existsSync(paths.history(ws, id));
}

export function assertContract(ws: Workspace, id: string): void {
  if (!contractExists(ws, id)) {
    throw kairError('CONTRACT_NOT_FOUND', `no contract ${JSON.stringify(id)} in this workspace (see \`kair list\`)`, { contract_id: id });
  }
}

function integrity(id: string, message: string): never {
  throw kairError('INTEGRITY_FAILED', `${id}: ${message}; run \`kair verify ${id}\``, { contract_id: id });
}

/**
 * Loads a snapshot, checking only that the history line it claims as its head is there with
 * that hash, and rolling it forward in memory when the history is ahead.
 */
export function loadContract(ws: Workspace, id: string): Loaded {
  // Missing or unreadable snapshots are derived state: rebuild them from history.
  const snap = readJsonFile<Contract>(paths.snapshot(ws, id));
  const file = paths.history(ws, id);
  if (!snap) {
    const all = readHistory(file);
    if (all.badLines.length) integrity(id, `history line ${all.badLines[0]} is not valid JSON`);
    const c = fold(all.events);
    if (!c) integrity(id, 'history is empty');
    return { contract: c, tornBytes: all.tornBytes, rolledForward: true };
  }
  const tail = readHistoryTail(file, snap.history_seq);
  if (tail.badLines.length) integrity(id, 'the last history lines are not valid JSON');
  const head = tail.events[0];
  if (!head || head.seq !== snap.history_seq) integrity(id, `history has no event ${snap.history_seq} (the snapshot's head)`);
  if (head.hash !== snap.history_head) integrity(id, `history event ${snap.history_seq} does not match the snapshot's history_head`);
  const ahead = tail.events.slice(1);
  let prev = head.hash;
  for (const e of ahead) {
    if (e.prev !== prev) integrity(id, `history event ${e.seq} does not link to event ${e.seq - 1}`);
    prev = e.hash;
  }
  const contract = ahead.length ? (fold(ahead, snap) as Contract) : snap;
  return { contract, tornBytes: tail.tornBytes, rolledForward: ahead.length > 0 };
}

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

export function readIndex(ws: Workspace): IndexEntry[] | null {
  try {
    const v = JSON.parse(readFileSync(paths.index(ws), 'utf8'));
    return Array.isArray(v) ? (v as IndexEntry[]) : null;
  } catch {
    return null;
  }
}

/** Contract folder names on disk (temp folders of an unfinished propose excluded). */
export function listContractIds(ws: Workspace): string[] {
  let names: string[];
  try {
    names = readdirSync(paths.contracts(ws));
  } catch {
    return [];
  }
  return names.filter((n) => !n.startsWith('.') && n !== 'index.json').sort();
}

export interface LockWho {
  actor: string;
  command: string;
  now: () => string;
}

/** Short locked read-modify-write of the index; rebuilds it from the contracts when unreadable. */
export function updateIndex(ws: Workspace, who: LockWho, timeoutMs: number, entries: IndexEntry[]): void {
  withLock(paths.locks(ws), 'index', who, timeoutMs, () => {
    let index = readIndex(ws);
    if (!index) index = rebuildIndexEntries(ws);
    const byId = new Map(index.map((e) => [e.id, e]));
    for (const e of entries) byId.set(e.id, e);
    writeJsonAtomic(paths.index(ws), [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1)));
  });
}

export function rebuildIndexEntries(ws: Workspace): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (const id of listContractIds(ws)) {
    try {
      out.push(indexEntry(loadContract(ws, id).contract));
    } catch {
      // a broken contract is verify's business; the index just leaves it out
    }
  }
  return out;
}

/** Appends events for a loaded contract and writes the new snapshot. Caller holds the lock. */
export function commitEvents(
  ws: Workspace,
  c: Contract,
  drafts: EventDraft[],
  meta: { at: string; actor: string },
): { contract: Contract; events: HistoryEvent[] } {
  const events = appendEvents(paths.history(ws, c.id), { seq: c.history_seq, hash: c.history_head }, drafts, meta);
  const next = events.length ? (fold(events, c) as Contract) : c;
  if (events.length) writeJsonAtomic(paths.snapshot(ws, c.id), next);
  return { contract: next, events };
}

export function writeSnapshot(ws: Workspace, c: Contract): void {
  writeJsonAtomic(paths.snapshot(ws, c.id), c);
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
  const tmp = join(root, `.tmp-${id}-${process.pid}-${Date.now()}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const drafts = dpcEvent ? [draft, dpcEvent] : [draft];
    const events = appendEvents(join(tmp, 'history.jsonl'), { seq: 0, hash: GENESIS_HASH }, drafts, meta);
    const contract = fold(events) as Contract;
    writeJsonAtomic(join(tmp, 'contract.json'), contract);
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

export function readJsonFile<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

export function writeText(file: string, text: string): void {
  writeFileAtomicSync(file, text);
}

export function fileMtime(file: string): number | null {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

export { rel };
