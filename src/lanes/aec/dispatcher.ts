/**
 * The AEC single-step dispatcher (seed 001 Phase 1; SPEC §9.3–§9.6). One call is one cycle for
 * one plan step: Finder packet → the gates (domain/aec/gates.ts) → claim → SimulationExecutor →
 * outcome. It writes only the governed tables of ledger.ts, records every decision with the facts
 * it was made on (so `aec replay` can re-decide it), and never calls the executor unless the gates
 * said dispatch and the claim row is committed.
 */
import { canonicalHash } from '../../domain/canonical.js';
import type { ConfirmationParse } from '../../domain/aec/confirm.js';
import { CONFIRM_LEXICON, CONFIRM_LEXICON_VERSION, isConfirmLang, normalizeLang, parseConfirmation } from '../../domain/aec/confirm.js';
import type { CatalogEntry, FinderPacket, SimulationMatchPacket } from '../../domain/aec/finder.js';
import { catalogSnapshot, find, isValidPacket, rollbackPacket } from '../../domain/aec/finder.js';
import type { GateFacts, IdempotencyView, Verdict } from '../../domain/aec/gates.js';
import { correlationId, decideGates, decisionHash, earlierSuccess, hasEffects, idempotencyKey, idempotencyView, needsConfirmation, PAUSING_HALTS, rollbackKey } from '../../domain/aec/gates.js';
import { effectiveImpact } from '../../domain/aec/impact.js';
import type { ErrorCode } from '../../domain/errors.js';
import { kairError } from '../../domain/errors.js';
import { failpoint, stoppoint } from '../../store/failpoint.js';
import type { RowAnchor } from '../../store/sqlite/chain.js';
import { stepAnchors } from '../../store/sqlite/chain.js';
import type { Workspace } from '../../store/fs/workspace.js';
import type { ExecutionStore, SqlExecutor } from '../../store/port.js';
import { readOnly } from '../../store/port.js';
import { accessRepo } from './access.js';
import { catalogRepo } from './catalog.js';
import type { DispatchEnvelope } from './executor.js';
import { executeSimulation } from './executor.js';
import type { LedgerRow, NewLedgerRow, StepScope } from './ledger.js';
import { ledgerFact, ledgerRepo } from './ledger.js';

export interface StepRequest {
  tenant_id: string;
  contract_id: string;
  contract_version: number;
  run_id: string;
  step_id: string;
  actor: string;
  plan_sha256: string;
  utterance: string;
  fields: Record<string, string>;
  /** The step's language (default en): the Finder's and the confirmation's. */
  lang: string;
  /** The plan's `simulation.attempt`; without it the ledger counts this step's clarifications. */
  finder_attempt?: number;
  /** The run's unused `--confirm` answer, if any. */
  confirm: { token: string; lang?: string } | null;
  /** Asks on a terminal; returns the answer or null. Absent when not interactive. */
  ask?: (question: string) => string | null;
  retry_in_doubt: boolean;
  controls_granted: readonly string[];
  now: () => string;
  /** `--allow-repeat`: dispatch even if an earlier version of the contract succeeded with the same simulation and fields. */
  allow_repeat?: boolean;
  /**
   * A rollback (`kair rollback`): the packet is kair's own (ROLLBACK_REF) for this simulation
   * instead of the Finder's, the key is rollbackKey(of_key), and `step_id` is the rollback's
   * ledger step (rollbackStepId of the original).
   */
  rollback?: { of_key: string; simulation_id: string };
  /** Decide only: the verdict on the facts as they are now; nothing is written or run. */
  precheck?: boolean;
  /** Aborted on SIGINT/SIGTERM: a running command is killed and the step is left in doubt. */
  signal?: AbortSignal;
}

export interface StepOutcome {
  status: 'COMPLETED' | 'REPLAYED' | 'PAUSED' | 'FAILED' | 'REFUSED';
  reason_code: ErrorCode;
  message: string;
  simulation_id?: string;
  outcome?: unknown;
  idempotency_key: string;
  proof_refs: string[];
  question?: string;
  intake_id?: string;
  details: Record<string, unknown>;
  /** The run's --confirm answer was used up by this step. */
  confirmation_used: boolean;
  row_id: number;
  /**
   * Every ledger row of this step of this run as the step's last transaction left them (those of
   * a crashed earlier try included), for the history event to name; read in that transaction.
   * Absent for a precheck and for an interrupted step (no outcome transaction).
   */
  rows?: RowAnchor[];
}

