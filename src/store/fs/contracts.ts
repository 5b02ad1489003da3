/**
 * Reading contracts: snapshots rolled forward from history, the index cache. No locks, no
 * hashing, no writes: the read-only commands load only this (writes are in contract-writes.ts).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { Contract } from '../../domain/contract.js';
import { fold } from '../../domain/contract.js';
import { kairError } from '../../domain/errors.js';
import { readHistory, readHistoryTail } from './history.js';
import type { IndexEntry } from './index-read.js';
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

export function integrity(id: string, message: string): never {
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

const ID_NAME = /^[a-z0-9][a-z0-9_-]{0,79}$/;

export type { IndexEntry } from './index-read.js';

// Moved to src/domain/chain.ts; re-exported for existing importers.
import { indexEntry } from '../../domain/chain.js';
export { indexEntry };

/** Contract folder names on disk (temp folders of an unfinished propose excluded). */
export function listContractIds(ws: Workspace): string[] {
  let names: string[];
  try {
    names = readdirSync(paths.contracts(ws));
  } catch {
    return [];
  }
  // Only names that can be ids: the index's files, temp files (index.json.<n>) and staging folders never count.
  return names.filter((n) => ID_NAME.test(n)).sort();
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

/** A file's text, or null when it is missing or unreadable. */
export function readTextFile(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export function readJsonFile<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

export { rel };

