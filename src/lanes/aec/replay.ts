/**
 * `aec replay <run_id>` (SPEC §9.6, seed 001 §17.2): every dispatch/no-dispatch decision of a
 * run is made again from its persisted refs — the Finder re-run on the catalog snapshot, the
 * confirmation re-parsed from its ledger row, the access decision re-derived from the policy
 * snapshot, the idempotency view re-read from the ledger rows before it — and must come out the
 * same. Read-only.
 */
import { canonicalHash } from '../../domain/canonical.js';
import { parseConfirmation } from '../../domain/aec/confirm.js';
import type { CatalogEntry } from '../../domain/aec/finder.js';
import { find, isValidPacket, rollbackPacket } from '../../domain/aec/finder.js';
import { effectiveImpact } from '../../domain/aec/impact.js';
import type { GateFacts } from '../../domain/aec/gates.js';
import { decideGates, decisionHash, earlierSuccess, hasEffects, idempotencyView } from '../../domain/aec/gates.js';
import type { AccessRule } from './access.js';
import type { DecisionRecord } from './dispatcher.js';
import type { LedgerRepo, LedgerRow } from './ledger.js';
import { ledgerFact } from './ledger.js';

export interface ReplayedDecision {
  row_id: number;
  step_id: string;
  event: LedgerRow['event'];
  recorded: { dispatch: boolean; reason_code: string };
  replayed: { dispatch: boolean; reason_code: string } | null;
  same: boolean;
  problems: string[];
}

const DECISION_EVENTS: readonly LedgerRow['event'][] = ['HALTED', 'CLAIMED', 'REPLAYED'];

export async function replayRun(ledger: LedgerRepo, runId: string): Promise<ReplayedDecision[]> {
  const out: ReplayedDecision[] = [];
  for (const row of (await ledger.rows({ runId })).filter((r) => DECISION_EVENTS.includes(r.event))) out.push(await replayDecision(ledger, row));
  return out;
}

async function replayDecision(ledger: LedgerRepo, row: LedgerRow): Promise<ReplayedDecision> {
  const problems: string[] = [];
  const recorded = { dispatch: row.event === 'CLAIMED', reason_code: row.reason_code };
  const out = (replayed: ReplayedDecision['replayed']): ReplayedDecision => ({
    row_id: row.row_id,
    step_id: row.step_id,
    event: row.event,
    recorded,
    replayed,
    same: problems.length === 0,
    problems,
  });
  const record = await ledger.getRef<DecisionRecord>(row.decision_ref);
  if (!record) {
    problems.push(`decision ref ${row.decision_ref} is missing`);
    return out(null);
  }
  const catalog = await ledger.getRef<CatalogEntry[]>(row.catalog_snapshot_ref);
  if (!catalog) {
    problems.push(`catalog snapshot ${row.catalog_snapshot_ref} is missing`);
    return out(null);
  }
  if (canonicalHash(catalog) !== row.catalog_snapshot_ref.slice('catalog:'.length)) problems.push(`catalog snapshot ${row.catalog_snapshot_ref} does not match its hash`);

  const r = record.request;
  // A rollback's packet is kair's own, rebuilt from the same snapshot; a missing simulation shows as a packet mismatch.
  const packet = r.rollback ? rollbackPacket(r.rollback.simulation_id, r.fields, r.lang, catalog) ?? find({ utterance: r.utterance, fields: r.fields, lang: r.lang, attempt: r.finder_attempt }, catalog) : find({ utterance: r.utterance, fields: r.fields, lang: r.lang, attempt: r.finder_attempt }, catalog);
  if (`packet:${canonicalHash(packet)}` !== row.finder_packet_ref) problems.push(`the Finder no longer gives packet ${row.finder_packet_ref} for this request`);
  const match = packet.type === 'SimulationMatchPacket' ? packet : null;

  const present = async (ref: string | null) => (ref !== null && (await ledger.getRef(ref)) !== undefined ? ref : null);
  const before = match ? (await ledger.stepRows(row.tenant_id, row.correlation_id, row.step_id)).filter((x) => x.row_id < row.row_id) : [];

  let confirmation: GateFacts['confirmation'] = null;
  if (row.confirmation_id !== null) {
    const c = await ledger.getConfirmation(row.confirmation_id);
    if (!c) problems.push(`confirmation ${row.confirmation_id} is missing`);
    else {
      const again = parseConfirmation(c.token, c.lang);
      if (again.result !== c.result || again.proof_ref !== c.proof_ref) problems.push(`confirmation ${c.id} now parses as ${again.result}, recorded ${c.result}`);
      confirmation = again.result;
    }
  }

  let access: GateFacts['access'] = null;
  if (row.access_decision_id !== null) {
    const a = await ledger.getAccessDecision(row.access_decision_id);
    const policy = await ledger.getRef<{ version: number; rules: AccessRule[] }>(`policy:v${a?.policy_snapshot_version ?? -1}`);
    if (!a) problems.push(`access decision ${row.access_decision_id} is missing`);
    else if (!policy) problems.push(`policy snapshot policy:v${a.policy_snapshot_version} is missing`);
    else {
      access = policy.rules.find((x) => x.actor === a.actor && x.action === a.action)?.decision ?? 'deny';
      if (access !== a.decision) problems.push(`policy v${a.policy_snapshot_version} gives ${access} for ${a.actor} ${a.action}, recorded ${a.decision}`);
    }
  }

  const facts: GateFacts = {
    ...record.facts,
    packet_type: packet.type,
    packet_reason_code: packet.reason_code,
    packet_valid: isValidPacket(packet),
    // A decision recorded as `none` for a side-effecting executor was made before such executors
    // needed confirmation: it is re-decided under the rule it was made under.
    impact: match ? (record.facts.impact === 'none' ? match.simulation.impact : effectiveImpact(match.simulation)) : null,
    policy_snapshot_ref: await present(row.policy_snapshot_ref),
    artifact_fingerprint_bundle_ref: await present(row.artifact_fingerprint_bundle_ref),
    idempotency: match ? idempotencyView(before.map(ledgerFact), { simulation_id: match.simulation_id, fields_fingerprint: match.required_fields_fingerprint }) : null,
    confirmation,
    access,
  };
  // Decisions recorded before the repeat check existed keep its absence.
  if (record.facts.repeat !== undefined && match && !r.rollback && hasEffects(match.simulation)) {
    const earlier = (await ledger.successes(row.tenant_id, row.contract_id)).filter((x) => x.row_id < row.row_id);
    facts.repeat = { earlier_run_id: earlierSuccess(earlier, { correlation_id: row.correlation_id, simulation_id: match.simulation_id, fields_fingerprint: match.required_fields_fingerprint }), allowed: r.allow_repeat === true };
  }
  const verdict = decideGates(facts);
  const replayed = { dispatch: verdict.dispatch, reason_code: verdict.dispatch ? 'AEC_DISPATCH_OK' : verdict.reason_code };
  if (decisionHash(verdict) !== row.dispatch_decision_hash) {
    problems.push(`re-deciding gives ${replayed.dispatch ? 'dispatch' : replayed.reason_code}, recorded ${recorded.dispatch ? 'dispatch' : recorded.reason_code}`);
  }
  return out(replayed);
}
