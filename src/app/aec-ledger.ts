/**
 * Use cases over the AEC ledgers (SPEC §5, §9.6): `aec ledger`, `aec rebuild [--check]`,
 * `aec replay`, `aec stats`, `intake list`. All but `aec rebuild` (without --check) are
 * read-only, and none creates a database that does not exist yet.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import type { Drift, IntakeRow, LedgerRow, LedgerStats } from '../lanes/aec/ledger.js';
import { ledgerRepo } from '../lanes/aec/ledger.js';
import type { ReplayedDecision } from '../lanes/aec/replay.js';
import { replayRun } from '../lanes/aec/replay.js';
import { assertContract } from '../store/fs/contracts.js';
import { paths } from '../store/fs/workspace.js';
import { CHAINS, checkChainTable } from '../store/sqlite/chain.js';
import type { SqlExecutor } from '../store/port.js';
import type { Ctx } from './context.js';
import { inExistingTransaction, readOnlyTransaction } from './db.js';

export function ledgerRows(ctx: Ctx, contractId: string): Promise<LedgerRow[]> {
  assertId(contractId);
  assertContract(ctx.ws, contractId);
  return readOnlyTransaction(ctx, () => [], (sql) => ledgerRepo(sql).rows({ contractId }));
}

export interface RebuildResult {
  check: boolean;
  rows: number;
  drift_count: number;
  drift: Drift[];
}

/** `--check` compares only (INTEGRITY_FAILED, exit 7, on drift); without it the projection is rebuilt. */
export function rebuild(ctx: Ctx, check: boolean): Promise<RebuildResult> {
  // One transaction (writing unless --check): the chains are checked on what is rebuilt from.
  return inExistingTransaction(
    ctx,
    () => ({ check, rows: 0, drift_count: 0, drift: [] }),
    async (sql) => {
      await refuseBrokenChains(sql);
      const repo = ledgerRepo(sql);
      if (!check) {
        const rows = await repo.rebuild(ctx.config.workspace_id);
        return { check, rows, drift_count: 0, drift: [] };
      }
      const d = await repo.drift();
      const result = { check, rows: (await repo.current()).length, drift_count: d.count, drift: d.drift };
      if (d.count > 0) {
        const e = kairError('INTEGRITY_FAILED', `agent_execution_current has drifted from the ledger in ${d.count} step(s); \`kair aec rebuild\` recomputes it`, { drift_count: d.count });
        e.payload = result;
        throw e;
      }
      return result;
    },
  );
}

/**
 * The projection is rebuilt only from a ledger whose chains hold: rebuilding from edited or
 * deleted rows would launder the tampering into agent_execution_current.
 */
async function refuseBrokenChains(sql: SqlExecutor): Promise<void> {
  const breaks = [];
  for (const spec of [CHAINS.agent_execution_ledger, CHAINS.agent_execution_access_decision_ledger, CHAINS.agent_execution_confirmation_ledger]) breaks.push(...(await checkChainTable(sql, spec)));
  if (breaks.length === 0) return;
  throw kairError('INTEGRITY_FAILED', `the AEC ledger's hash chain is broken (${breaks[0]!.message}${breaks.length > 1 ? `, and ${breaks.length - 1} more` : ''}); nothing was rebuilt — run \`kair verify\``, {
    chain_breaks: breaks.map((b) => ({ table: b.table, id: b.id, chain: b.chain })),
  });
}

export interface ReplayResult {
  run_id: string;
  decisions: ReplayedDecision[];
}

export async function replay(ctx: Ctx, runId: string): Promise<ReplayResult> {
  const m = /^(.+)-run-\d+$/.exec(runId);
  const contractId = m?.[1];
  const runExists = contractId !== undefined && existsSync(join(paths.runs(ctx.ws, contractId), runId));
  const decisions = await readOnlyTransaction(ctx, () => [], (sql) => replayRun(ledgerRepo(sql), runId));
  if (!runExists && decisions.length === 0) throw kairError('RUN_NOT_FOUND', `no run ${JSON.stringify(runId)} (run ids look like <contract>-run-<n>; see \`kair status <contract>\`)`, { run_id: runId });
  const bad = decisions.filter((d) => !d.same);
  if (bad.length > 0) {
    const e = kairError('AEC_REPLAY_MISMATCH', `${bad.length} of ${decisions.length} decision(s) of ${runId} do not replay the same: ${bad[0]!.problems[0]}`, {
      run_id: runId,
      mismatches: bad.map((d) => ({ row_id: d.row_id, step_id: d.step_id, problems: d.problems })),
    });
    e.payload = { run_id: runId, decisions };
    throw e;
  }
  return { run_id: runId, decisions };
}

export const EMPTY_STATS: LedgerStats = {
  rows: 0,
  dispatches: 0,
  succeeded: 0,
  failed: 0,
  timed_out: 0,
  rejected: 0,
  in_doubt: 0,
  replayed: 0,
  halted: 0,
  dispatch_latency_ms: { p50: null, p95: null, p99: null },
  execution_error_rate: 0,
  duplicate_side_effects: 0,
};

export function stats(ctx: Ctx, since?: string): Promise<LedgerStats> {
  return readOnlyTransaction(ctx, () => EMPTY_STATS, (sql) => ledgerRepo(sql).stats(since));
}

export function intake(ctx: Ctx): Promise<IntakeRow[]> {
  return readOnlyTransaction(ctx, () => [], (sql) => ledgerRepo(sql).listIntake());
}
