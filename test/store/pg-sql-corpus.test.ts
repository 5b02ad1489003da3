/**
 * Every SQL statement kair sends from the lanes, the use cases and the SQLite store
 * (src/lanes, src/app, src/store/sqlite) either runs on PostgreSQL through the dialect layer —
 * translated, then PREPAREd (parsed, names resolved, parameter types inferred) on the migrated
 * schema in a rolled-back transaction — or is listed below as SQLite-only with the reason. A new
 * statement that PostgreSQL cannot run fails this test, naming its file and line.
 *
 * Template literals built from run-time values (`${spec.table}`) are expanded with the values
 * they take (DYNAMIC); one this list does not know fails the test too, so that it is looked at.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ANCHORED_TABLES, CHAINS } from '../../src/store/sqlite/chain.js';
import type { ChainSpec } from '../../src/store/sqlite/chain.js';
import { connectPg } from '../../src/store/pg/connect.js';
import type { PgConnection } from '../../src/store/pg/connect.js';
import { migratePg } from '../../src/store/pg/migrations.js';
import { loadTables, pgExecutionStore } from '../../src/store/pg/sql-executor.js';
import type { PgExecutionStore } from '../../src/store/pg/sql-executor.js';
import { pgOnlyColumns } from '../../src/store/pg/dialect.js';
import type { PgTable } from '../../src/store/pg/dialect.js';
import { ROOT } from '../helpers/cli.js';
import { usePg } from '../helpers/pg.js';
import { collectSqlSites, sqlSitesOf } from '../helpers/sql-corpus.js';
import type { SqlSite } from '../helpers/sql-corpus.js';

const pgt = usePg();
const DIRS = ['src/lanes', 'src/app', 'src/store/sqlite'];

/** Files that hold kair.db's schema and its migrations: PostgreSQL's is src/store/pg/migrations.ts. */
const SQLITE_SCHEMA_FILES = /^src\/store\/sqlite\/(db|[a-z-]+-migration)\.ts$/;

/**
 * Statements only SQLite understands, and what stands for them on PostgreSQL. They must be sent
 * only when `sql.dialect === 'sqlite'`.
 */
const SQLITE_ONLY: { pattern: RegExp; why: string }[] = [
  { pattern: /\bsqlite_master\b/, why: 'trigger checks: PostgreSQL reads pg_trigger (src/store/pg/verify-exec.ts)' },
  { pattern: /\bsqlite_sequence\b/, why: "AUTOINCREMENT's counter: chained rows are never deleted, so max(id) + 1 under the chain lock is the same id" },
  { pattern: /\bsqlite_version\(\)/, why: "doctor's SQLite check" },
];

/**
 * Statements of other areas that PostgreSQL refuses today, each with its fix. The test fails when
 * one of them runs (remove the entry) as well as when another statement fails.
 */
const KNOWN_FAILURES: { file: string; starts: string; error: RegExp; fix: string }[] = [];

const chainSpecs: ChainSpec[] = Object.values(CHAINS);
const orderOf = (spec: ChainSpec) => (spec.integerId ? `"${spec.id}"` : 'rowid');

/**
 * Scopes for the run-time templates: each entry's template (whitespace-normalised, as written in
 * the file) is evaluated once per scope. `columns(t)` are the local columns of a table.
 */
