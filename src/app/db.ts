/**
 * The workspace's SQLite file (`.kair/kair.db`) for a use case: opened after the workspace
 * (exit 4) and the config (exit 2) are known good, closed when the use case is done.
 */
import { existsSync } from 'node:fs';
import { paths } from '../store/fs/workspace.js';
import type { Db } from '../store/sqlite/db.js';
import { openDb } from '../store/sqlite/db.js';
import type { Ctx } from './context.js';

function dbFile(ctx: Ctx): string {
  void ctx.config;
  return paths.db(ctx.ws);
}

export function withDb<T>(ctx: Ctx, fn: (db: Db) => T): T {
  const db = openDb(dbFile(ctx));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Like withDb, but gives `empty()` instead of creating a database that does not exist yet. */
export function readDb<T>(ctx: Ctx, empty: () => T, fn: (db: Db) => T): T {
  return existsSync(dbFile(ctx)) ? withDb(ctx, fn) : empty();
}
