/**
 * Kimi execution envelopes (SPEC §8.1): the repository over `execution_envelopes` and
 * `kimi_execution_runs`, and the lane function the run router calls once per run.
 *
 * Ids derive from the run: `env_<run_id>` / `kexec_<run_id>`. A retry is a new run_id and so a
 * new envelope; a second attempt inside the same run (after recovery cancelled a crashed one)
 * gets `env_<run_id>_2`, `kexec_<run_id>_2`, and so on.
 */
import type { KimiCaps } from '../../domain/config.js';
import type { ErrorCode, ErrorDetails } from '../../domain/errors.js';
import { kairError } from '../../domain/errors.js';
import type { EnvelopeStatus, KimiRunStatus } from '../../domain/kimi.js';
import { canTransitionEnvelope, kimiMessages, microsToUsd, preflight, usdToMicros } from '../../domain/kimi.js';
import type { ExecutionStore, SqlExecutor } from '../../store/port.js';
import { failpoint } from '../../store/failpoint.js';
import type { RowAnchor } from '../../store/sqlite/chain.js';
import { envelopeAnchors } from '../../store/sqlite/chain.js';
import type { KimiExecution, KimiProvider } from './provider.js';

export interface EnvelopeRow {
  id: string;
  contract_id: string;
  run_id: string;
  plan_sha256: string;
  actor: string;
  provider: 'kimi';
  max_cost_micros: number;
  max_agents: number;
  max_runtime_sec: number;
  allowed_scopes: string[];
  status: EnvelopeStatus;
  created_at: string;
  updated_at: string;
}

export interface KimiRunRow {
  id: string;
  envelope_id: string;
  provider: string;
  started_at: string;
  finished_at: string | null;
  tokens_used: number | null;
  cost_micros: number | null;
  runtime_sec: number | null;
  status: KimiRunStatus;
  summary: string | null;
}

/** The seed's response object, camelCase, dollars as numbers. Key order is the seed's. */
export interface KimiRunObject {
  executionEnvelopeId: string;
  executionRunId: string;
  status: EnvelopeStatus;
  maxCostUSD: number;
  maxAgents: number;
  maxRuntimeSec: number;
  result: {
    tokensUsed: number;
    costUSD: number;
    summary: string;
    status: KimiRunStatus;
    runtimeSec: number;
  };
}

export interface KimiRecord {
  envelope: EnvelopeRow;
  run: KimiRunRow;
  kimi: KimiRunObject;
}

export interface NewEnvelope {
  id: string;
  contractId: string;
  runId: string;
  planSha256: string;
  actor: string;
  caps: KimiCaps;
  now: string;
}

export interface EnvelopeFilter {
  contractId?: string;
  runId?: string;
  status?: EnvelopeStatus | readonly EnvelopeStatus[];
}

export interface FinishRun {
  status: 'COMPLETED' | 'FAILED';
  now: string;
  tokensUsed: number;
  costMicros: number;
  runtimeSec: number;
  summary: string;
}

/** Over the caller's transaction (or a read transaction): multi-row changes are the caller's to group. */
export interface EnvelopeRepo {
  /** Inserts a PENDING envelope. */
  createEnvelope(e: NewEnvelope): Promise<EnvelopeRow>;
  getEnvelope(id: string): Promise<EnvelopeRow | undefined>;
  /** PENDING → RUNNING | FAILED | CANCELLED, RUNNING → COMPLETED | FAILED | CANCELLED. */
  transitionEnvelope(id: string, to: EnvelopeStatus, now: string): Promise<void>;
  /** Closes an abandoned envelope: CANCELLED, and its RUNNING run rows FAILED with `summary`. */
  cancelEnvelope(id: string, now: string, summary?: string): Promise<void>;
  /** A RUNNING run row. */
  startRun(r: { id: string; envelopeId: string; provider: string; now: string }): Promise<KimiRunRow>;
  /** RUNNING → COMPLETED | FAILED. */
  finishRun(id: string, f: FinishRun): Promise<void>;
  /** The run row of an attempt stopped by the checks: FAILED, 0 tokens, $0, 0 s. */
  recordAbortedRun(r: { id: string; envelopeId: string; provider: string; now: string; summary: string }): Promise<KimiRunRow>;
  getRun(id: string): Promise<KimiRunRow | undefined>;
  runsOf(envelopeId: string): Promise<KimiRunRow[]>;
  /** In creation order. */
  listEnvelopes(filter?: EnvelopeFilter): Promise<EnvelopeRow[]>;
  /** Sum of cost over the contract's COMPLETED runs, every version and attempt. */
  completedSpendMicros(contractId: string): Promise<number>;
  /** The run's COMPLETED envelope with its COMPLETED run row, for `resume` to reuse. */
  findCompletedForRun(runId: string): Promise<KimiRecord | undefined>;
}

