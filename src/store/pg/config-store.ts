/**
 * Workspaces (tenants) and their config on PostgreSQL.
 *
 * On this backend every config key but `backend` and `workspace_id` lives in the database, so
 * every machine sharing the workspace reads one policy (`approvals.*`, `run.*`, `policy.*`…).
 * The local `.kair/config.json` keeps only what is needed to find the database and the tenant:
 * `{"backend": {...}, "workspace_id": ...}`.
 *
 * The database keeps the config as exact text with its sha256 (a CHECK makes the two agree), so
 * the local rules apply unchanged: the text is validated with `validateConfig` (after adding the
 * workspace_id), omitted keys take their defaults (`resolveConfig`), and `config_drift` compares
 * the sha with the one the change log last recorded for the tenant.
 *
 * The admin check and the change-log row are the caller's (`kair config set`): `updateTenantConfig`
 * runs the caller's function inside the transaction that holds the tenant's row lock, so the
 * change-log row and the new text commit together, and two concurrent writers serialise on the
 * row instead of one losing the other's update. `writeTenantConfig` is the same guarantee without
 * a transaction: compare-and-set on the sha the caller read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sha256Hex } from '../../domain/canonical.js';
import type { Config, Problem } from '../../domain/config.js';
import { initConfig, resolveConfig, validateConfig } from '../../domain/config.js';
import { applyConfigSet } from '../../domain/config-edit.js';
import { kairError } from '../../domain/errors.js';
import { jsonText } from '../fs/atomic.js';
import type { PgClient, PgTarget } from './connect.js';
import { quoteIdent as q } from './connect.js';


/**
 * What a workspace id may be on PostgreSQL: the ids `kair init` generates (`ws_` + 16 hex) and
 * any id a local workspace could be imported with that is safe to print and to put in a row key.
 */
export const WORKSPACE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** Migration 5: one row per workspace sharing the database, with its config. */
export const WORKSPACES_SQL = `
CREATE TABLE workspaces (
  tenant_id         text   PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  created_at        text   NOT NULL,
  created_by        text   NOT NULL,
  -- sha256(host, folder) of the \`kair init\` that created it, until that init has written its
  -- local .kair/config.json: a re-run of the same init after a kill in between reuses the tenant.
  init_origin       text   CHECK (init_origin IS NULL OR init_origin ~ '^[0-9a-f]{64}$'),
  config_text       text   NOT NULL CHECK (kair_is_json(config_text) AND kair_json_type(config_text) = 'object'),
  config_sha256     text   NOT NULL,
  config_version    bigint NOT NULL CHECK (config_version >= 1),
  config_updated_at text   NOT NULL,
  CHECK (config_sha256 = encode(sha256(convert_to(config_text, 'UTF8')), 'hex'))
);
CREATE INDEX workspaces_pending_init ON workspaces (init_origin) WHERE init_origin IS NOT NULL;

-- A workspace is never deleted (its chains name it), and its identity never changes.
CREATE FUNCTION kair_workspace_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id AND NEW.created_at = OLD.created_at AND NEW.created_by = OLD.created_by THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'workspaces: a workspace is never deleted or renamed' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER workspaces_guard_update BEFORE UPDATE ON workspaces FOR EACH ROW EXECUTE FUNCTION kair_workspace_guard();
CREATE TRIGGER workspaces_guard_delete BEFORE DELETE ON workspaces FOR EACH ROW EXECUTE FUNCTION kair_workspace_guard();
CREATE TRIGGER workspaces_no_truncate BEFORE TRUNCATE ON workspaces FOR EACH STATEMENT EXECUTE FUNCTION kair_append_only();
`;

export interface TenantConfig {
  workspace_id: string;
  /** The config's exact text (no `workspace_id`, no `backend`). */
  text: string;
  sha256: string;
  /** 1 at creation, +1 per write. */
  version: number;
  updated_at: string;
  created_at: string;
}

interface Row {
  tenant_id: string;
  config_text: string;
  config_sha256: string;
  config_version: number;
  config_updated_at: string;
  created_at: string;
}

const COLUMNS = 'tenant_id, config_text, config_sha256, config_version, config_updated_at, created_at';
const fromRow = (r: Row): TenantConfig => ({ workspace_id: r.tenant_id, text: r.config_text, sha256: r.config_sha256, version: Number(r.config_version), updated_at: r.config_updated_at, created_at: r.created_at });

