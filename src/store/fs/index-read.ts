/**
 * Reading the contract index (decision 028). The index is a cache made of three files in
 * `contracts/`, applied in this order, a later entry of an id replacing an earlier one:
 *
 * - `index.json`: the checkpoint, a JSON array sorted by id with one entry per line, so a page is
 *   found by binary search over bytes and read without parsing the rest;
 * - `index.compacting.log`: the log a compaction has set aside and not yet folded in (present only
 *   while one runs, or after one was killed);
 * - `index.log`: one line per upsert, appended by writers without a workspace-wide lock.
 *
 * Log records are written as `\n<json>\n`, so a torn record never glues onto the next one; a line
 * that is not a whole entry is skipped (and counted for `verify`). An entry marked `pending` was
 * appended by a propose before its folder was renamed into place: it counts only once the folder
 * exists. No locks, no writes: read-only commands load this.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import type { Workspace } from './workspace.js';
import { paths } from './workspace.js';

import type { IndexEntry } from '../../domain/chain.js';

export type { IndexEntry };

/** An entry as stored: `pending` until the propose that wrote it has renamed its folder into place. */
export type StoredEntry = IndexEntry & { pending?: true };

const ID_NAME = /^[a-z0-9][a-z0-9_-]{0,79}$/;
const S = '/';

export const indexFiles = {
  checkpoint: (ws: Workspace) => paths.index(ws),
  log: (ws: Workspace) => `${paths.contracts(ws)}${S}index.log`,
  compacting: (ws: Workspace) => `${paths.contracts(ws)}${S}index.compacting.log`,
};

/** The first line of a checkpoint kair wrote; anything else (an older single-line index, a hand edit) is read whole. */
export const CHECKPOINT_HEAD = '[\n';

/** An entry parsed from one line, or null when the line is not a whole, well-formed entry. */
export function parseEntryLine(line: string): StoredEntry | null {
  let text = line;
  if (text.endsWith(',')) text = text.slice(0, -1);
  if (!text.startsWith('{')) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const e = v as Record<string, unknown>;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return null;
  if (typeof e.id !== 'string' || !ID_NAME.test(e.id) || typeof e.intent !== 'string' || typeof e.state !== 'string' || typeof e.updated_at !== 'string' || !Number.isInteger(e.version)) return null;
  const out: StoredEntry = { id: e.id, intent: e.intent, state: e.state, updated_at: e.updated_at, version: e.version as number };
  if (e.pending === true) out.pending = true;
  return out;
}

/** The entry without its storage marks: what `list` shows and `verify` compares. */
export function plainEntry(e: StoredEntry): IndexEntry {
  return { id: e.id, intent: e.intent, state: e.state, updated_at: e.updated_at, version: e.version };
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export interface LogRead {
  /** Entries by id, the last line of each id winning (insertion order is not id order). */
  byId: Map<string, StoredEntry>;
  /** Non-empty lines that are not whole entries (a torn append, a hand edit). */
  badLines: number;
}

/** index.compacting.log then index.log, read whole (compaction keeps them small). */
export function readLogs(ws: Workspace): LogRead {
  // The log first: a compaction that starts after this read moves these lines into the files
  // read next, so they are seen again rather than missed.
  const log = readText(indexFiles.log(ws));
  const compacting = readText(indexFiles.compacting(ws));
  const out: LogRead = { byId: new Map(), badLines: 0 };
  for (const text of [compacting, log]) {
    if (text === null) continue;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const e = parseEntryLine(line);
      if (!e) out.badLines++;
      else {
        out.byId.delete(e.id); // keep insertion order = recency, not needed but cheap
        out.byId.set(e.id, e);
      }
    }
  }
  return out;
}

export interface CheckpointRead {
  /** Entries in file order (sorted by id when kair wrote it). */
  entries: StoredEntry[];
  badLines: number;
  /** True when the entries are strictly increasing by id. */
  sorted: boolean;
}

/** The whole checkpoint, or null when it is missing or not a JSON array at all. */
export function readCheckpoint(ws: Workspace): CheckpointRead | null {
  const text = readText(indexFiles.checkpoint(ws));
  if (text === null) return null;
  const out: CheckpointRead = { entries: [], badLines: 0, sorted: true };
  if (!text.startsWith(CHECKPOINT_HEAD)) {
    // An index written before decision 028 (one line), or by hand: parse it whole.
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return null;
    }
    if (!Array.isArray(v)) return null;
    for (const item of v) {
      const e = parseEntryLine(JSON.stringify(item));
      if (e) out.entries.push(e);
      else out.badLines++;
    }
  } else {
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '' || line === ']') continue;
      const e = parseEntryLine(line);
      if (e) out.entries.push(e);
      else out.badLines++;
    }
  }
  for (let i = 1; i < out.entries.length; i++) if (!(out.entries[i - 1]!.id < out.entries[i]!.id)) out.sorted = false;
  return out;
}

export interface MergedIndex {
  /** Sorted by id, one per id. */
  entries: StoredEntry[];
  /** False when index.json is missing or unreadable (its entries then come only from the logs). */
  checkpoint: boolean;
  badLines: number;
}

/** The whole index: checkpoint, then the logs over it. Linear in the number of entries. */
export function readIndexMerged(ws: Workspace): MergedIndex {
  const logs = readLogs(ws);
  const cp = readCheckpoint(ws);
  const byId = new Map<string, StoredEntry>();
  for (const e of cp?.entries ?? []) byId.set(e.id, e);
  for (const [id, e] of logs.byId) byId.set(id, e);
  const entries = [...byId.values()];
  if (logs.byId.size > 0 || !cp?.sorted) entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { entries, checkpoint: cp !== null, badLines: logs.badLines + (cp?.badLines ?? 0) };
}

