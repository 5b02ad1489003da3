/**
 * The governed AEC tables (SPEC §9.6): content-addressed refs, the access-decision and
 * confirmation ledgers, agent_execution_ledger with its agent_execution_current projection, and
 * dev_intake. These are the only tables the dispatcher writes. The projection has one
 * definition, PROJECTION_SQL, used both to keep it current after each append and to rebuild it.
 */
import { canonicalHash, canonicalJson } from '../../domain/canonical.js';
import type { LedgerEvent, LedgerFact, SuccessFact } from '../../domain/aec/gates.js';
import type { SqlExecutor } from '../../store/port.js';
import type { Db } from '../../store/sqlite/db.js';
import { executionStoreOf } from '../../store/sqlite/executor.js';
import { isLocalDb } from './catalog.js';
import { CHAINS, insertChained } from '../../store/sqlite/chain.js';

export interface LedgerRow {
  row_id: number;
  tenant_id: string;
  plan_id: string;
  correlation_id: string;
  contract_id: string;
  run_id: string;
  step_id: string;
  simulation_id: string | null;
  required_fields_fingerprint: string | null;
  idempotency_key: string;
  attempt: number;
  event: LedgerEvent;
  reason_code: string;
  actor: string;
  finder_packet_ref: string;
  catalog_snapshot_ref: string;
  policy_snapshot_ref: string | null;
  artifact_fingerprint_bundle_ref: string | null;
  access_decision_id: number | null;
  confirmation_id: number | null;
  confirmation_proof_ref: string | null;
  rollback_plan_ref: string | null;
  dispatch_envelope_ref: string | null;
  decision_ref: string;
  dispatch_decision_hash: string;
  outcome: unknown;
  latency_us: number | null;
  created_at: string;
  prev_hash: string;
  row_hash: string;
}

/** The chain columns are computed by the append (store/sqlite/chain.ts). */
export type NewLedgerRow = Omit<LedgerRow, 'row_id' | 'prev_hash' | 'row_hash'>;

export interface CurrentRow {
  tenant_id: string;
  correlation_id: string;
  step_id: string;
  plan_id: string;
  contract_id: string;
  run_id: string;
  simulation_id: string | null;
  idempotency_key: string;
  attempt: number;
  status: string;
  reason_code: string;
  success_row_id: number | null;
  last_row_id: number;
  rows: number;
  updated_at: string;
}

/** Where an access decision or a confirmation was made: one step of one run. */
export interface StepScope {
  tenant_id: string;
  correlation_id: string;
  run_id: string;
  step_id: string;
  actor: string;
}

export interface AccessDecisionRow extends StepScope {
  id: number;
  action: string;
  decision: 'allow' | 'deny' | 'require-ap';
  rule: unknown;
  policy_snapshot_version: number;
  checked_by: 'precheck' | 'executor';
  created_at: string;
}

export interface ConfirmationRow extends StepScope {
  id: number;
  lexicon: string;
  lang: string;
  token: string;
  normalized: string;
  result: 'affirmative' | 'negative' | 'ambiguous';
  source: 'flag' | 'prompt';
  proof_ref: string;
  created_at: string;
}

export interface IntakeRow {
  id: string;
  tenant_id: string;
  contract_id: string;
  correlation_id: string;
  run_id: string;
  step_id: string;
  utterance: string;
  fields: Record<string, string>;
  lang: string;
  finder_packet_ref: string;
  actor: string;
  created_at: string;
}

const GROUP = 'tenant_id, correlation_id, step_id';

/** agent_execution_current as a function of agent_execution_ledger; `%WHERE%` narrows it to one step. */
const PROJECTION_SQL = `
WITH g AS (
  SELECT ${GROUP},
         max(row_id) AS last_row_id,
         count(*) AS rows,
         coalesce(max(CASE WHEN event = 'CLAIMED' THEN attempt END), 0) AS attempt,
         max(CASE WHEN event = 'SUCCEEDED' THEN row_id END) AS success_row_id
  FROM agent_execution_ledger %WHERE%
  GROUP BY ${GROUP}
)
SELECT g.tenant_id, g.correlation_id, g.step_id, l.plan_id, l.contract_id, l.run_id, l.simulation_id, l.idempotency_key,
       g.attempt, CASE WHEN g.success_row_id IS NOT NULL THEN 'SUCCEEDED' ELSE l.event END AS status, l.reason_code,
       g.success_row_id, g.last_row_id, g.rows, l.created_at AS updated_at
FROM g JOIN agent_execution_ledger l ON l.row_id = g.last_row_id`;

