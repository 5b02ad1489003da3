/**
 * The execution side on PostgreSQL: `ExecutionStore` and `SqlExecutor` (src/store/port.ts) over
 * one `pg` session, for one tenant (the workspace id). The lanes' SQLite SQL goes through
 * dialect.ts, which fills the tenant into every row written and filters every table read by it
 * (decision 035 weighs the ways and says why this one cannot leak across tenants, whatever the
 * role's privileges).
 *
 * - `transaction(fn)` is one transaction on this session; called inside `fn` it nests as a
 *   savepoint. Calls from unrelated async paths wait their turn (one session runs one
 *   transaction at a time). Called while another transaction is open on the session (the
 *   contract boundary's), it joins it as a savepoint and commits with it.
 * - `lockChain(table, key)` is SQLite's BEGIN IMMEDIATE for one chain: a transaction-scoped
 *   advisory lock, taken before the chain head is read, released by COMMIT or ROLLBACK.
 * - Numbers come back as numbers (bigint, numeric), booleans as 1/0, as SQLite returns them, so
 *   row JSON and hashes are the same on both engines.
 * - Failures are kair errors: mapPgError's, plus a unique violation on an execution table (the
 *   AEC claim index, a chained id) as CONCURRENT_WRITE: another session committed that row first,
 *   nothing of this transaction was committed, and the retry reads what it wrote.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { isKairError, kairError } from '../../domain/errors.js';
import type { ExecutionStore, SqlExecutor } from '../port.js';
import type { PgClient, PgTarget } from './connect.js';
import { mapPgError } from './connect.js';
import type { PgTable, Translated } from './dialect.js';
import { translate } from './dialect.js';
import { lockKey } from './migrations.js';

/**
 * Tables whose integer ids are allocated per tenant across several chains (the AEC ledger is
 * chained per contract, its row_id is per tenant): their chains are locked as one.
 */
const SHARED_ID_TABLES: ReadonlySet<string> = new Set(['agent_execution_ledger']);

/** How long a transaction waits for a chain lock: SQLite's busy timeout (5 s) on the local backend. */
export const CHAIN_LOCK_TIMEOUT_MS = 5000;

export interface PgExecutionStore extends ExecutionStore {
  readonly tenant: string;
  readonly target: PgTarget;
  /** The translation of one statement (for tests and the corpus check). */
  translate(sql: string): Promise<Translated>;
}

/** The schema's tables (columns in order, primary key), read from the catalog. */
export async function loadTables(client: PgClient, schema: string): Promise<Map<string, PgTable>> {
  const cols = await client.query<{ t: string; c: string }>(
    `SELECT c.relname AS t, a.attname AS c FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'
      ORDER BY c.relname, a.attnum`,
    [schema],
  );
  const pks = await client.query<{ t: string; c: string }>(
    `SELECT c.relname AS t, a.attname AS c FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON true
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE n.nspname = $1 AND i.indisprimary ORDER BY c.relname, k.ord`,
    [schema],
  );
  const out = new Map<string, { columns: string[]; primaryKey: string[] }>();
  for (const r of cols.rows) {
    let t = out.get(r.t);
    if (!t) out.set(r.t, (t = { columns: [], primaryKey: [] }));
    t.columns.push(r.c);
  }
  for (const r of pks.rows) out.get(r.t)?.primaryKey.push(r.c);
  return out;
}

const INT8 = 20;
const NUMERIC = 1700;
const BOOL = 16;

/** SQLite's view of a PostgreSQL value: integers and decimals as numbers, booleans as 1/0. */
function convertRows(rows: Record<string, unknown>[], fields: readonly { name: string; dataTypeID: number }[]): Record<string, unknown>[] {
  const conv = fields.filter((f) => f.dataTypeID === INT8 || f.dataTypeID === NUMERIC || f.dataTypeID === BOOL);
  if (conv.length === 0) return rows;
  for (const row of rows) {
    for (const f of conv) {
      const v = row[f.name];
      if (v === null || v === undefined) continue;
      row[f.name] = f.dataTypeID === BOOL ? (v ? 1 : 0) : typeof v === 'number' ? v : Number(v);
    }
  }
  return rows;
}

/** A parameter as SQLite would bind it: booleans as 1/0 (better-sqlite3 refuses them; kair passes none). */
const param = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'bigint' ? v.toString() : v === undefined ? null : v);

/**
 * The execution store of `tenant` on this session. The session must be migrated (connectPg +
 * migratePg); tables are read from the catalog at the first statement.
 */
