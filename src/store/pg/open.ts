/**
 * Opening a workspace whose config names the postgres backend: the storage port over one
 * database session. The URL is read from the variable `backend.url_env` names, at this moment
 * only: it is never stored and never printed (connect.ts's messages name user, host, port and
 * database). The tenant is the workspace's `workspace_id`.
 */
import type { Config } from '../../domain/config.js';
import { kairError } from '../../domain/errors.js';
import type { Workspace } from '../fs/workspace.js';
import type { StoragePort } from '../port.js';
import { PgEventStore } from './event-store.js';

export interface PgStorage extends StoragePort {
  readonly kind: 'postgres';
  readonly contracts: PgEventStore;
}

/** Connects (BACKEND_UNAVAILABLE / BACKEND_CONFIG_INVALID), migrates under the advisory lock, and returns the port. */
export async function openPgStorage(ws: Workspace, config: Config, env: NodeJS.ProcessEnv): Promise<PgStorage> {
  const b = config.backend;
  if (b.kind !== 'postgres') {
    throw kairError('INTERNAL_ERROR', `openPgStorage called for a ${b.kind} workspace (${ws.root})`, { key: 'backend.kind' });
  }
  const store = await PgEventStore.open({ env, urlEnv: b.url_env, schema: b.schema, tenant: config.workspace_id });
  return {
    kind: 'postgres',
    contracts: store,
    liveness: store.liveness(),
    close: () => store.close(),
  };
}
