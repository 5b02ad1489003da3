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
import type { Db } from '../../store/sqlite/db.js';
import { failpoint } from '../../store/failpoint.js';
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

export interface EnvelopeRepo {
  /** Inserts a PENDING envelope. */
  createEnvelope(e: NewEnvelope): EnvelopeRow;
  getEnvelope(id: string): EnvelopeRow | undefined;
  /** PENDING → RUNNING | FAILED | CANCELLED, RUNNING → COMPLETED | FAILED | CANCELLED. */
  transitionEnvelope(id: string, to: EnvelopeStatus, now: string): void;
  /** Closes an abandoned envelope: CANCELLED, and its RUNNING run rows FAILED with `summary`. */
  cancelEnvelope(id: string, now: string, summary?: string): void;
  /** A RUNNING run row. */
  startRun(r: { id: string; envelopeId: string; provider: string; now: string }): KimiRunRow;
  /** RUNNING → COMPLETED | FAILED. */
  finishRun(id: string, f: FinishRun): void;
  /** The run row of an attempt stopped by the checks: FAILED, 0 tokens, $0, 0 s. */
  recordAbortedRun(r: { id: string; envelopeId: string; provider: string; now: string; summary: string }): KimiRunRow;
  getRun(id: string): KimiRunRow | undefined;
  runsOf(envelopeId: string): KimiRunRow[];
  /** In creation order. */
  listEnvelopes(filter?: EnvelopeFilter): EnvelopeRow[];
  /** Sum of cost over the contract's COMPLETED runs, every version and attempt. */
  completedSpendMicros(contractId: string): number;
  /** The run's COMPLETED envelope with its COMPLETED run row, for `resume` to reuse. */
  findCompletedForRun(runId: string): KimiRecord | undefined;
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

const repos = new WeakMap<Db, EnvelopeRepo>();

/** One repository (and one set of prepared statements) per connection. */
export function envelopeRepo(db: Db): EnvelopeRepo {
  let repo = repos.get(db);
  if (!repo) {
    repo = makeRepo(db);
    repos.set(db, repo);
  }
  return repo;
}

function makeRepo(db: Db): EnvelopeRepo {
  const s = {
    insertEnvelope: db.prepare(
      `INSERT INTO execution_envelopes (id, contract_id, run_id, plan_sha256, actor, provider, max_cost_micros, max_agents,
         max_runtime_sec, allowed_scopes, status, created_at, updated_at)
       VALUES (@id, @contract_id, @run_id, @plan_sha256, @actor, 'kimi', @max_cost_micros, @max_agents,
         @max_runtime_sec, @allowed_scopes, 'PENDING', @now, @now)`,
    ),
    getEnvelope: db.prepare('SELECT * FROM execution_envelopes WHERE id = ?'),
    setEnvelopeStatus: db.prepare('UPDATE execution_envelopes SET status = @to, updated_at = @now WHERE id = @id AND status = @from'),
    allEnvelopes: db.prepare('SELECT * FROM execution_envelopes ORDER BY rowid'),
    envelopesByContract: db.prepare('SELECT * FROM execution_envelopes WHERE contract_id = ? ORDER BY rowid'),
    envelopesByRun: db.prepare('SELECT * FROM execution_envelopes WHERE run_id = ? ORDER BY rowid'),
    insertRun: db.prepare(
      `INSERT INTO kimi_execution_runs (id, envelope_id, provider, started_at, finished_at, tokens_used, cost_micros, runtime_sec, status, summary)
       VALUES (@id, @envelope_id, @provider, @started_at, @finished_at, @tokens_used, @cost_micros, @runtime_sec, @status, @summary)`,
    ),
    finishRun: db.prepare(
      `UPDATE kimi_execution_runs SET status = @status, finished_at = @now, tokens_used = @tokens_used, cost_micros = @cost_micros,
         runtime_sec = @runtime_sec, summary = @summary
       WHERE id = @id AND status = 'RUNNING'`,
    ),
    failRunningRuns: db.prepare(
      `UPDATE kimi_execution_runs SET status = 'FAILED', finished_at = @now, summary = @summary
       WHERE envelope_id = @envelope_id AND status = 'RUNNING'`,
    ),
    getRun: db.prepare('SELECT * FROM kimi_execution_runs WHERE id = ?'),
    runsOf: db.prepare('SELECT * FROM kimi_execution_runs WHERE envelope_id = ? ORDER BY rowid'),
    spend: db.prepare(
      `SELECT COALESCE(SUM(r.cost_micros), 0) AS total
       FROM kimi_execution_runs r JOIN execution_envelopes e ON e.id = r.envelope_id
       WHERE e.contract_id = ? AND r.status = 'COMPLETED'`,
    ),
    completedForRun: db.prepare(
      `SELECT e.id AS envelope_id, r.id AS run_id
       FROM execution_envelopes e JOIN kimi_execution_runs r ON r.envelope_id = e.id
       WHERE e.run_id = ? AND e.status = 'COMPLETED' AND r.status = 'COMPLETED'
       ORDER BY e.rowid DESC, r.rowid DESC LIMIT 1`,
    ),
  };

  const getEnvelope = (id: string): EnvelopeRow | undefined => {
    const row = s.getEnvelope.get(id) as RawEnvelope | undefined;
    return row && parseEnvelope(row);
  };
  const getRun = (id: string): KimiRunRow | undefined => s.getRun.get(id) as KimiRunRow | undefined;

  const transitionEnvelope = (id: string, to: EnvelopeStatus, now: string): void => {
    const current = getEnvelope(id);
    if (!current) throw kairError('INTERNAL_ERROR', `execution envelope ${id} does not exist`, { envelope_id: id });
    if (!canTransitionEnvelope(current.status, to)) {
      throw kairError('INTERNAL_ERROR', `execution envelope ${id} cannot go from ${current.status} to ${to}`, { envelope_id: id, from: current.status, to });
    }
    // Guarded by the status read above, so a concurrent writer makes this a no-op we detect.
    const r = s.setEnvelopeStatus.run({ id, from: current.status, to, now });
    if (r.changes !== 1) throw kairError('INTERNAL_ERROR', `execution envelope ${id} changed underneath us`, { envelope_id: id });
  };

  return {
    createEnvelope(e) {
      s.insertEnvelope.run({
        id: e.id,
        contract_id: e.contractId,
        run_id: e.runId,
        plan_sha256: e.planSha256,
        actor: e.actor,
        max_cost_micros: usdToMicros(e.caps.maxCostUSD),
        max_agents: e.caps.maxAgents,
        max_runtime_sec: e.caps.maxRuntimeSec,
        allowed_scopes: JSON.stringify(e.caps.allowedScopes),
        now: e.now,
      });
      return getEnvelope(e.id)!;
    },
    getEnvelope,
    transitionEnvelope,
    cancelEnvelope(id, now, summary = 'Execution abandoned (recovered after an interrupted run)') {
      db.transaction(() => {
        s.failRunningRuns.run({ envelope_id: id, now, summary });
        transitionEnvelope(id, 'CANCELLED', now);
      })();
    },
    startRun(r) {
      s.insertRun.run({
        id: r.id,
        envelope_id: r.envelopeId,
        provider: r.provider,
        started_at: r.now,
        finished_at: null,
        tokens_used: null,
        cost_micros: null,
        runtime_sec: null,
        status: 'RUNNING',
        summary: null,
      });
      return getRun(r.id)!;
    },
    finishRun(id, f) {
      const r = s.finishRun.run({
        id,
        status: f.status,
        now: f.now,
        tokens_used: f.tokensUsed,
        cost_micros: f.costMicros,
        runtime_sec: f.runtimeSec,
        summary: f.summary,
      });
      if (r.changes !== 1) throw kairError('INTERNAL_ERROR', `Kimi execution run ${id} is not RUNNING`, { execution_run_id: id });
    },
    recordAbortedRun(r) {
      s.insertRun.run({
        id: r.id,
        envelope_id: r.envelopeId,
        provider: r.provider,
        started_at: r.now,
        finished_at: r.now,
        tokens_used: 0,
        cost_micros: 0,
        runtime_sec: 0,
        status: 'FAILED',
        summary: r.summary,
      });
      return getRun(r.id)!;
    },
    getRun,
    runsOf: (envelopeId) => s.runsOf.all(envelopeId) as KimiRunRow[],
    listEnvelopes(filter = {}) {
      const raw = (
        filter.runId !== undefined
          ? s.envelopesByRun.all(filter.runId)
          : filter.contractId !== undefined
            ? s.envelopesByContract.all(filter.contractId)
            : s.allEnvelopes.all()
      ) as RawEnvelope[];
      const statuses = filter.status === undefined ? undefined : ([] as EnvelopeStatus[]).concat(filter.status);
      return raw
        .filter((e) => filter.contractId === undefined || e.contract_id === filter.contractId)
        .filter((e) => statuses === undefined || statuses.includes(e.status))
        .map(parseEnvelope);
    },
    completedSpendMicros: (contractId) => (s.spend.get(contractId) as { total: number }).total,
    findCompletedForRun(runId) {
      const hit = s.completedForRun.get(runId) as { envelope_id: string; run_id: string } | undefined;
      if (!hit) return undefined;
      const envelope = getEnvelope(hit.envelope_id)!;
      const run = getRun(hit.run_id)!;
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
  error?: { code: ErrorCode; message: string; details: ErrorDetails };
}

/**
 * The COMPLETED envelope a retry reuses: that of the first candidate run (newest first) whose
 * envelope row also names this contract and plan sha. `run`'s gates ask the same question before
 * the run starts (a reusing run skips the money gates), so both use this one rule.
 */
export function findReusable(repo: EnvelopeRepo, contractId: string, planSha256: string, candidates: readonly string[]): { runId: string; record: KimiRecord } | undefined {
  for (const runId of candidates) {
    const record = repo.findCompletedForRun(runId);
    if (record && record.envelope.plan_sha256 === planSha256 && record.envelope.contract_id === contractId) return { runId, record };
  }
  return undefined;
}

/**
 * Runs the Kimi envelope for one run: creates the envelope PENDING, checks cost → runtime →
 * per-contract cap before anything is spent, and either records the abort (envelope FAILED +
 * a FAILED run row with 0 tokens, $0) or moves to RUNNING, executes the provider and records
 * COMPLETED. Each multi-row change is one BEGIN IMMEDIATE transaction; the provider runs
 * between them so a slow provider never holds the write lock.
 *
 * Idempotent per run: a run that already has a COMPLETED envelope gets it back (`reused`)
 * without executing. A run whose previous envelope is still PENDING/RUNNING (a crashed
 * process) is refused until recovery has cancelled it.
 */
export function runKimiLane(db: Db, provider: KimiProvider, input: KimiLaneInput): KimiLaneResult {
  const repo = envelopeRepo(db);
  const clock = typeof input.now === 'string' ? ((t: string) => () => t)(input.now) : input.now;
  const req = { features: input.features, maxAgents: input.caps.maxAgents };

  const reuse = repo.findCompletedForRun(input.runId);
  if (reuse) return { ok: true, reused: true, kimi: reuse.kimi, messages: [], events: [] };
  // Neither the cost, runtime nor per-contract checks apply: nothing is spent, no row is written.
  const hit = findReusable(repo, input.contractId, input.planSha256, input.reuseFrom ?? []);
  if (hit) return { ok: true, reused: true, reused_from: hit.runId, kimi: hit.record.kimi, messages: [], events: [] };

  const estimate = provider.estimate(req);

  const begun = db
    .transaction(() => {
      const earlier = repo.listEnvelopes({ runId: input.runId });
      const open = earlier.find((e) => e.status === 'PENDING' || e.status === 'RUNNING');
      if (open) {
        throw kairError('INTERNAL_ERROR', `execution envelope ${open.id} of run ${input.runId} is still ${open.status}; recovery must close it first`, {
          envelope_id: open.id,
          status: open.status,
        });
      }
      const ids = envelopeIds(input.runId, earlier.length + 1);
      const now = clock();
      repo.createEnvelope({
        id: ids.envelopeId,
        contractId: input.contractId,
        runId: input.runId,
        planSha256: input.planSha256,
        actor: input.actor,
        caps: input.caps,
        now,
      });
      const check = preflight(estimate, input.caps, repo.completedSpendMicros(input.contractId), input.perContractCapMicros);
      if (!check.ok) {
        repo.recordAbortedRun({ id: ids.executionRunId, envelopeId: ids.envelopeId, provider: provider.name, now, summary: check.summary });
        repo.transitionEnvelope(ids.envelopeId, 'FAILED', now);
      } else {
        repo.transitionEnvelope(ids.envelopeId, 'RUNNING', now);
        repo.startRun({ id: ids.executionRunId, envelopeId: ids.envelopeId, provider: provider.name, now });
      }
      return { ids, check };
    })
    .immediate();

  const { ids, check } = begun;
  const record = (): KimiRunObject => kimiObject(repo.getEnvelope(ids.envelopeId)!, repo.getRun(ids.executionRunId)!);

  if (!check.ok) {
    const message = kimiMessages.aborted(check.code);
    return {
      ok: false,
      reused: false,
      kimi: record(),
      messages: [message],
      events: [{ type: 'kimi.aborted', message }],
      error: { code: check.code, message: check.summary, details: { execution_envelope_id: ids.envelopeId, ...check.details } },
    };
  }

  const started = kimiMessages.started(input.caps);
  // The run row and the envelope reach their final status together, in one transaction.
  const finish = (status: 'COMPLETED' | 'FAILED', run: Omit<FinishRun, 'status' | 'now'>) =>
    db
      .transaction(() => {
        const now = clock();
        repo.finishRun(ids.executionRunId, { status, now, ...run });
        repo.transitionEnvelope(ids.envelopeId, status, now);
      })
      .immediate();
  const afterStart = (ok: boolean, last: KimiEvent, error?: KimiLaneResult['error']): KimiLaneResult => ({
    ok,
    reused: false,
    kimi: record(),
    messages: [started, last.message],
    events: [{ type: 'kimi.started', message: started }, last],
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
    finish('FAILED', { tokensUsed: 0, costMicros: 0, runtimeSec: 0, summary });
    return afterStart(false, { type: 'kimi.aborted', message: kimiMessages.aborted('INTERNAL_ERROR') }, {
      code: 'INTERNAL_ERROR',
      message: `Kimi provider ${provider.name} failed: ${reason}`,
      details: { execution_envelope_id: ids.envelopeId },
    });
  }

  finish('COMPLETED', { tokensUsed: out.tokensUsed, costMicros: out.costMicros, runtimeSec: out.runtimeSec, summary: out.summary });
  return afterStart(true, { type: 'kimi.completed', message: kimiMessages.completed(out.costMicros) });
}
