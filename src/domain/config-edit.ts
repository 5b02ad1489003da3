/**
 * One `kair config set <key> <value>` applied to a config value, whatever keeps it (the local
 * file, or the database on PostgreSQL): the admin check for the keys that change who may do what,
 * and the validation that refuses a change adding a problem (problems already there are reported,
 * so a broken config can be fixed one key at a time). Pure: the caller reads, logs and writes.
 */
import { assertAdminIn } from './actors.js';
import type { Problem } from './config.js';
import { configDefaults, validateConfig } from './config.js';
import { kairError } from './errors.js';

/** Keys whose change is a policy change: only policy.admins may set them. */
export const ADMIN_KEYS = ['approvals', 'run', 'policy', 'slo'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function lookupKey(v: unknown, parts: string[]): { found: boolean; value: unknown } {
  let cur = v;
  for (const p of parts) {
    if (!isObj(cur) || !Object.hasOwn(cur, p)) return { found: false, value: undefined };
    cur = cur[p];
  }
  return { found: true, value: cur };
}

const problemKey = (p: Problem) => `${p.path}\u0000${p.message}`;

export interface ConfigEdit {
  next: Obj;
  /** The key's value before (null when it was not set). */
  previous: unknown;
  /** The problems the config still has after the change (none of them new). */
  problems: Problem[];
}

/**
 * `current` with `key` (split in `parts`) set to `value`. `context` is merged in for validation
 * only (on PostgreSQL: the workspace_id and backend block the database's text does not hold).
 * `path` names where the config lives in messages.
 */
export function applyConfigSet(current: Obj, parts: string[], key: string, value: unknown, actor: string, o: { context?: Obj; path: string }): ConfigEdit {
  if (ADMIN_KEYS.includes(parts[0]!)) {
    const admins = lookupKey(current, ['policy', 'admins']);
    assertAdminIn(admins.found ? admins.value : configDefaults().policy.admins, actor, `set ${key}`);
  }
  const before = validateConfig({ ...current, ...o.context });
  const next = structuredClone(current);
  let cur: Obj = next;
  for (const p of parts.slice(0, -1)) {
    if (!isObj(cur[p])) cur[p] = {};
    cur = cur[p] as Obj;
  }
  const previous = lookupKey(current, parts);
  cur[parts[parts.length - 1]!] = value;
  const after = validateConfig({ ...next, ...o.context });
  const had = new Set(before.map(problemKey));
  const added = after.filter((p) => !had.has(problemKey(p)));
  if (added.length > 0) {
    const list = added.map((p) => `${p.path}: ${p.message}`);
    throw kairError('CONFIG_INVALID', `config set ${key}: nothing was written; ${added.length === 1 ? list[0] : `${added.length} problems:\n  - ${list.join('\n  - ')}`}`, {
      path: o.path,
      key,
      problems: added,
      hint: `give ${key} a valid value (\`kair config get ${key}\` shows the current one)`,
    });
  }
  return { next, previous: previous.found ? previous.value : null, problems: after };
}
