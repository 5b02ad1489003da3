/**
 * The context every use case gets. Workspace and config are resolved lazily so that each use
 * case checks its arguments first (exit 2) and only then touches the workspace (exit 4).
 */
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Config } from '../domain/config.js';
import { kairError } from '../domain/errors.js';
import { DEFAULT_MAX_INPUT_BYTES } from '../domain/json-input.js';
import type { Workspace } from '../store/fs/workspace.js';
import { findWorkspace, loadConfig } from '../store/fs/workspace.js';
import { assertLocalBackend } from '../store/backend-guard.js';

export interface CtxOptions {
  dir?: string;
  actor?: string;
  lockTimeoutMs?: number;
  command: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Evaluated only when a command would ask: touching process.stdin loads the stream stack. */
  interactive: () => boolean;
  /** Asks a question on the terminal and returns the answer line (null at end of input). */
  ask?: (question: string) => string | null;
  /** Shows (or, with null, clears) a one-line progress message; absent when stderr is not a terminal. */
  progress?: () => ((line: string | null) => void) | undefined;
  /** Reports something the user should know that does not change the outcome (stderr). */
  warn?: (message: string) => void;
}

export interface Ctx {
  readonly ws: Workspace;
  readonly config: Config;
  actor(): string;
  now(): string;
  readonly lockTimeoutMs: number;
  /** The --dir flag as given (init creates the workspace there). */
  readonly dirFlag: string | undefined;
  readonly command: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** stdin and stderr are a TTY: a command may ask a question. */
  interactive(): boolean;
  /** Set only when a question can be asked (interactive). */
  readonly ask: ((question: string) => string | null) | undefined;
  /** Set only when progress can be shown (stderr is a terminal, not --quiet). */
  readonly progress: ((line: string | null) => void) | undefined;
  /** A warning for stderr: e.g. a derived file that could not be written after the commit point. */
  warn(message: string): void;
}

/** RFC 3339 date-time with a time zone (`Z` or `±hh:mm`), e.g. 2026-01-30T12:00:00Z. */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** The clock; a bad KAIR_NOW fails at the first reading, so commands that never read it ignore it. */
export function makeClock(env: NodeJS.ProcessEnv): () => string {
  const fixed = env.KAIR_NOW;
  if (fixed === undefined || fixed === '') return () => new Date().toISOString();
  let iso: string | undefined;
  return () => {
    if (iso === undefined) {
      const t = RFC3339.test(fixed) ? Date.parse(fixed.replace(' ', 'T')) : NaN;
      if (Number.isNaN(t)) {
        throw kairError('USAGE_ERROR', `KAIR_NOW must be an RFC 3339 time with a time zone (e.g. 2026-01-30T12:00:00Z), got ${quoteScalar(fixed)}`, { env: 'KAIR_NOW' });
      }
      iso = new Date(t).toISOString();
    }
    return iso;
  };
}

/** A value quoted in a message: JSON-escaped (no control characters) and at most 80 characters. */
function quoteScalar(v: string): string {
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
}

/**
 * An actor given by --actor/--by or KAIR_ACTOR: empty or carrying control characters is a usage
 * error (it would be recorded in history and printed to terminals).
 */
export function checkActor(value: string | undefined, source: string): void {
  if (value === undefined) return;
  // eslint-disable-next-line no-control-regex -- C0, DEL and C1 controls are what is refused
  if (value.trim() === '' || /[\u0000-\u001f\u007f-\u009f]/.test(value)) {
    throw kairError('USAGE_ERROR', `${source} must be a non-empty name without control characters, got ${quoteScalar(value)}`, { [source.startsWith('-') ? 'flag' : 'env']: source });
  }
}

const CLOCKLESS_COMMANDS = new Set(['init', 'version', 'completion']);
const CONFIG_COMMANDS = new Set(['config get', 'config set']);