function dynamicScopes(columns: (t: string) => string[]): { file: string; template: string; scopes: Record<string, unknown>[] | 'sqlite-only' }[] {
  const pageScopes = [
    ...['execution_envelopes', 'agent_execution_ledger', 'agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger'].flatMap((table) => [
      { table, id: ANCHORED_TABLES[table as keyof typeof ANCHORED_TABLES], where: '' },
      { table, id: ANCHORED_TABLES[table as keyof typeof ANCHORED_TABLES], where: table === 'execution_envelopes' || table === 'agent_execution_ledger' ? 'WHERE contract_id = ?' : "WHERE run_id LIKE ? ESCAPE '\\'" },
    ]),
    { table: 'aec_refs', id: 'ref', where: '' },
  ];
  const chainScopes = chainSpecs.map((spec) => ({ spec, keys: spec.key.map((k) => `"${k}"`), order: orderOf, keyWhere: (s: ChainSpec) => (s.key.length ? `WHERE ${s.key.map((k) => `${k} = ?`).join(' AND ')}` : ''), table: spec.table }));
  return [
    { file: 'src/lanes/aec/change-log.ts', template: 'SELECT * FROM ${c.table} WHERE ${cols.map((k) => `${k} = ?`).join(\' AND \')}', scopes: [{ c: { table: 'simulations' }, cols: ['id'] }, { c: { table: 'access_policy' }, cols: ['actor', 'action'] }, { c: { table: 'slo_waivers' }, cols: ['id'] }] },
    { file: 'src/lanes/aec/change-log.ts', template: 'SELECT * FROM ${table}', scopes: ['simulations', 'access_policy', 'slo_waivers'].map((table) => ({ table })) },
    { file: 'src/lanes/aec/change-log.ts', template: "SELECT * FROM change_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id", scopes: [{ where: [] }, { where: ['table_name = ?'] }, { where: ['table_name = ?', 'row_key = ?'] }] },
    { file: 'src/lanes/aec/ledger.ts', template: "SELECT * FROM agent_execution_ledger ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY row_id", scopes: [{ conds: [] }, { conds: ['contract_id = ?', 'run_id = ?'] }] },
    { file: 'src/app/head-sqlite.ts', template: "SELECT ${keys.length ? `${keys.join(', ')}, ` : ''}MAX(${order(spec)}) AS seq FROM ${spec.table}${keys.length ? ` GROUP BY ${keys.join(', ')}` : ''}", scopes: chainScopes },
    { file: 'src/app/head-sqlite.ts', template: 'SELECT row_hash FROM ${spec.table} WHERE ${order(spec)} = ?', scopes: chainScopes },
    { file: 'src/app/verify-db.ts', template: 'SELECT * FROM ${t} WHERE ${ANCHORED_TABLES[t]} = ?', scopes: Object.keys(ANCHORED_TABLES).map((t) => ({ t, ANCHORED_TABLES })) },
    {
      file: 'src/app/verify-db.ts',
      template: 'SELECT * FROM ${table} ${where}',
      scopes: ['execution_envelopes', 'agent_execution_ledger', 'agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger'].flatMap((table) => [
        { table, where: '' },
        { table, where: table === 'execution_envelopes' || table === 'agent_execution_ledger' ? 'WHERE contract_id = ?' : "WHERE run_id LIKE ? ESCAPE '\\'" },
      ]),
    },
    { file: 'src/store/sqlite/chain.ts', template: 'SELECT row_hash FROM ${spec.table} ${keyWhere(spec)} ORDER BY ${order} DESC LIMIT 1', scopes: chainScopes.map((s) => ({ ...s, order: orderOf(s.spec) })) },
    { file: 'src/store/sqlite/chain.ts', template: 'SELECT coalesce(max(${spec.id}), 0) AS m FROM ${spec.table}', scopes: chainScopes.filter((s) => s.spec.integerId) },
    {
      file: 'src/store/sqlite/chain.ts',
      template: "INSERT INTO ${spec.table} (${all.join(', ')}) VALUES (${all.map(() => '?').join(', ')})",
      scopes: chainScopes.map((s) => ({ spec: s.spec, all: columns(s.spec.table) })),
    },
    { file: 'src/store/sqlite/chain.ts', template: 'SELECT * FROM ${table} WHERE ${ANCHORED_TABLES[table]} = ?', scopes: Object.keys(ANCHORED_TABLES).map((table) => ({ table, ANCHORED_TABLES })) },
    { file: 'src/store/sqlite/chain.ts', template: 'SELECT * FROM ${spec.table} WHERE "${spec.id}" = ?', scopes: chainScopes },
    {
      file: 'src/store/sqlite/chain.ts',
      template: 'SELECT * FROM ${table} WHERE ${where} ORDER BY ${id}',
      scopes: [
        ...['agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger', 'agent_execution_ledger'].map((table) => ({ table, where: 'run_id = ? AND step_id = ?', id: ANCHORED_TABLES[table as keyof typeof ANCHORED_TABLES] })),
        { table: 'execution_envelopes', where: 'id = ?', id: 'id' },
        { table: 'kimi_execution_runs', where: 'envelope_id = ?', id: 'id' },
      ],
    },
    // The PostgreSQL-only walks of a text-id chain by its links (aec_refs: no rowid order locally).
    { file: 'src/app/head-sqlite.ts', template: 'SELECT a.row_hash, (SELECT count(*) FROM ${spec.table}) AS seq FROM ${spec.table} a WHERE NOT EXISTS (SELECT 1 FROM ${spec.table} b WHERE b.prev_hash = a.row_hash)', scopes: [{ spec: CHAINS.aec_refs }] },
    { file: 'src/app/head-sqlite.ts', template: 'SELECT 1 AS one FROM ${spec.table} WHERE row_hash = ?', scopes: [{ spec: CHAINS.aec_refs }] },
    {
      file: 'src/store/sqlite/chain.ts',
      template: "SELECT a.row_hash FROM ${spec.table} a WHERE ${where} NOT EXISTS (SELECT 1 FROM ${spec.table} b WHERE b.prev_hash = a.row_hash${k}) LIMIT 1",
      scopes: chainSpecs.filter((spec) => !spec.integerId).map((spec) => ({ spec, where: spec.key.length ? `${spec.key.map((c) => `a.${c} = ?`).join(' AND ')} AND` : '', k: spec.key.map((c) => ` AND b.${c} = a.${c}`).join('') })),
    },
    { file: 'src/app/spend-vouch.ts', template: 'SELECT * FROM ${table} WHERE id = ?', scopes: [{ table: 'execution_envelopes' }, { table: 'kimi_execution_runs' }] },
    { file: 'src/app/verify-db.ts', template: 'SELECT * FROM ${table} WHERE ${ANCHORED_TABLES[table]} = ?', scopes: Object.keys(ANCHORED_TABLES).map((table) => ({ table, ANCHORED_TABLES })) },
    {
      file: 'src/app/verify-db.ts',
      template: 'SELECT * FROM ${table} ${where} ORDER BY ${id} LIMIT ${PAGE}',
      scopes: pageScopes.map((s) => ({ ...s, PAGE: 5000 })),
    },
    {
      file: 'src/app/verify-db.ts',
      template: 'SELECT * FROM ${table} ${and} ${id} > ? ORDER BY ${id} LIMIT ${PAGE}',
      scopes: pageScopes.map((s) => ({ ...s, and: s.where === '' ? 'WHERE' : `${s.where} AND`, PAGE: 5000 })),
    },
    // SQLite-only: export/import read and fill a local kair.db (the PostgreSQL side is store/pg/transfer.ts).
    { file: 'src/app/transfer.ts', template: "SELECT * FROM ${t} ORDER BY ${KEY_ORDERED[t] ?? 'rowid'}", scopes: 'sqlite-only' },
    { file: 'src/app/transfer.ts', template: 'PRAGMA table_info(${t})', scopes: 'sqlite-only' },
    { file: 'src/app/transfer.ts', template: "INSERT INTO ${t} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})", scopes: 'sqlite-only' },
    { file: 'src/app/transfer.ts', template: 'SELECT 1 FROM ${t} LIMIT 1', scopes: 'sqlite-only' },
    // SQLite-only (chain.ts's fast walk lets SQLite build the row JSON; chainExistingRows is the
    // SQLite migration that chained existing rows): PostgreSQL's walk is verify-exec.ts.
    { file: 'src/store/sqlite/chain.ts', template: 'SELECT name FROM pragma_table_info(\'${table}\')', scopes: 'sqlite-only' },
    { file: 'src/store/sqlite/chain.ts', template: "SELECT \"${spec.id}\", prev_hash, row_hash, ${json}${keys.length ? `, ${keys.join(', ')}` : ''} FROM ${spec.table} ORDER BY ${order}", scopes: 'sqlite-only' },
    { file: 'src/store/sqlite/chain.ts', template: 'UPDATE ${spec.table} SET prev_hash = ?, row_hash = ? WHERE rowid = ?', scopes: 'sqlite-only' },
    { file: 'src/store/sqlite/chain.ts', template: "SELECT rowid, ${order}, ${sqlRowJson(db, spec.table)}${keys.length ? `, ${keys.join(', ')}` : ''} FROM ${spec.table} WHERE ${order} > ? ORDER BY ${order} LIMIT 5000", scopes: 'sqlite-only' },
    { file: 'src/store/sqlite/chain.ts', template: 'SELECT * FROM ${spec.table} WHERE rowid = ?', scopes: 'sqlite-only' },
  ];
}