/** The keys that stay in the local file on this backend. */
export const LOCAL_ONLY_KEYS = ['backend', 'workspace_id'] as const;

/** What a new tenant's config holds: init's v1 keys, without the local-only ones. */
export function newTenantConfigText(): string {
  const { workspace_id: _w, ...rest } = initConfig('');
  return jsonText(rest);
}

/** `ws_` + 16 hex, as the local init makes them. */
export function newWorkspaceId(): string {
  return `ws_${randomBytes(8).toString('hex')}`;
}

/** Identifies the (host, folder) of an init, without putting the folder's path in the database. */
export function initOrigin(host: string, root: string): string {
  return createHash('sha256').update(`kair-init\u0000${host}\u0000${root}`).digest('hex');
}

/**
 * The problems of a tenant's config text, as the local file's would be reported (same paths and
 * messages), plus a local-only key stored in the database.
 */
export function tenantConfigProblems(workspaceId: string, text: string): Problem[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [{ path: '(root)', message: 'the config stored in the database is not JSON' }];
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [{ path: '(root)', message: 'expected an object' }];
  const out: Problem[] = [];
  for (const k of LOCAL_ONLY_KEYS) if (Object.hasOwn(value, k)) out.push({ path: k, message: 'belongs in .kair/config.json, not in the database' });
  return [...out, ...validateConfig({ ...(value as Record<string, unknown>), workspace_id: workspaceId })];
}

/**
 * The config a command sees on this backend, before defaults: the database's keys plus the local
 * file's `workspace_id` and `backend` (which win: they are how this machine found the tenant).
 */
export function mergedConfigValue(local: { workspace_id: string; backend: unknown }, text: string): Record<string, unknown> {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  return { ...parsed, workspace_id: local.workspace_id, backend: local.backend };
}

/**
 * The config a command sees on a PostgreSQL workspace (what `loadConfig` is for a local one): the
 * local file's `workspace_id` and `backend` (already validated by the caller) with the stored
 * keys, defaults for the omitted ones; every problem of the stored text listed in one
 * CONFIG_INVALID, as the local file's are.
 */
export function resolveTenantConfig(local: { workspace_id: string; backend: unknown }, stored: TenantConfig): Config {
  const problems = tenantConfigProblems(local.workspace_id, stored.text);
  if (problems.length > 0) {
    const shown = `the config of workspace ${local.workspace_id} (in the database)`;
    const list = problems.map((p) => `${p.path}: ${p.message}`);
    throw kairError('CONFIG_INVALID', problems.length === 1 ? `${shown}: ${list[0]}` : `${shown} has ${problems.length} problems:\n  - ${list.join('\n  - ')}`, {
      workspace_id: local.workspace_id,
      problems,
      hint: 'fix each listed key with `kair config set <key> <value>` (omitted keys take their defaults)',
    });
  }
  return resolveConfig(mergedConfigValue(local, stored.text));
}

function assertWorkspaceId(id: string, flag = '--workspace-id'): void {
  if (!WORKSPACE_ID_PATTERN.test(id)) {
    throw kairError('USAGE_ERROR', `${flag} must be a workspace id such as ws_0123456789abcdef (letters, digits, _ . : -, at most 128), got ${JSON.stringify(id.slice(0, 80))}`, {
      flag,
      hint: 'copy the id from `kair config get workspace_id` on a machine that already uses the workspace',
    });
  }
}

function notFound(id: string, t: PgTarget): never {
  throw kairError('WORKSPACE_NOT_FOUND', `no workspace ${JSON.stringify(id)} in the schema ${t.schema} of ${t.host}:${t.port}/${t.database}; nothing was written`, {
    workspace_id: id,
    backend: 'postgres',
    schema: t.schema,
    hint: 'check the id (`kair config get workspace_id` on a machine that uses it) and backend.schema, or run `kair init --backend postgres` without --workspace-id to create a new workspace',
  });
}

