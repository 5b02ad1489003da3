/**
 * Connecting to PostgreSQL and turning its failures into kair's codes. `pg` is imported here
 * dynamically, and only this folder imports this module: the local backend never loads it.
 *
 * - no reachable server (refused, timed out, reset, shut down mid-command) → BACKEND_UNAVAILABLE
 *   (exit 6, retryable): nothing was committed, so running the command again is safe;
 * - a bad URL, wrong credentials, a missing database, a role that may not use or create the
 *   schema → BACKEND_CONFIG_INVALID (exit 2).
 *
 * Messages name the user, host, port and database, never the password.
 */
import type { Client as PgClient, ClientConfig } from 'pg';
import { kairError, isKairError } from '../../domain/errors.js';
import type { KairError } from '../../domain/errors.js';

export type { PgClient };

/** An SQL identifier (a schema name) quoted for PostgreSQL. */
export const quoteIdent = (ident: string): string => `"${ident.replace(/"/g, '""')}"`;

export interface PgTarget {
  /** The variable the URL came from (named in messages). */
  urlEnv: string;
  user: string;
  host: string;
  port: number;
  database: string;
  schema: string;
}

export interface PgConnection {
  client: PgClient;
  target: PgTarget;
}

export interface ConnectOptions {
  env: NodeJS.ProcessEnv;
  /** backend.url_env */
  urlEnv: string;
  /** backend.schema */
  schema: string;
  /** Connection timeout; an unreachable host is BACKEND_UNAVAILABLE after it. */
  connectTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Parses the URL in the named variable; the password is kept out of everything returned for display. */
export function targetOf(o: ConnectOptions): { config: ClientConfig; target: PgTarget } {
  const raw = o.env[o.urlEnv];
  const invalid = (why: string) =>
    kairError('BACKEND_CONFIG_INVALID', `${o.urlEnv} ${why}`, { env: o.urlEnv, hint: `export ${o.urlEnv}='postgres://USER:PASSWORD@HOST:5432/DATABASE'` });
  if (raw === undefined || raw.trim() === '') throw invalid('is not set; it must hold the PostgreSQL URL of the shared workspace');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalid('is not a URL (expected postgres://USER:PASSWORD@HOST:5432/DATABASE)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw invalid(`has the scheme ${JSON.stringify(u.protocol.slice(0, 20))}; expected postgres:// or postgresql://`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!u.hostname) throw invalid('names no host');
  if (!database) throw invalid('names no database (postgres://USER:PASSWORD@HOST:5432/DATABASE)');
  if (!SCHEMA_NAME.test(o.schema)) throw kairError('BACKEND_CONFIG_INVALID', `backend.schema ${JSON.stringify(o.schema.slice(0, 80))} is not a usable schema name`, { key: 'backend.schema' });
  const target: PgTarget = {
    urlEnv: o.urlEnv,
    user: decodeURIComponent(u.username) || 'postgres',
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 5432,
    database,
    schema: o.schema,
  };
  return {
    config: { connectionString: raw, connectionTimeoutMillis: o.connectTimeoutMs ?? 10_000, application_name: 'kair' },
    target,
  };
}

declare const __KAIR_BUNDLED__: boolean | undefined;
declare const require: ((id: string) => unknown) | undefined;

let pgModule: typeof import('pg') | undefined;
async function loadPg(): Promise<typeof import('pg')> {
  // The one import of pg in kair: dynamic, so only the PostgreSQL backend pays for it.
  if (!pgModule) {
    // The CLI's bundles run as compiled scripts (bin/kair.js's code cache), where import() has
    // no module loader ("A dynamic import callback was not specified"): require the external package.
    const m = (typeof __KAIR_BUNDLED__ === 'boolean' && typeof require === 'function' ? require('pg') : await import('pg')) as typeof import('pg') & { default?: typeof import('pg') };
    pgModule = m.default ?? m;
  }
  return pgModule;
}

/** Connects, applies pending migrations (see migrations.ts) and sets the search path. */
export async function connectPg(o: ConnectOptions): Promise<PgConnection> {
  const { config, target } = targetOf(o);
  const pg = await loadPg();
  // bigint columns (seq, row ids, micros) as numbers: row hashes are computed over numbers, as
  // SQLite returns them, and no value kair stores comes near 2^53.
  const types = { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser };
  const client = new pg.Client({ ...config, types });
  // A connection dropped while idle (server restart) emits 'error'; without a listener Node
  // would crash the process. The next query reports it and maps it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw mapPgError(e, target);
  }
  return { client, target };
}

const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

const where = (t: PgTarget) => `${t.host}:${t.port}`;

/**
 * kair's error for a failure of the driver or the server. SQLSTATEs: class 08 (connection), 57P01-3
 * (shutdown), 53300 (too many connections) → unavailable; 28xxx (authentication), 3D000 (no such
 * database), 42501 (privilege), 3F000 (no such schema) → config; 55P03 (lock_timeout) → LOCK_BUSY;
 * 23505 on a history row, 40001, 40P01 → CONCURRENT_WRITE. Anything else is rethrown as it is.
 */
export function mapPgError(e: unknown, t: PgTarget, context: { contractId?: string } = {}): KairError | unknown {
  if (isKairError(e)) return e;
  const err = e as { code?: unknown; message?: unknown; constraint?: unknown; table?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  const message = typeof err.message === 'string' ? err.message : '';
  const unavailable = (why: string) =>
    kairError('BACKEND_UNAVAILABLE', `the PostgreSQL server at ${where(t)} ${why}; nothing was written`, {
      host: t.host,
      port: t.port,
      cause: code || 'connection',
      retryable: true,
      hint: `start the server or point ${t.urlEnv} at one that runs, then retry`,
    });
  const config = (why: string, hint: string) =>
    kairError('BACKEND_CONFIG_INVALID', `${why} (${t.user}@${where(t)}/${t.database}); nothing was written`, { env: t.urlEnv, host: t.host, port: t.port, database: t.database, user: t.user, cause: code, hint });
  if (UNAVAILABLE_ERRNO.has(code)) return unavailable(code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'cannot be found (no such host name)' : `cannot be reached (${code})`);
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return unavailable(`went away or refused the session (SQLSTATE ${code})`);
  // pg reports a dropped socket or a connect timeout by message, without a code.
  if (!code && /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(message)) return unavailable('closed the connection');
  if (code === '28P01' || code === '28000') return config('PostgreSQL refused the credentials', `check the user and password in ${t.urlEnv}`);
  if (code === '3D000') return config(`the database ${JSON.stringify(t.database)} does not exist`, `create it (createdb ${t.database}) or fix the database name in ${t.urlEnv}`);
  if (code === '42501' || code === '3F000') {
    return config(`the role ${JSON.stringify(t.user)} may not use or create the schema ${JSON.stringify(t.schema)}`, `GRANT USAGE, CREATE ON SCHEMA ${t.schema} TO ${t.user} (or CREATE ON DATABASE ${t.database}, to let kair create it)`);
  }
  if (code === '55P03') {
    const id = context.contractId;
    return kairError('LOCK_BUSY', `${id ? `contract ${id}` : 'the lock'} is being written by another session (waited for --lock-timeout); nothing was written`, {
      ...(id ? { contract_id: id } : {}),
      backend: 'postgres',
      hint: 'retry, or raise --lock-timeout',
    });
  }
  if (code === '40001' || code === '40P01' || (code === '23505' && err.table === 'history_events')) {
    const id = context.contractId;
    return kairError('CONCURRENT_WRITE', `another session wrote the history of ${id ?? 'the contract'} at the same time; nothing was written, retry`, {
      ...(id ? { contract_id: id } : {}),
      hint: 'run the command again: it decides on the new state',
    });
  }
  return e;
}