export function pgExecutionStore(client: PgClient, target: PgTarget, tenant: string, opts: { chainLockTimeoutMs?: number } = {}): PgExecutionStore {
  if (typeof tenant !== 'string' || tenant === '') throw kairError('INTERNAL_ERROR', 'the PostgreSQL execution store needs the workspace id as its tenant', {});
  let tables: Promise<Map<string, PgTable>> | undefined;
  const cache = new Map<string, Translated>();
  const lockMs = Math.max(1, Math.floor(opts.chainLockTimeoutMs ?? CHAIN_LOCK_TIMEOUT_MS));

  const translated = async (sql: string): Promise<Translated> => {
    let t = cache.get(sql);
    if (!t) {
      tables ??= loadTables(client, target.schema).catch((e: unknown) => {
        tables = undefined;
        throw mapPgError(e, target);
      });
      t = translate(sql, { schema: target.schema, tables: await tables });
      cache.set(sql, t);
    }
    return t;
  };

  const mapError = (e: unknown): unknown => {
    if (isKairError(e)) return e;
    const err = e as { code?: unknown; table?: unknown; constraint?: unknown; message?: unknown };
    if (err.code === '23505') {
      const table = typeof err.table === 'string' ? err.table : 'execution';
      return kairError('CONCURRENT_WRITE', `another session committed the same ${table} row first (${String(err.constraint ?? 'unique key')}); nothing of this step was committed`, {
        table,
        constraint: err.constraint ?? null,
        retryable: true,
        hint: 'run the command again: it reads what the other session wrote (an AEC step it claimed is replayed or in doubt, never run twice)',
      });
    }
    return mapPgError(e, target);
  };

  // Set below: which transaction the current async path is inside.
  const inside = new AsyncLocalStorage<{ depth: number }>();
  const outside = () =>
    kairError('INTERNAL_ERROR', 'a statement was sent outside its transaction (the executor of a finished transaction was kept)', { hint: 'this is a bug in kair: report it' });

  const query = async (sql: string, params: readonly unknown[] = []): Promise<{ rows: Record<string, unknown>[]; changes: number }> => {
    // A statement outside the transaction would autocommit, and a chain lock would end at once.
    if (!inside.getStore()) throw outside();
    const t = await translated(sql);
    if (params.length !== t.params) {
      throw kairError('INTERNAL_ERROR', `the statement takes ${t.params} parameter(s) but ${params.length} were passed`, { statement: sql.replace(/\s+/g, ' ').trim().slice(0, 200) });
    }
    for (const i of t.tenantParams) {
      // The lane names tenant_id itself here (the local table has the column): it must be ours.
      if (params[i - 1] !== tenant) {
        throw kairError('INTERNAL_ERROR', "a row for another workspace's tenant_id was refused; nothing was written", { statement: sql.replace(/\s+/g, ' ').trim().slice(0, 200), hint: 'this is a bug in kair: report it' });
      }
    }
    const values = params.map(param);
    if (t.usesTenant) values.push(tenant);
    try {
      const r = await client.query<Record<string, unknown>>({ text: t.text, values });
      const rows = convertRows(r.rows, r.fields);
      if (!t.keepRowid && r.fields.some((f) => f.name === 'rowid')) for (const row of rows) delete row.rowid;
      return { rows, changes: r.rowCount ?? 0 };
    } catch (e) {
      throw mapError(e);
    }
  };

  const executor: SqlExecutor = {
    dialect: 'postgres',
    all: async <R>(sql: string, params?: readonly unknown[]) => (await query(sql, params)).rows as R[],
    get: async <R>(sql: string, params?: readonly unknown[]) => (await query(sql, params)).rows[0] as R | undefined,
    run: async (sql: string, params?: readonly unknown[]) => ({ changes: (await query(sql, params)).changes }),
    lockChain: async (table: string, key: readonly unknown[]) => {
      if (!inside.getStore()) throw outside();
      const parts = SHARED_ID_TABLES.has(table) ? [] : key.map((k) => (k === null || k === undefined ? '\u0000null' : String(k)));
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey('kair:chain', tenant, table, ...parts)]);
      } catch (e) {
        throw mapError(e);
      }
    },
  };

  // The queue that keeps unrelated transactions on this one session from interleaving (a
  // transaction(fn) inside fn nests as a savepoint instead).
  let queue: Promise<unknown> = Promise.resolve();
  let ownOpen = false;

  const outer = async <T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> => {
    try {
      // lock_timeout bounds the wait for a chain lock as SQLite's busy timeout does (55P03 → LOCK_BUSY).
      await client.query(`BEGIN; SET LOCAL lock_timeout = ${lockMs}`);
    } catch (e) {
      throw mapError(e);
    }
    try {
      const out = await inside.run({ depth: 1 }, () => fn(executor));
      await client.query('COMMIT');
      return out;
    } catch (e) {
      // A dead connection cannot roll back: the server does when the session ends.
      await client.query('ROLLBACK').catch(() => undefined);
      throw mapError(e);
    }
  };

  const nested = async <T>(depth: number, fn: (sql: SqlExecutor) => Promise<T>): Promise<T> => {
    const name = `kair_sp_${depth}`;
    try {
      await client.query(`SAVEPOINT ${name}`);
    } catch (e) {
      throw mapError(e);
    }
    try {
      const out = await inside.run({ depth: depth + 1 }, () => fn(executor));
      await client.query(`RELEASE SAVEPOINT ${name}`);
      return out;
    } catch (e) {
      await client.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
      throw mapError(e);
    }
  };

  return {
    tenant,
    target,
    translate: translated,
    transaction<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
      const cur = inside.getStore();
      if (cur) return nested(cur.depth, fn);
      // A transaction this store did not open is in progress on the session (the contract
      // boundary's, PgEventStore.mutate on the same connection): the rows join it as a savepoint
      // and commit with its COMMIT, so a boundary's history rows and execution rows commit
      // together or not at all.
      // ('E': that transaction has failed; joining it fails too, and leaves it to its owner.)
      const status = client.getTransactionStatus();
      if (!ownOpen && (status === 'T' || status === 'E')) return nested(0, fn);
      const run = queue.then(async () => {
        ownOpen = true;
        try {
          return await outer(fn);
        } finally {
          ownOpen = false;
        }
      });
      queue = run.catch(() => undefined);
      return run;
    },
  };
}