/** Creates a tenant with `text` as its config (default: init's v1 keys). Refuses an id in use. */
export async function createTenant(client: PgClient, t: PgTarget, o: { workspaceId?: string; at: string; actor: string; origin?: string; text?: string }): Promise<TenantConfig> {
  const id = o.workspaceId ?? newWorkspaceId();
  assertWorkspaceId(id);
  const text = o.text ?? newTenantConfigText();
  const r = await client.query<Row>(
    `INSERT INTO ${q(t.schema)}.workspaces (tenant_id, created_at, created_by, init_origin, config_text, config_sha256, config_version, config_updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, 1, $2) ON CONFLICT (tenant_id) DO NOTHING RETURNING ${COLUMNS}`,
    [id, o.at, o.actor, o.origin ?? null, text, sha256Hex(text)],
  );
  if (r.rows.length === 0) {
    throw kairError('USAGE_ERROR', `the workspace ${JSON.stringify(id)} already exists in the schema ${t.schema}; nothing was written`, {
      workspace_id: id,
      hint: `join it with \`kair init --backend postgres --workspace-id ${id}\``,
    });
  }
  return fromRow(r.rows[0]!);
}

/** The newest tenant an init at `origin` created and never confirmed (killed before its local write), or null. */
export async function pendingTenant(client: PgClient, t: PgTarget, origin: string): Promise<TenantConfig | null> {
  const r = await client.query<Row>(`SELECT ${COLUMNS} FROM ${q(t.schema)}.workspaces WHERE init_origin = $1 ORDER BY created_at DESC, tenant_id DESC LIMIT 1`, [origin]);
  return r.rows[0] ? fromRow(r.rows[0]) : null;
}

/** Marks the tenant's init done (its local file is written): no later init reuses it unasked. */
export async function confirmTenant(client: PgClient, t: PgTarget, id: string): Promise<void> {
  await client.query(`UPDATE ${q(t.schema)}.workspaces SET init_origin = NULL WHERE tenant_id = $1 AND init_origin IS NOT NULL`, [id]);
}

/** The tenant's config; an unknown id is WORKSPACE_NOT_FOUND (exit 4). */
export async function readTenantConfig(client: PgClient, t: PgTarget, id: string): Promise<TenantConfig> {
  assertWorkspaceId(id, 'workspace_id');
  const r = await client.query<Row>(`SELECT ${COLUMNS} FROM ${q(t.schema)}.workspaces WHERE tenant_id = $1`, [id]);
  if (!r.rows[0]) notFound(id, t);
  return fromRow(r.rows[0]);
}

/** Joining is reading: the tenant must exist; nothing is written in the database. */
export async function joinTenant(client: PgClient, t: PgTarget, id: string): Promise<TenantConfig> {
  assertWorkspaceId(id);
  return readTenantConfig(client, t, id);
}

/**
 * Compare-and-set: writes `text` only if the stored sha is still `expectSha` (what the caller
 * read); otherwise CONCURRENT_WRITE and nothing written, so a concurrent update is never lost.
 */
export async function writeTenantConfig(client: PgClient, t: PgTarget, id: string, o: { expectSha: string; text: string; at: string }): Promise<TenantConfig> {
  assertTextIsObject(o.text);
  const r = await client.query<Row>(
    `UPDATE ${q(t.schema)}.workspaces SET config_text = $2, config_sha256 = $3, config_version = config_version + 1, config_updated_at = $4
     WHERE tenant_id = $1 AND config_sha256 = $5 RETURNING ${COLUMNS}`,
    [id, o.text, sha256Hex(o.text), o.at, o.expectSha],
  );
  if (r.rows[0]) return fromRow(r.rows[0]);
  await readTenantConfig(client, t, id); // WORKSPACE_NOT_FOUND when it is gone, not a retry
  throw kairError('CONCURRENT_WRITE', `the config of ${id} was changed by another session since it was read; nothing was written`, {
    workspace_id: id,
    hint: 'run the command again: it applies the change to the new config',
  });
}

/**
 * Read-modify-write under the tenant's row lock, in one transaction: `change` gets the current
 * config and the client (to append the change-log row in the same transaction) and returns the
 * new text, or null to write nothing. A concurrent writer waits for the lock (up to
 * `lockTimeoutMs`, then LOCK_BUSY) and then sees this one's result.
 */
