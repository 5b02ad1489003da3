/** Finding the workspace, its paths, and its config. No zod, no sqlite: read paths use this. */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Config } from '../../domain/config.js';
import { resolveConfig, validateConfig } from '../../domain/config.js';
import { kairError } from '../../domain/errors.js';
import { DEFAULT_MAX_INPUT_BYTES, parseJsonInput } from '../../domain/json-input.js';
import { readInputFile } from './input.js';

export interface Workspace {
  /** The folder that contains `.kair/`; every path kair prints is relative to it. */
  root: string;
  kairDir: string;
}

export function workspaceAt(root: string): Workspace {
  const abs = resolve(root);
  return { root: abs, kairDir: join(abs, '.kair') };
}

const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** `--dir` > `KAIR_DIR` > walking up from cwd > WORKSPACE_NOT_FOUND. */
export function findWorkspace(opts: { dir?: string; env: NodeJS.ProcessEnv; cwd: string }): Workspace {
  const named = opts.dir ?? opts.env.KAIR_DIR;
  if (named) {
    const ws = workspaceAt(resolve(opts.cwd, named));
    if (isDir(ws.kairDir)) return ws;
    throw notFound(`no .kair/ workspace in ${ws.root}`, { dir: ws.root });
  }
  let cur = resolve(opts.cwd);
  for (;;) {
    if (isDir(join(cur, '.kair'))) return workspaceAt(cur);
    const up = dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  throw notFound(`no .kair/ workspace found in ${opts.cwd} or any parent folder`, { cwd: opts.cwd });
}

function notFound(message: string, details: Record<string, unknown>) {
  return kairError('WORKSPACE_NOT_FOUND', `${message}; run \`kair init\` to create one`, details);
}

/**
 * The files of a workspace. Built by concatenation, not path.join: kairDir is absolute and
 * normalised (workspaceAt) and ids cannot hold separators or dots, and join's normalisation,
 * called a few hundred times per command, got hot enough for V8 to optimise it (~10M
 * instructions, an eighth of `node -e 0`, on a run).
 */
const S = sep;
export const paths = {
  config: (ws: Workspace) => `${ws.kairDir}${S}config.json`,
  db: (ws: Workspace) => `${ws.kairDir}${S}kair.db`,
  locks: (ws: Workspace) => `${ws.kairDir}${S}locks`,
  contracts: (ws: Workspace) => `${ws.kairDir}${S}contracts`,
  index: (ws: Workspace) => `${ws.kairDir}${S}contracts${S}index.json`,
  contract: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}`,
  snapshot: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}contract.json`,
  history: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}history.jsonl`,
  plan: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}plan${S}plan_v1.json`,
  planMd: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}plan${S}PLAN.md`,
  dpc: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}dpc${S}dpc_v1.json`,
  runs: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}artifacts${S}run`,
  outbox: (ws: Workspace) => `${ws.kairDir}${S}outbox`,
  checkpoints: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}checkpoints`,
  fence: (ws: Workspace, id: string) => `${ws.kairDir}${S}contracts${S}${id}${S}fence`,
  planBySha: (ws: Workspace, id: string, sha: string) => `${ws.kairDir}${S}contracts${S}${id}${S}plan${S}${sha}.json`,
  /** Staging for files whose folder is too large to sweep (the index beside 10,000 contract folders). */
  staging: (ws: Workspace) => `${ws.kairDir}${S}tmp`,
};

/** Workspace-relative, forward slashes: the form every artifact and --json output uses. */
export function rel(ws: Workspace, p: string): string {
  return relative(ws.root, p).split(sep).join('/');
}

export function loadConfig(ws: Workspace): Config {
  const file = paths.config(ws);
  const shown = rel(ws, file);
  if (!existsSync(file)) {
    throw kairError('CONFIG_INVALID', `${shown} is missing; run \`kair init\``, { path: shown });
  }
  // Bounded by the default limit: the config cannot raise the limit it is read under.
  let text: string;
  try {
    text = readInputFile(file, {
      flag: '',
      shown,
      limit: DEFAULT_MAX_INPUT_BYTES,
      tooLarge: (max) => kairError('CONFIG_INVALID', `${shown} is larger than ${max} bytes`, { path: shown }),
    });
  } catch (e) {
    // A FIFO, device or unreadable file in place of the config is a bad config, not bad usage.
    if ((e as { code?: string }).code === 'USAGE_ERROR') throw kairError('CONFIG_INVALID', `${shown}: ${(e as Error).message.replace(`${shown} `, '')}`, { path: shown });
    throw e;
  }
  const parsed = parseJsonInput(text);
  if (!parsed.ok) throw kairError('CONFIG_INVALID', `${shown}: ${parsed.message}`, { path: shown });
  const value = parsed.value;
  const problems = validateConfig(value);
  if (problems.length > 0) {
    // Every problem, in full: one hidden behind "(and 4 more)" is the one the user needed.
    const list = problems.map((p) => `${p.path}: ${p.message}`);
    throw kairError(
      'CONFIG_INVALID',
      problems.length === 1 ? `${shown}: ${list[0]}` : `${shown} has ${problems.length} problems:\n  - ${list.join('\n  - ')}`,
      { path: shown, problems, hint: 'fix each listed key in the config file (omitted keys take their defaults)' },
    );
  }
  return resolveConfig(value as Record<string, unknown>);
}