/** What `decision:<hash>` holds: the request, the facts and the verdict (seed §17.2 replay refs). */
export interface DecisionRecord {
  request: {
    utterance: string;
    fields: Record<string, string>;
    lang: string;
    finder_attempt: number;
    run_id: string;
    actor: string;
    plan_sha256: string;
    retry_in_doubt: boolean;
    controls_granted: string[];
    allow_repeat?: boolean;
    /** The idempotency key of the dispatch a rollback undoes, and the rollback simulation. */
    rollback?: { of_key: string; simulation_id: string };
  };
  facts: GateFacts;
  verdict: Verdict;
  records: {
    goal_request: Record<string, unknown>;
    execution_plan: Record<string, unknown> | null;
    agent_step: Record<string, unknown> | null;
  };
}

const CLARIFY = /^SIM_FINDER_CLARIFY_/;

export async function dispatchStep(store: ExecutionStore, ws: Workspace, req: StepRequest): Promise<StepOutcome> {
  const r = await decideAndClaim(store, ws, req);
  return typeof r === 'function' ? r() : r;
}

/** A precheck (`req.precheck`) decides without writing or running anything (a caller may run it inside a locked history decision). */
export async function precheckStep(store: ExecutionStore, ws: Workspace, req: StepRequest): Promise<StepOutcome> {
  const r = await decideAndClaim(store, ws, { ...req, precheck: true });
  if (typeof r === 'function') throw new Error('internal: a precheck reached the executor');
  return r;
}

/**
 * Everything the gates look at for one step, read from SQLite and nothing written: the Finder's
 * packet, the idempotency view, access, the catalog, an earlier version's success. The
 * dispatcher and the dry run (`predictStep`) both decide on it, so a dry run cannot drift from
 * the real gates.
 */
export async function gatherStepFacts(sql: SqlExecutor, req: StepRequest) {
  const ledger = ledgerRepo(sql);
  const access = accessRepo(sql);
  const correlation_id = correlationId(req.contract_id, req.contract_version);
  const plan_id = `${correlation_id}/${req.step_id}`;
  const rowsBefore = await ledger.stepRows(req.tenant_id, correlation_id, req.step_id);
  const finder_attempt = req.finder_attempt ?? 1 + rowsBefore.filter((r) => r.event === 'HALTED' && CLARIFY.test(r.reason_code)).length;

  const entries = await catalogRepo(sql).catalogEntries();
  const packet: FinderPacket = req.rollback ? requireRollbackPacket(req.rollback.simulation_id, req, entries) : find({ utterance: req.utterance, fields: req.fields, lang: req.lang, attempt: finder_attempt }, entries);
  const policyVersion = await access.policyVersion();
  const match = packet.type === 'SimulationMatchPacket' ? packet : null;
  const sim = match?.simulation;
  const key = req.rollback
    ? rollbackKey(req.rollback.of_key)
    : idempotencyKey({
        correlation_id,
        step_id: req.step_id,
        simulation_id: match?.simulation_id ?? null,
        required_fields_fingerprint: match?.required_fields_fingerprint ?? null,
        policy_snapshot_version: policyVersion,
      });
  const impact = sim ? effectiveImpact(sim) : null;
  const confirmable = needsConfirmation(impact);
  const rollbackId = sim?.rollback_simulation_id ?? null;
  const idem: IdempotencyView | null = match ? idempotencyView(rowsBefore.map(ledgerFact), { simulation_id: match.simulation_id, fields_fingerprint: match.required_fields_fingerprint }) : null;
  // The catalog as read for the Finder, a moment ago in this same call: no second read.
  const inCatalog = (simId: string) => entries.find((e) => e.id === simId);
  const current = sim ? inCatalog(sim.id) : undefined;
  const accessNow = sim ? await access.decide(req.actor, sim.access_action) : null;

  const facts: GateFacts = {
    packet_type: packet.type,
    packet_reason_code: packet.reason_code,
    packet_valid: isValidPacket(packet),
    impact,
    policy_snapshot_ref: `policy:v${policyVersion}`,
    artifact_fingerprint_bundle_ref: null, // set below once stored
    rollback: { simulation_id: rollbackId, registered: rollbackId !== null && inCatalog(rollbackId) !== undefined },
    idempotency: idem,
    retry_in_doubt: req.retry_in_doubt,
    local_exec: { required: sim !== undefined && (sim.executor as { kind?: string }).kind === 'command', granted: req.controls_granted.includes('local:exec') },
    confirmation: null,
    access: accessNow?.decision ?? null,
    catalog: { registered: current !== undefined, status: current?.status ?? null },
  };
  if (match && !req.rollback && hasEffects(match.simulation)) {
    const earlier = earlierSuccess(await ledger.successes(req.tenant_id, req.contract_id), { correlation_id, simulation_id: match.simulation_id, fields_fingerprint: match.required_fields_fingerprint });
    facts.repeat = { earlier_run_id: earlier, allowed: req.allow_repeat === true };
  }
  const fingerprints = match ? fingerprintBundle(match, req.plan_sha256) : null;
  if (fingerprints) facts.artifact_fingerprint_bundle_ref = `fingerprints:${canonicalHash(fingerprints)}`;
  return { correlation_id, plan_id, rowsBefore, finder_attempt, entries, packet, policyVersion, match, sim, key, impact, confirmable, rollbackId, idem, accessNow, facts, fingerprints };
}

