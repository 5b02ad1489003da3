/**
 * Reading what a person points kair at (`--file`, stdin): a regular file only, never more than
 * the limit + 1 bytes, and stdin read asynchronously so SIGINT/SIGTERM end a read that never
 * finishes (a synchronous read blocks the event loop, and a library's signal handler would then
 * swallow the signal).
 */
import { closeSync, constants, fstatSync, openSync, read, readSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { kairError } from '../../domain/errors.js';

export type TooLarge = (limit: number) => Error;

const CHUNK = 64 * 1024;

/** A path as messages quote it: one scalar of at most 80 characters (details keep it whole). */
export function quotedPath(path: string): string {
  return path.length > 80 ? `${path.slice(0, 38)}…${path.slice(-41)}` : path;
}

function notRegular(st: Stats, flag: string, full: string): Error | undefined {
  if (st.isFile()) return undefined;
  const shown = quotedPath(full);
  const label = flag ? `${flag} ${shown}` : shown;
  if (st.isFIFO() && !flag) return kairError('USAGE_ERROR', `${label} is a named pipe (FIFO), not a regular file`, { path: full });
  if (st.isFIFO()) {
    return kairError('USAGE_ERROR', `${label} is a named pipe (FIFO), not a regular file; pipe it into \`-\` instead (e.g. \`cat ${shown} | kair plan <id> -\`)`, { ...(flag ? { flag } : {}), path: full, hint: 'pipe it into `-`' });
  }
  const what = st.isDirectory() ? 'a directory' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';
  return kairError('USAGE_ERROR', `${label} is ${what}; give a regular file`, { ...(flag ? { flag } : {}), path: full });
}

/**
 * The text of a regular file, at most `limit` bytes. It is stat'ed before it is opened, so a
 * FIFO or device is refused without being opened; O_NONBLOCK and fstat close the gap of a file
 * swapped for one in between.
 */
/** `flag` names the option the path came from ('' for a file kair finds itself, like the config). */
export function readInputFile(path: string, o: { flag: string; shown?: string; limit: number; tooLarge: TooLarge }): string {
  const shown = o.shown ?? path;
  const cannot = (e: unknown) => kairError('USAGE_ERROR', `${o.flag ? `${o.flag} ` : ''}${quotedPath(shown)}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { flag: o.flag, path: shown });
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw cannot(e);
  }
  const bad = notRegular(st, o.flag, shown);
  if (bad) throw bad;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw cannot(e);
  }
  try {
    const again = notRegular(fstatSync(fd), o.flag, shown);
    if (again) throw again;
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, o.limit + 1 - total));
      const got = readSync(fd, buf, 0, buf.length, null);
      if (got === 0) break;
      chunks.push(buf.subarray(0, got));
      total += got;
      if (total > o.limit) throw o.tooLarge(o.limit);
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** All of stdin, at most `limit` bytes, read without blocking the event loop. */
export function readStdinText(limit: number, tooLarge: TooLarge): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  return new Promise((resolve, reject) => {
    const next = () => {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, limit + 1 - total));
      read(0, buf, 0, buf.length, null, (e, got) => {
        if (e) {
          // A non-blocking stdin (a pipe some shells hand over that way): wait and try again.
          if (e.code === 'EAGAIN') return void setTimeout(next, 5);
          return reject(kairError('USAGE_ERROR', `cannot read stdin (${e.code ?? 'error'})`, { flag: '-' }));
        }
        if (got === 0) return resolve(Buffer.concat(chunks).toString('utf8'));
        chunks.push(buf.subarray(0, got));
        total += got;
        if (total > limit) return reject(tooLarge(limit));
        next();
      });
    };
    next();
  });
}
