import { canonicalHash, canonicalJson, sha256Hex } from '../canonical.js';
import { kairError } from '../errors.js';

/** Deterministic Simulation Finder (SPEC §9.2, §14 "AEC details"): one utterance in, exactly one packet out. */

export type SimulationStatus = 'Draft' | 'Active' | 'Deprecated' | 'Disabled';
export type SimulationImpact = 'none' | 'side_effecting' | 'impactful' | 'irreversible';

export type CatalogEntry = {
  id: string;
  title: string;
  examples: string[];
  required_fields: string[];
  impact: SimulationImpact;
  access_action: string;
  rollback_simulation_id?: string;
  status: SimulationStatus;
  executor: unknown;
};

export type FinderInput = {
  utterance: string;
  fields: Record<string, string>;
  lang?: string;
  /** Counts from 1 (default 1); any Clarify at attempt ≥ 3 becomes a Refuse. */
  attempt?: number;
};

export type FinderCandidate = { simulation_id: string; score_bp: number; status: SimulationStatus };

export type ClarifyReasonCode =
  | 'SIM_FINDER_CLARIFY_AMBIGUOUS'
  | 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE'
  | 'SIM_FINDER_CLARIFY_MISSING_FIELD';
export type RefuseReasonCode =
  | 'SIM_FINDER_SIMULATION_INACTIVE'
  | 'SIM_FINDER_REFUSE_POLICY_BLOCKED'
  | 'SIM_FINDER_REFUSE_AMBIGUOUS';

type PacketBase = {
  utterance: string;
  lang: string;
  attempt: number;
  catalog_snapshot_ref: string;
  candidates: FinderCandidate[];
  packet_hash: string;
};

export type SimulationMatchPacket = PacketBase & {
  type: 'SimulationMatchPacket';
  /** ROLLBACK_REF: built by kair for `kair rollback` from a recorded rollback reference, not found. */
  reason_code: 'SIM_FINDER_MATCH_OK' | 'ROLLBACK_REF';
  simulation_id: string;
  score_bp: number;
  required_fields: Record<string, string>;
  required_fields_fingerprint: string;
  simulation: CatalogEntry;
};

export type ClarifyPacket = PacketBase & {
  type: 'ClarifyPacket';
  reason_code: ClarifyReasonCode;
  question: string;
  simulation_id?: string;
  score_bp: number;
  missing_field?: string;
};

export type RefusePacket = PacketBase & {
  type: 'RefusePacket';
  reason_code: RefuseReasonCode;
  simulation_id?: string;
  score_bp?: number;
  message: string;
  /** Set when an escalated Clarify produced this refusal. */
  escalated_from?: ClarifyReasonCode;
};

export type MissingSimulationPacket = PacketBase & {
  type: 'MissingSimulationPacket';
  reason_code: 'SIM_FINDER_MISSING_SIMULATION';
  score_bp: number;
  message: string;
};

export type FinderPacket = SimulationMatchPacket | ClarifyPacket | RefusePacket | MissingSimulationPacket;

type Body<P> = P extends FinderPacket ? Omit<P, keyof PacketBase> : never;

export const MATCH_THRESHOLD_BP = 7000;
export const HIGH_CONFIDENCE_BP = 9000;
export const AMBIGUITY_MARGIN_BP = 800;
export const MAX_CLARIFY_ATTEMPTS = 2;
const AUDIT_CANDIDATES = 3;

export function normalizeTokens(text: string): string[] {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((t) => t !== '');
}

function jaccardBp(u: ReadonlySet<string>, e: ReadonlySet<string>): number {
  let inter = 0;
  for (const t of u) if (e.has(t)) inter++;
  const union = u.size + e.size - inter;
  return union === 0 ? 0 : Math.floor((10000 * inter) / union);
}

export function scoreExample(uTokens: readonly string[], exampleText: string): number {
  return jaccardBp(new Set(uTokens), new Set(normalizeTokens(exampleText)));
}

