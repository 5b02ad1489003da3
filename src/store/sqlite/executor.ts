/**
 * The local execution side of the storage port: `SqlExecutor` and `ExecutionStore` over one
 * better-sqlite3 connection (`.kair/kair.db`). docs/decisions/033-execution-side-on-the-port.md.
 *
 * better-sqlite3 is synchronous; the port is not (PostgreSQL's driver is), so every call returns
 * a settled promise around the synchronous one — a microtask, nothing next to a statement.
 *
 * `transaction` is `BEGIN IMMEDIATE … COMMIT`: the write lock is taken before the first read, so
 * a chain head read and the insert after it cannot interleave with another process's writer (as
 * better-sqlite3's `.immediate()` did). A transaction opened while one is open is a savepoint
 * inside it, as better-sqlite3's nested `.transaction()` was: a store serves one flow at a time,
 * as its one connection always did (kair's commands and the run loop are sequential). Telling a
 * nested call from a concurrent flow would take an AsyncLocalStorage, which in Node 20 installs
 * promise hooks that slow every promise of the process, for no caller that needs it.
 */
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

  /** SQLite serialises every writer with BEGIN IMMEDIATE: a chain needs no lock of its own. */
  lockChain(): Promise<void> {
    return Promise.resolve();
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
  /** Open transactions: 0 between transactions, 1 inside one, more inside its savepoints. */
  private depth = 0;

  constructor(readonly db: Db) {
    this.sql = new SqliteExecutor(db);
  }

  transaction<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    return this.begin('BEGIN IMMEDIATE', fn);
  }

  /**
   * A read transaction: a deferred BEGIN, which in WAL mode reads one snapshot without taking the
   * write lock, so a long read (verify over a large ledger) never makes a writer wait.
   */
  read<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    return this.begin('BEGIN', fn);
  }

  private begin<T>(begin: 'BEGIN' | 'BEGIN IMMEDIATE', fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    return this.depth > 0 ? this.savepoint(fn) : this.top(begin, fn);
  }

  private async top<T>(begin: 'BEGIN' | 'BEGIN IMMEDIATE', fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    // BEGIN IMMEDIATE waits up to busy_timeout for another process's writer, then SQLITE_BUSY.
    this.sql.stmt(begin).run();
    let result: T;
    this.depth = 1;
    try {
      result = await fn(this.sql);
    } catch (e) {
      this.depth = 0;
      // An error may have ended the transaction already (SQLite rolls back by itself on some).
      if (this.db.inTransaction) this.sql.stmt('ROLLBACK').run();
      throw e;
    }
    this.depth = 0;
    try {
      this.sql.stmt('COMMIT').run();
    } catch (e) {
      if (this.db.inTransaction) this.sql.stmt('ROLLBACK').run();
      throw e;
    }
    return result;
  }

  private async savepoint<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
    // Named by depth: siblings reuse a name (each is released before the next), so statements cache.
    const name = `kair_sp${this.depth}`;
    this.sql.stmt(`SAVEPOINT ${name}`).run();
    this.depth++;
    try {
      const result = await fn(this.sql);
      this.depth--;
      this.sql.stmt(`RELEASE ${name}`).run();
      return result;
    } catch (e) {
      this.depth--;
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