export async function updateTenantConfig(
  client: PgClient,
  t: PgTarget,
  id: string,
  o: { at: string; lockTimeoutMs: number },
  change: (current: TenantConfig, tx: PgClient) => Promise<string | null>,
): Promise<TenantConfig> {
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(o.lockTimeoutMs))}`);
    const r = await client.query<Row>(`SELECT ${COLUMNS} FROM ${q(t.schema)}.workspaces WHERE tenant_id = $1 FOR UPDATE`, [id]);
    if (!r.rows[0]) notFound(id, t);
    const current = fromRow(r.rows[0]);
    const text = await change(current, client);
    let out = current;
    if (text !== null) {
      assertTextIsObject(text);
      const u = await client.query<Row>(
        `UPDATE ${q(t.schema)}.workspaces SET config_text = $2, config_sha256 = $3, config_version = config_version + 1, config_updated_at = $4 WHERE tenant_id = $1 RETURNING ${COLUMNS}`,
        [id, text, sha256Hex(text), o.at],
      );
      out = fromRow(u.rows[0]!);
    }
    await client.query('COMMIT');
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

export interface TenantConfigChange {
  key: string;
  from: unknown;
  to: unknown;
  actor: string;
  at: string;
  /** The sha of the config text this change produces (what the change log records). */
  sha256: string;
}

/**
 * `kair config set <key> <value>` on PostgreSQL: the same admin check and validation as the local
 * file (`applyConfigSet`), under the tenant's row lock; `log` appends the change-log row on the
 * same transaction, so the row and the new text commit together (no `config_drift` window after a
 * kill, unlike the local file). `backend` and `workspace_id` are not in the database.
 */
export async function setTenantConfigKey(
  client: PgClient,
  t: PgTarget,
  id: string,
  o: { key: string; value: unknown; actor: string; at: string; lockTimeoutMs: number },
  log: (tx: PgClient, change: TenantConfigChange) => Promise<void>,
): Promise<{ key: string; value: unknown; previous: unknown; config_sha256: string; problems: Problem[] }> {
  const parts = o.key.split('.');
  if ((LOCAL_ONLY_KEYS as readonly string[]).includes(parts[0]!)) {
    throw kairError('USAGE_ERROR', `${o.key} is kept in .kair/config.json, not in the database`, { argument: 'key', key: o.key, hint: 'kair config set approvals.min 2' });
  }
  let result: { previous: unknown; problems: Problem[] } = { previous: null, problems: [] };
  const stored = await updateTenantConfig(client, t, id, { at: o.at, lockTimeoutMs: o.lockTimeoutMs }, async (current, tx) => {
    const value = JSON.parse(current.text) as Record<string, unknown>;
    const edit = applyConfigSet(value, parts, o.key, o.value, o.actor, { context: { workspace_id: id }, path: `the config of workspace ${id}` });
    const text = jsonText(edit.next);
    await log(tx, { key: o.key, from: edit.previous, to: o.value ?? null, actor: o.actor, at: o.at, sha256: sha256Hex(text) });
    result = edit;
    return text;
  });
  return { key: o.key, value: o.value, previous: result.previous, config_sha256: stored.sha256, problems: result.problems };
}

/** The config sha the tenant's change log last recorded (null: never changed by kair). */
export async function lastLoggedConfigSha(client: PgClient, t: PgTarget, id: string): Promise<string | null> {
  const r = await client.query<{ row_sha256: string }>(`SELECT row_sha256 FROM ${q(t.schema)}.change_log WHERE tenant_id = $1 AND table_name = 'config' ORDER BY id DESC LIMIT 1`, [id]);
  return r.rows[0]?.row_sha256 ?? null;
}

/** verify's `config_drift` on this backend: the stored config differs from the sha last logged (edited by SQL, not by `kair config set`). */
export async function tenantConfigDrift(client: PgClient, t: PgTarget, id: string): Promise<string | null> {
  const [cfg, logged] = await Promise.all([readTenantConfig(client, t, id), lastLoggedConfigSha(client, t, id)]);
  if (logged === null || logged === cfg.sha256) return null;
  return `the config stored in the database (sha256 ${cfg.sha256.slice(0, 12)}) differs from the config the change log last recorded (sha256 ${logged.slice(0, 12)}): it was changed outside \`kair config set\``;
}

function assertTextIsObject(text: string): void {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw kairError('CONFIG_INVALID', 'the config to store is not a JSON object; nothing was written', { hint: 'kair config get approvals' });
}
