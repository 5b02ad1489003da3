/**
 * `kair config get <key>` / `kair config set <key> <value>`. Both read the file itself, never
 * ctx.config, so they work on an invalid config: they are how one is fixed.
 */
import { existsSync, statSync } from 'node:fs';
import { sha256Hex } from '../domain/canonical.js';
import type { Problem } from '../domain/config.js';
import { configDefaults, validateConfig } from '../domain/config.js';
import { kairError } from '../domain/errors.js';
import { DEFAULT_MAX_INPUT_BYTES, parseJsonInput } from '../domain/json-input.js';
import { readInputFile } from '../store/fs/input.js';
import { failpoint } from '../store/failpoint.js';
import { lastConfigSha, logConfigChange } from '../lanes/aec/change-log.js';
import { jsonText, writeFileAtomicSync } from '../store/fs/atomic.js';
import { readTextFile } from '../store/fs/contracts.js';
import { acquireLock } from '../store/fs/lock.js';
import type { SqlExecutor } from '../store/port.js';
import { openExecutionStore } from '../store/sqlite/executor.js';
import { paths } from '../store/fs/workspace.js';
import { assertAdminIn } from '../domain/actors.js';
import type { Ctx } from './context.js';
import { lockWho } from './mutate.js';

const CONFIG_LOCK = '_config';
const KEY = /^[A-Za-z_$][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Keys whose change is a policy change: only policy.admins may set them. */
const ADMIN_KEYS = ['approvals', 'run', 'policy', 'slo'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Names that would reach an object's prototype instead of a key of the file. */
const FORBIDDEN_PARTS = new Set(['__proto__', 'constructor', 'prototype']);

function assertKey(key: string): string[] {
  if (!KEY.test(key) || key.split('.').some((p) => FORBIDDEN_PARTS.has(p))) throw kairError('USAGE_ERROR', `<key> must be a dotted config key such as approvals.min, got ${JSON.stringify(key.slice(0, 80))}`, { argument: 'key', hint: 'kair config get approvals' });
  return key.split('.');
}

/** The file's parsed JSON; a file that is not JSON cannot be edited key by key. */
function readRaw(ctx: Ctx): { text: string | null; value: Obj } {
  const file = paths.config(ctx.ws);
  if (!existsSync(file)) return { text: null, value: {} };
  let text: string;
  try {
    // Regular files only, bounded: a FIFO or a device in its place must not hang or flood us.
    text = readInputFile(file, { flag: '', shown: '.kair/config.json', limit: DEFAULT_MAX_INPUT_BYTES, tooLarge: (max) => kairError('CONFIG_INVALID', `.kair/config.json is larger than ${max} bytes`, { path: '.kair/config.json' }) });
  } catch (e) {
    if ((e as { code?: string }).code === 'USAGE_ERROR') throw kairError('CONFIG_INVALID', (e as Error).message, { path: '.kair/config.json', hint: 'replace .kair/config.json with a regular JSON file' });
    throw e;
  }
  const parsed = parseJsonInput(text);
  if (!parsed.ok || !isObj(parsed.value)) {
    throw kairError('CONFIG_INVALID', `.kair/config.json: ${parsed.ok ? 'expected a JSON object' : parsed.message}`, {
      path: '.kair/config.json',
      hint: 'the file is not a JSON object, so it cannot be changed key by key: fix it in an editor',
    });
  }
  return { text, value: parsed.value };
}

function lookup(v: unknown, parts: string[]): { found: boolean; value: unknown } {
  let cur = v;
  for (const p of parts) {
    if (!isObj(cur) || !Object.hasOwn(cur, p)) return { found: false, value: undefined };
    cur = cur[p];
  }
  return { found: true, value: cur };
}

export interface ConfigGetResult {
  key: string;
  value: unknown;
  /** `file`: written in config.json; `default`: omitted there, so the default applies. */
  source: 'file' | 'default';
  problems: Problem[];
}

export function configGet(ctx: Ctx, key: string): ConfigGetResult {
  const parts = assertKey(key);
  const { value } = readRaw(ctx);
  const problems = validateConfig(value);
  const inFile = lookup(value, parts);
  if (inFile.found) return { key, value: inFile.value, source: 'file', problems };
  const dflt = lookup(configDefaults(), parts);
  if (dflt.found) return { key, value: dflt.value, source: 'default', problems };
  throw kairError('USAGE_ERROR', `no config key ${key}`, { argument: 'key', key, hint: `known keys: ${Object.keys({ workspace_id: 1, ...configDefaults() }).join(', ')}` });
}

export interface ConfigSetResult {
  key: string;
  value: unknown;
  previous: unknown;
  config_sha256: string;
  /** Problems the config still has elsewhere (set only refuses problems it would add). */
  problems: Problem[];
}

/** The value as JSON when it parses (`2`, `true`, `["a"]`), else the string itself. */
export function parseValue(text: string): unknown {
  const p = parseJsonInput(text);
  return p.ok ? p.value : text;
}

const problemKey = (p: Problem) => `${p.path}\u0000${p.message}`;

export async function configSet(ctx: Ctx, key: string, valueText: string): Promise<ConfigSetResult> {
  const parts = assertKey(key);
  if (parts[0] === 'workspace_id' || parts[0] === '$schema') {
    throw kairError('USAGE_ERROR', `${key} cannot be set: ${parts[0] === 'workspace_id' ? 'it names the workspace in every chained row' : 'edit it in the file'}`, { argument: 'key', key, hint: 'kair config set approvals.min 2' });
  }
  const value = parseValue(valueText);
  const actor = ctx.actor();
  const ws = ctx.ws;
  const lock = acquireLock(paths.locks(ws), CONFIG_LOCK, lockWho(ctx), ctx.lockTimeoutMs);
  try {
    const raw = readRaw(ctx);
    if (ADMIN_KEYS.includes(parts[0]!)) {
      const admins = lookup(raw.value, ['policy', 'admins']);
      assertAdminIn(admins.found ? admins.value : configDefaults().policy.admins, actor, `set ${key}`);
    }
    const before = validateConfig(raw.value);
    const next = structuredClone(raw.value);
    let cur: Obj = next;
    for (const p of parts.slice(0, -1)) {
      if (!isObj(cur[p])) cur[p] = {};
      cur = cur[p] as Obj;
    }
    const previous = lookup(raw.value, parts);
    cur[parts[parts.length - 1]!] = value;
    const after = validateConfig(next);
    const had = new Set(before.map(problemKey));
    const added = after.filter((p) => !had.has(problemKey(p)));
    if (added.length > 0) {
      const list = added.map((p) => `${p.path}: ${p.message}`);
      throw kairError('CONFIG_INVALID', `config set ${key}: nothing was written; ${added.length === 1 ? list[0] : `${added.length} problems:\n  - ${list.join('\n  - ')}`}`, {
        path: '.kair/config.json',
        key,
        problems: added,
        hint: `give ${key} a valid value (\`kair config get ${key}\` shows the current one)`,
      });
    }
    // Every command would refuse the workspace afterwards (store/backend-guard.ts): say so now.
    if (parts[0] === 'backend' && lookup(next, ['backend', 'kind']).value === 'postgres') {
      throw kairError('BACKEND_CONFIG_INVALID', `config set ${key}: the postgres backend is not available in this version; nothing was written`, {
        path: '.kair/config.json',
        key,
        hint: 'keep backend.kind "local" (the default) for now',
      });
    }
    const text = jsonText(next);
    const sha = sha256Hex(text);
    // The database first (the log names the sha of the file about to be written), then the file:
    // a kill in between leaves the old file, which verify reports as config_drift until the next set.
    await logToChangeLog(ctx, next, { actor, key, previous: previous.found ? previous.value : null, value, sha });
    failpoint('config.logged');
    writeFileAtomicSync(paths.config(ws), text);
    return { key, value, previous: previous.found ? previous.value : null, config_sha256: sha, problems: after };
  } finally {
    lock.release();
  }
}

async function logToChangeLog(ctx: Ctx, next: Obj, c: { actor: string; key: string; previous: unknown; value: unknown; sha: string }): Promise<void> {
  const tenant = typeof next.workspace_id === 'string' ? next.workspace_id : '';
  // Opened by path, not through ctx.config: `config set` is how an invalid config is fixed.
  const store = openExecutionStore(paths.db(ctx.ws));
  try {
    await store.transaction((sql) => logConfigChange(sql, { tenant, actor: c.actor, at: ctx.now(), change: { key: c.key, from: c.previous ?? null, to: c.value ?? null }, sha256: c.sha }));
  } finally {
    store.close();
  }
}

/** verify's config_drift: the config file differs from the sha the change log last recorded. */
export async function configDrift(ctx: Ctx, sql: SqlExecutor): Promise<string | null> {
  const logged = await lastConfigSha(sql);
  if (logged === null) return null;
  const file = paths.config(ctx.ws);
  let text: string | null = null;
  try {
    if (statSync(file).isFile()) text = readTextFile(file);
  } catch {
    // missing: reported as drift below
  }
  const sha = text === null ? null : sha256Hex(text);
  return sha === logged ? null : `.kair/config.json (sha256 ${sha?.slice(0, 12) ?? 'missing'}) differs from the config the change log last recorded (sha256 ${logged.slice(0, 12)}): it was edited outside \`kair config set\``;
}
