/**
 * The workspace's execution store (`.kair/kair.db` on the local backend) for a use case: opened
 * after the workspace (exit 4) and the config (exit 2) are known good, closed when the use case
 * is done. Use cases reach it only through the port (`ExecutionStore`, `SqlExecutor`).
 */
import { existsSync } from 'node:fs';
import { paths } from '../store/fs/workspace.js';
import type { ExecutionStore, SqlExecutor } from '../store/port.js';
import { readOnly } from '../store/port.js';
import type { SqliteExecutionStore } from '../store/sqlite/executor.js';
import { openExecutionStore } from '../store/sqlite/executor.js';
import type { Ctx } from './context.js';

function dbFile(ctx: Ctx): string {
  void ctx.config;
  return paths.db(ctx.ws);
}

/** Whether the workspace has an execution store yet (a read need not create one). */
export function hasExecutionStore(ctx: Ctx): boolean {
  return existsSync(dbFile(ctx));
}

/** Opens (creating and migrating if needed) the workspace's store; the caller closes it. */
export function openExecution(ctx: Ctx): SqliteExecutionStore {
  return openExecutionStore(dbFile(ctx));
}

export async function withExecution<T>(ctx: Ctx, fn: (store: ExecutionStore) => Promise<T>): Promise<T> {
  const store = openExecution(ctx);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** One transaction on the workspace's store (created if needed). */
export function inTransaction<T>(ctx: Ctx, fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
  return withExecution(ctx, (store) => store.transaction(fn));
}

/** Like inTransaction, but gives `empty()` instead of creating a store that does not exist yet. */
export async function inExistingTransaction<T>(ctx: Ctx, empty: () => T, fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
  return hasExecutionStore(ctx) ? inTransaction(ctx, fn) : empty();
}

/** A read-only transaction (blocks no writer), or `empty()` when the workspace has no store yet. */
export async function readOnlyTransaction<T>(ctx: Ctx, empty: () => T, fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
  return hasExecutionStore(ctx) ? withExecution(ctx, (store) => readOnly(store, fn)) : empty();
}
