/**
 * The local ExecutionStore (src/store/sqlite/executor.ts): BEGIN IMMEDIATE transactions,
 * savepoints when nested, rollback on throw, writers of two processes serialised, reads that
 * take no write lock, and a process killed inside a transaction commits nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlExecutor } from '../../src/store/port.js';
import { openExecutionStore, type SqliteExecutionStore } from '../../src/store/sqlite/executor.js';
import { makeTempDir } from '../helpers/cli.js';
import { rmSync } from 'node:fs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
let file: string;
let store: SqliteExecutionStore;

beforeEach(async () => {
  dir = makeTempDir('kair-executor-');
  file = join(dir, '.kair', 'kair.db');
  store = openExecutionStore(file);
  await store.sql.run('CREATE TABLE t (n INTEGER NOT NULL)');
});

afterEach(() => {
  if (store.db.open) store.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = async (sql: SqlExecutor = store.sql) => (await sql.get<{ n: number }>('SELECT count(*) AS n FROM t'))!.n;

describe('SqliteExecutor', () => {
  it('runs plain SQL with ? placeholders and caches prepared statements', async () => {
    expect(store.sql.dialect).toBe('sqlite');
    expect(await store.sql.run('INSERT INTO t (n) VALUES (?), (?)', [1, 2])).toEqual({ changes: 2 });
    expect(await store.sql.all('SELECT n FROM t ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await store.sql.get('SELECT n FROM t WHERE n = ?', [3])).toBeUndefined();
    expect(store.sql.stmt('SELECT n FROM t ORDER BY n')).toBe(store.sql.stmt('SELECT n FROM t ORDER BY n'));
  });

  it('turns a SQLite error into a rejection, not a synchronous throw', async () => {
    const p = store.sql.run('INSERT INTO t (n) VALUES (NULL)');
    await expect(p).rejects.toThrow(/NOT NULL/);
  });
});

describe('SqliteExecutionStore.transaction', () => {
  it('commits what fn wrote and returns its result; the transaction is BEGIN IMMEDIATE', async () => {
    const r = await store.transaction(async (sql) => {
      await sql.run('INSERT INTO t (n) VALUES (1)');
      expect(store.db.inTransaction).toBe(true);
      return 'done';
    });
    expect(r).toBe('done');
    expect(store.db.inTransaction).toBe(false);
    expect(await count()).toBe(1);
  });

  it('rolls everything back when fn throws, and the error reaches the caller', async () => {
    await expect(
      store.transaction(async (sql) => {
        await sql.run('INSERT INTO t (n) VALUES (1)');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(store.db.inTransaction).toBe(false);
    expect(await count()).toBe(0);
  });

  it('nests as savepoints: an inner throw undoes only the inner part, an outer throw undoes all', async () => {
    await store.transaction(async (sql) => {
      await sql.run('INSERT INTO t (n) VALUES (1)');
      await expect(
        store.transaction(async (inner) => {
          await inner.run('INSERT INTO t (n) VALUES (2)');
          throw new Error('inner');
        }),
      ).rejects.toThrow('inner');
      await store.transaction(async (inner) => {
        await inner.run('INSERT INTO t (n) VALUES (3)');
        await store.transaction((deeper) => deeper.run('INSERT INTO t (n) VALUES (4)'));
      });
    });
    expect(await store.sql.all('SELECT n FROM t ORDER BY n')).toEqual([{ n: 1 }, { n: 3 }, { n: 4 }]);
    await expect(
      store.transaction(async (sql) => {
        await sql.run('INSERT INTO t (n) VALUES (5)');
        await store.transaction((inner) => inner.run('INSERT INTO t (n) VALUES (6)'));
        throw new Error('outer');
      }),
    ).rejects.toThrow('outer');
    expect(await count()).toBe(3);
  });
});

describe('across processes', () => {
  const bundle = () => {
    const out = join(dir, 'executor.cjs');
    buildSync({ entryPoints: [join(ROOT, 'src/store/sqlite/executor.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, external: ['better-sqlite3'], logLevel: 'silent' });
    return out;
  };
  const env = { ...process.env, NODE_PATH: join(ROOT, 'node_modules') };

  it('a second process waits on BEGIN IMMEDIATE while a transaction is open, then writes after it', async () => {
    const child = `
      const { openExecutionStore } = require(${JSON.stringify(bundle())});
      const s = openExecutionStore(process.argv[1]);
      const t0 = Date.now();
      s.transaction(async (sql) => {
        const waited = Date.now() - t0;
        const before = (await sql.get('SELECT count(*) AS n FROM t')).n;
        await sql.run('INSERT INTO t (n) VALUES (99)');
        return { waited, before };
      }).then((r) => { process.stdout.write(JSON.stringify(r)); s.close(); });`;
    let started!: () => void;
    const childStarted = new Promise<void>((r) => (started = r));
    let out = '';
    let err = '';
    let exited!: Promise<number | null>;
    await store.transaction(async (sql) => {
      await sql.run('INSERT INTO t (n) VALUES (1)');
      const p = spawn(process.execPath, ['-e', child, file], { env });
      p.stdout.on('data', (d: Buffer) => (out += String(d)));
      p.stderr.on('data', (d: Buffer) => (err += String(d)));
      p.on('spawn', started);
      exited = new Promise((r) => p.on('exit', r));
      await childStarted;
      // Long enough for the child to load and reach BEGIN IMMEDIATE (its busy_timeout is 5 s).
      await new Promise((r) => setTimeout(r, 800));
      await sql.run('INSERT INTO t (n) VALUES (2)');
    });
    expect(await exited, err).toBe(0);
    const r = JSON.parse(out) as { waited: number; before: number };
    // It saw both rows of the committed transaction, never half of it.
    expect(r.before).toBe(2);
    expect(await count()).toBe(3);
  });

  it('another writer cannot begin while a transaction is open (busy_timeout 0 → SQLITE_BUSY)', async () => {
    const child = `
      const Database = require('better-sqlite3');
      const db = new Database(process.argv[1], { timeout: 0 });
      try { db.prepare('BEGIN IMMEDIATE').run(); process.stdout.write('began'); } catch (e) { process.stdout.write(String(e.code)); }`;
    await store.transaction(async () => {
      const r = spawnSync(process.execPath, ['-e', child, file], { env, encoding: 'utf8' });
      expect(r.stdout).toBe('SQLITE_BUSY');
    });
    const r = spawnSync(process.execPath, ['-e', child, file], { env, encoding: 'utf8' });
    expect(r.stdout).toBe('began');
  });

  it('a read transaction neither takes the write lock nor sees a write committed after it began', async () => {
    const writer = `
      const Database = require('better-sqlite3');
      const db = new Database(process.argv[1], { timeout: 0 });
      try { db.prepare('BEGIN IMMEDIATE').run(); db.prepare('INSERT INTO t (n) VALUES (7)').run(); db.prepare('COMMIT').run(); process.stdout.write('wrote'); } catch (e) { process.stdout.write(String(e.code)); }`;
    await store.sql.run('INSERT INTO t (n) VALUES (1)');
    await store.read(async (sql) => {
      expect(await count(sql)).toBe(1);
      expect(spawnSync(process.execPath, ['-e', writer, file], { env, encoding: 'utf8' }).stdout).toBe('wrote');
      // One snapshot for the whole read: the other process's commit is not seen inside it.
      expect(await count(sql)).toBe(1);
    });
    expect(await count()).toBe(2);
  });

  it('a process killed between BEGIN and COMMIT commits nothing', async () => {
    const child = `
      const { openExecutionStore } = require(${JSON.stringify(bundle())});
      const s = openExecutionStore(process.argv[1]);
      s.transaction(async (sql) => {
        for (let i = 0; i < 100; i++) await sql.run('INSERT INTO t (n) VALUES (?)', [i]);
        process.stdout.write('inside');
        await new Promise(() => setTimeout(() => {}, 60000));
      });`;
    const p = spawn(process.execPath, ['-e', child, file], { env });
    await new Promise<void>((resolve) => p.stdout.on('data', () => resolve()));
    p.kill('SIGKILL');
    await new Promise((r) => p.on('exit', r));
    expect(await count()).toBe(0);
    // The lock died with the process: this writer begins at once.
    await store.transaction((sql) => sql.run('INSERT INTO t (n) VALUES (1)'));
    expect(await count()).toBe(1);
  });
});
