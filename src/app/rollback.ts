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
import { decideGates, rollbackKey, rollbackStepId } from '../domain/aec/gates.js';
import type { ErrorCode, ErrorDetails } from '../domain/errors.js';
import { isKairError, kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { assertTransition } from '../domain/lifecycle.js';
import type { DecisionRecord, StepOutcome, StepRequest } from '../lanes/aec/dispatcher.js';
import { dispatchStep, haltMessage, precheckStep, predictStep } from '../lanes/aec/dispatcher.js';
import type { LedgerRepo, LedgerRow } from '../lanes/aec/ledger.js';
import { ledgerRepo } from '../lanes/aec/ledger.js';
import { catalogRepo } from '../lanes/aec/catalog.js';
import { assertContract } from '../store/fs/contracts.js';
import { acquireLock } from '../store/fs/lock.js';
import { loadForWrite } from '../store/fs/writer-load.js';
import { paths } from '../store/fs/workspace.js';
import { stepAnchors } from '../store/sqlite/chain.js';
import type { ExecutionStore } from '../store/port.js';
import { readOnly } from '../store/port.js';
import type { SqliteExecutionStore } from '../store/sqlite/executor.js';
import { openExecutionStore } from '../store/sqlite/executor.js';
import { hasExecutionStore, openExecution } from './db.js';
import type { Ctx } from './context.js';
import { lockWho, mutate } from './mutate.js';
import { assertDryRunAnswer } from './run.js';

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
async function targetsOf(ledger: LedgerRepo, tenant: string, runId: string): Promise<Target[]> {
  const seen = new Set<string>();
  const out: Target[] = [];
  for (const row of await ledger.rows({ runId })) {
    if (row.tenant_id !== tenant || row.step_id.startsWith('rollback:') || (row.event !== 'SUCCEEDED' && row.event !== 'REPLAYED')) continue;
    const key = `${row.correlation_id}\u0000${row.step_id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const success = row.event === 'SUCCEEDED' ? row : (await ledger.stepRows(tenant, row.correlation_id, row.step_id)).find((r) => r.event === 'SUCCEEDED');
    if (!success) continue;
    const record = await ledger.getRef<DecisionRecord>(success.decision_ref);
    const catalog = await ledger.getRef<CatalogEntry[]>(success.catalog_snapshot_ref);
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

/** The rollback's targets (in rollback order) and the catalog, in one read transaction. */
function readTargets(ctx: Ctx, store: ExecutionStore, runId: string): Promise<{ targets: Target[]; catalog: CatalogEntry[] }> {
  return readOnly(store, async (sql) => ({ targets: (await targetsOf(ledgerRepo(sql), ctx.config.workspace_id, runId)).reverse(), catalog: await catalogRepo(sql).catalogEntries() }));
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

function requestFor(ctx: Ctx, c: Contract, runId: string, t: Target, opts: RollbackOptions, precheck: boolean, ask?: (question: string) => string | null): StepRequest {
  return {
    ...(ask ? { ask } : {}),
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

/** The steps a rollback undoes (in its order) and each one's pre-check. */
interface RollbackPlan {
  targets: Target[];
  checks: StepOutcome[];
}

/**
 * The rollback's refusals before any dispatch, in order: the state, the actor, a step without a
 * rollback simulation, a rollback that needs a field the step did not have, then the pre-check of
 * every step's gates (in reverse step order). Decided under the contract's lock, so a refusal is
 * recorded as gate.blocked; nothing else is written.
 */
async function planRollback(ctx: Ctx, c: Contract, runId: string, store: ExecutionStore, opts: RollbackOptions, answers: Answers): Promise<RollbackPlan> {
  const id = c.id;
  assertMayRollback(ctx, c, runId);
  const { targets, catalog } = await readTargets(ctx, store, runId);
  const unavailable = unavailableError(targets, runId);
  if (unavailable) throw unavailable;
  // The Finder would ask for a missing field; a rollback has nobody to ask, so it cannot start.
  for (const t of targets) {
    const missing = missingFields(catalog, t);
    if (missing.length) throw missingFieldsError(t, missing, runId, id);
  }
  const checks: StepOutcome[] = [];
  for (const [i, t] of targets.entries()) checks.push(await precheckStep(store, ctx.ws, requestFor(ctx, c, runId, t, opts, true, answers.ask(i))));
  const blocked = checks.findIndex((o) => o.status !== 'COMPLETED' && o.status !== 'REPLAYED');
  if (blocked >= 0) throw precheckRefusal(checks[blocked]!, targets[blocked]!.success.step_id, runId, id);
  return { targets, checks };
}

function assertMayRollback(ctx: Ctx, c: Contract, runId: string): void {
  if (c.state === 'RUNNING') {
    throw kairError('INVALID_TRANSITION', `cannot roll back ${runId}: ${c.id} is RUNNING; wait for the run to end or \`kair pause ${c.id}\``, { contract_id: c.id, state: c.state, command: 'rollback', hint: `kair pause ${c.id}` });
  }
  assertMayRunHere(ctx, c, 'rollback');
}