export function scoreSimulation(uTokens: readonly string[], entry: CatalogEntry): number {
  return entry.examples.reduce((best, ex) => Math.max(best, scoreExample(uTokens, ex)), 0);
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Exactly the fields the Finder reads, from anything that has them (a catalog row, a snapshot). */
export function toCatalogEntry(s: CatalogEntry): CatalogEntry {
  return {
    id: s.id,
    title: s.title,
    examples: s.examples,
    required_fields: s.required_fields,
    impact: s.impact,
    access_action: s.access_action,
    ...(s.rollback_simulation_id === undefined ? {} : { rollback_simulation_id: s.rollback_simulation_id }),
    status: s.status,
    executor: s.executor,
  };
}

/** The catalog as the Finder saw it, in id order: what `catalog_snapshot_ref` names and a replay re-reads. */
export function catalogSnapshot(catalog: readonly CatalogEntry[]): CatalogEntry[] {
  return [...catalog].sort((a, b) => byId(a.id, b.id)).map(toCatalogEntry);
}

export function catalogSnapshotRef(catalog: readonly CatalogEntry[]): string {
  return 'catalog:' + canonicalHash(catalogSnapshot(catalog));
}

export function fieldsFingerprint(fields: Record<string, string>): string {
  return sha256Hex(canonicalJson(fields));
}

function clarifyOrEscalate(attempt: number, body: Body<ClarifyPacket>): Body<ClarifyPacket> | Body<RefusePacket> {
  if (attempt <= MAX_CLARIFY_ATTEMPTS) return body;
  return {
    type: 'RefusePacket',
    reason_code: 'SIM_FINDER_REFUSE_AMBIGUOUS',
    ...(body.simulation_id === undefined ? {} : { simulation_id: body.simulation_id }),
    score_bp: body.score_bp,
    message: body.question,
    escalated_from: body.reason_code,
  };
}

export function find(input: FinderInput, catalog: readonly CatalogEntry[]): FinderPacket {
  const attempt = input.attempt ?? 1;
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    throw kairError('USAGE_ERROR', `attempt must be an integer >= 1, got ${String(attempt)}`);
  }
  const uTokens = normalizeTokens(input.utterance);
  const ranked = catalog
    .map((entry) => ({ entry, score: scoreSimulation(uTokens, entry) }))
    .sort((a, b) => b.score - a.score || byId(a.entry.id, b.entry.id));

  const base: Omit<PacketBase, 'packet_hash'> = {
    utterance: input.utterance,
    lang: (input.lang ?? 'en').trim().toLowerCase() || 'en',
    attempt,
    catalog_snapshot_ref: catalogSnapshotRef(catalog),
    candidates: ranked.slice(0, AUDIT_CANDIDATES).map(({ entry, score }) => ({
      simulation_id: entry.id,
      score_bp: score,
      status: entry.status,
    })),
  };
  const body = decide(input, attempt, ranked);
  const unhashed = { ...body, ...base };
  return { ...unhashed, packet_hash: canonicalHash(unhashed) } as FinderPacket;
}

/**
 * The packet of a rollback: no utterance is searched, the simulation is the one the original
 * step's rollback reference names, taken from the same catalog the gates read; undefined when the
 * catalog does not have it.
 */
export function rollbackPacket(simulationId: string, fields: Record<string, string>, lang: string, catalog: readonly CatalogEntry[]): SimulationMatchPacket | undefined {
  const entry = catalog.find((e) => e.id === simulationId);
  if (!entry) return undefined;
  const unhashed = {
    type: 'SimulationMatchPacket' as const,
    reason_code: 'ROLLBACK_REF' as const,
    simulation_id: entry.id,
    score_bp: 10000,
    required_fields: fields,
    required_fields_fingerprint: fieldsFingerprint(fields),
    simulation: toCatalogEntry(entry),
    utterance: `rollback ${entry.id}`,
    lang,
    attempt: 1,
    catalog_snapshot_ref: catalogSnapshotRef(catalog),
    candidates: [{ simulation_id: entry.id, score_bp: 10000, status: entry.status }],
  };
  return { ...unhashed, packet_hash: canonicalHash(unhashed) };
}

