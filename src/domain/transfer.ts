/**
 * What `kair export` and `kair import` move between backends: a workspace as data, read from a
 * local `.kair/` or from a PostgreSQL tenant and written to either (docs/decisions/034).
 *
 * Everything hashed is moved as the exact text it was stored as (history lines, checkpoint
 * states, plans by sha, DPC, artifacts), so chains and recorded sha256s stay byte-identical.
 * What is derived (the snapshot, the index) is computed again from history, key-ordered, so that
 * export → import → export writes the same bytes whichever fold the source had kept.
 */
import { GENESIS_HASH, canonicalJson } from './canonical.js';
import type { Contract, HistoryEvent } from './contract.js';
import { applyEvent } from './contract.js';
import { kairError } from './errors.js';

/** One contract as stored: text, never re-serialised. */
export interface ContractDump {
  id: string;
  /** history.jsonl's complete lines, without their newlines, in seq order. */
  lines: string[];
  /** checkpoints/<through>.json */
  checkpoints: { through: number; text: string }[];
  /** plan/<sha>.json */
  plans: { sha: string; text: string }[];
  /** dpc/dpc_v1.json */
  dpc: string | null;
  /** Every other file of the contract, keyed by its workspace-relative path (plan_v1.json, PLAN.md, run artifacts, prompts). */
  artifacts: { path: string; text: string }[];
}

export type ExecRow = Record<string, unknown>;

export interface WorkspaceDump {
  workspaceId: string;
  /** config.json as the source has it, without the backend block (the export is a local workspace). */
  config: Record<string, unknown>;
  contracts: ContractDump[];
  /** Every execution table's rows, in the order the lanes read them (insertion order). */
  rows: Record<ExecTable, ExecRow[]>;
  /**
   * Workspace files outside the contracts that checks rely on, by path under `.kair/`: the saved
   * `kair head` preimages (`heads/<digest>.json`) and the default signers file (`allowed_signers`).
   * Local workspaces only: PostgreSQL has no table for them yet (decision 034).
   */
  extras?: { path: string; text: string }[];
}

/**
 * kair.db's execution tables, parents before children (foreign keys). `migrations` (each
 * database's own bookkeeping) is not moved: the target's migrations create the schema.
 */
export const EXEC_TABLES = [
  'execution_envelopes',
  'kimi_execution_runs',
  'simulations',
  'access_policy',
  'access_policy_versions',
  'aec_refs',
  'agent_execution_access_decision_ledger',
  'agent_execution_confirmation_ledger',
  'agent_execution_ledger',
  'agent_execution_current',
  'dev_intake',
  'change_log',
  'slo_waivers',
] as const;

export type ExecTable = (typeof EXEC_TABLES)[number];

/**
 * The read order of a local table when insertion order means nothing: the AEC projection is
 * rewritten with INSERT OR REPLACE (its rowids move) and read by key, so it is moved in key order,
 * the order a PostgreSQL read gives it too.
 */
export const KEY_ORDERED: Partial<Record<ExecTable, string>> = { agent_execution_current: 'correlation_id, step_id' };

/** Path segments kair itself writes: ids, run ids, `run-result.1.json`, `PLAN.md`, `prompt-<sha>.json`. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/**
 * An artifact key is a workspace-relative path under its contract's folder, made of plain
 * segments. A key from a database or a hand-made folder that is absolute, climbs with `..`, or
 * holds a backslash or a control character would write outside the target: refused.
 */
export function checkArtifactPath(path: string, contractId: string): void {
  const prefix = `.kair/contracts/${contractId}/`;
  const segs = path.startsWith(prefix) ? path.slice(prefix.length).split('/') : null;
  if (!segs || path.length > 1024 || segs.some((s) => !SEGMENT.test(s) || s === '.' || s === '..' || s.includes('..'))) {
    throw kairError('INTEGRITY_FAILED', `the artifact key ${JSON.stringify(path.slice(0, 80))} of contract ${contractId} is not a plain path under .kair/contracts/${contractId}/; nothing was written`, {
      contract_id: contractId,
      kind: 'artifact_mismatch',
      hint: `run \`kair verify\` on the source; remove or rename that artifact there`,
    });
  }
}

export interface FoldedDump {
  contract: Contract;
  /** contract.json as an export writes it: the fold of history, keys in canonical order. */
  snapshotText: string;
  events: HistoryEvent[];
}

/** A JSON value with every object's keys in canonical order (the same text whatever fold produced it). */
export function keyOrdered<T>(value: T): T {
  return JSON.parse(canonicalJson(value)) as T;
}

/** Folds a dump's history from the start (chain links checked), so derived files never depend on a source's checkpoint or lagging snapshot. */
export function foldDump(d: ContractDump): FoldedDump {
  const events: HistoryEvent[] = [];
  let c: Contract | null = null;
  let prev = GENESIS_HASH;
  for (const [i, line] of d.lines.entries()) {
    let e: HistoryEvent;
    try {
      e = JSON.parse(line) as HistoryEvent;
    } catch {
      throw broken(d.id, `history line ${i + 1} is not valid JSON`);
    }
    if (e.seq !== i + 1 || e.prev !== prev) throw broken(d.id, `history line ${i + 1} does not link to the one before it`);
    prev = e.hash;
    events.push(e);
    c = applyEvent(c, e);
  }
  if (!c) throw broken(d.id, 'history is empty');
  if (c.id !== d.id) throw broken(d.id, `history proposes ${JSON.stringify(c.id.slice(0, 80))}, not ${d.id}`);
  const ordered = keyOrdered(c);
  return { contract: c, events, snapshotText: JSON.stringify(ordered, null, 2) + '\n' };
}

function broken(id: string, message: string) {
  return kairError('INTEGRITY_FAILED', `${id}: ${message}; nothing was written`, { contract_id: id, kind: 'chain_broken', hint: `run \`kair verify ${id}\` on the source` });
}
