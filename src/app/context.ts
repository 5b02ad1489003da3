/**
 * The context every use case gets. Workspace and config are resolved lazily so that each use
 * case checks its arguments first (exit 2) and only then touches the workspace (exit 4).
 */
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Config } from '../domain/config.js';
import { kairError } from '../domain/errors.js';
import type { Workspace } from '../store/fs/workspace.js';
import { findWorkspace, loadConfig } from '../store/fs/workspace.js';

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

export function makeClock(env: NodeJS.ProcessEnv): () => string {
  const fixed = env.KAIR_NOW;
  if (fixed) {
    const t = Date.parse(fixed);
    if (Number.isNaN(t)) throw kairError('USAGE_ERROR', `KAIR_NOW is not an ISO-8601 time: ${JSON.stringify(fixed)}`, { KAIR_NOW: fixed });
    const iso = new Date(t).toISOString();
    return () => iso;
  }
  return () => new Date().toISOString();
}

export function createCtx(o: CtxOptions): Ctx {
  let ws: Workspace | undefined;
  let config: Config | undefined;
  let actor: string | undefined;
  const now = makeClock(o.env);
  const ctx: Ctx = {
    get ws() {
      return (ws ??= findWorkspace({ dir: o.dir, env: o.env, cwd: o.cwd }));
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
  return (
    pick(flag) ??
    pick(env.KAIR_ACTOR) ??
    pick(gitUserName(from, env)) ??
    pick(env.USER) ??
    pick(osUser()) ??
    'unknown'
  );
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