export interface StepPrediction {
  packet: FinderPacket;
  facts: GateFacts;
  verdict: Verdict;
  /** The run's --confirm answer would be used up by this step. */
  confirmation_used: boolean;
}

/** What `dispatchStep` would decide for this step now, with the answer given (no prompt); reads only. */
export async function predictStep(store: ExecutionStore, req: StepRequest): Promise<StepPrediction> {
  const g = await readOnly(store, (sql) => gatherStepFacts(sql, req));
  let used = false;
  if (g.sim && g.confirmable && req.confirm) {
    g.facts.confirmation = parseConfirmation(req.confirm.token, req.confirm.lang ?? req.lang).result;
    used = true;
  }
  const verdict = decideGates(g.facts);
  return { packet: g.packet, facts: g.facts, verdict, confirmation_used: used && verdict.reached.includes('confirmation') };
}

/**
 * Everything up to and including the claim (the facts read in one transaction; the claim, which
 * reads the step again, in its own, committed before the executor runs); what runs the executor
 * and records its outcome (one more transaction) is returned as a function, awaited by
 * dispatchStep. A confirmation prompt is asked between the two, with no transaction open.
 */
async function decideAndClaim(store: ExecutionStore, ws: Workspace, req: StepRequest): Promise<StepOutcome | (() => Promise<StepOutcome>)> {
  const now = req.now();
  const correlation = correlationId(req.contract_id, req.contract_version);
  const scope: StepScope = { tenant_id: req.tenant_id, correlation_id: correlation, run_id: req.run_id, step_id: req.step_id, actor: req.actor };
  const { correlation_id, plan_id, rowsBefore, finder_attempt, entries, packet, policyVersion, match, sim, key, confirmable, rollbackId, idem, accessNow, facts, fingerprints } = await readOnly(store, (sql) => gatherStepFacts(sql, req));

  // Confirmation: the run's --confirm answer, else a terminal prompt, asked only when every gate
  // before it has passed (no question for a step that would be refused anyway).
  let parse: (ConfirmationParse & { source: 'flag' | 'prompt' }) | null = null;
  if (sim && confirmable) {
    const lang = req.confirm?.lang ?? req.lang;
    if (req.confirm) parse = { ...parseConfirmation(req.confirm.token, lang), source: 'flag' };
    else if (req.ask && blockedAt(decideGates(facts)) === 'AEC_CONFIRM_REQUIRED') {
      const answer = req.ask(confirmQuestion(sim, req, lang));
      if (answer !== null) parse = { ...parseConfirmation(answer, lang), source: 'prompt' };
    }
    facts.confirmation = parse?.result ?? null;
  }
  let verdict = decideGates(facts);
  const confirmation_used = parse !== null && verdict.reached.includes('confirmation') && parse.source === 'flag';
  if (req.precheck) return precheckOutcome(verdict, packet, key, idem, req, facts);

  const base = {
    tenant_id: req.tenant_id,
    plan_id,
    correlation_id,
    contract_id: req.contract_id,
    run_id: req.run_id,
    step_id: req.step_id,
    simulation_id: match?.simulation_id ?? null,
    required_fields_fingerprint: match?.required_fields_fingerprint ?? null,
    idempotency_key: key,
    actor: req.actor,
    catalog_snapshot_ref: packet.catalog_snapshot_ref,
    policy_snapshot_ref: facts.policy_snapshot_ref,
    artifact_fingerprint_bundle_ref: facts.artifact_fingerprint_bundle_ref,
    rollback_plan_ref: null as string | null,
    created_at: now,
  };
  const request: DecisionRecord['request'] = {
    utterance: req.utterance,
    fields: req.fields,
    lang: req.lang,
    finder_attempt,
    run_id: req.run_id,
    actor: req.actor,
    plan_sha256: req.plan_sha256,
    retry_in_doubt: req.retry_in_doubt,
    controls_granted: [...req.controls_granted],
    ...(req.allow_repeat ? { allow_repeat: true } : {}),
    ...(req.rollback ? { rollback: req.rollback } : {}),
  };

  /** Refs, the confirmation and access rows the verdict reached, and the decision itself. */
  const persistDecision = async (sql: SqlExecutor, v: Verdict, f: GateFacts) => {
    const ledger = ledgerRepo(sql);
    await ledger.putNamedRef(packet.catalog_snapshot_ref, 'catalog', () => catalogSnapshot(entries), now);
    await ledger.putNamedRef(f.policy_snapshot_ref!, 'policy', async () => ({ version: policyVersion, rules: await accessRepo(sql).snapshot(policyVersion) }), now);
    const finder_packet_ref = await ledger.putRef('packet', packet, now);
    if (fingerprints) await ledger.putNamedRef(f.artifact_fingerprint_bundle_ref!, 'fingerprints', () => fingerprints, now);
    const rollback_plan_ref = confirmable && rollbackId ? await ledger.putRef('rollback', { simulation_id: rollbackId, for_simulation_id: sim!.id, correlation_id, step_id: req.step_id, required_fields: req.fields }, now) : null;
    let confirmation_id: number | null = null;
    if (parse && v.reached.includes('confirmation')) {
      confirmation_id = await ledger.appendConfirmation({
        ...scope,
        lexicon: CONFIRM_LEXICON_VERSION,
        lang: parse.lang,
        token: parse.token,
        normalized: parse.normalized,
        result: parse.result,
        source: parse.source,
        proof_ref: parse.proof_ref,
        created_at: now,
      });
    }
    let access_decision_id: number | null = null;
    if (accessNow && v.reached.includes('access')) {
      access_decision_id = await ledger.appendAccessDecision({
        ...scope,
        action: sim!.access_action,
        decision: accessNow.decision,
        rule: accessNow.rule ?? null,
        policy_snapshot_version: accessNow.policy_snapshot_version,
        checked_by: 'precheck',
        created_at: now,
      });
    }
    const record: DecisionRecord = { request, facts: f, verdict: v, records: seedRecords(req, packet, finder_packet_ref, f, key, correlation_id, plan_id, rollback_plan_ref, now) };
    const decision_ref = await ledger.putRef('decision', record, now);
    return { finder_packet_ref, rollback_plan_ref, confirmation_id, confirmation_proof_ref: confirmation_id === null ? null : parse!.proof_ref, access_decision_id, decision_ref };
  };

  const proofRefs = (row: Pick<NewLedgerRow, 'finder_packet_ref' | 'catalog_snapshot_ref' | 'policy_snapshot_ref' | 'artifact_fingerprint_bundle_ref' | 'access_decision_id' | 'confirmation_proof_ref' | 'rollback_plan_ref' | 'dispatch_envelope_ref' | 'decision_ref'>, extra: string[] = []) =>
    [
      row.finder_packet_ref,
      row.catalog_snapshot_ref,
      row.policy_snapshot_ref,
      row.artifact_fingerprint_bundle_ref,
      row.access_decision_id === null ? null : `access_decision:${row.access_decision_id}`,
      row.confirmation_proof_ref,
      row.rollback_plan_ref,
      row.dispatch_envelope_ref,
      row.decision_ref,
      ...extra,
    ].filter((r): r is string => typeof r === 'string' && r !== '' && !r.endsWith(':null'));

  const attemptOf = (v: Verdict, i: IdempotencyView | null): number =>
    v.dispatch || v.replay ? v.attempt : i === null ? 1 : i.kind === 'fresh' || i.kind === 'retry' ? i.next_attempt : i.attempt;

  /** Records a decision that dispatches nothing (a halt or a replay) in one transaction. */
  const recordNoDispatch = async (sql: SqlExecutor, v: Exclude<Verdict, { dispatch: true }>, f: GateFacts, i: IdempotencyView | null, rows: readonly LedgerRow[]): Promise<StepOutcome> => {
    const ledger = ledgerRepo(sql);
    const refs = await persistDecision(sql, v, f);
    let outcome: unknown = null;
    let intake_id: string | undefined;
    if (v.replay && i?.kind === 'succeeded') outcome = rows.find((r) => r.row_id === i.row_id)?.outcome ?? null;
    if (packet.type === 'MissingSimulationPacket') {
      intake_id = await ledger.addIntake({
        tenant_id: req.tenant_id,
        contract_id: req.contract_id,
        correlation_id,
        run_id: req.run_id,
        step_id: req.step_id,
        utterance: req.utterance,
        fields: req.fields,
        lang: req.lang,
        finder_packet_ref: refs.finder_packet_ref,
        actor: req.actor,
        created_at: now,
      });
    }
    const row: NewLedgerRow = {
      ...base,
      ...refs,
      attempt: attemptOf(v, i),
      event: v.replay ? 'REPLAYED' : 'HALTED',
      reason_code: v.reason_code,
      dispatch_envelope_ref: null,
      dispatch_decision_hash: decisionHash(v),
      outcome: v.replay ? outcome : { reason_code: v.reason_code, ...(intake_id ? { intake_id } : {}) },
      latency_us: null,
    };
    const row_id = await ledger.appendRow(row);
    const anchors = await stepAnchors(sql, req.run_id, req.step_id);
    return noDispatchOutcome(v, packet, row_id, key, proofRefs(row), outcome, intake_id, i, confirmation_used, req.contract_id, f, accessNow?.rule?.decision === 'deny' ? accessNow.rule : null, anchors);
  };

  if (!verdict.dispatch) return store.transaction((sql) => recordNoDispatch(sql, verdict as Exclude<Verdict, { dispatch: true }>, facts, idem, rowsBefore));

  // The SLO's dispatch latency runs from here (the claim: waiting for SQLite's write lock
  // included) to the outcome row. A confirmation prompt was answered before this point, so a
  // human's wait is never in it.
  const claimStart = process.hrtime.bigint();
  // Claim: re-read the step under SQLite's write lock; another process may have claimed or
  // finished it since the first read. Then the decision is made again on what is there now.
  const claim = await store.transaction(
    async (sql): Promise<{ kind: 'claimed'; row: NewLedgerRow; envelope: DispatchEnvelope; claim_row_id: number } | { kind: 'other'; outcome: StepOutcome }> => {
      const ledger = ledgerRepo(sql);
      const nowRows = await ledger.stepRows(req.tenant_id, correlation_id, req.step_id);
      const idemNow = idempotencyView(nowRows.map(ledgerFact), { simulation_id: match!.simulation_id, fields_fingerprint: match!.required_fields_fingerprint });
      if (nowRows.length !== rowsBefore.length && !sameView(idem!, idemNow)) {
        const f2: GateFacts = { ...facts, idempotency: idemNow, retry_in_doubt: false };
        verdict = decideGates(f2);
        if (!verdict.dispatch) return { kind: 'other', outcome: await recordNoDispatch(sql, verdict, f2, idemNow, nowRows) };
      }
      const v = verdict as Extract<Verdict, { dispatch: true }>;
      const refs = await persistDecision(sql, v, facts);
      const envelope: DispatchEnvelope = {
        correlation_id,
        tenant_id: req.tenant_id,
        user_id: req.actor,
        step_id: req.step_id,
        simulation_id: match!.simulation_id,
        required_fields: match!.required_fields,
        confirmation_proof_ref: refs.confirmation_proof_ref,
        access_action: sim!.access_action,
        idempotency_key: key,
        policy_snapshot_ref: facts.policy_snapshot_ref!,
        artifact_fingerprint_bundle_ref: facts.artifact_fingerprint_bundle_ref!,
        rollback_plan_ref: refs.rollback_plan_ref,
      };
      const dispatch_envelope_ref = await ledger.putRef('envelope', envelope, now);
      const row: NewLedgerRow = {
        ...base,
        ...refs,
        attempt: v.attempt,
        event: 'CLAIMED',
        reason_code: 'AEC_DISPATCH_OK',
        dispatch_envelope_ref,
        dispatch_decision_hash: decisionHash(v),
        outcome: null,
        latency_us: null,
      };
      const claim_row_id = await ledger.appendRow(row);
      return { kind: 'claimed', row, envelope, claim_row_id };
    },
  );
  if (claim.kind === 'other') return claim.outcome;
  failpoint('aec.claimed');
  // Lets a test stall a dispatch after its claim and see the stall counted in its latency.
  stoppoint('aec.claimed');

  return async () => {

    const res = await executeSimulation(claim.envelope, { store, ws, run_id: req.run_id, controls_granted: req.controls_granted, now: req.now, ...(req.signal ? { signal: req.signal } : {}) });
    failpoint('aec.executed');
    if (res.event === 'INTERRUPTED') {
      // No outcome row: the command was killed part-way, so the claim stays without an outcome,
      // which is what "in doubt" means to the next resume (AEC_IN_DOUBT, or --retry-in-doubt).
      return {
        status: 'PAUSED',
        reason_code: 'INTERRUPTED',
        message: `${res.message}; the step is in doubt`,
        simulation_id: match!.simulation_id,
        idempotency_key: key,
        proof_refs: proofRefs(claim.row),
        details: { step_id: req.step_id, simulation_id: match!.simulation_id, idempotency_key: key, attempt: claim.row.attempt, in_doubt: true },
        confirmation_used,
        row_id: claim.claim_row_id,
      };
    }
    const outcomeRow: NewLedgerRow = { ...claim.row, event: res.event, reason_code: res.reason_code, latency_us: null, created_at: req.now(), outcome: null };
    let proof_refs: string[] = [];
    let rows: RowAnchor[] = [];
    const row_id = await store.transaction(async (sql) => {
        const ledger = ledgerRepo(sql);
        outcomeRow.access_decision_id = await ledger.appendAccessDecision(res.access_decision);
        proof_refs = proofRefs(claim.row, [`access_decision:${outcomeRow.access_decision_id}`, ...res.proof_refs]);
        outcomeRow.outcome = {
          step_id: req.step_id,
          simulation_outcome: res.outcome,
          // The audit event this outcome answers: the claim row committed before the executor ran.
          audit_event_id: `agent_execution_ledger:${claim.claim_row_id}`,
          reason_code: res.reason_code,
          proof_refs,
          dispatch_decision_hash: claim.row.dispatch_decision_hash,
          next_step: null,
          user_visible_text: res.message,
        };
        outcomeRow.latency_us = Number((process.hrtime.bigint() - claimStart) / 1000n);
        const id = await ledger.appendRow(outcomeRow);
        rows = await stepAnchors(sql, req.run_id, req.step_id);
        return id;
      });
    const status: StepOutcome['status'] = res.event === 'SUCCEEDED' ? 'COMPLETED' : res.event === 'REJECTED' ? 'REFUSED' : 'FAILED';
    return {
      status,
      reason_code: res.reason_code,
      message: res.message,
      simulation_id: match!.simulation_id,
      outcome: outcomeRow.outcome,
      idempotency_key: key,
      proof_refs,
      details: { step_id: req.step_id, simulation_id: match!.simulation_id, idempotency_key: key, attempt: claim.row.attempt, ...(status === 'COMPLETED' ? {} : { outcome: res.outcome, ...(typeof res.outcome.reason === 'string' ? { reason: res.outcome.reason } : {}) }) },
      confirmation_used,
      row_id,
      rows,
    };
  };
}