export interface PageQuery {
  /** Only ids after this one (a keyset cursor: stable while contracts are added). */
  after?: string;
  limit: number;
  state?: string;
  /** Whether a contract's folder exists (the folders are the truth; the index only names them). */
  exists: (id: string) => boolean;
}

export interface Page {
  entries: IndexEntry[];
  /** The id to pass as `after` for the next page, null when this page is the last. */
  next: string | null;
}

/**
 * One page of entries after `after`, reading only the logs and the lines of the checkpoint that
 * the page needs. Null when the checkpoint cannot be paged (missing, an older format, unsorted):
 * the caller then reads the index whole.
 */
export function readIndexPage(ws: Workspace, q: PageQuery): Page | null {
  const logs = readLogs(ws);
  let fd: number;
  try {
    fd = openSync(indexFiles.checkpoint(ws), 'r');
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    const reader = new LineReader(fd, size);
    if (reader.text(0, CHECKPOINT_HEAD.length) !== CHECKPOINT_HEAD) return null;
    const first = CHECKPOINT_HEAD.length;
    let pos = q.after === undefined ? first : seekAfter(reader, first, size, q.after);
    if (pos < 0) return null;
    const after = q.after ?? '';
    const fromLog = [...logs.byId.keys()].filter((id) => id > after).sort();
    let li = 0;
    const out: IndexEntry[] = [];
    let lastId = after;
    const take = (e: StoredEntry): boolean => {
      if (q.state !== undefined && e.state !== q.state) return false;
      if (!q.exists(e.id)) return false;
      out.push(plainEntry(e));
      return out.length > q.limit;
    };
    for (;;) {
      const line = pos < size ? reader.lineAt(pos) : null;
      let cp: StoredEntry | null = null;
      if (line) {
        pos = line.end + 1;
        if (line.text === ']' || line.text === '') {
          if (line.text === ']') pos = size;
          continue;
        }
        cp = parseEntryLine(line.text);
        if (!cp) continue;
        if (cp.id <= lastId) return null; // not sorted: read it whole instead
        lastId = cp.id;
      }
      // Log entries that sort before this checkpoint line (or all that are left at its end).
      const bound = cp?.id;
      while (li < fromLog.length && (bound === undefined || fromLog[li]! <= bound)) {
        const id = fromLog[li++]!;
        if (id === bound) cp = null; // the log's entry replaces the checkpoint's
        if (take(logs.byId.get(id)!)) return finish(out, q.limit);
      }
      if (cp && take(cp)) return finish(out, q.limit);
      if (!line && li >= fromLog.length) return finish(out, q.limit);
    }
  } finally {
    closeSync(fd);
  }
}

function finish(out: IndexEntry[], limit: number): Page {
  if (out.length > limit) return { entries: out.slice(0, limit), next: out[limit - 1]?.id ?? null };
  return { entries: out, next: null };
}

/**
 * The offset of the first checkpoint line whose id is greater than `after` (binary search over
 * bytes: each probe reads the line that starts at or after its offset). -1 when a probed line is
 * not an entry (a hand edit): the caller reads the index whole.
 */
function seekAfter(reader: LineReader, first: number, size: number, after: string): number {
  let lo = first;
  let hi = size;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const line = reader.lineAt(reader.lineStartAtOrAfter(mid, first));
    if (!line || line.text === ']') {
      hi = mid;
      continue;
    }
    const e = parseEntryLine(line.text);
    if (!e) return -1;
    if (e.id > after) hi = mid;
    else lo = line.end + 1;
  }
  return reader.lineStartAtOrAfter(lo, first);
}

/** Reads lines of a file at byte offsets, a block at a time. */
class LineReader {
  private buf = Buffer.alloc(0);
  private bufAt = 0;
  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {}

  private load(at: number, min: number): void {
    if (at >= this.bufAt && at + min <= this.bufAt + this.buf.length) return;
    const len = Math.max(min, 64 * 1024);
    const b = Buffer.alloc(Math.min(len, this.size - at));
    const n = b.length ? readSync(this.fd, b, 0, b.length, at) : 0;
    this.buf = b.subarray(0, n);
    this.bufAt = at;
  }

  text(at: number, len: number): string {
    this.load(at, len);
    return this.buf.subarray(at - this.bufAt, at - this.bufAt + len).toString('utf8');
  }

  /** The offset of the first line that starts at or after `at` (a line starts after a newline). */
  lineStartAtOrAfter(at: number, first: number): number {
    if (at <= first) return first;
    let p = at;
    for (;;) {
      if (p >= this.size) return this.size;
      this.load(p - 1, 1);
      const i = this.buf.indexOf(0x0a, p - 1 - this.bufAt);
      if (i >= 0) return this.bufAt + i + 1;
      p = this.bufAt + this.buf.length + 1;
    }
  }

  /** The line starting at `at` (without its newline) and the offset of its newline (or end of file). */
  lineAt(at: number): { text: string; end: number } | null {
    if (at >= this.size) return null;
    let want = 4096;
    for (;;) {
      this.load(at, Math.min(want, this.size - at));
      const i = this.buf.indexOf(0x0a, at - this.bufAt);
      if (i >= 0) return { text: this.buf.subarray(at - this.bufAt, i).toString('utf8'), end: this.bufAt + i };
      if (this.bufAt + this.buf.length >= this.size) return { text: this.buf.subarray(at - this.bufAt).toString('utf8'), end: this.size };
      want *= 4;
    }
  }
}

/** Whether a contract exists: its history file is there. */
export function folderExists(ws: Workspace, id: string): boolean {
  return existsSync(paths.history(ws, id));
}