const norm = (s: string) => s.replace(/\s+/g, ' ').trim();

function expand(template: string, scope: Record<string, unknown>): string {
  const fn = new Function(...Object.keys(scope), `return \`${template}\`;`) as (...a: unknown[]) => string;
  return fn(...Object.values(scope));
}

/**
 * The SqlExecutor takes positional parameters; better-sqlite3's named ones (`@id`) become `?` as
 * the lanes move onto it. The SQL around them is what is checked here.
 */
const positional = (sql: string) => sql.replace(/(?<![\w'])@[A-Za-z_]\w*/g, '?');

interface Checked {
  where: string;
  sql: string;
  error?: string;
}

describe('the SQL corpus on PostgreSQL', () => {
  let conn: PgConnection;
  let store: PgExecutionStore;
  let tables: Map<string, PgTable>;
  const schema = `corpus_${process.pid}`;
  beforeAll(async () => {
    conn = await connectPg({ env: { KAIR_DATABASE_URL: pgt.current.url }, urlEnv: 'KAIR_DATABASE_URL', schema });
    await migratePg(conn.client, conn.target);
    store = pgExecutionStore(conn.client, conn.target, 'ws-corpus');
    tables = await loadTables(conn.client, schema);
    return async () => {
      await conn.client.end();
    };
  });

  const localColumns = (t: string) => tables.get(t)!.columns.filter((c) => !pgOnlyColumns(t).includes(c));

  /** Translates and PREPAREs one statement in a rolled-back transaction. */
  async function check(sql: string): Promise<string | undefined> {
    let text: string;
    try {
      text = (await store.translate(positional(sql))).text;
    } catch (e) {
      return (e as Error).message;
    }
    await conn.client.query('BEGIN');
    try {
      await conn.client.query(`PREPARE kair_corpus AS ${text}`);
      return undefined;
    } catch (e) {
      return `PostgreSQL: ${(e as Error).message}`;
    } finally {
      // A prepared statement outlives the transaction.
      await conn.client.query('ROLLBACK');
      await conn.client.query('DEALLOCATE ALL');
    }
  }

  async function checkSites(sites: SqlSite[]): Promise<{ checked: Checked[]; sqliteOnly: Checked[] }> {
    const dynamic = dynamicScopes(localColumns);
    const checked: Checked[] = [];
    const sqliteOnly: Checked[] = [];
    for (const s of sites) {
      const where = `${s.file}:${s.line}`;
      if (SQLITE_SCHEMA_FILES.test(s.file)) continue;
      let statements: string[];
      if (s.dynamic) {
        const entry = dynamic.find((d) => d.file === s.file && norm(d.template) === norm(s.sql));
        if (!entry) {
          checked.push({ where, sql: s.sql, error: 'a statement built at run time that this test does not know: add its expansions to dynamicScopes' });
          continue;
        }
        if (entry.scopes === 'sqlite-only') {
          sqliteOnly.push({ where, sql: s.sql });
          continue;
        }
        statements = entry.scopes.map((scope) => expand(s.sql, scope));
      } else {
        statements = [s.sql];
      }
      for (const sql of statements) {
        if (SQLITE_ONLY.some((x) => x.pattern.test(sql))) {
          sqliteOnly.push({ where, sql });
          continue;
        }
        checked.push({ where, sql, error: await check(sql) });
      }
    }
    return { checked, sqliteOnly };
  }

  it('every statement in src/lanes, src/app and src/store/sqlite runs on PostgreSQL, or is a listed SQLite-only one', async () => {
    const sites = collectSqlSites(ROOT, DIRS);
    const { checked, sqliteOnly } = await checkSites(sites);
    const known = (c: Checked) => KNOWN_FAILURES.find((k) => c.where.startsWith(`${k.file}:`) && norm(c.sql).startsWith(k.starts));
    const failures = checked.filter((c) => c.error !== undefined && !(known(c) && known(c)!.error.test(c.error))).map((c) => `${c.where}: ${norm(c.sql).slice(0, 120)}\n    → ${c.error}`);
    expect(failures.join('\n')).toBe('');
    for (const k of KNOWN_FAILURES) {
      const c = checked.find((x) => known(x) === k);
      expect(c?.error, `${k.file}: ${k.starts}… now runs on PostgreSQL (or is gone): remove it from KNOWN_FAILURES`).toMatch(k.error);
    }
    // Not vacuous: the scan finds the lanes' statements.
    expect(checked.length).toBeGreaterThan(60);
    // Every SQLite-only exemption is still needed (a stale one would hide nothing, but would mislead).
    for (const x of SQLITE_ONLY) expect(sqliteOnly.some((s) => x.pattern.test(s.sql)), String(x.pattern)).toBe(true);
  });

  it('names the file and line of a statement PostgreSQL cannot run, and of an unknown run-time one', async () => {
    const src = [
      "db.prepare('SELECT * FROM agent_execution_ledger WHERE ? IS NULL OR row_id = ?').all(a, b);",
      'await sql.get(`SELECT group_concat(step_id) AS s FROM agent_execution_ledger`);',
      'db.prepare(`SELECT * FROM ${someTable}`).all();',
      "await sql.run('INSERT OR REPLACE INTO agent_execution_current (tenant_id, step_id) VALUES (?, ?)', [t, s]);",
      "db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(t);",
      "const BAD = 'SELECT ifnull(max(row_id), 0) AS m, group_concat(event) AS e FROM agent_execution_ledger';",
      'await sql.get(BAD, []);',
    ].join('\n');
    const { checked, sqliteOnly } = await checkSites(sqlSitesOf('src/lanes/aec/made-up.ts', src));
    expect(checked.map((c) => [c.where, c.error?.replace(/:.*/s, '')])).toEqual([
      ['src/lanes/aec/made-up.ts:1', 'PostgreSQL'],
      ['src/lanes/aec/made-up.ts:2', 'PostgreSQL'],
      ['src/lanes/aec/made-up.ts:3', 'a statement built at run time that this test does not know'],
      ['src/lanes/aec/made-up.ts:4', 'INSERT OR REPLACE INTO agent_execution_current without its whole primary key (tenant_id, correlation_id, step_id); the statement was not sent to PostgreSQL'],
      ['src/lanes/aec/made-up.ts:7', 'PostgreSQL'],
    ]);
    expect(checked[0]!.error).toMatch(/could not determine data type of parameter \$1/);
    expect(checked[1]!.error).toMatch(/group_concat/);
    expect(sqliteOnly.map((s) => s.where)).toEqual(['src/lanes/aec/made-up.ts:5']);
  });
});
