/**
 * The storage port of a workspace (src/store/port.ts): which adapter serves it is the config's
 * `backend` block. Local is the default; PostgreSQL is still refused here (decision 031) — its
 * opener lives in src/store/pg/open.ts and is wired in when the backend opens.
 */
import type { Config } from '../domain/config.js';
import { kairError } from '../domain/errors.js';
import type { LocalWritesFactory } from './fs/adapter.js';
import { LocalContractStore } from './fs/adapter.js';
import type { Workspace } from './fs/workspace.js';
import { paths, rel } from './fs/workspace.js';
import type { StoragePort } from './port.js';

export interface StorageHooks {
  /** The clock lock holder records are stamped with. */
  now: () => string;
  /**
   * The local store's writing half (src/store/fs/adapter-write.ts). The CLI serves it from the
   * lifecycle bundle so that the read path's bundle never holds the lock library or the writers.
   */
  localWrites: () => Promise<LocalWritesFactory>;
}

/**
 * `backend`: the config's backend block, or undefined when the caller knows the workspace is
 * local without reading the whole config (the context's start-up check, src/store/backend-guard.ts,
 * has refused any other kind; `status` and `list` never otherwise read the config).
 */
export async function openStorage(ws: Workspace, backend: Config['backend'] | undefined, _env: NodeJS.ProcessEnv, hooks: StorageHooks): Promise<StoragePort> {
  if (backend?.kind === 'postgres') {
    throw kairError('BACKEND_CONFIG_INVALID', 'the postgres backend is not available in this version; nothing was read or written', {
      path: rel(ws, paths.config(ws)),
      key: 'backend.kind',
      hint: 'set backend.kind to "local" (kair config set backend.kind local) or remove the backend block',
    });
  }
  const contracts = new LocalContractStore(ws, { now: hooks.now, writes: hooks.localWrites });
  return { kind: 'local', contracts, close: async () => {} };
}
