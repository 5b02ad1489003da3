/**
 * Export and import on PostgreSQL (docs/decisions/034): a tenant read whole in one REPEATABLE
 * READ transaction (one consistent snapshot while other machines keep writing), and a dump
 * loaded into an empty tenant in one transaction (all of it commits or none of it).
 *
 * Rows keep their values. PostgreSQL's own columns — `tenant_id` where the local table has none,
 * the explicit `rowid` of insertion-ordered tables — are not part of a local row: a read returns
 * exactly the local table's columns (so row hashes and anchors are the same), and a load fills
 * `tenant_id` with the tenant and lets `rowid` number the rows in the order they come.
 */
import { GENESIS_HASH, sha256Hex } from '../../domain/canonical.js';
import { kairError } from '../../domain/errors.js';
import type { ContractDump, ExecRow, ExecTable, FoldedDump, WorkspaceDump } from '../../domain/transfer.js';
import { EXEC_TABLES, KEY_ORDERED, checkArtifactPath } from '../../domain/transfer.js';
import type { PgConnection } from './connect.js';
import { mapPgError, quoteIdent as q } from './connect.js';
import { lockKey } from './migrations.js';
import { failpoint } from '../failpoint.js';
import { indexEntry } from '../fs/contracts.js';


/**
 * The order the lanes read each table in: insertion order (`rowid`) where they use it, the id a
 * chain is numbered by, the primary key otherwise. aec_refs has neither a rowid nor an integer
 * id on PostgreSQL: its rows are put in chain order after the read (`chainOrder`).
 */
export const PG_ORDER: Record<ExecTable, string> = {
  execution_envelopes: 'rowid',
  kimi_execution_runs: 'rowid',
  simulations: 'rowid',
  access_policy: 'rowid',
  access_policy_versions: 'version',
  aec_refs: 'ref',
  agent_execution_access_decision_ledger: 'id',
  agent_execution_confirmation_ledger: 'id',
  agent_execution_ledger: 'row_id',
  agent_execution_current: KEY_ORDERED.agent_execution_current!,
  dev_intake: 'rowid',
  change_log: 'id',
  slo_waivers: 'rowid',
};

/** Rows of a single hash chain (prev_hash → row_hash) in link order; rows that do not link keep their place at the end. */
export function chainOrder(rows: ExecRow[]): ExecRow[] {
  const byPrev = new Map<unknown, ExecRow[]>();
  for (const r of rows) byPrev.set(r.prev_hash, [...(byPrev.get(r.prev_hash) ?? []), r]);
  const out: ExecRow[] = [];
  const seen = new Set<ExecRow>();
  for (let prev: unknown = GENESIS_HASH; ; ) {
    const next = byPrev.get(prev)?.find((r) => !seen.has(r));
    if (!next) break;
    seen.add(next);
    out.push(next);
    prev = next.row_hash;
  }
  return [...out, ...rows.filter((r) => !seen.has(r))];
}

export { openPgSession } from './migrations.js';

async function run<R extends object>(conn: PgConnection, sql: string, params: unknown[] = []): Promise<R[]> {
  try {
    return (await conn.client.query<R>(sql, params)).rows;
  } catch (e) {
    throw mapPgError(e, conn.target);
  }
}

/**
 * Reads a tenant whole: contracts (history lines, checkpoints, plans, DPC, artifacts as their
 * exact text) and every execution table's rows with the local table's columns (`columns`).
 */