function unavailableError(targets: Target[], runId: string) {
  const unavailable = targets.filter((t) => !t.rollbackSimulationId);
  if (!unavailable.length) return null;
  const names = unavailable.map((t) => `${t.success.step_id} (${t.success.simulation_id})`).join(', ');
  return kairError('ROLLBACK_UNAVAILABLE', `cannot roll back ${runId}: ${names} succeeded but ${unavailable.length === 1 ? 'its simulation declares' : 'their simulations declare'} no rollback simulation; nothing was dispatched`, {
    run_id: runId,
    steps: unavailable.map((t) => ({ step_id: t.success.step_id, simulation_id: t.success.simulation_id })),
    hint: 'undo those effects by hand, or register the simulation again with a rollback_simulation_id for future runs',
  });
}

function missingFields(catalog: readonly CatalogEntry[], t: Target): string[] {
  return catalog.find((e) => e.id === t.rollbackSimulationId)?.required_fields.filter((f) => !Object.hasOwn(t.fields, f)) ?? [];
}

function missingFieldsError(t: Target, missing: string[], runId: string, id: string) {
  return kairError('ROLLBACK_UNAVAILABLE', `cannot roll back ${runId}: the rollback ${t.rollbackSimulationId} of ${t.success.step_id} needs field ${missing.join(', ')}, which the step did not have; nothing was dispatched`, {
    run_id: runId,
    steps: [{ step_id: t.success.step_id, simulation_id: t.success.simulation_id, missing_fields: missing }],
    hint: `undo the effect of ${t.success.step_id} by hand (kair aec ledger ${id} shows it)`,
  });
}

function precheckRefusal(o: Pick<StepOutcome, 'reason_code' | 'message' | 'details'>, stepId: string, runId: string, id: string) {
  const hint = o.reason_code === 'AEC_CONFIRM_REQUIRED' || o.reason_code === 'AEC_CONFIRM_AMBIGUOUS_REJECTED' ? `kair rollback ${runId} --confirm yes` : o.reason_code === 'AEC_IN_DOUBT' ? `check the effect of the earlier rollback of ${stepId}, then kair rollback ${runId} --retry-in-doubt` : `kair aec ledger ${id}`;
  return kairError(o.reason_code, `rollback of ${stepId} refused before anything was dispatched: ${o.message.replaceAll(`kair resume ${id}`, `kair rollback ${runId}`)}`, { run_id: runId, step_id: stepId, ...o.details, hint });
}

/**
 * The answers typed at the terminal, one per step (index in rollback order). A rollback asks
 * before anything is dispatched, not step by step as a run does: "no" to the second question
 * must not come after the first rollback already acted.
 */
interface Answers {
  ask(i: number): ((question: string) => string | null) | undefined;
}

const NO_ANSWERS: Answers = { ask: () => undefined };

/**
 * Asks, on a terminal and only without --confirm, each question the rollback's steps would need
 * answered, with the dispatcher's own question (it lists the accepted answers; Enter alone asks
 * again). Only when nothing else would refuse the rollback: a question about a step of a rollback
 * that cannot happen is noise. Runs outside the contract's lock (a person may take their time);
 * the locked pre-check then decides again with these answers.
 */
async function promptAnswers(ctx: Ctx, c: Contract, runId: string, store: ExecutionStore, opts: RollbackOptions): Promise<Answers> {
  const ask = opts.confirm === undefined ? ctx.ask : undefined;
  if (!ask) return NO_ANSWERS;
  const { targets, catalog } = await readTargets(ctx, store, runId);
  try {
    assertMayRollback(ctx, c, runId);
    if (unavailableError(targets, runId)) return NO_ANSWERS;
    if (targets.some((t) => missingFields(catalog, t).length > 0)) return NO_ANSWERS;
  } catch {
    return NO_ANSWERS;
  }
  const needs: number[] = [];
  for (let i = 0; i < targets.length; i++) {
    let p: Awaited<ReturnType<typeof predictStep>>;
    try {
      p = await predictStep(store, requestFor(ctx, c, runId, targets[i]!, opts, true));
    } catch {
      return NO_ANSWERS;
    }
    if (p.verdict.dispatch || p.verdict.replay) continue;
    if (p.verdict.reason_code !== 'AEC_CONFIRM_REQUIRED') return NO_ANSWERS;
    // Refused whatever the answer (access, a control): asking would only waste the person's time.
    const after = decideGates({ ...p.facts, confirmation: 'affirmative' });
    if (!after.dispatch && !after.replay) return NO_ANSWERS;
    needs.push(i);
  }
  const given = new Map<number, string | null>();
  for (const i of needs) {
    const o = await precheckStep(store, ctx.ws, {
      ...requestFor(ctx, c, runId, targets[i]!, opts, true),
      ask: (q) => {
        const a = ask(q);
        given.set(i, a);
        return a;
      },
    });
    // A "no" (or an answer that is neither) refuses the whole rollback: no further questions.
    if (o.status !== 'COMPLETED' && o.status !== 'REPLAYED') break;
  }
  return { ask: (i) => (given.has(i) ? () => given.get(i)! : undefined) };
}

