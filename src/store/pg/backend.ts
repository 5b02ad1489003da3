/**
 * What the CLI reaches on PostgreSQL, behind one dynamic import: the build makes this module its
 * own bundle (dist/kair-pg.cjs), so the local commands' bundles carry none of it and `pg` is
 * loaded only here.
 */
import { hostname } from 'node:os';
import type { PgTarget } from './connect.js';
import { connectPg, mapPgError } from './connect.js';
import { confirmTenant, createTenant, initOrigin, joinTenant, pendingTenant, readTenantConfig } from './config-store.js';
import { migratePg } from './migrations.js';

export * from './config-store.js';

export interface PgInitRequest {
  env: NodeJS.ProcessEnv;
  urlEnv: string;
  schema: string;
  /** Join this tenant (it must exist); absent: reuse this folder's unconfirmed one or create one. */
  workspaceId?: string;
  /** The workspace root (absolute): with the host it names the init for the reuse rule. */
  root: string;
  actor: string;
  at: string;
}

/** `created`: a new tenant; `joined`: an existing one; `reused`: the tenant an earlier init of this folder created but never confirmed. */
export type TenantOutcome = 'created' | 'joined' | 'reused';

export interface PgInitSession {
  workspaceId: string;
  outcome: TenantOutcome;
  target: PgTarget;
  /** After the local file is written: no later init reuses the tenant unasked. Best effort. */
  confirm(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connects (URL from the named variable), migrates, and creates, reuses or joins the tenant; its
 * row is committed when this returns. The caller writes the local file, then confirms.
 */
export async function initTenant(r: PgInitRequest): Promise<PgInitSession> {
  const { client, target } = await connectPg({ env: r.env, urlEnv: r.urlEnv, schema: r.schema });
  const origin = initOrigin(hostname(), r.root);
  try {
    await migratePg(client, target);
    let workspaceId: string;
    let outcome: TenantOutcome;
    if (r.workspaceId !== undefined) {
      workspaceId = (await joinTenant(client, target, r.workspaceId)).workspace_id;
      outcome = 'joined';
    } else {
      const pending = await pendingTenant(client, target, origin);
      if (pending) {
        workspaceId = pending.workspace_id;
        outcome = 'reused';
      } else {
        workspaceId = (await createTenant(client, target, { at: r.at, actor: r.actor, origin })).workspace_id;
        outcome = 'created';
      }
    }
    return {
      workspaceId,
      outcome,
      target,
      confirm: async () => {
        // The workspace is usable whatever happens here: an unconfirmed tenant is only reused by
        // an init of the same folder on the same host, which then finds its local file first.
        await confirmTenant(client, target, workspaceId).catch(() => undefined);
      },
      close: () => client.end().catch(() => undefined),
    };
  } catch (e) {
    await client.end().catch(() => undefined);
    throw mapPgError(e, target);
  }
}

/** A re-run of init in a folder whose config names a tenant: check it exists, confirm it. */
export async function recheckTenant(r: Omit<PgInitRequest, 'workspaceId' | 'actor' | 'at' | 'root'> & { workspaceId: string }): Promise<void> {
  const { client, target } = await connectPg({ env: r.env, urlEnv: r.urlEnv, schema: r.schema });
  try {
    await migratePg(client, target);
    await readTenantConfig(client, target, r.workspaceId);
    await confirmTenant(client, target, r.workspaceId);
  } catch (e) {
    throw mapPgError(e, target);
  } finally {
    await client.end().catch(() => undefined);
  }
}
