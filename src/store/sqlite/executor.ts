/**
 * The local execution side of the storage port: `SqlExecutor` and `ExecutionStore` over one
 * better-sqlite3 connection (`.kair/kair.db`). docs/decisions/033-execution-side-on-the-port.md.
 *
 * better-sqlite3 is synchronous; the port is not (PostgreSQL's driver is), so every call returns
 * a settled promise around the synchronous one — a microtask, nothing next to a statement.
 *
 * `transaction` is `BEGIN IMMEDIATE … COMMIT`: the write lock is taken before the first read, so
 * a chain head read and the insert after it cannot interleave with another process's writer (as
 * better-sqlite3's `.immediate()` did). A transaction opened inside another one of the same flow
 * is a savepoint. Two flows of one process (two promises that both call `transaction` without
 * one being inside the other) share one connection, so they queue: the second starts when the
 * first has committed or rolled back. Which flow a call belongs to is known from an
 * AsyncLocalStorage, not from a depth counter, because a counter would take a concurrent flow
 * for a nested one and interleave its statements with the other's transaction.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type Database from 'better-sqlite3';
import type { ExecutionStore, SqlExecutor } from '../port.js';
import type { Db, OpenDbOptions } from './db.js';
import { openDb } from './db.js';

type Stmt = Database.Statement<unknown[], unknown>;

/** Plain SQL over one connection; prepared statements are cached by their text. */
export class SqliteExecutor implements SqlExecutor {
  readonly dialect = 'sqlite' as const;
  private readonly cache = new Map<string, Stmt>();

  constructor(readonly db: Db) {}

  /** The prepared statement for `sql`, prepared once per connection. */
  stmt(sql: string): Stmt {
    let s = this.cache.get(sql);
    if (!s) this.cache.set(sql, (s = this.db.prepare<unknown[]>(sql)));
    return s;
  }

  // Not `async`: a thrown SQLite error becomes a rejection without the cost of an async frame.
  all<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    try {
      return Promise.resolve(this.stmt(sql).all(...params) as R[]);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  get<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<R | undefined> {
    try {
      return Promise.resolve(this.stmt(sql).get(...params) as R | undefined);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  run(sql: string, params: readonly unknown[] = []): Promise<{ changes: number }> {
    try {
      return Promise.resolve({ changes: this.stmt(sql).run(...params).changes });
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }
}

/** The store of one connection. `sql` runs in autocommit mode (each statement its own commit): for reads and for local-only maintenance. */
export class SqliteExecutionStore implements ExecutionStore {
  readonly sql: SqliteExecutor;
  /** The flow whose transaction is open (undefined between transactions). */
  private readonly flow = new AsyncLocalStorage<{ depth: number }>();
  /** Settles when the open top-level transaction has ended: the next one waits for it. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(readonly db: Db) {
    this.sql = new SqliteExecutor(db);
  }

  transaction<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    const inside = this.flow.getStore();
    if (inside) return this.savepoint(inside, fn);
    const run = this.tail.then(() => this.top(fn));
    // The queue moves on whatever this transaction's fate; its error is the caller's.
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async top<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    // Waits up to busy_timeout for another process's writer, then SQLITE_BUSY.
    this.sql.stmt('BEGIN IMMEDIATE').run();
    let result: T;
    try {
      result = await this.flow.run({ depth: 1 }, () => fn(this.sql));
    } catch (e) {
      // A failed COMMIT may already have ended the transaction (SQLite rolls back on some errors).
      if (this.db.inTransaction) this.sql.stmt('ROLLBACK').run();
      throw e;
    }
    try {
      this.sql.stmt('COMMIT').run();
    } catch (e) {
      if (this.db.inTransaction) this.sql.stmt('ROLLBACK').run();
      throw e;
    }
    return result;
  }

  private async savepoint<T>(outer: { depth: number }, fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    // Named by depth: siblings reuse a name (each is released before the next), so statements cache.
    const name = `kair_sp${outer.depth}`;
    this.sql.stmt(`SAVEPOINT ${name}`).run();
    try {
      const result = await this.flow.run({ depth: outer.depth + 1 }, () => fn(this.sql));
      this.sql.stmt(`RELEASE ${name}`).run();
      return result;
    } catch (e) {
      if (this.db.inTransaction) {
        this.sql.stmt(`ROLLBACK TO ${name}`).run();
        this.sql.stmt(`RELEASE ${name}`).run();
      }
      throw e;
    }
  }

  close(): void {
    this.db.close();
  }
}

/** Opens (creating and migrating if needed) the workspace database as an execution store. */
export function openExecutionStore(file: string, opts: OpenDbOptions = {}): SqliteExecutionStore {
  return new SqliteExecutionStore(openDb(file, opts));
}

/** The store over a connection already open (tests, the migrations' own connection). */
export function executionStoreOf(db: Db): SqliteExecutionStore {
  let s = stores.get(db);
  if (!s) stores.set(db, (s = new SqliteExecutionStore(db)));
  return s;
}
const stores = new WeakMap<Db, SqliteExecutionStore>();