export async function rollbackCommand(ctx: Ctx, runId: string, opts: RollbackOptions = {}): Promise<RollbackResult> {
  const id = contractOfRun(ctx, runId);
  const lock = acquireLock(paths.locks(ctx.ws), `rollback-${id}`, lockWho(ctx), ctx.lockTimeoutMs);
  let store: SqliteExecutionStore | undefined;
  try {
    const before = await (await ctx.storage()).contracts.load(id);
    if (!before.runs.includes(runId)) {
      throw kairError('RUN_NOT_FOUND', `run ${runId} not found in the history of ${id}`, { run_id: runId, contract_id: id, hint: `kair status ${id} shows its runs` });
    }
    store = openExecution(ctx);
    const database = store;
    const answers = await promptAnswers(ctx, before, runId, database, opts);
    let planned!: RollbackPlan;
    // Every check, then the start, in one locked decision: a refusal is recorded as gate.blocked.
    const started = await mutate(ctx, id, 'rollback', async (c) => {
      planned = await planRollback(ctx, c, runId, database, opts, answers);
      const { targets, checks } = planned;
      if (checks.every((o) => o.status === 'REPLAYED')) return { drafts: [] };
      return { drafts: [{ type: 'rollback.started', state: c.state, data: { run_id: runId, steps: targets.map((t, i) => ({ step_id: t.success.step_id, rollback_simulation_id: t.rollbackSimulationId, idempotency_key: checks[i]!.idempotency_key })) } }] };
    });
    const { targets, checks } = planned;
    const steps = targets.map((t, i) => stepView(t, checks[i]!, checks[i]!.status === 'REPLAYED' ? 'REPLAYED' : 'PENDING'));
    if (started.events.length === 0) return { contract: started.contract, run_id: runId, status: 'COMPLETED', steps };

    let error: RollbackResult['error'];
    for (let i = 0; i < targets.length; i++) {
      if (steps[i]!.status === 'REPLAYED') continue;
      const o = await dispatchStep(database, ctx.ws, requestFor(ctx, started.contract, runId, targets[i]!, opts, false, answers.ask(i)));
      steps[i] = stepView(targets[i]!, o);
      if (o.status !== 'COMPLETED' && o.status !== 'REPLAYED') {
        error = { code: o.reason_code, message: `rollback of ${targets[i]!.success.step_id} stopped: ${o.message}`, details: { run_id: runId, step_id: targets[i]!.success.step_id, ...o.details } };
        break;
      }
    }
    const status: RollbackResult['status'] = error ? 'FAILED' : 'COMPLETED';
    const rows = await readOnly(database, async (sql) => {
      const out = [];
      for (const t of targets) out.push(...(await stepAnchors(sql, runId, rollbackStepId(t.success.step_id))));
      return out;
    });
    const finished = await mutate(ctx, id, 'rollback', (c) => ({
      drafts: [{ type: 'rollback.finished', state: c.state, data: { run_id: runId, status, steps: steps.map((s) => ({ step_id: s.step_id, status: s.status, reason_code: s.reason_code })), ...(error ? { error: { code: error.code, message: error.message } } : {}), rows } }],
    }));
    return { contract: finished.contract, run_id: runId, status, steps, ...(error ? { error } : {}) };
  } finally {
    store?.close();
    lock.release();
  }
}

/** One step of `rollback --dry-run`: what the real rollback would do with it now. */
export interface RollbackDryRunStep {
  step_id: string;
  simulation_id: string;
  /** Empty when the step's simulation declares none (then `refused`, ROLLBACK_UNAVAILABLE). */
  rollback_simulation_id: string;
  status: 'ok' | 'replay' | 'needs_confirmation' | 'refused';
  reason_code: string;
  /** The fields the rollback would be dispatched with: the step's, overlaid with its outcome's outputs. */
  fields: Record<string, string>;
  idempotency_key: string | null;
  rollback_of: string;
  message?: string;
  /** For needs_confirmation: what the gates after the confirmation decide once it is answered yes. */
  after_confirmation?: string;
}

export interface RollbackDryRun {
  dry_run: true;
  contract_id: string;
  run_id: string;
  steps: RollbackDryRunStep[];
}

