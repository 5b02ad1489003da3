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
import { applyConfigSet } from '../domain/config-edit.js';
import type { Ctx } from './context.js';
import { lockWho } from './mutate.js';

const CONFIG_LOCK = '_config';
const KEY = /^[A-Za-z_$][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

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

/**
 * On PostgreSQL only `backend` and `workspace_id` are in the file; every other key is in the
 * database (src/store/pg/config-store.ts), which this version's config commands do not reach yet:
 * refuse rather than read a default or write a key into the file that no machine would share.
 */
function assertKeyInFile(value: Obj, parts: string[], verb: 'get' | 'set'): void {
  const kind = isObj(value.backend) ? value.backend.kind : undefined;
  if (kind !== 'postgres' || parts[0] === 'backend' || parts[0] === 'workspace_id') return;
  throw kairError('BACKEND_CONFIG_INVALID', `config ${verb} ${parts.join('.')}: on a PostgreSQL workspace this key is kept in the database, which this version's config commands do not reach yet; nothing was read or written`, {
    path: '.kair/config.json',
    key: parts.join('.'),
    hint: 'kair config get backend shows where the workspace lives',
  });
}

export function configGet(ctx: Ctx, key: string): ConfigGetResult {
  const parts = assertKey(key);
  const { value } = readRaw(ctx);
  assertKeyInFile(value, parts, 'get');
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

export async function configSet(ctx: Ctx, key: string, valueText: string): Promise<ConfigSetResult> {
  const parts = assertKey(key);
  if (parts[0] === 'workspace_id' || parts[0] === '$schema') {
    throw kairError('USAGE_ERROR', `${key} cannot be set: ${parts[0] === 'workspace_id' ? 'it names the workspace in every chained row' : 'edit it in the file'}`, { argument: 'key', key, hint: 'kair config set approvals.min 2' });
  }
  const value = parseValue(valueText);
  const actor = ctx.actor();
  const ws = ctx.ws;
  // Before the lock too: taking it would create .kair/locks/ in a folder that has none.
  assertKeyInFile(readRaw(ctx).value, parts, 'set');
  const lock = acquireLock(paths.locks(ws), CONFIG_LOCK, lockWho(ctx), ctx.lockTimeoutMs);
  try {
    const raw = readRaw(ctx);
    assertKeyInFile(raw.value, parts, 'set');
    const { next, previous, problems: after } = applyConfigSet(raw.value, parts, key, value, actor, { path: '.kair/config.json' });
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
    await logToChangeLog(ctx, next, { actor, key, previous, value, sha });
    failpoint('config.logged');
    writeFileAtomicSync(paths.config(ws), text);
    return { key, value, previous, config_sha256: sha, problems: after };
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