function requireRollbackPacket(simulationId: string, req: StepRequest, entries: readonly CatalogEntry[]): SimulationMatchPacket {
  const p = rollbackPacket(simulationId, req.fields, req.lang, entries);
  if (!p) throw kairError('SIMULATION_NOT_REGISTERED', `the rollback simulation ${simulationId} of ${req.step_id} is not registered; register it (\`kair sim register\`) and roll back again`, { step_id: req.step_id, simulation_id: simulationId, hint: `kair sim register --file <${simulationId}.json>` });
  return p;
}

/** A pre-check's answer: what the gates would decide now; row_id -1, nothing was recorded. */
function precheckOutcome(v: Verdict, packet: FinderPacket, key: string, idem: IdempotencyView | null, req: StepRequest, f: GateFacts): StepOutcome {
  if (v.dispatch) return { status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK', message: 'would dispatch', idempotency_key: key, proof_refs: [], details: { step_id: req.step_id }, confirmation_used: false, row_id: -1 };
  return noDispatchOutcome(v, packet, -1, key, [], null, undefined, idem, false, req.contract_id, f);
}

function sameView(a: IdempotencyView, b: IdempotencyView): boolean {
  return canonicalHash(a) === canonicalHash(b);
}

function blockedAt(v: Verdict): string | null {
  return v.dispatch || v.replay ? null : v.reason_code;
}

function confirmQuestion(sim: CatalogEntry, req: StepRequest, lang: string): string {
  const fields = Object.entries(req.fields).map(([k, v]) => `${k}=${v}`).join(', ');
  const l = normalizeLang(lang);
  const lex = isConfirmLang(l) ? CONFIRM_LEXICON[l] : CONFIRM_LEXICON.en;
  return `Step ${req.step_id} runs "${sim.title}" (${sim.id}, ${sim.impact})${fields ? ` with ${fields}` : ''}. Confirm? [${lex.affirmative.join(' | ')} / ${lex.negative.join(' | ')}]`;
}

/** Seed 001 §4's records for this cycle: the goal request, the single-step plan and its step. */
function seedRecords(req: StepRequest, packet: FinderPacket, finder_packet_ref: string, f: GateFacts, key: string, correlation_id: string, plan_id: string, rollback_plan_ref: string | null, now: string): DecisionRecord['records'] {
  const goal_request = {
    correlation_id,
    tenant_id: req.tenant_id,
    user_id: req.actor,
    thread_id: req.run_id,
    raw_user_utterance: req.utterance,
    normalized_intent: packet.utterance.normalize('NFKC').toLowerCase().trim(),
    sim_finder_packet: finder_packet_ref,
    confirm_state: f.confirmation ?? (needsConfirmation(f.impact) ? 'pending' : 'not_required'),
    idempotency_key: key,
    attempt_counter: packet.attempt,
  };
  if (packet.type !== 'SimulationMatchPacket') return { goal_request, execution_plan: null, agent_step: null };
  const sim = packet.simulation;
  const confirm = needsConfirmation(f.impact);
  const agent_step = {
    step_id: req.step_id,
    simulation_id: packet.simulation_id,
    required_fields: sim.required_fields,
    required_fields_fingerprint: packet.required_fields_fingerprint,
    policy_snapshot_version: Number(f.policy_snapshot_ref?.slice('policy:v'.length)),
    confirmation_required: confirm,
    access_action: sim.access_action,
    idempotency_key_recipe: 'sha256(canonical({correlation_id, step_id, simulation_id, required_fields_fingerprint, policy_snapshot_version}))',
    retry_policy: 'new attempt only after FAILED, TIMED_OUT or REJECTED, or in doubt with --retry-in-doubt',
    rollback_plan_ref,
  };
  const execution_plan = {
    plan_id,
    finder_packet_ref,
    ordered_steps: [req.step_id],
    required_confirmations: confirm ? [req.step_id] : [],
    risk_level: f.impact,
    access_actions_required: [sim.access_action],
    policy_snapshot_ref: f.policy_snapshot_ref,
    created_at: now,
  };
  return { goal_request, execution_plan, agent_step };
}

function fingerprintBundle(m: SimulationMatchPacket, plan_sha256: string) {
  return {
    plan_sha256,
    simulation_id: m.simulation_id,
    simulation_sha256: canonicalHash(m.simulation),
    executor_sha256: canonicalHash(m.simulation.executor),
    required_fields_fingerprint: m.required_fields_fingerprint,
    catalog_snapshot_ref: m.catalog_snapshot_ref,
  };
}

function noDispatchOutcome(
  v: Exclude<Verdict, { dispatch: true }>,
  packet: FinderPacket,
  row_id: number,
  key: string,
  proof_refs: string[],
  outcome: unknown,
  intake_id: string | undefined,
  idem: IdempotencyView | null,
  confirmation_used: boolean,
  contractId: string,
  facts?: GateFacts,
  denyRule: { actor: string; action: string } | null = null,
  rows?: RowAnchor[],
): StepOutcome {
  const simulation_id = 'simulation_id' in packet && packet.simulation_id !== undefined ? packet.simulation_id : undefined;
  const common = { idempotency_key: key, proof_refs, row_id, confirmation_used, ...(simulation_id ? { simulation_id } : {}), ...(rows ? { rows } : {}) };
  if (v.replay) {
    return { ...common, status: 'REPLAYED', reason_code: 'AEC_IDEMPOTENT_REPLAY', message: 'already succeeded; the stored outcome is returned and nothing ran again', outcome, details: { idempotency_key: key } };
  }
  const code = v.reason_code;
  const question = packet.type === 'ClarifyPacket' ? packet.question : undefined;
  const message = question ?? haltMessage(code, packet, idem, key, contractId, denyRule);
  return {
    ...common,
    status: PAUSING_HALTS.includes(code) ? 'PAUSED' : 'REFUSED',
    reason_code: code,
    message,
    ...(question ? { question } : {}),
    ...(intake_id ? { intake_id } : {}),
    details: {
      ...(code === 'AEC_IN_DOUBT' && idem?.kind === 'in_doubt' ? { idempotency_key: idem.idempotency_key, attempt: idem.attempt } : { idempotency_key: key }),
      ...(intake_id ? { intake_id } : {}),
      ...(code === 'AEC_REPEAT_BLOCKED' ? { earlier_run_id: facts?.repeat?.earlier_run_id ?? null, hint: `kair resume ${contractId} --allow-repeat` } : {}),
    },
  };
}

export function haltMessage(code: ErrorCode, packet: FinderPacket, idem: IdempotencyView | null, key: string, contractId: string, denyRule: { actor: string; action: string } | null = null): string {
  const sim = packet.type === 'SimulationMatchPacket' ? `${packet.simulation.title} (${packet.simulation_id})` : '';
  switch (code) {
    case 'AEC_CONFIRM_REQUIRED':
      return `${sim} is ${packet.type === 'SimulationMatchPacket' ? effectiveImpact(packet.simulation) : 'impactful'} and needs confirmation: \`kair resume ${contractId} --confirm yes\` (or no)`;
    case 'AEC_CONFIRM_DECLINED':
      return `confirmation declined: ${sim} was not run`;
    case 'AEC_CONFIRM_AMBIGUOUS_REJECTED':
      return `the answer is not a ${CONFIRM_LEXICON_VERSION} affirmative or negative; ${sim} was not run (\`kair resume ${contractId} --confirm yes\`)`;
    case 'AEC_IN_DOUBT':
      return `a previous attempt of this step (key ${idem?.kind === 'in_doubt' ? idem.idempotency_key : key}) was claimed but its outcome is unknown; check its side effect, then \`kair resume ${contractId} --retry-in-doubt\` runs it again`;
    case 'AEC_IDEMPOTENCY_CONFLICT':
      return `this step already succeeded with a different simulation or fields in this contract version; rewind to run new values`;
    case 'AEC_REPEAT_BLOCKED':
      return `${sim} already succeeded with the same fields under an earlier version of ${contractId}; it was not run again. Roll that run back first, or \`kair resume ${contractId} --allow-repeat\` to do it a second time`;
    case 'CONTROLS_MISSING':
      return `${sim} runs a command and needs control local:exec granted on the contract`;
    case 'ACCESS_SCOPE_VIOLATION':
      // An explicit deny is someone's decision, not a missing rule: say which.
      if (denyRule) return `access denied: a deny rule forbids ${denyRule.actor} ${denyRule.action} (\`kair access list\`)`;
      return `access denied: no allow rule for this actor and ${packet.type === 'SimulationMatchPacket' ? packet.simulation.access_action : 'action'}`;
    case 'ACCESS_AP_REQUIRED':
      return `access requires an approval (AP) for ${packet.type === 'SimulationMatchPacket' ? packet.simulation.access_action : 'this action'}`;
    case 'AEC_ROLLBACK_REF_MISSING':
      return `${sim} is impactful but its rollback simulation is not registered`;
    case 'SIMULATION_NOT_REGISTERED':
      return `${sim} is not in the catalog`;
    case 'SIMULATION_NOT_ACTIVE':
      return `${sim} is not Active`;
    case 'SIM_FINDER_MISSING_SIMULATION':
      return `${'message' in packet ? packet.message : 'no simulation matches'} It was sent to dev intake.`;
    default:
      return 'message' in packet && typeof packet.message === 'string' ? packet.message : `halted: ${code}`;
  }
}