/**
 * `rollback --dry-run`: every gate of every rollback step, on the facts as they are, with the
 * dispatcher's own prediction (`predictStep`); no lock, no history event, no ledger, intake or
 * access-decision row. Throws the first stop the real rollback would meet (its exit code),
 * carrying the whole prediction; without one returns it.
 */
export async function rollbackDryRun(ctx: Ctx, runId: string, opts: RollbackOptions = {}): Promise<RollbackDryRun> {
  if (opts.confirm !== undefined) assertDryRunAnswer(opts.confirm, opts.lang);
  const id = contractOfRun(ctx, runId);
  const c = loadForWrite(ctx.ws, id).contract;
  if (!c.runs.includes(runId)) {
    throw kairError('RUN_NOT_FOUND', `run ${runId} not found in the history of ${id}`, { run_id: runId, contract_id: id, hint: `kair status ${id} shows its runs` });
  }
  assertMayRollback(ctx, c, runId);
  // A run that dispatched anything has a database; one that did not has nothing to roll back.
  const store = hasExecutionStore(ctx) ? openExecution(ctx) : openExecutionStore(':memory:');
  try {
    const { targets, catalog } = await readTargets(ctx, store, runId);
    const confirm = opts.confirm === undefined ? null : { token: opts.confirm, ...(opts.lang === undefined ? {} : { lang: opts.lang }) };
    // The real rollback refuses in tiers — no rollback declared, then a missing field, then an
    // unregistered rollback simulation, then the first gate refusal in its order — so the first
    // predicted stop is the lowest tier's first.
    const stops: { tier: number; e: ReturnType<typeof kairError> }[] = [];
    const unavailable = unavailableError(targets, runId);
    if (unavailable) stops.push({ tier: 0, e: unavailable });
    const steps: RollbackDryRunStep[] = [];
    const predict = async (t: Target): Promise<RollbackDryRunStep> => {
      const base = { step_id: t.success.step_id, simulation_id: t.success.simulation_id ?? '', rollback_simulation_id: t.rollbackSimulationId ?? '', fields: t.fields, rollback_of: t.success.idempotency_key };
      if (!t.rollbackSimulationId) return { ...base, status: 'refused', reason_code: 'ROLLBACK_UNAVAILABLE', idempotency_key: null, message: `${t.success.simulation_id} declares no rollback simulation` };
      const key = rollbackKey(t.success.idempotency_key);
      const missing = missingFields(catalog, t);
      if (missing.length) {
        const e = missingFieldsError(t, missing, runId, id);
        stops.push({ tier: 1, e });
        return { ...base, status: 'refused', reason_code: 'ROLLBACK_UNAVAILABLE', idempotency_key: key, message: e.message };
      }
      let p: Awaited<ReturnType<typeof predictStep>>;
      try {
        p = await predictStep(store, { ...requestFor(ctx, c, runId, t, opts, true), confirm });
      } catch (e) {
        if (!isKairError(e)) throw e;
        stops.push({ tier: 2, e });
        return { ...base, status: 'refused', reason_code: e.code, idempotency_key: key, message: e.message };
      }
      const v = p.verdict;
      if (v.dispatch) return { ...base, status: 'ok', reason_code: 'AEC_DISPATCH_OK', idempotency_key: key };
      if (v.replay) return { ...base, status: 'replay', reason_code: 'AEC_IDEMPOTENT_REPLAY', idempotency_key: key };
      const message = haltMessage(v.reason_code, p.packet, p.facts.idempotency, key, id).replaceAll(`kair resume ${id}`, `kair rollback ${runId}`);
      stops.push({ tier: 3, e: precheckRefusal({ reason_code: v.reason_code, message, details: { idempotency_key: key } }, t.success.step_id, runId, id) });
      if (v.reason_code === 'AEC_CONFIRM_REQUIRED') {
        const after = decideGates({ ...p.facts, confirmation: 'affirmative' });
        return { ...base, status: 'needs_confirmation', reason_code: v.reason_code, idempotency_key: key, message, after_confirmation: after.dispatch || after.replay ? 'AEC_DISPATCH_OK' : after.reason_code };
      }
      return { ...base, status: 'refused', reason_code: v.reason_code, idempotency_key: key, message };
    };
    for (const t of targets) steps.push(await predict(t));
    const doc: RollbackDryRun = { dry_run: true, contract_id: id, run_id: runId, steps };
    const first = stops.sort((a, b) => a.tier - b.tier)[0]?.e;
    if (first) {
      const e = kairError(first.code, `dry run: ${first.message}`, { dry_run: true, ...first.details });
      e.payload = { ...doc };
      throw e;
    }
    return doc;
  } finally {
    store.close();
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
  const c = await (await ctx.storage()).contracts.load(id);
  assertTransition(c, 'rewind');
  const runId = c.runs[c.runs.length - 1];
  return runId === undefined ? null : await rollbackCommand(ctx, runId, opts);
}