export async function readPgDump(conn: PgConnection, tenant: string, columns: Record<ExecTable, string[]>): Promise<Omit<WorkspaceDump, 'config'>> {
  await run(conn, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const ids = (await run<{ contract_id: string }>(conn, 'SELECT contract_id FROM contracts WHERE tenant_id = $1 ORDER BY contract_id', [tenant])).map((r) => r.contract_id);
    const byId = new Map<string, ContractDump>(ids.map((id) => [id, { id, lines: [], checkpoints: [], plans: [], dpc: null, artifacts: [] }]));
    const get = (id: string) => {
      const d = byId.get(id);
      if (!d) throw kairError('INTEGRITY_FAILED', `rows of contract ${JSON.stringify(id.slice(0, 80))} exist without its contract row; nothing was written`, { contract_id: id, kind: 'contract_missing', hint: 'run `kair verify`' });
      return d;
    };
    for (const r of await run<{ contract_id: string; seq: number; line: string }>(conn, 'SELECT contract_id, seq, line FROM history_events WHERE tenant_id = $1 ORDER BY contract_id, seq', [tenant])) get(r.contract_id).lines.push(r.line);
    for (const r of await run<{ contract_id: string; through_seq: number; state: string }>(conn, 'SELECT contract_id, through_seq, state FROM checkpoints WHERE tenant_id = $1 ORDER BY contract_id, through_seq', [tenant])) get(r.contract_id).checkpoints.push({ through: Number(r.through_seq), text: r.state });
    for (const r of await run<{ contract_id: string; sha256: string; body: string }>(conn, 'SELECT contract_id, sha256, body FROM plans WHERE tenant_id = $1 ORDER BY contract_id, sha256', [tenant])) get(r.contract_id).plans.push({ sha: r.sha256, text: r.body });
    for (const r of await run<{ contract_id: string; body: string }>(conn, 'SELECT contract_id, body FROM dpc WHERE tenant_id = $1', [tenant])) get(r.contract_id).dpc = r.body;
    for (const r of await run<{ contract_id: string; path: string; body: string }>(conn, 'SELECT contract_id, path, body FROM artifacts WHERE tenant_id = $1 ORDER BY path', [tenant])) {
      // A key is a path on the target's disk: whatever the database holds, it must stay inside its contract.
      checkArtifactPath(r.path, r.contract_id);
      get(r.contract_id).artifacts.push({ path: r.path, text: r.body });
    }
    const rows = {} as Record<ExecTable, ExecRow[]>;
    for (const t of EXEC_TABLES) {
      const cols = columns[t].map(q).join(', ');
      const got = await run<ExecRow>(conn, `SELECT ${cols} FROM ${q(t)} WHERE tenant_id = $1 ORDER BY ${PG_ORDER[t]}`, [tenant]);
      rows[t] = t === 'aec_refs' ? chainOrder(got) : got;
    }
    await run(conn, 'COMMIT');
    return { workspaceId: tenant, contracts: [...byId.values()], rows };
  } catch (e) {
    await conn.client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** Multi-row INSERTs, kept under PostgreSQL's 65,535 parameters per statement. */
async function insertRows(conn: PgConnection, table: string, cols: string[], rows: unknown[][]): Promise<void> {
  const per = Math.max(1, Math.floor(30_000 / cols.length));
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    const params: unknown[] = [];
    const values = chunk.map((r) => `(${r.map((v) => (params.push(v), `$${params.length}`)).join(', ')})`);
    await run(conn, `INSERT INTO ${q(table)} (${cols.map(q).join(', ')}) VALUES ${values.join(', ')}`, params);
  }
}

export interface PgLoadResult {
  contracts: number;
  events: number;
  rows: Record<ExecTable, number>;
}

/**
 * Loads a dump into an empty tenant in one transaction. A tenant that already has a contract or
 * an execution row is WORKSPACE_NOT_EMPTY, checked inside the transaction under an advisory lock
 * so that two imports into one tenant cannot both find it empty.
 */
export async function loadPgDump(conn: PgConnection, tenant: string, dump: Omit<WorkspaceDump, 'config'>, folded: Map<string, FoldedDump>): Promise<PgLoadResult> {
  await run(conn, 'BEGIN');
  try {
    await run(conn, 'SELECT pg_advisory_xact_lock($1)', [lockKey('kair:import', tenant)]);
    const tables = ['contracts', ...EXEC_TABLES];
    const found = await run<{ t: string }>(conn, tables.map((t, i) => `SELECT ${i} AS t WHERE EXISTS (SELECT 1 FROM ${q(t)} WHERE tenant_id = $1)`).join(' UNION ALL '), [tenant]);
    if (found.length) {
      const names = found.map((r) => tables[Number(r.t)]!);
      throw kairError('WORKSPACE_NOT_EMPTY', `the workspace ${tenant} on PostgreSQL already holds ${names.join(', ')}; import loads only into an empty workspace, and nothing was written`, {
        workspace_id: tenant,
        tables: names,
        hint: 'import into a new workspace (kair init --backend postgres in an empty folder), or export this one first with `kair export --to DIR`',
      });
    }
    let events = 0;
    const contractRows: unknown[][] = [];
    const eventRows: unknown[][] = [];
    const checkpointRows: unknown[][] = [];
    const planRows: unknown[][] = [];
    const dpcRows: unknown[][] = [];
    const artifactRows: unknown[][] = [];
    const indexRows: unknown[][] = [];
    for (const d of dump.contracts) {
      const f = folded.get(d.id)!;
      const c = f.contract;
      contractRows.push([tenant, d.id, f.snapshotText, c.history_seq, c.history_head]);
      f.events.forEach((e, i) => eventRows.push([tenant, d.id, e.seq, e.type, d.lines[i]!, e.prev, e.hash]));
      events += f.events.length;
      for (const cp of d.checkpoints) checkpointRows.push([tenant, d.id, cp.through, cp.text]);
      for (const p of d.plans) planRows.push([tenant, d.id, p.sha, p.text]);
      if (d.dpc !== null) dpcRows.push([tenant, d.id, d.dpc]);
      for (const a of d.artifacts) {
        checkArtifactPath(a.path, d.id);
        artifactRows.push([tenant, a.path, d.id, a.text, sha256Hex(a.text)]);
      }
      const ix = indexEntry(c);
      indexRows.push([tenant, d.id, ix.intent, ix.state, ix.version, ix.updated_at]);
    }
    await insertRows(conn, 'contracts', ['tenant_id', 'contract_id', 'snapshot', 'history_seq', 'history_head'], contractRows);
    await insertRows(conn, 'history_events', ['tenant_id', 'contract_id', 'seq', 'type', 'line', 'prev', 'hash'], eventRows);
    await insertRows(conn, 'checkpoints', ['tenant_id', 'contract_id', 'through_seq', 'state'], checkpointRows);
    await insertRows(conn, 'plans', ['tenant_id', 'contract_id', 'sha256', 'body'], planRows);
    await insertRows(conn, 'dpc', ['tenant_id', 'contract_id', 'body'], dpcRows);
    await insertRows(conn, 'artifacts', ['tenant_id', 'path', 'contract_id', 'body', 'sha256'], artifactRows);
    await insertRows(conn, 'contract_index', ['tenant_id', 'contract_id', 'intent', 'state', 'version', 'updated_at'], indexRows);
    const counts = {} as Record<ExecTable, number>;
    for (const t of EXEC_TABLES) {
      const rows = dump.rows[t];
      counts[t] = rows.length;
      if (!rows.length) continue;
      const local = Object.keys(rows[0]!);
      for (const r of rows) {
        // A row naming another workspace would be moved under this tenant with its hash still naming the other one.
        if ('tenant_id' in r && r.tenant_id !== tenant) {
          throw kairError('USAGE_ERROR', `a ${t} row of the source belongs to workspace ${JSON.stringify(String(r.tenant_id).slice(0, 80))}, not ${tenant}; nothing was written`, { table: t, hint: 'import a source whose workspace_id is this workspace\'s' });
        }
      }
      const cols = local.includes('tenant_id') ? local : ['tenant_id', ...local];
      await insertRows(conn, t, cols, rows.map((r) => cols.map((k) => (k === 'tenant_id' ? tenant : r[k]))));
    }
    failpoint('import.pg.inserted');
    await run(conn, 'COMMIT');
    return { contracts: dump.contracts.length, events, rows: counts };
  } catch (e) {
    await conn.client.query('ROLLBACK').catch(() => undefined);
    throw mapPgError(e, conn.target);
  }
}