function decide(
  input: FinderInput,
  attempt: number,
  ranked: ReadonlyArray<{ entry: CatalogEntry; score: number }>,
): Body<FinderPacket> {
  const first = ranked[0];
  if (first === undefined || first.score < MATCH_THRESHOLD_BP) {
    return {
      type: 'MissingSimulationPacket',
      reason_code: 'SIM_FINDER_MISSING_SIMULATION',
      score_bp: first?.score ?? 0,
      message: `No simulation matches "${input.utterance}".`,
    };
  }
  const { entry: top, score } = first;
  const label = `"${top.title}" (${top.id})`;

  if (top.status !== 'Active') {
    return {
      type: 'RefusePacket',
      reason_code: top.status === 'Draft' ? 'SIM_FINDER_SIMULATION_INACTIVE' : 'SIM_FINDER_REFUSE_POLICY_BLOCKED',
      simulation_id: top.id,
      score_bp: score,
      message:
        top.status === 'Draft'
          ? `Simulation ${label} is not active (Draft).`
          : `Simulation ${label} is ${top.status} and may not be used.`,
    };
  }

  // "Second" is the best other simulation whatever its status (SPEC §14).
  const second = ranked[1];
  if (second !== undefined && second.score >= score - AMBIGUITY_MARGIN_BP) {
    return clarifyOrEscalate(attempt, {
      type: 'ClarifyPacket',
      reason_code: 'SIM_FINDER_CLARIFY_AMBIGUOUS',
      question: `Did you mean ${label} or "${second.entry.title}" (${second.entry.id})?`,
      score_bp: score,
    });
  }

  if (score < HIGH_CONFIDENCE_BP) {
    return clarifyOrEscalate(attempt, {
      type: 'ClarifyPacket',
      reason_code: 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE',
      question: `Did you mean ${label}?`,
      simulation_id: top.id,
      score_bp: score,
    });
  }

  const missing = top.required_fields.find((f) => !Object.hasOwn(input.fields, f) || (input.fields[f] ?? '') === '');
  if (missing !== undefined) {
    return clarifyOrEscalate(attempt, {
      type: 'ClarifyPacket',
      reason_code: 'SIM_FINDER_CLARIFY_MISSING_FIELD',
      question: `What is the ${missing} for "${top.title}"?`,
      simulation_id: top.id,
      score_bp: score,
      missing_field: missing,
    });
  }

  return {
    type: 'SimulationMatchPacket',
    reason_code: 'SIM_FINDER_MATCH_OK',
    simulation_id: top.id,
    score_bp: score,
    required_fields: input.fields,
    required_fields_fingerprint: fieldsFingerprint(input.fields),
    simulation: top,
  };
}

const PACKET_REASONS: Record<FinderPacket['type'], readonly string[]> = {
  SimulationMatchPacket: ['SIM_FINDER_MATCH_OK', 'ROLLBACK_REF'],
  ClarifyPacket: ['SIM_FINDER_CLARIFY_AMBIGUOUS', 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE', 'SIM_FINDER_CLARIFY_MISSING_FIELD'],
  RefusePacket: ['SIM_FINDER_SIMULATION_INACTIVE', 'SIM_FINDER_REFUSE_POLICY_BLOCKED', 'SIM_FINDER_REFUSE_AMBIGUOUS'],
  MissingSimulationPacket: ['SIM_FINDER_MISSING_SIMULATION'],
};

/**
 * The dispatcher's first gate (AEC_PACKET_INVALID): a packet of a known type with a reason of
 * that type, unaltered since the Finder hashed it, and a match that carries its proof fields and
 * names the Finder's own top-1.
 */
export function isValidPacket(p: unknown): p is FinderPacket {
  if (typeof p !== 'object' || p === null) return false;
  const packet = p as Partial<FinderPacket> & Record<string, unknown>;
  const reasons = typeof packet.type === 'string' ? PACKET_REASONS[packet.type as FinderPacket['type']] : undefined;
  if (!reasons || !reasons.includes(String(packet.reason_code))) return false;
  if (typeof packet.catalog_snapshot_ref !== 'string' || !packet.catalog_snapshot_ref.startsWith('catalog:')) return false;
  const { packet_hash, ...unhashed } = packet;
  if (typeof packet_hash !== 'string' || canonicalHash(unhashed) !== packet_hash) return false;
  if (packet.type === 'SimulationMatchPacket') {
    const m = packet as Partial<SimulationMatchPacket>;
    if (typeof m.simulation_id !== 'string' || m.simulation?.id !== m.simulation_id) return false;
    if (!m.required_fields || m.required_fields_fingerprint !== fieldsFingerprint(m.required_fields)) return false;
    if (m.candidates?.[0]?.simulation_id !== m.simulation_id) return false;
  }
  return true;
}