type RawEnvelope = Omit<EnvelopeRow, 'allowed_scopes'> & { allowed_scopes: string };

const parseEnvelope = (r: RawEnvelope): EnvelopeRow => ({ ...r, allowed_scopes: JSON.parse(r.allowed_scopes) as string[] });

export function envelopeIds(runId: string, attempt = 1): { envelopeId: string; executionRunId: string } {
  const suffix = attempt === 1 ? '' : `_${attempt}`;
  return { envelopeId: `env_${runId}${suffix}`, executionRunId: `kexec_${runId}${suffix}` };
}

export function kimiObject(envelope: EnvelopeRow, run: KimiRunRow): KimiRunObject {
  return {
    executionEnvelopeId: envelope.id,
    executionRunId: run.id,
    status: envelope.status,
    maxCostUSD: microsToUsd(envelope.max_cost_micros),
    maxAgents: envelope.max_agents,
    maxRuntimeSec: envelope.max_runtime_sec,
    result: {
      tokensUsed: run.tokens_used ?? 0,
      costUSD: microsToUsd(run.cost_micros ?? 0),
      summary: run.summary ?? '',
      status: run.status,
      runtimeSec: run.runtime_sec ?? 0,
    },
  };
}

const SQL = {
  insertEnvelope: `INSERT INTO execution_envelopes (id, contract_id, run_id, plan_sha256, actor, provider, max_cost_micros, max_agents,
      max_runtime_sec, allowed_scopes, status, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, 'kimi', ?, ?, ?, ?, 'PENDING', ?, ?)`,
  getEnvelope: 'SELECT * FROM execution_envelopes WHERE id = ?',
  setEnvelopeStatus: 'UPDATE execution_envelopes SET status = ?, updated_at = ? WHERE id = ? AND status = ?',
  allEnvelopes: 'SELECT * FROM execution_envelopes ORDER BY rowid',
  envelopesByContract: 'SELECT * FROM execution_envelopes WHERE contract_id = ? ORDER BY rowid',
  envelopesByRun: 'SELECT * FROM execution_envelopes WHERE run_id = ? ORDER BY rowid',
  insertRun: `INSERT INTO kimi_execution_runs (id, envelope_id, provider, started_at, finished_at, tokens_used, cost_micros, runtime_sec, status, summary)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  finishRun: `UPDATE kimi_execution_runs SET status = ?, finished_at = ?, tokens_used = ?, cost_micros = ?, runtime_sec = ?, summary = ?
    WHERE id = ? AND status = 'RUNNING'`,
  failRunningRuns: `UPDATE kimi_execution_runs SET status = 'FAILED', finished_at = ?, summary = ? WHERE envelope_id = ? AND status = 'RUNNING'`,
  getRun: 'SELECT * FROM kimi_execution_runs WHERE id = ?',
  runsOf: 'SELECT * FROM kimi_execution_runs WHERE envelope_id = ? ORDER BY rowid',
  spend: `SELECT COALESCE(SUM(r.cost_micros), 0) AS total
    FROM kimi_execution_runs r JOIN execution_envelopes e ON e.id = r.envelope_id
    WHERE e.contract_id = ? AND r.status = 'COMPLETED'`,
  completedForRun: `SELECT e.id AS envelope_id, r.id AS run_id
    FROM execution_envelopes e JOIN kimi_execution_runs r ON r.envelope_id = e.id
    WHERE e.run_id = ? AND e.status = 'COMPLETED' AND r.status = 'COMPLETED'
    ORDER BY e.rowid DESC, r.rowid DESC LIMIT 1`,
} as const;

export function envelopeRepo(sql: SqlExecutor): EnvelopeRepo {
  const getEnvelope = async (id: string): Promise<EnvelopeRow | undefined> => {
    const row = await sql.get<RawEnvelope>(SQL.getEnvelope, [id]);
    return row && parseEnvelope(row);
  };
  const getRun = (id: string): Promise<KimiRunRow | undefined> => sql.get<KimiRunRow>(SQL.getRun, [id]);
  const insertRun = (r: Omit<KimiRunRow, 'envelope_id'> & { envelope_id: string }) =>
    sql.run(SQL.insertRun, [r.id, r.envelope_id, r.provider, r.started_at, r.finished_at, r.tokens_used, r.cost_micros, r.runtime_sec, r.status, r.summary]);

  const transitionEnvelope = async (id: string, to: EnvelopeStatus, now: string): Promise<void> => {
    const current = await getEnvelope(id);
    if (!current) throw kairError('INTERNAL_ERROR', `execution envelope ${id} does not exist`, { envelope_id: id });
    if (!canTransitionEnvelope(current.status, to)) {
      throw kairError('INTERNAL_ERROR', `execution envelope ${id} cannot go from ${current.status} to ${to}`, { envelope_id: id, from: current.status, to });
    }
    // Guarded by the status read above, so a concurrent writer makes this a no-op we detect.
    const r = await sql.run(SQL.setEnvelopeStatus, [to, now, id, current.status]);
    if (r.changes !== 1) throw kairError('INTERNAL_ERROR', `execution envelope ${id} changed underneath us`, { envelope_id: id });
  };

  return {
    async createEnvelope(e) {
      await sql.run(SQL.insertEnvelope, [
        e.id, e.contractId, e.runId, e.planSha256, e.actor, usdToMicros(e.caps.maxCostUSD), e.caps.maxAgents, e.caps.maxRuntimeSec, JSON.stringify(e.caps.allowedScopes), e.now, e.now,
      ]);
      return (await getEnvelope(e.id))!;
    },
    getEnvelope,
    transitionEnvelope,
    async cancelEnvelope(id, now, summary = 'Execution abandoned (recovered after an interrupted run)') {
      await sql.run(SQL.failRunningRuns, [now, summary, id]);
      await transitionEnvelope(id, 'CANCELLED', now);
    },
    async startRun(r) {
      await insertRun({ id: r.id, envelope_id: r.envelopeId, provider: r.provider, started_at: r.now, finished_at: null, tokens_used: null, cost_micros: null, runtime_sec: null, status: 'RUNNING', summary: null });
      return (await getRun(r.id))!;
    },
    async finishRun(id, f) {
      const r = await sql.run(SQL.finishRun, [f.status, f.now, f.tokensUsed, f.costMicros, f.runtimeSec, f.summary, id]);
      if (r.changes !== 1) throw kairError('INTERNAL_ERROR', `Kimi execution run ${id} is not RUNNING`, { execution_run_id: id });
    },
    async recordAbortedRun(r) {
      await insertRun({ id: r.id, envelope_id: r.envelopeId, provider: r.provider, started_at: r.now, finished_at: r.now, tokens_used: 0, cost_micros: 0, runtime_sec: 0, status: 'FAILED', summary: r.summary });
      return (await getRun(r.id))!;
    },
    getRun,
    runsOf: (envelopeId) => sql.all<KimiRunRow>(SQL.runsOf, [envelopeId]),
    async listEnvelopes(filter = {}) {
      const raw =
        filter.runId !== undefined
          ? await sql.all<RawEnvelope>(SQL.envelopesByRun, [filter.runId])
          : filter.contractId !== undefined
            ? await sql.all<RawEnvelope>(SQL.envelopesByContract, [filter.contractId])
            : await sql.all<RawEnvelope>(SQL.allEnvelopes);
      const statuses = filter.status === undefined ? undefined : ([] as EnvelopeStatus[]).concat(filter.status);
      return raw
        .filter((e) => filter.contractId === undefined || e.contract_id === filter.contractId)
        .filter((e) => statuses === undefined || statuses.includes(e.status))
        .map(parseEnvelope);
    },
    completedSpendMicros: async (contractId) => Number((await sql.get<{ total: number }>(SQL.spend, [contractId]))!.total),
    async findCompletedForRun(runId) {
      const hit = await sql.get<{ envelope_id: string; run_id: string }>(SQL.completedForRun, [runId]);
      if (!hit) return undefined;
      const envelope = (await getEnvelope(hit.envelope_id))!;
      const run = (await getRun(hit.run_id))!;
      return { envelope, run, kimi: kimiObject(envelope, run) };
    },
  };
}

// ---- the lane ------------------------------------------------------------------------------

export interface KimiLaneInput {
  contractId: string;
  runId: string;
  planSha256: string;
  actor: string;
  features: readonly string[];
  /** Effective caps: `effectiveCaps(plan, config)`. `allowedScopes` is stored on the envelope. */
  caps: KimiCaps;
  /** `usdToMicros(config.kimi.max_cost_usd_per_contract)`. */
  perContractCapMicros: number;
  /** A fixed time, or a clock read at each step (started_at / finished_at). */
  now: string | (() => string);
  /**
   * Earlier runs of the same contract version and plan sha, newest first: a retry reuses the
   * COMPLETED envelope of the first of them that has one instead of paying for the same output
   * again. Empty with `run --regenerate`.
   */
  reuseFrom?: readonly string[];
}

export type KimiEventType = 'kimi.started' | 'kimi.completed' | 'kimi.aborted';

export interface KimiEvent {
  type: KimiEventType;
  message: string;
}

export interface KimiLaneResult {
  ok: boolean;
  /** True when the run already had a COMPLETED envelope and nothing was executed. */
  reused: boolean;
  /** The earlier run whose envelope a retry reuses (absent when the envelope is this run's own). */
  reused_from?: string;
  kimi: KimiRunObject;
  /** The seed messages to record, in order (the `message` of each of `events`). */
  messages: string[];
  /** The history events to append after this function returns (SQLite has committed). */
  events: KimiEvent[];
  /** Anchors of the envelope's rows as the lane left them, for the last of `events` to name (empty when there are no events). */
  rows: RowAnchor[];
  error?: { code: ErrorCode; message: string; details: ErrorDetails };
}

/**
 * The COMPLETED envelope a retry reuses: that of the first candidate run (newest first) whose
 * envelope row also names this contract and plan sha. `run`'s gates ask the same question before
 * the run starts (a reusing run skips the money gates), so both use this one rule.
 */
export async function findReusable(repo: EnvelopeRepo, contractId: string, planSha256: string, candidates: readonly string[]): Promise<{ runId: string; record: KimiRecord } | undefined> {
  for (const runId of candidates) {
    const record = await repo.findCompletedForRun(runId);
    if (record && record.envelope.plan_sha256 === planSha256 && record.envelope.contract_id === contractId) return { runId, record };
  }
  return undefined;
}

/**
 * Runs the Kimi envelope for one run: creates the envelope PENDING, checks cost → runtime →
 * per-contract cap before anything is spent, and either records the abort (envelope FAILED +
 * a FAILED run row with 0 tokens, $0) or moves to RUNNING, executes the provider and records
 * COMPLETED. Two transactions, the run's two boundaries: the claim (the reuse checks, the
 * envelope and its run row) commits before the provider runs, so a slow provider never holds the
 * write lock; the outcome (run row, envelope status, and the anchors the history event names) in
 * its own.
 *
 * Idempotent per run: a run that already has a COMPLETED envelope gets it back (`reused`)
 * without executing. A run whose previous envelope is still PENDING/RUNNING (a crashed
 * process) is refused until recovery has cancelled it.
 */
export async function runKimiLane(store: ExecutionStore, provider: KimiProvider, input: KimiLaneInput): Promise<KimiLaneResult> {
  const clock = typeof input.now === 'string' ? ((t: string) => () => t)(input.now) : input.now;
  const req = { features: input.features, maxAgents: input.caps.maxAgents };
  const estimate = provider.estimate(req);

  type Begun = { reused: KimiLaneResult } | { ids: ReturnType<typeof envelopeIds>; check: ReturnType<typeof preflight>; kimi?: KimiRunObject; rows?: RowAnchor[] };
  const begun = await store.transaction(async (sql): Promise<Begun> => {
    const repo = envelopeRepo(sql);
    const reuse = await repo.findCompletedForRun(input.runId);
    if (reuse) return { reused: { ok: true, reused: true, kimi: reuse.kimi, messages: [], events: [], rows: [] } };
    // Neither the cost, runtime nor per-contract checks apply: nothing is spent, no row is written.
    const hit = await findReusable(repo, input.contractId, input.planSha256, input.reuseFrom ?? []);
    if (hit) return { reused: { ok: true, reused: true, reused_from: hit.runId, kimi: hit.record.kimi, messages: [], events: [], rows: [] } };
    const earlier = await repo.listEnvelopes({ runId: input.runId });
    const open = earlier.find((e) => e.status === 'PENDING' || e.status === 'RUNNING');
    if (open) {
      throw kairError('INTERNAL_ERROR', `execution envelope ${open.id} of run ${input.runId} is still ${open.status}; recovery must close it first`, {
        envelope_id: open.id,
        status: open.status,
      });
    }
    const ids = envelopeIds(input.runId, earlier.length + 1);
    const now = clock();
    await repo.createEnvelope({
      id: ids.envelopeId,
      contractId: input.contractId,
      runId: input.runId,
      planSha256: input.planSha256,
      actor: input.actor,
      caps: input.caps,
      now,
    });
    const check = preflight(estimate, input.caps, await repo.completedSpendMicros(input.contractId), input.perContractCapMicros);
    if (!check.ok) {
      await repo.recordAbortedRun({ id: ids.executionRunId, envelopeId: ids.envelopeId, provider: provider.name, now, summary: check.summary });
      await repo.transitionEnvelope(ids.envelopeId, 'FAILED', now);
      // The aborted envelope is final: its record and anchors are read in this same transaction.
      return { ids, check, ...(await settled(sql, ids)) };
    }
    await repo.transitionEnvelope(ids.envelopeId, 'RUNNING', now);
    await repo.startRun({ id: ids.executionRunId, envelopeId: ids.envelopeId, provider: provider.name, now });
    return { ids, check };
  });
  if ('reused' in begun) return begun.reused;

  const { ids, check } = begun;
  if (!check.ok) {
    const message = kimiMessages.aborted(check.code);
    return {
      ok: false,
      reused: false,
      kimi: begun.kimi!,
      messages: [message],
      events: [{ type: 'kimi.aborted', message }],
      rows: begun.rows!,
      error: { code: check.code, message: check.summary, details: { execution_envelope_id: ids.envelopeId, ...check.details } },
    };
  }

  const started = kimiMessages.started(input.caps);
  // The run row and the envelope reach their final status together, in one transaction.
  const finish = (status: 'COMPLETED' | 'FAILED', run: Omit<FinishRun, 'status' | 'now'>) =>
    store.transaction(async (sql) => {
      const repo = envelopeRepo(sql);
      const now = clock();
      await repo.finishRun(ids.executionRunId, { status, now, ...run });
      await repo.transitionEnvelope(ids.envelopeId, status, now);
      return settled(sql, ids);
    });
  const afterStart = (ok: boolean, done: { kimi: KimiRunObject; rows: RowAnchor[] }, last: KimiEvent, error?: KimiLaneResult['error']): KimiLaneResult => ({
    ok,
    reused: false,
    kimi: done.kimi,
    messages: [started, last.message],
    events: [{ type: 'kimi.started', message: started }, last],
    rows: done.rows,
    ...(error ? { error } : {}),
  });
  failpoint('kimi.running');
  let out: KimiExecution;
  try {
    out = provider.execute(req);
  } catch (e) {
    // Not reachable with the stub; a real provider's failure must still close the envelope.
    const reason = e instanceof Error ? e.message : String(e);
    const summary = `Execution failed: ${reason}`;
    const done = await finish('FAILED', { tokensUsed: 0, costMicros: 0, runtimeSec: 0, summary });
    return afterStart(false, done, { type: 'kimi.aborted', message: kimiMessages.aborted('INTERNAL_ERROR') }, {
      code: 'INTERNAL_ERROR',
      message: `Kimi provider ${provider.name} failed: ${reason}`,
      details: { execution_envelope_id: ids.envelopeId },
    });
  }

  const done = await finish('COMPLETED', { tokensUsed: out.tokensUsed, costMicros: out.costMicros, runtimeSec: out.runtimeSec, summary: out.summary });
  return afterStart(true, done, { type: 'kimi.completed', message: kimiMessages.completed(out.costMicros) });
}

/** The envelope's record and the anchors of its rows as its last transaction leaves them (cross-anchoring). */
async function settled(sql: SqlExecutor, ids: { envelopeId: string; executionRunId: string }): Promise<{ kimi: KimiRunObject; rows: RowAnchor[] }> {
  const repo = envelopeRepo(sql);
  return { kimi: kimiObject((await repo.getEnvelope(ids.envelopeId))!, (await repo.getRun(ids.executionRunId))!), rows: await envelopeAnchors(sql, ids.envelopeId) };
}
