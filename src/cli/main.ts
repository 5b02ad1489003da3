/**
 * The entry point: parse argv, build the context, call the handler, render, and map every
 * outcome to an exit status. The only place that decides exit codes.
 */
import { readSync, writeSync } from 'node:fs';
import { createCtx } from '../app/context.js';
import { hintFor } from '../domain/error-hints.js';
import { EXIT, exitForError, isKairError, kairError } from '../domain/errors.js';
import type { KairError } from '../domain/errors.js';
import { VERSION } from '../version.js';
import { StdoutClosed, colorLevel, err, out, painter } from './io.js';
import { loadLazy } from './load-lazy.js';
import { intOption, parseArgv } from './parse.js';
import { escapeControls } from './render/text.js';
import type { Parsed } from './parse.js';

function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

function errorDoc(e: KairError, hint: string | null) {
  const details = hint !== null && e.details.hint === undefined ? { ...e.details, hint } : e.details;
  return { ok: false, ...(e.payload ?? {}), error: { code: e.code, message: e.message, details } };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const json = wantsJson(argv);
  let parsed: Parsed | undefined;
  const quiet = () => parsed?.opts.quiet === true;
  try {
    parsed = parseArgv(argv);
    const p = parsed;
    // process.stdout.isTTY initialises the stdout stream (and the stream modules): only human
    // output needs it, so --json never pays for it.
    const colour = () => colorLevel(env, p.opts.noColor === true, process.stdout.isTTY === true);
    if (p.version && !p.command) {
      out(json ? JSON.stringify({ ok: true, version: VERSION }) : VERSION);
      return EXIT.OK;
    }
    if (p.help || !p.command) {
      const { helpText } = await loadLazy();
      const text = helpText(p.command, VERSION);
      out(json ? JSON.stringify({ ok: true, command: p.command?.name ?? null, help: text }) : text);
      return EXIT.OK;
    }
    const lockTimeoutMs = intOption(p.opts.lockTimeout, '--lock-timeout');
    const ctx = createCtx({
      dir: p.opts.dir as string | undefined,
      actor: p.opts.actor as string | undefined,
      lockTimeoutMs,
      command: p.command.name,
      env,
      cwd: process.cwd(),
      interactive: () => promptsAllowed(env, json, p.opts.noInput === true) && process.stdin.isTTY === true && process.stderr.isTTY === true,
      ask: askLine,
      // Not with --json (a script is reading), and evaluated only when a run asks: process.stderr
      // loads Node's stream stack, which the read path never pays for.
      progress: () => (!json && !quiet() && process.stderr.isTTY === true ? progressLine : undefined),
      warn: (m) => {
        if (!quiet()) writeSync(2, `warning: ${m}\n`);
      },
      localWrites: async () => (await loadLazy()).localWrites,
    });
    let result;
    try {
      result = await p.command.handler(p, ctx);
    } finally {
      await ctx.closeStorage();
    }
    const exit = result.exit ?? EXIT.OK;
    if (json) out(JSON.stringify({ ok: exit === EXIT.OK, ...result.json }));
    else if (quiet()) {
      // Only the primary value, so `ID=$(kair propose "x" -q)` captures exactly the id.
      if (result.primary !== undefined) out(escapeControls(result.primary, false));
    } else {
      const level = colour();
      const text = result.text(painter(level));
      if (text) out(escapeControls(text, level === 1));
    }
    return exit;
  } catch (e) {
    if (e instanceof StdoutClosed) return EXIT.OK;
    const ke = isKairError(e) ? e : internal(e);
    const code = exitForError(ke);
    // What to do next: the error's own hint, else its code's; text and --json say the same.
    const hint = typeof ke.details?.hint === 'string' && ke.details.hint !== '' ? ke.details.hint : fallbackHint(ke, parsed);
    try {
      if (json) out(JSON.stringify(errorDoc(ke, hint)));
      else {
        const text = (ke as { text?: string }).text;
        if (text && !quiet()) out(escapeControls(text, false));
        if (!quiet() || code !== EXIT.OK) err(escapeControls(`kair: ${ke.code}: ${ke.message}`, false));
        if (hint) err(escapeControls(`hint: ${hint}`, false));
      }
    } catch (e2) {
      if (!(e2 instanceof StdoutClosed)) throw e2;
      return EXIT.OK;
    }
    if (env.KAIR_DEBUG && !isKairError(e)) err(String((e as Error)?.stack ?? e));
    return code;
  }
}

/**
 * A script never gets a question: not with --json (a program reads stdout), --no-input,
 * KAIR_NO_INPUT=1, or CI set to anything but empty, 0 or false (CI services set CI=true).
 */
export function promptsAllowed(env: NodeJS.ProcessEnv, json: boolean, noInput: boolean): boolean {
  if (json || noInput || env.KAIR_NO_INPUT === '1') return false;
  const ci = (env.CI ?? '').trim().toLowerCase();
  return ci === '' || ci === '0' || ci === 'false';
}

/** When an error carries no hint of its own: its code's (a usage error names the command's help). */
function fallbackHint(e: KairError, p: Parsed | undefined): string | null {
  if (e.code === 'USAGE_ERROR') return p?.command ? `run \`kair ${p.command.name} --help\` for its arguments and options` : 'run `kair --help`';
  return hintFor(e.code, e.details);
}

function internal(e: unknown): KairError {
  const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return kairError('INTERNAL_ERROR', `unexpected error: ${msg}`);
}

export function runMain(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`kair: INTERNAL_ERROR: ${String((e as Error)?.message ?? e)}\n`);
      process.exitCode = 1;
    },
  );
}

/** One line from the terminal, read synchronously (the run loop is synchronous); null at end of input. */
function askLine(question: string): string | null {
  return withDefaultSignals(() => {
    for (;;) {
      // The question quotes simulation titles and fields: user-supplied, so escaped like all output.
      writeSync(2, `\r\x1b[K${escapeControls(question, false)} `);
      const line = readLine();
      // Enter alone is no answer: ask again rather than record it as ambiguous.
      if (line === null || line.trim() !== '') return line;
    }
  });
}

/**
 * Runs a blocking read with SIGINT/SIGTERM at their default action. A JavaScript signal handler
 * (signal-exit's, installed when proper-lockfile loads) cannot run while readSync blocks the
 * event loop, so with one installed Ctrl-C at a prompt did nothing until Enter. With none, the
 * signal ends kair at once (130/143); nothing is half-written (a prompt comes before the claim),
 * and the next command recovers the run and any lock from the dead pid.
 */
function withDefaultSignals<T>(read: () => T): T {
  const saved = (['SIGINT', 'SIGTERM'] as const).map((s) => [s, process.listeners(s)] as const);
  for (const [s] of saved) process.removeAllListeners(s);
  try {
    return read();
  } finally {
    for (const [s, fns] of saved) for (const fn of fns) process.on(s, fn);
  }
}

function readLine(): string | null {
  const buf = Buffer.alloc(1);
  const bytes: number[] = [];
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, 1, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      return null;
    }
    if (n === 0) return bytes.length ? Buffer.from(bytes).toString('utf8') : null;
    if (buf[0] === 0x0a) return Buffer.from(bytes).toString('utf8').replace(/\r$/, '');
    bytes.push(buf[0]!);
  }
}

/** One line on stderr, rewritten in place; null clears it. */
function progressLine(line: string | null): void {
  writeSync(2, line === null ? '\r\x1b[K' : `\r\x1b[K${line}`);
}
