/** Output: one synchronous write per document (faster than process.stdout for one-shot CLIs). */
import { writeSync } from 'node:fs';

export class StdoutClosed extends Error {}

export function writeFd(fd: 1 | 2, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  let spins = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' && spins++ < 100_000) continue; // non-blocking pipe: retry
      if (code === 'EPIPE' || code === 'EBADF') {
        if (fd === 1) throw new StdoutClosed();
        return;
      }
      throw e;
    }
  }
}

export const out = (text: string) => writeFd(1, text.endsWith('\n') ? text : text + '\n');
export const err = (text: string) => writeFd(2, text.endsWith('\n') ? text : text + '\n');

export type ColorLevel = 0 | 1;

/** Colour only on a TTY; NO_COLOR (any value) and --no-color disable it, FORCE_COLOR forces it. */
export function colorLevel(env: NodeJS.ProcessEnv, noColorFlag: boolean, isTTY: boolean): ColorLevel {
  if (noColorFlag) return 0;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return 1;
  if (env.NO_COLOR !== undefined) return 0;
  return isTTY && env.TERM !== 'dumb' ? 1 : 0;
}

const codes = { red: [31, 39], green: [32, 39], yellow: [33, 39], blue: [34, 39], magenta: [35, 39], cyan: [36, 39], gray: [90, 39], bold: [1, 22], dim: [2, 22] } as const;
export type Paint = Record<keyof typeof codes, (s: string) => string>;

export function painter(level: ColorLevel): Paint {
  const p = {} as Paint;
  for (const [name, [open, close]] of Object.entries(codes)) {
    p[name as keyof Paint] = level ? (s: string) => `\u001b[${open}m${s}\u001b[${close}m` : (s: string) => s;
  }
  return p;
}