const CURRENT_COLUMNS = 'tenant_id, correlation_id, step_id, plan_id, contract_id, run_id, simulation_id, idempotency_key, attempt, status, reason_code, success_row_id, last_row_id, rows, updated_at';

const LEDGER_COLUMNS = [
  'tenant_id', 'plan_id', 'correlation_id', 'contract_id', 'run_id', 'step_id', 'simulation_id', 'required_fields_fingerprint', 'idempotency_key', 'attempt', 'event', 'reason_code', 'actor',
  'finder_packet_ref', 'catalog_snapshot_ref', 'policy_snapshot_ref', 'artifact_fingerprint_bundle_ref', 'access_decision_id', 'confirmation_id',
  'confirmation_proof_ref', 'rollback_plan_ref', 'dispatch_envelope_ref', 'decision_ref', 'dispatch_decision_hash', 'outcome', 'latency_us', 'created_at',
] as const;

export interface Drift {
  tenant_id: string;
  correlation_id: string;
  step_id: string;
  /** In the table but not derivable from the ledger / derivable but missing or different. */
  kind: 'extra' | 'missing' | 'different';
  stored: CurrentRow | null;
  expected: CurrentRow | null;
}

export interface LedgerStats {
  rows: number;
  dispatches: number;
  succeeded: number;
  failed: number;
  timed_out: number;
  rejected: number;
  in_doubt: number;
  replayed: number;
  halted: number;
  dispatch_latency_ms: { p50: number | null; p95: number | null; p99: number | null };
  execution_error_rate: number;
  duplicate_side_effects: number;
}

const parseRow = (r: Record<string, unknown>): LedgerRow => ({ ...(r as unknown as LedgerRow), outcome: r.outcome === null ? null : JSON.parse(r.outcome as string) });

const STEP_PROJECTION = PROJECTION_SQL.replace('%WHERE%', 'WHERE tenant_id = ? AND correlation_id = ? AND step_id = ?');
/**
 * Dialect branch: SQLite's `INSERT OR REPLACE` is PostgreSQL's `ON CONFLICT … DO UPDATE` on the
 * projection's primary key (a `WHERE true` keeps PostgreSQL from reading ON as a join's).
 */
const PROJECT_STEP = {
  sqlite: `INSERT OR REPLACE INTO agent_execution_current (${CURRENT_COLUMNS}) ${STEP_PROJECTION}`,
  postgres: `INSERT INTO agent_execution_current (${CURRENT_COLUMNS}) SELECT * FROM (${STEP_PROJECTION}) AS p WHERE true ON CONFLICT (${GROUP}) DO UPDATE SET ${CURRENT_COLUMNS.split(', ')
    .filter((c) => !GROUP.split(', ').includes(c))
    .map((c) => `${c} = excluded.${c}`)
    .join(', ')}`,
} as const;
const STEP_ROWS = `SELECT * FROM agent_execution_ledger WHERE ${GROUP.replaceAll(',', ' = ? AND')} = ? ORDER BY row_id`;

