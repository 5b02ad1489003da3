/**
 * `kair rollback <run_id>`: undoes what a run did in the world by dispatching, in reverse step
 * order, the rollback simulation each succeeded AEC step declared, through every dispatcher gate.
 *
 * - Exactly once: each rollback has its own idempotency key, derived from the key of the dispatch
 *   it undoes, and its own ledger step (`rollback:<step>`), so a second rollback, a concurrent one
 *   or one after a crash replays the stored success instead of acting again. A per-contract
 *   rollback lock makes concurrent invocations wait for each other rather than see each other's
 *   claims in doubt.
 * - All or nothing before the first dispatch: every step is pre-checked (rollback simulation
 *   declared and registered, gates, confirmation) before any is dispatched.
 * - It never changes the contract's state; history records `rollback.started` and
 *   `rollback.finished` (naming the ledger rows), the ledger records each dispatch.
 */
import { assertMayRunHere } from './actors.js';
import type { Contract } from '../domain/contract.js';
import type { CatalogEntry } from '../domain/aec/finder.js';
import { rollbackStepId } from '../domain/aec/gates.js';
import type { ErrorCode, ErrorDetails } from '../domain/errors.js';
import { isKairError, kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { assertTransition } from '../domain/lifecycle.js';
import type { DecisionRecord, StepOutcome, StepRequest } from '../lanes/aec/dispatcher.js';
import { dispatchStep, precheckStep } from '../lanes/aec/dispatcher.js';
import type { LedgerRepo, LedgerRow } from '../lanes/aec/ledger.js';
import { ledgerRepo } from '../lanes/aec/ledger.js';
import { catalogRepo } from '../lanes/aec/catalog.js';
import { assertContract } from '../store/fs/contracts.js';
import { acquireLock } from '../store/fs/lock.js';
import { loadForWrite } from '../store/fs/writer-load.js';
import { paths } from '../store/fs/workspace.js';
import { stepAnchors } from '../store/sqlite/chain.js';
import type { Db } from '../store/sqlite/db.js';
import { openDb } from '../store/sqlite/db.js';
import type { Ctx } from './context.js';
import { lockWho, mutate } from './mutate.js';

export interface RollbackOptions {
  /** Answers every confirmation of this rollback. */
  confirm?: string;
  lang?: string;
  retryInDoubt?: boolean;
}

export interface RollbackStep {
  /** The plan step whose effect is undone. */
  step_id: string;
  simulation_id: string;
  rollback_simulation_id: string;
  /** COMPLETED: rolled back now; REPLAYED: already rolled back earlier; PENDING: not reached. */
  status: 'PENDING' | 'COMPLETED' | 'REPLAYED' | 'PAUSED' | 'FAILED' | 'REFUSED';
  reason_code: string | null;
  idempotency_key: string;
  rollback_of: string;
  outcome?: unknown;
}

export interface RollbackResult {
  contract: Contract;
  run_id: string;
  status: 'COMPLETED' | 'FAILED';
  steps: RollbackStep[];
  error?: { code: ErrorCode; message: string; details: ErrorDetails };
}

/** What undoing one succeeded step takes: read from its success row and the refs it names. */
interface Target {
  success: LedgerRow;
  version: number;
  rollbackSimulationId: string | undefined;
  fields: Record<string, string>;
  lang: string;
  planSha256: string;
}

const RUN_ID = /^([a-z0-9][a-z0-9_-]*)-run-([1-9][0-9]*)$/;

/** The contract a run id names; RUN_NOT_FOUND when it is not one of its runs. */
function contractOfRun(ctx: Ctx, runId: string): string {
  const m = RUN_ID.exec(runId);
  if (!m) throw kairError('INVALID_ID', `invalid run id ${JSON.stringify(runId.slice(0, 80))}: expected <contract>-run-<n>, e.g. chat-run-1`, { argument: 'run_id', hint: 'kair status <id> shows the runs of a contract' });
  const id = m[1]!;
  assertId(id);
  try {
    assertContract(ctx.ws, id);
  } catch (e) {
    if (isKairError(e) && e.code === 'CONTRACT_NOT_FOUND') throw kairError('RUN_NOT_FOUND', `run ${runId} not found: there is no contract ${id}`, { run_id: runId, hint: 'kair list shows the contracts' });
    throw e;
  }
  return id;
}

/** The run's AEC steps that succeeded (or replayed a success), in plan order, with what undoing each needs. */
function targetsOf(ledger: LedgerRepo, tenant: string, runId: string): Target[] {
  const seen = new Set<string>();
  const out: Target[] = [];
  for (const row of ledger.rows({ runId })) {
    if (row.tenant_id !== tenant || row.step_id.startsWith('rollback:') || (row.event !== 'SUCCEEDED' && row.event !== 'REPLAYED')) continue;
    const key = `${row.correlation_id}\u0000${row.step_id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const success = row.event === 'SUCCEEDED' ? row : ledger.stepRows(tenant, row.correlation_id, row.step_id).find((r) => r.event === 'SUCCEEDED');
    if (!success) continue;
    const record = ledger.getRef<DecisionRecord>(success.decision_ref);
    const catalog = ledger.getRef<CatalogEntry[]>(success.catalog_snapshot_ref);
    const declared = catalog?.find((e) => e.id === success.simulation_id)?.rollback_simulation_id;
    out.push({
      success,
      version: Number(/:v(\d+)$/.exec(success.correlation_id)?.[1] ?? 0),
      rollbackSimulationId: declared,
      fields: { ...(record?.request.fields ?? {}), ...outputsOf(success.outcome) },
      lang: record?.request.lang ?? 'en',
      planSha256: record?.request.plan_sha256 ?? '',
    });
  }
  return out;
}

/**
 * What an executor reported back as values a rollback may need (e.g. the id of the invoice it
 * created): the string, number and boolean members of `simulation_outcome.outputs`.
 */
function outputsOf(outcome: unknown): Record<string, string> {
  const outputs = (outcome as { simulation_outcome?: { outputs?: unknown } } | null)?.simulation_outcome?.outputs;
  if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(outputs)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  return out;
}

function requestFor(ctx: Ctx, c: Contract, runId: string, t: Target, opts: RollbackOptions, precheck: boolean): StepRequest {
  return {
    tenant_id: ctx.config.workspace_id,
    contract_id: c.id,
    contract_version: t.version,
    run_id: runId,
    step_id: rollbackStepId(t.success.step_id),
    actor: ctx.actor(),
    plan_sha256: t.planSha256,
    utterance: `rollback ${t.rollbackSimulationId}`,
    fields: t.fields,
    lang: t.lang,
    confirm: opts.confirm === undefined ? null : { token: opts.confirm, ...(opts.lang === undefined ? {} : { lang: opts.lang }) },
    retry_in_doubt: opts.retryInDoubt === true,
    controls_granted: c.controls.granted,
    now: ctx.now,
    rollback: { of_key: t.success.idempotency_key, simulation_id: t.rollbackSimulationId! },
    precheck,
  };
}

const stepView = (t: Target, o: Pick<StepOutcome, 'status' | 'reason_code' | 'idempotency_key'> & { outcome?: unknown }, status: RollbackStep['status'] = o.status): RollbackStep => ({
  step_id: t.success.step_id,
  simulation_id: t.success.simulation_id ?? '',
  rollback_simulation_id: t.rollbackSimulationId ?? '',
  status,
  reason_code: status === 'PENDING' ? null : o.reason_code,
  idempotency_key: o.idempotency_key,
  rollback_of: t.success.idempotency_key,
  ...(o.outcome === undefined || o.outcome === null || status === 'PENDING' ? {} : { outcome: (o.outcome as { simulation_outcome?: unknown }).simulation_outcome ?? o.outcome }),
});

export async function rollbackCommand(ctx: Ctx, runId: string, opts: RollbackOptions = {}): Promise<RollbackResult> {
  const id = contractOfRun(ctx, runId);
  void ctx.config;
  const lock = acquireLock(paths.locks(ctx.ws), `rollback-${id}`, lockWho(ctx), ctx.lockTimeoutMs);
  let db: Db | undefined;
  try {
    if (!loadForWrite(ctx.ws, id).contract.runs.includes(runId)) {
      throw kairError('RUN_NOT_FOUND', `run ${runId} not found in the history of ${id}`, { run_id: runId, contract_id: id, hint: `kair status ${id} shows its runs` });
    }
    db = openDb(paths.db(ctx.ws));
    const ledger = ledgerRepo(db);
    const database = db;
    let planned!: { targets: Target[]; checks: StepOutcome[] };
    // Every check, then the start, in one locked decision: a refusal is recorded as gate.blocked.
    const started = mutate(ctx, id, 'rollback', (c) => {
      if (c.state === 'RUNNING') {
        throw kairError('INVALID_TRANSITION', `cannot roll back ${runId}: ${id} is RUNNING; wait for the run to end or \`kair pause ${id}\``, { contract_id: id, state: c.state, command: 'rollback', hint: `kair pause ${id}` });
      }
      assertMayRunHere(ctx, c, 'rollback');
      const targets = targetsOf(ledger, ctx.config.workspace_id, runId).reverse();
      const unavailable = targets.filter((t) => !t.rollbackSimulationId);
      if (unavailable.length) {
        const names = unavailable.map((t) => `${t.success.step_id} (${t.success.simulation_id})`).join(', ');
        throw kairError('ROLLBACK_UNAVAILABLE', `cannot roll back ${runId}: ${names} succeeded but ${unavailable.length === 1 ? 'its simulation declares' : 'their simulations declare'} no rollback simulation; nothing was dispatched`, {
          run_id: runId,
          steps: unavailable.map((t) => ({ step_id: t.success.step_id, simulation_id: t.success.simulation_id })),
          hint: 'undo those effects by hand, or register the simulation again with a rollback_simulation_id for future runs',
        });
      }
      // The Finder would ask for a missing field; a rollback has nobody to ask, so it cannot start.
      const catalog = catalogRepo(database).catalogEntries();
      for (const t of targets) {
        const missing = catalog.find((e) => e.id === t.rollbackSimulationId)?.required_fields.filter((f) => !Object.hasOwn(t.fields, f)) ?? [];
        if (missing.length) {
          throw kairError('ROLLBACK_UNAVAILABLE', `cannot roll back ${runId}: the rollback ${t.rollbackSimulationId} of ${t.success.step_id} needs field ${missing.join(', ')}, which the step did not have; nothing was dispatched`, {
            run_id: runId,
            steps: [{ step_id: t.success.step_id, simulation_id: t.success.simulation_id, missing_fields: missing }],
            hint: `undo the effect of ${t.success.step_id} by hand (kair aec ledger ${id} shows it)`,
          });
        }
      }
      const checks = targets.map((t) => precheckStep(database, ctx.ws, requestFor(ctx, c, runId, t, opts, true)));
      const blocked = checks.findIndex((o) => o.status !== 'COMPLETED' && o.status !== 'REPLAYED');
      if (blocked >= 0) {
        const o = checks[blocked]!;
        const stepId = targets[blocked]!.success.step_id;
        const hint = o.reason_code === 'AEC_CONFIRM_REQUIRED' || o.reason_code === 'AEC_CONFIRM_AMBIGUOUS_REJECTED' ? `kair rollback ${runId} --confirm yes` : o.reason_code === 'AEC_IN_DOUBT' ? `check the effect of the earlier rollback of ${stepId}, then kair rollback ${runId} --retry-in-doubt` : `kair aec ledger ${id}`;
        throw kairError(o.reason_code, `rollback of ${stepId} refused before anything was dispatched: ${o.message.replaceAll(`kair resume ${id}`, `kair rollback ${runId}`)}`, { run_id: runId, step_id: stepId, ...o.details, hint });
      }
      planned = { targets, checks };
      if (checks.every((o) => o.status === 'REPLAYED')) return { drafts: [] };
      return { drafts: [{ type: 'rollback.started', state: c.state, data: { run_id: runId, steps: targets.map((t, i) => ({ step_id: t.success.step_id, rollback_simulation_id: t.rollbackSimulationId, idempotency_key: checks[i]!.idempotency_key })) } }] };
    });
    const { targets, checks } = planned;
    const steps = targets.map((t, i) => stepView(t, checks[i]!, checks[i]!.status === 'REPLAYED' ? 'REPLAYED' : 'PENDING'));
    if (started.events.length === 0) return { contract: started.contract, run_id: runId, status: 'COMPLETED', steps };

    let error: RollbackResult['error'];
    for (let i = 0; i < targets.length; i++) {
      if (steps[i]!.status === 'REPLAYED') continue;
      const o = await dispatchStep(database, ctx.ws, requestFor(ctx, started.contract, runId, targets[i]!, opts, false));
      steps[i] = stepView(targets[i]!, o);
      if (o.status !== 'COMPLETED' && o.status !== 'REPLAYED') {
        error = { code: o.reason_code, message: `rollback of ${targets[i]!.success.step_id} stopped: ${o.message}`, details: { run_id: runId, step_id: targets[i]!.success.step_id, ...o.details } };
        break;
      }
    }
    const status: RollbackResult['status'] = error ? 'FAILED' : 'COMPLETED';
    const rows = targets.flatMap((t) => stepAnchors(database, runId, rollbackStepId(t.success.step_id)));
    const finished = mutate(ctx, id, 'rollback', (c) => ({
      drafts: [{ type: 'rollback.finished', state: c.state, data: { run_id: runId, status, steps: steps.map((s) => ({ step_id: s.step_id, status: s.status, reason_code: s.reason_code })), ...(error ? { error: { code: error.code, message: error.message } } : {}), rows } }],
    }));
    return { contract: finished.contract, run_id: runId, status, steps, ...(error ? { error } : {}) };
  } finally {
    db?.close();
    lock.release();
  }
}


/**
 * `rewind --rollback`: the latest run is rolled back first (null when there is none). The rewind
 * itself is checked before anything is dispatched, so a rewind that would be refused rolls
 * nothing back.
 */
export async function rollbackBeforeRewind(ctx: Ctx, id: string, reason: string, opts: RollbackOptions): Promise<RollbackResult | null> {
  assertId(id);
  if (!reason.trim()) throw kairError('USAGE_ERROR', 'rewind needs a reason: kair rewind <id> "<reason>" --rollback', { argument: 'reason' });
  assertContract(ctx.ws, id);
  const c = loadForWrite(ctx.ws, id).contract;
  assertTransition(c, 'rewind');
  const runId = c.runs[c.runs.length - 1];
  return runId === undefined ? null : await rollbackCommand(ctx, runId, opts);
}
