/**
 * history.jsonl: one hash-chained event per line. Appends are fsynced before anything that
 * depends on them is written. A last line without its newline is a torn write that was never
 * acknowledged; readers ignore it and the next writer truncates it.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync } from 'node:fs';
import type { HistoryEvent } from '../../domain/contract.js';

export interface HistoryRead {
  events: HistoryEvent[];
  /** Bytes of a torn last line (no trailing newline), 0 if none. */
  tornBytes: number;
  /** Line numbers (1-based) that are not valid JSON events. */
  badLines: number[];
}

/** Splits raw bytes: a torn tail is measured in bytes, before decoding (it may end mid-character). */
function parseLines(buf: Buffer): HistoryRead {
  const { events, tornBytes, badLines } = parseLinesKept(buf);
  return { events, tornBytes, badLines };
}

/** A history read with where each event's line starts in its text (verify scans a few lines again). */
export interface HistoryText extends HistoryRead {
  text: string;
  /** Offset in `text` of the line of events[j]. */
  starts: number[];
}

function parseLinesKept(buf: Buffer): HistoryText {
  const lastNl = buf.lastIndexOf(0x0a);
  const text = buf.subarray(0, lastNl + 1).toString('utf8');
  const tornBytes = buf.length - (lastNl + 1);
  const events: HistoryEvent[] = [];
  const starts: number[] = [];
  const badLines: number[] = [];
  // One pass over the text without an array of every line: the lines die young, the events are kept.
  for (let s = 0, n = 1, nl = text.indexOf('\n'); nl !== -1; s = nl + 1, n++, nl = text.indexOf('\n', s)) {
    try {
      events.push(JSON.parse(text.slice(s, nl)) as HistoryEvent);
      starts.push(s);
    } catch {
      badLines.push(n);
    }
  }
  return { events, tornBytes, badLines, text, starts };
}

export function readHistory(file: string): HistoryRead {
  return parseLines(readFileSync(file));
}

/** readHistory plus the text it was parsed from (verify scans lines for what they name in SQLite without reading the file twice). */
export function readHistoryText(file: string): HistoryText {
  return parseLinesKept(readFileSync(file));
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
      // Drop the partial first line of a window that does not start at the file's beginning.
      const read = parseLines(chunk < size ? buf.subarray(buf.indexOf(0x0a) + 1) : buf);
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


/** The last complete event (a torn tail ignored), reading only the end of the file. */
export function lastEvent(file: string): HistoryEvent | undefined {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    for (let chunk = Math.min(size, 16 * 1024); ; chunk = Math.min(size, chunk * 4)) {
      const buf = Buffer.alloc(chunk);
      readSync(fd, buf, 0, chunk, size - chunk);
      const read = parseLines(chunk < size ? buf.subarray(buf.indexOf(0x0a) + 1) : buf);
      if (read.events.length || chunk === size) return read.events[read.events.length - 1];
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The last complete line's event and the torn bytes after it, parsing only that line: what the
 * commit point's tail check needs before every append.
 */
export function lastLine(file: string): { event: HistoryEvent | undefined; tornBytes: number } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    for (let chunk = Math.min(size, 4096); ; chunk = Math.min(size, chunk * 4)) {
      const buf = Buffer.alloc(chunk);
      readSync(fd, buf, 0, chunk, size - chunk);
      const end = buf.lastIndexOf(0x0a);
      const tornBytes = chunk - (end + 1);
      if (end < 0) {
        if (chunk === size) return { event: undefined, tornBytes };
        continue;
      }
      const start = buf.lastIndexOf(0x0a, end - 1);
      if (start < 0 && chunk < size) continue;
      try {
        return { event: JSON.parse(buf.subarray(start + 1, end).toString('utf8')) as HistoryEvent, tornBytes };
      } catch {
        return { event: undefined, tornBytes };
      }
    }
  } finally {
    closeSync(fd);
  }
}