/** Over the caller's transaction (an append and its step's projection commit together). */
export function ledgerRepo(x: SqlExecutor | Db) {
  // A raw local connection (in-process tests) is used through the port's local executor.
  const sql = isLocalDb(x) ? executionStoreOf(x).sql : x;
  const hasRef = async (ref: string) => (await sql.get('SELECT 1 AS one FROM aec_refs WHERE ref = ?', [ref])) !== undefined;
  // Every append goes through insertChained: these tables are hash-chained (chain.ts).
  const insertRef = async (ref: string, kind: string, body: string, created_at: string) => {
    if (!(await hasRef(ref))) await insertChained(sql, CHAINS.aec_refs, { ref, kind, body, created_at });
  };
  const num = (v: unknown) => Number(v);

  const repo = {
    /** Stores a JSON document under `<kind>:<sha256 of its canonical form>` (idempotent); returns the ref. */
    async putRef(kind: string, body: unknown, now: string): Promise<string> {
      const ref = `${kind}:${canonicalHash(body)}`;
      await insertRef(ref, kind, canonicalJson(body), now);
      return ref;
    },
    /** Stores a document under a ref the caller names (e.g. `policy:v3`, `catalog:<hash>`); `body` is computed only when the ref is new. */
    async putNamedRef(ref: string, kind: string, body: () => unknown, now: string): Promise<string> {
      if (!(await hasRef(ref))) await insertChained(sql, CHAINS.aec_refs, { ref, kind, body: canonicalJson(await body()), created_at: now });
      return ref;
    },
    async getRef<T>(ref: string): Promise<T | undefined> {
      const r = await sql.get<{ body: string }>('SELECT body FROM aec_refs WHERE ref = ?', [ref]);
      return r ? (JSON.parse(r.body) as T) : undefined;
    },
    async appendAccessDecision(r: Omit<AccessDecisionRow, 'id'>): Promise<number> {
      return num(
        await insertChained(sql, CHAINS.agent_execution_access_decision_ledger, {
          tenant_id: r.tenant_id, correlation_id: r.correlation_id, run_id: r.run_id, step_id: r.step_id, actor: r.actor, action: r.action, decision: r.decision,
          rule: r.rule === undefined || r.rule === null ? null : JSON.stringify(r.rule), policy_snapshot_version: r.policy_snapshot_version, checked_by: r.checked_by, created_at: r.created_at,
        }),
      );
    },
    async getAccessDecision(id: number): Promise<AccessDecisionRow | undefined> {
      const r = await sql.get('SELECT * FROM agent_execution_access_decision_ledger WHERE id = ?', [id]);
      return r ? ({ ...r, rule: r.rule === null ? null : JSON.parse(r.rule as string) } as AccessDecisionRow) : undefined;
    },
    async appendConfirmation(r: Omit<ConfirmationRow, 'id'>): Promise<number> {
      return num(
        await insertChained(sql, CHAINS.agent_execution_confirmation_ledger, {
          tenant_id: r.tenant_id, correlation_id: r.correlation_id, run_id: r.run_id, step_id: r.step_id, actor: r.actor, lexicon: r.lexicon, lang: r.lang,
          token: r.token, normalized: r.normalized, result: r.result, source: r.source, proof_ref: r.proof_ref, created_at: r.created_at,
        }),
      );
    },
    getConfirmation(id: number): Promise<ConfirmationRow | undefined> {
      return sql.get<ConfirmationRow>('SELECT * FROM agent_execution_confirmation_ledger WHERE id = ?', [id]);
    },
    /** Appends one row and brings its step's projection up to date, in the caller's transaction. */
    async appendRow(row: NewLedgerRow): Promise<number> {
      const values = Object.fromEntries(LEDGER_COLUMNS.map((c) => [c, c === 'outcome' ? (row.outcome === null || row.outcome === undefined ? null : JSON.stringify(row.outcome)) : (row[c] ?? null)]));
      const id = num(await insertChained(sql, CHAINS.agent_execution_ledger, values));
      await sql.run(PROJECT_STEP[sql.dialect], [row.tenant_id, row.correlation_id, row.step_id]);
      return id;
    },
    /** Every successful outcome of a contract, all versions, oldest first (the repeat check). */
    successes(tenant: string, contractId: string): Promise<(SuccessFact & { row_id: number })[]> {
      return sql.all<SuccessFact & { row_id: number }>(
        "SELECT row_id, correlation_id, step_id, run_id, simulation_id, required_fields_fingerprint AS fields_fingerprint FROM agent_execution_ledger WHERE tenant_id = ? AND contract_id = ? AND event = 'SUCCEEDED' ORDER BY row_id",
        [tenant, contractId],
      );
    },
    async stepRows(tenant: string, correlation: string, step: string): Promise<LedgerRow[]> {
      return (await sql.all(STEP_ROWS, [tenant, correlation, step])).map(parseRow);
    },
    async rows(where: { contractId?: string; runId?: string } = {}): Promise<LedgerRow[]> {
      const filters: [string, string | undefined][] = [
        ['contract_id = ?', where.contractId],
        ['run_id = ?', where.runId],
      ];
      const used = filters.filter((f): f is [string, string] => f[1] !== undefined);
      const conds = used.map(([c]) => c);
      const args = used.map(([, v]) => v);
      return (await sql.all(`SELECT * FROM agent_execution_ledger ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY row_id`, args)).map(parseRow);
    },
    /** Adds a dev_intake row for a missing simulation (once per step and utterance); returns its id. */
    async addIntake(r: Omit<IntakeRow, 'id'>): Promise<string> {
      const existing = await sql.get<{ id: string }>('SELECT id FROM dev_intake WHERE tenant_id = ? AND correlation_id = ? AND step_id = ? AND utterance = ?', [r.tenant_id, r.correlation_id, r.step_id, r.utterance]);
      if (existing) return existing.id;
      const id = `intake-${num((await sql.get<{ n: number }>('SELECT count(*) AS n FROM dev_intake'))!.n) + 1}`;
      await insertChained(sql, CHAINS.dev_intake, { id, tenant_id: r.tenant_id, contract_id: r.contract_id, correlation_id: r.correlation_id, run_id: r.run_id, step_id: r.step_id, utterance: r.utterance, fields: JSON.stringify(r.fields), lang: r.lang, finder_packet_ref: r.finder_packet_ref, actor: r.actor, created_at: r.created_at });
      return id;
    },
    async listIntake(): Promise<IntakeRow[]> {
      return (await sql.all('SELECT * FROM dev_intake ORDER BY created_at, rowid')).map((r) => ({ ...(r as unknown as IntakeRow), fields: JSON.parse(r.fields as string) as Record<string, string> }));
    },
    current(): Promise<CurrentRow[]> {
      return sql.all<CurrentRow>(`SELECT ${CURRENT_COLUMNS} FROM agent_execution_current ORDER BY ${GROUP}`);
    },
    /** Differences between agent_execution_current and what the ledger says it should be. */
    async drift(limit = 50): Promise<{ count: number; drift: Drift[] }> {
      const expected = `SELECT ${CURRENT_COLUMNS} FROM (${PROJECTION_SQL.replace('%WHERE%', '')}) AS p`;
      const stored = `SELECT ${CURRENT_COLUMNS} FROM agent_execution_current`;
      const keyOf = (r: CurrentRow) => `${r.tenant_id}\u0000${r.correlation_id}\u0000${r.step_id}`;
      const extra = await sql.all<CurrentRow>(`${stored} EXCEPT ${expected}`);
      const missing = await sql.all<CurrentRow>(`${expected} EXCEPT ${stored}`);
      const byKey = new Map<string, Drift>();
      for (const r of extra) byKey.set(keyOf(r), { tenant_id: r.tenant_id, correlation_id: r.correlation_id, step_id: r.step_id, kind: 'extra', stored: r, expected: null });
      for (const r of missing) {
        const d = byKey.get(keyOf(r));
        if (d) Object.assign(d, { kind: 'different', expected: r });
        else byKey.set(keyOf(r), { tenant_id: r.tenant_id, correlation_id: r.correlation_id, step_id: r.step_id, kind: 'missing', stored: null, expected: r });
      }
      const all = [...byKey.values()];
      return { count: all.length, drift: all.slice(0, limit) };
    },
    /**
     * Recomputes agent_execution_current from the ledger, in the caller's transaction; returns the
     * row count. Dialect branch: a local file is one workspace and is rebuilt whole; a PostgreSQL
     * database holds every tenant's rows, so only `tenant`'s are.
     */
    async rebuild(tenant: string): Promise<number> {
      if (sql.dialect === 'postgres') {
        await sql.run('DELETE FROM agent_execution_current WHERE tenant_id = ?', [tenant]);
        return (await sql.run(`INSERT INTO agent_execution_current (${CURRENT_COLUMNS}) ${PROJECTION_SQL.replace('%WHERE%', 'WHERE tenant_id = ?')}`, [tenant])).changes;
      }
      await sql.run('DELETE FROM agent_execution_current');
      return (await sql.run(`INSERT INTO agent_execution_current (${CURRENT_COLUMNS}) ${PROJECTION_SQL.replace('%WHERE%', '')}`)).changes;
    },
    /**
     * The seed's section 14.2 SLO figures, from the ledger alone; with `since`, only rows written
     * at or after it (a duplicate counts when one of its successes is in the window).
     */
    async stats(since?: string): Promise<LedgerStats> {
      // Every timestamp is >= '': without a window the same statements count every row.
      const win = 'AND created_at >= ?';
      const args = [since ?? ''];
      const counts = Object.fromEntries(
        (await sql.all<{ event: LedgerEvent; n: number }>(`SELECT event, count(*) AS n FROM agent_execution_ledger WHERE 1 = 1 ${win} GROUP BY event`, args)).map((r) => [r.event, num(r.n)]),
      ) as Partial<Record<LedgerEvent, number>>;
      const rows = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
      const latencies = (await sql.all<{ latency_us: number }>(`SELECT latency_us FROM agent_execution_ledger WHERE event IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED') AND latency_us IS NOT NULL ${win} ORDER BY latency_us`, args)).map((r) => num(r.latency_us));
      const pct = (p: number) => (latencies.length === 0 ? null : Math.round(latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!) / 1000);
      const duplicates = num(
        (await sql.get<{ n: number }>(
          `SELECT coalesce(sum(n - 1), 0) AS n FROM (SELECT count(*) AS n, max(created_at) AS last FROM agent_execution_ledger WHERE event = 'SUCCEEDED' GROUP BY tenant_id, correlation_id, step_id HAVING count(*) > 1) AS d WHERE last >= ?`,
          args,
        ))!.n,
      );
      const inDoubt = num(
        (await sql.get<{ n: number }>(
          `SELECT count(*) AS n FROM agent_execution_ledger c WHERE c.event = 'CLAIMED' AND c.created_at >= ? AND NOT EXISTS (SELECT 1 FROM agent_execution_ledger o WHERE o.tenant_id = c.tenant_id AND o.correlation_id = c.correlation_id AND o.step_id = c.step_id AND o.idempotency_key = c.idempotency_key AND o.attempt = c.attempt AND o.event IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED'))`,
          args,
        ))!.n,
      );
      const dispatches = counts.CLAIMED ?? 0;
      const errors = (counts.FAILED ?? 0) + (counts.TIMED_OUT ?? 0);
      return {
        rows,
        dispatches,
        succeeded: counts.SUCCEEDED ?? 0,
        failed: counts.FAILED ?? 0,
        timed_out: counts.TIMED_OUT ?? 0,
        rejected: counts.REJECTED ?? 0,
        in_doubt: inDoubt,
        replayed: counts.REPLAYED ?? 0,
        halted: counts.HALTED ?? 0,
        dispatch_latency_ms: { p50: pct(50), p95: pct(95), p99: pct(99) },
        // A window may hold an outcome whose claim is older: the rate never goes above 1.
        execution_error_rate: dispatches === 0 ? (errors === 0 ? 0 : 1) : Math.min(1, errors / dispatches),
        duplicate_side_effects: duplicates,
      };
    },
  };
  return repo;
}

export type LedgerRepo = ReturnType<typeof ledgerRepo>;

export function ledgerFact(r: LedgerRow): LedgerFact {
  return { row_id: r.row_id, event: r.event, attempt: r.attempt, idempotency_key: r.idempotency_key, simulation_id: r.simulation_id, fields_fingerprint: r.required_fields_fingerprint };
}