export function createCtx(o: CtxOptions): Ctx {
  let ws: Workspace | undefined;
  let config: Config | undefined;
  let actor: string | undefined;
  const now = makeClock(o.env);
  // A bad KAIR_NOW or actor is an argument error, reported before anything is read or written;
  // the commands that need no workspace (and record no time or actor) never read them.
  if (!CLOCKLESS_COMMANDS.has(o.command)) {
    now();
    // Checked with the arguments (exit 2 before the workspace's 4), not when first recorded.
    checkActor(o.actor, '--actor/--by');
    if (o.actor === undefined) checkActor(o.env.KAIR_ACTOR, 'KAIR_ACTOR');
  }
  const ctx: Ctx = {
    get ws() {
      if (ws) return ws;
      const found = findWorkspace({ dir: o.dir, env: o.env, cwd: o.cwd });
      // `config get/set` stay usable: they are how the block is changed back to local.
      if (!CONFIG_COMMANDS.has(o.command)) assertLocalBackend(found, o.command);
      return (ws = found);
    },
    get config() {
      return (config ??= loadConfig(ctx.ws));
    },
    actor: () => (actor ??= resolveActor(o.actor, o.env, o.dir ? o.dir : o.cwd)),
    now,
    lockTimeoutMs: o.lockTimeoutMs ?? 10_000,
    dirFlag: o.dir,
    command: o.command,
    env: o.env,
    cwd: o.cwd,
    interactive: o.interactive,
    get ask() {
      return o.ask && o.interactive() ? o.ask : undefined;
    },
    get progress() {
      return o.progress?.();
    },
    warn: (m) => o.warn?.(m),
  };
  return ctx;
}

/** --actor/--by > KAIR_ACTOR > git user.name of the workspace > $USER > OS user > unknown. */
export function resolveActor(flag: string | undefined, env: NodeJS.ProcessEnv, from: string): string {
  const pick = (v: string | undefined | null) => (v && v.trim() ? v.trim() : undefined);
  // A name found in git's config or the environment is recorded and printed like a given one:
  // one with control characters is refused too, saying how to name the actor instead.
  const found = (v: string | undefined | null, source: string) => {
    const name = pick(v);
    // eslint-disable-next-line no-control-regex -- C0, DEL and C1 controls are what is refused
    if (name !== undefined && /[\u0000-\u001f\u007f-\u009f]/.test(name)) {
      throw kairError('USAGE_ERROR', `${source} ${quoteScalar(name)} has control characters; name the actor with --actor or KAIR_ACTOR`, { source, hint: 'pass --actor NAME or set KAIR_ACTOR' });
    }
    return name;
  };
  return pick(flag) ?? pick(env.KAIR_ACTOR) ?? found(gitUserName(from, env), 'git user.name') ?? found(env.USER, '$USER') ?? found(osUser(), 'the OS user name') ?? 'unknown';
}

function osUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/** Reads user.name from the repo's .git/config, then the global configs, without spawning git. */
function gitUserName(from: string, env: NodeJS.ProcessEnv): string | undefined {
  const files: string[] = [];
  let cur = from;
  for (;;) {
    files.push(join(cur, '.git', 'config'));
    const up = dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  const home = env.HOME ?? homedir();
  files.push(join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'git', 'config'), join(home, '.gitconfig'));
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    const name = iniUserName(text);
    if (name) return name;
  }
  return undefined;
}

export function iniUserName(text: string): string | undefined {
  let inUser = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inUser = /^\[user\]$/i.test(line);
      continue;
    }
    const m = inUser ? /^name\s*=\s*(.*)$/i.exec(line) : null;
    if (m) return m[1]!.replace(/^"(.*)"$/, '$1').trim();
  }
  return undefined;
}

/**
 * `limits.max_input_bytes` of the workspace's config, or the default where there is no (valid)
 * workspace: input is checked before the workspace (exit 2 before 4), and a bad config is
 * reported by the command's next step.
 */
export function inputLimit(ctx: Ctx): number {
  try {
    return ctx.config.limits?.max_input_bytes ?? DEFAULT_MAX_INPUT_BYTES;
  } catch {
    return DEFAULT_MAX_INPUT_BYTES;
  }
}
