/**
 * The governed AEC tables (SPEC §9.6): content-addressed refs, the access-decision and
 * confirmation ledgers, agent_execution_ledger with its agent_execution_current projection, and
 * dev_intake. These are the only tables the dispatcher writes. The projection has one
 * definition, PROJECTION_SQL, used both to keep it current after each append and to rebuild it.
 */
import { canonicalHash, canonicalJson } from '../../domain/canonical.js';
import type { LedgerEvent, LedgerFact, SuccessFact } from '../../domain/aec/gates.js';
import type { Db } from '../../store/sqlite/db.js';
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

const ledgerRepos = new WeakMap<Db, ReturnType<typeof makeLedgerRepo>>();

/** One repository (and one set of prepared statements) per connection. */
export function ledgerRepo(db: Db) {
  let r = ledgerRepos.get(db);
  if (!r) ledgerRepos.set(db, (r = makeLedgerRepo(db)));
  return r;
}

function makeLedgerRepo(db: Db) {
  // Every append goes through insertChained: these tables are hash-chained (chain.ts).
  const insertRef = (ref: string, kind: string, body: string, created_at: string) => {
    db.transaction(() => {
      if (!hasRef.get(ref)) insertChained(db, CHAINS.aec_refs, { ref, kind, body, created_at });
    }).immediate();
  };
  const getRef = db.prepare<[string], { body: string }>('SELECT body FROM aec_refs WHERE ref = ?');
  const hasRef = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM aec_refs WHERE ref = ?');
  const getAccess = db.prepare<[number], Record<string, unknown>>('SELECT * FROM agent_execution_access_decision_ledger WHERE id = ?');
  const getConfirmation = db.prepare<[number], ConfirmationRow>('SELECT * FROM agent_execution_confirmation_ledger WHERE id = ?');
  const project = db.prepare(`INSERT OR REPLACE INTO agent_execution_current (${CURRENT_COLUMNS}) ${PROJECTION_SQL.replace('%WHERE%', 'WHERE tenant_id = ? AND correlation_id = ? AND step_id = ?')}`);
  const stepRows = db.prepare<[string, string, string], Record<string, unknown>>(`SELECT * FROM agent_execution_ledger WHERE ${GROUP.replaceAll(',', ' = ? AND')} = ? ORDER BY row_id`);
  const intakeByStep = db.prepare<[string, string, string, string], { id: string }>('SELECT id FROM dev_intake WHERE tenant_id = ? AND correlation_id = ? AND step_id = ? AND utterance = ?');
  const intakeCount = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dev_intake');
  const successes = db.prepare<[string, string], SuccessFact & { row_id: number }>(
    "SELECT row_id, correlation_id, step_id, run_id, simulation_id, required_fields_fingerprint AS fields_fingerprint FROM agent_execution_ledger WHERE tenant_id = ? AND contract_id = ? AND event = 'SUCCEEDED' ORDER BY row_id",
  );

  const repo = {
    /** Stores a JSON document under `<kind>:<sha256 of its canonical form>` (idempotent); returns the ref. */
    putRef(kind: string, body: unknown, now: string): string {
      const ref = `${kind}:${canonicalHash(body)}`;
      insertRef(ref, kind, canonicalJson(body), now);
      return ref;
    },
    /** Stores a document under a ref the caller names (e.g. `policy:v3`, `catalog:<hash>`); `body` is computed only when the ref is new. */
    putNamedRef(ref: string, kind: string, body: () => unknown, now: string): string {
      if (!hasRef.get(ref)) insertRef(ref, kind, canonicalJson(body()), now);
      return ref;
    },
    getRef<T>(ref: string): T | undefined {
      const r = getRef.get(ref);
      return r ? (JSON.parse(r.body) as T) : undefined;
    },
    appendAccessDecision(r: Omit<AccessDecisionRow, 'id'>): number {
      return Number(
        insertChained(db, CHAINS.agent_execution_access_decision_ledger, {
          tenant_id: r.tenant_id, correlation_id: r.correlation_id, run_id: r.run_id, step_id: r.step_id, actor: r.actor, action: r.action, decision: r.decision,
          rule: r.rule === undefined || r.rule === null ? null : JSON.stringify(r.rule), policy_snapshot_version: r.policy_snapshot_version, checked_by: r.checked_by, created_at: r.created_at,
        }),
      );
    },
    getAccessDecision(id: number): AccessDecisionRow | undefined {
      const r = getAccess.get(id);
      return r ? ({ ...r, rule: r.rule === null ? null : JSON.parse(r.rule as string) } as AccessDecisionRow) : undefined;
    },
    appendConfirmation(r: Omit<ConfirmationRow, 'id'>): number {
      return Number(
        insertChained(db, CHAINS.agent_execution_confirmation_ledger, {
          tenant_id: r.tenant_id, correlation_id: r.correlation_id, run_id: r.run_id, step_id: r.step_id, actor: r.actor, lexicon: r.lexicon, lang: r.lang,
          token: r.token, normalized: r.normalized, result: r.result, source: r.source, proof_ref: r.proof_ref, created_at: r.created_at,
        }),
      );
    },
    getConfirmation(id: number): ConfirmationRow | undefined {
      return getConfirmation.get(id);
    },
    /** Appends one row and brings its step's projection up to date, in the caller's transaction. */
    appendRow(row: NewLedgerRow): number {
      const values = Object.fromEntries(LEDGER_COLUMNS.map((c) => [c, c === 'outcome' ? (row.outcome === null || row.outcome === undefined ? null : JSON.stringify(row.outcome)) : (row[c] ?? null)]));
      const id = Number(insertChained(db, CHAINS.agent_execution_ledger, values));
      project.run(row.tenant_id, row.correlation_id, row.step_id);
      return id;
    },
    /** Every successful outcome of a contract, all versions, oldest first (the repeat check). */
    successes(tenant: string, contractId: string): (SuccessFact & { row_id: number })[] {
      return successes.all(tenant, contractId);
    },
    stepRows(tenant: string, correlation: string, step: string): LedgerRow[] {
      return stepRows.all(tenant, correlation, step).map(parseRow);
    },
    rows(where: { contractId?: string; runId?: string } = {}): LedgerRow[] {
      const filters: [string, string | undefined][] = [
        ['contract_id = ?', where.contractId],
        ['run_id = ?', where.runId],
      ];
      const used = filters.filter((f): f is [string, string] => f[1] !== undefined);
      const conds = used.map(([c]) => c);
      const args = used.map(([, v]) => v);
      return db
        .prepare<string[], Record<string, unknown>>(`SELECT * FROM agent_execution_ledger ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY row_id`)
        .all(...args)
        .map(parseRow);
    },
    /** Adds a dev_intake row for a missing simulation (once per step and utterance); returns its id. */
    addIntake(r: Omit<IntakeRow, 'id'>): string {
      const existing = intakeByStep.get(r.tenant_id, r.correlation_id, r.step_id, r.utterance);
      if (existing) return existing.id;
      const id = `intake-${intakeCount.get()!.n + 1}`;
      insertChained(db, CHAINS.dev_intake, { id, tenant_id: r.tenant_id, contract_id: r.contract_id, correlation_id: r.correlation_id, run_id: r.run_id, step_id: r.step_id, utterance: r.utterance, fields: JSON.stringify(r.fields), lang: r.lang, finder_packet_ref: r.finder_packet_ref, actor: r.actor, created_at: r.created_at });
      return id;
    },
    listIntake(): IntakeRow[] {
      return db
        .prepare<[], Record<string, unknown>>('SELECT * FROM dev_intake ORDER BY created_at, rowid')
        .all()
        .map((r) => ({ ...(r as unknown as IntakeRow), fields: JSON.parse(r.fields as string) as Record<string, string> }));
    },
    current(): CurrentRow[] {
      return db.prepare<[], CurrentRow>(`SELECT ${CURRENT_COLUMNS} FROM agent_execution_current ORDER BY ${GROUP}`).all();
    },
    /** Differences between agent_execution_current and what the ledger says it should be. */
    drift(limit = 50): { count: number; drift: Drift[] } {
      const expected = `SELECT ${CURRENT_COLUMNS} FROM (${PROJECTION_SQL.replace('%WHERE%', '')})`;
      const stored = `SELECT ${CURRENT_COLUMNS} FROM agent_execution_current`;
      const keyOf = (r: CurrentRow) => `${r.tenant_id}\u0000${r.correlation_id}\u0000${r.step_id}`;
      const extra = db.prepare<[], CurrentRow>(`${stored} EXCEPT ${expected}`).all();
      const missing = db.prepare<[], CurrentRow>(`${expected} EXCEPT ${stored}`).all();
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
    /** Recomputes agent_execution_current from the ledger in one transaction; returns the row count. */
    rebuild(): number {
      return db
        .transaction(() => {
          db.prepare('DELETE FROM agent_execution_current').run();
          return db.prepare(`INSERT INTO agent_execution_current (${CURRENT_COLUMNS}) ${PROJECTION_SQL.replace('%WHERE%', '')}`).run().changes;
        })
        .immediate();
    },
    /**
     * The seed's section 14.2 SLO figures, from the ledger alone; with `since`, only rows written
     * at or after it (a duplicate counts when one of its successes is in the window).
     */
    stats(since?: string): LedgerStats {
      // Every timestamp is >= '': without a window the same statements count every row.
      const win = 'AND created_at >= @since';
      const args = { since: since ?? '' };
      const counts = Object.fromEntries(
        db
          .prepare<[Record<string, string>], { event: LedgerEvent; n: number }>(`SELECT event, count(*) AS n FROM agent_execution_ledger WHERE 1 = 1 ${win} GROUP BY event`)
          .all(args)
          .map((r) => [r.event, r.n]),
      ) as Partial<Record<LedgerEvent, number>>;
      const rows = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
      const latencies = db
        .prepare<[Record<string, string>], { latency_us: number }>(`SELECT latency_us FROM agent_execution_ledger WHERE event IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED') AND latency_us IS NOT NULL ${win} ORDER BY latency_us`)
        .all(args)
        .map((r) => r.latency_us);
      const pct = (p: number) => (latencies.length === 0 ? null : Math.round(latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!) / 1000);
      const duplicates = db
        .prepare<[Record<string, string>], { n: number }>(
          `SELECT coalesce(sum(n - 1), 0) AS n FROM (SELECT count(*) AS n, max(created_at) AS last FROM agent_execution_ledger WHERE event = 'SUCCEEDED' GROUP BY tenant_id, correlation_id, step_id HAVING n > 1) WHERE last >= @since`,
        )
        .get(args)!.n;
      const inDoubt = db
        .prepare<[Record<string, string>], { n: number }>(
          `SELECT count(*) AS n FROM agent_execution_ledger c WHERE c.event = 'CLAIMED' AND c.created_at >= @since AND NOT EXISTS (SELECT 1 FROM agent_execution_ledger o WHERE o.tenant_id = c.tenant_id AND o.correlation_id = c.correlation_id AND o.step_id = c.step_id AND o.idempotency_key = c.idempotency_key AND o.attempt = c.attempt AND o.event IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED'))`,
        )
        .get(args)!.n;
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
