/**
 * The dialect layer's translation, without a server (test/store/pg-sql-executor.test.ts runs the
 * translations on PostgreSQL): tokenising, placeholders, the tenant filter in every position a
 * table can be read from, writes, upserts, and the refusals that keep it closed.
 */
import { describe, expect, it } from 'vitest';
import { tokenize, translate } from '../../src/store/pg/dialect.js';
import type { PgTable } from '../../src/store/pg/dialect.js';

const tables = new Map<string, PgTable>([
  ['execution_envelopes', { columns: ['tenant_id', 'id', 'contract_id', 'status', 'rowid'], primaryKey: ['tenant_id', 'id'] }],
  ['kimi_execution_runs', { columns: ['tenant_id', 'id', 'envelope_id', 'status', 'rowid'], primaryKey: ['tenant_id', 'id'] }],
  ['agent_execution_ledger', { columns: ['tenant_id', 'row_id', 'contract_id', 'step_id', 'event'], primaryKey: ['tenant_id', 'row_id'] }],
  ['agent_execution_current', { columns: ['tenant_id', 'correlation_id', 'step_id', 'status'], primaryKey: ['tenant_id', 'correlation_id', 'step_id'] }],
  ['aec_refs', { columns: ['tenant_id', 'ref', 'body', 'rowid'], primaryKey: ['tenant_id', 'ref'] }],
]);
const ctx = { schema: 'kair', tables };
const tr = (sql: string) => translate(sql, ctx);
const ENV = '(SELECT "id", "contract_id", "status", "rowid" FROM "kair"."execution_envelopes" WHERE tenant_id = $';
const LEDGER = '(SELECT "tenant_id", "row_id", "contract_id", "step_id", "event" FROM "kair"."agent_execution_ledger" WHERE tenant_id = $';

function refused(sql: string): string {
  try {
    tr(sql);
  } catch (e) {
    expect((e as { code?: string }).code).toBe('INTERNAL_ERROR');
    return (e as Error).message;
  }
  throw new Error(`translated: ${sql}`);
}

describe('tokenize', () => {
  it('keeps literals, quoted identifiers and comments whole', () => {
    const t = tokenize(`SELECT 'a?''b', "x""y" -- c?\n/* d? */ FROM t WHERE a <= ?2`);
    expect(t.filter((x) => x.kind !== 'ws').map((x) => [x.kind, x.text])).toEqual([
      ['ident', 'SELECT'],
      ['str', "'a?''b'"],
      ['punct', ','],
      ['qident', '"x""y"'],
      ['comment', '-- c?'],
      ['comment', '/* d? */'],
      ['ident', 'FROM'],
      ['ident', 't'],
      ['ident', 'WHERE'],
      ['ident', 'a'],
      ['punct', '<='],
      ['param', '?2'],
    ]);
  });
});

describe('translate', () => {
  it('numbers placeholders, and the tenant is the next parameter', () => {
    const t = tr("SELECT id FROM execution_envelopes WHERE id = ? AND status <> '?' AND contract_id = ?");
    expect(t.params).toBe(2);
    expect(t.usesTenant).toBe(true);
    expect(t.text).toBe(`SELECT id FROM ${ENV}3) AS "execution_envelopes" WHERE id = $1 AND status <> '?' AND contract_id = $2`);
    expect(tr('SELECT ?2 AS b, ?1 AS a').text).toBe('SELECT $2 AS b, $1 AS a');
    expect(tr('SELECT ?2 AS b, ?1 AS a').usesTenant).toBe(false);
  });

  it('filters every read: joins with aliases, comma lists, subqueries, CTEs, unions', () => {
    const j = tr('SELECT e.id, r.id FROM execution_envelopes e JOIN kimi_execution_runs AS r ON r.envelope_id = e.id WHERE e.id = ?');
    expect(j.text).toContain(`FROM ${ENV}2) e JOIN (SELECT "id", "envelope_id", "status", "rowid" FROM "kair"."kimi_execution_runs" WHERE tenant_id = $2) AS r ON`);
    expect(tr('SELECT 1 FROM execution_envelopes, agent_execution_ledger l WHERE 1 = 1').text).toBe(`SELECT 1 FROM ${ENV}1) AS "execution_envelopes", ${LEDGER}1) l WHERE 1 = 1`);
    const sub = tr('SELECT id FROM execution_envelopes WHERE id IN (SELECT envelope_id FROM kimi_execution_runs) UNION SELECT step_id FROM agent_execution_ledger');
    expect(sub.text.match(/WHERE tenant_id = \$1/g)).toHaveLength(3);
    const cte = tr('WITH g AS (SELECT step_id FROM agent_execution_ledger) SELECT * FROM g JOIN agent_execution_ledger l ON l.step_id = g.step_id');
    expect(cte.text).toBe(`WITH g AS (SELECT step_id FROM ${LEDGER}1) AS "agent_execution_ledger") SELECT * FROM g JOIN ${LEDGER}1) l ON l.step_id = g.step_id`);
    // A qualifier names the derived table's alias.
    expect(tr('SELECT agent_execution_ledger.step_id FROM agent_execution_ledger').text).toContain('SELECT agent_execution_ledger.step_id FROM (');
  });

  it('FROM in function syntax and IS DISTINCT FROM name no table', () => {
    expect(tr('SELECT substring(id FROM 2) AS s FROM execution_envelopes WHERE status IS DISTINCT FROM contract_id').text).toBe(
      `SELECT substring(id FROM 2) AS s FROM ${ENV}1) AS "execution_envelopes" WHERE status IS DISTINCT FROM contract_id`,
    );
    expect(tr('SELECT 1 FROM execution_envelopes WHERE EXISTS (SELECT 1 FROM aec_refs)').text.match(/WHERE tenant_id = \$1/g)).toHaveLength(2);
  });

  it('keeps rowid in rows only when the select list names it', () => {
    expect(tr('SELECT * FROM execution_envelopes ORDER BY rowid').keepRowid).toBe(false);
    expect(tr('SELECT rowid, id FROM execution_envelopes').keepRowid).toBe(true);
    expect(tr('SELECT max(rowid) AS seq FROM execution_envelopes').keepRowid).toBe(false);
  });

  it('puts the tenant into writes', () => {
    expect(tr('INSERT INTO execution_envelopes (id, status) VALUES (?, ?), (?, ?)').text).toBe('INSERT INTO "kair"."execution_envelopes" (tenant_id, id, status) VALUES ($5, $1, $2), ($5, $3, $4)');
    const own = tr('INSERT INTO agent_execution_ledger (row_id, tenant_id, step_id) VALUES (?, ?, ?)');
    expect(own.tenantParams).toEqual([2]);
    expect(tr('INSERT INTO agent_execution_ledger (row_id, tenant_id, step_id) VALUES (?, ?, coalesce(?, 1)), (?, ?, ?)').tenantParams).toEqual([2, 5]);
    expect(own.usesTenant).toBe(false);
    expect(tr("UPDATE execution_envelopes SET status = ? WHERE id = ? AND status = 'PENDING'").text).toBe(
      `UPDATE "kair"."execution_envelopes" SET status = $1 WHERE "execution_envelopes".tenant_id = $3 AND ( id = $2 AND status = 'PENDING')`,
    );
    expect(tr('DELETE FROM agent_execution_current').text).toBe('DELETE FROM "kair"."agent_execution_current" WHERE "agent_execution_current".tenant_id = $1');
    expect(tr('INSERT INTO aec_refs (ref, body) SELECT ref, body FROM aec_refs WHERE ref = ?').text).toBe(
      'INSERT INTO "kair"."aec_refs" (tenant_id, ref, body) SELECT $2, kair_src.* FROM (SELECT ref, body FROM (SELECT "ref", "body", "rowid" FROM "kair"."aec_refs" WHERE tenant_id = $2) AS "aec_refs" WHERE ref = $1) AS kair_src',
    );
  });

  it('INSERT OR REPLACE / OR IGNORE and the lanes’ own upserts', () => {
    expect(tr('INSERT OR REPLACE INTO agent_execution_current (tenant_id, correlation_id, step_id, status) VALUES (?, ?, ?, ?)').text).toBe(
      'INSERT INTO "kair"."agent_execution_current" (tenant_id, correlation_id, step_id, status) VALUES ($1, $2, $3, $4) ON CONFLICT ("tenant_id", "correlation_id", "step_id") DO UPDATE SET "status" = EXCLUDED."status"',
    );
    expect(tr('INSERT OR IGNORE INTO aec_refs (ref, body) VALUES (?, ?)').text).toBe('INSERT INTO "kair"."aec_refs" (tenant_id, ref, body) VALUES ($3, $1, $2) ON CONFLICT DO NOTHING');
    expect(tr('INSERT INTO aec_refs (ref, body) VALUES (?, ?) ON CONFLICT (ref) DO UPDATE SET body = excluded.body').text).toBe(
      'INSERT INTO "kair"."aec_refs" (tenant_id, ref, body) VALUES ($3, $1, $2) ON CONFLICT (tenant_id, ref) DO UPDATE SET body = excluded.body',
    );
    const fold = tr('INSERT OR REPLACE INTO agent_execution_current (tenant_id, correlation_id, step_id, status) SELECT tenant_id, contract_id, step_id, event FROM agent_execution_ledger');
    expect(fold.text).toContain(') AS kair_src ("tenant_id", "correlation_id", "step_id", "status") WHERE kair_src.tenant_id = $1 ON CONFLICT');
  });

  it('refuses what it cannot filter', () => {
    expect(refused('SELECT * FROM kair.agent_execution_ledger')).toMatch(/schema-qualified/);
    expect(refused('SELECT * FROM (agent_execution_ledger)')).toMatch(/no tenant filter/);
    expect(refused('DELETE FROM agent_execution_current USING agent_execution_ledger')).toMatch(/no tenant filter/);
    expect(refused('SELECT * FROM sqlite_sequence')).toMatch(/sqlite_sequence/);
    expect(refused('BEGIN IMMEDIATE')).toMatch(/BEGIN/);
    expect(refused('SELECT 1; SELECT 2')).toMatch(/more than one/);
    expect(refused('UPDATE agent_execution_ledger SET tenant_id = ?')).toMatch(/UPDATE of tenant_id/);
    expect(refused('UPDATE agent_execution_ledger l SET event = ?')).toMatch(/alias/);
    expect(refused('INSERT INTO aec_refs (ref) VALUES (?) RETURNING ref')).toMatch(/RETURNING/);
    expect(refused("INSERT INTO agent_execution_ledger (tenant_id, row_id) VALUES ('other', 1)")).toMatch(/not a \? parameter/);
    expect(refused('INSERT INTO agent_execution_ledger (row_id) VALUES (?)')).toMatch(/without tenant_id/);
    expect(refused('INSERT OR REPLACE INTO agent_execution_current (tenant_id, step_id) VALUES (?, ?)')).toMatch(/whole primary key/);
    expect(refused('INSERT INTO aec_refs (ref) VALUES (?) ON CONFLICT (ref) DO UPDATE SET tenant_id = ?')).toMatch(/sets tenant_id/);
    expect(refused('SELECT * FROM execution_envelopes WHERE id = :id')).toMatch(/named parameter/);
    expect(refused("SELECT 'open")).toMatch(/unterminated/);
    expect(refused('SELECT `id` FROM execution_envelopes')).toMatch(/backquoted/);
  });
});
