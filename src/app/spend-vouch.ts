/**
 * The per-contract Kimi spend cap sums the contract's COMPLETED `kimi_execution_runs` costs. A
 * cost lowered (or a row deleted) behind kair's back would let a contract spend past its cap, so
 * before a Kimi-eligible run the rows history names are held to their anchors: a row named by an
 * event must still exist with the hash of its latest naming, else the run is refused
 * (`INTEGRITY_FAILED`, exit 7) before anything is written or spent. Rows no event names (a run
 * killed between its SQLite commit and its history append) still count: they can only add spend.
 */
import { readFileSync } from 'node:fs';
import { kairError } from '../domain/errors.js';
import { paths } from '../store/fs/workspace.js';
import type { RowAnchor } from '../store/sqlite/chain.js';
import { rowSha } from '../store/sqlite/chain.js';
import type { SqlExecutor } from '../store/port.js';
import type { Ctx } from './context.js';

const TABLES = { execution_envelopes: 'id', kimi_execution_runs: 'id' } as const;

/** The latest anchor of each envelope and Kimi run row this contract's history names. */
function kimiAnchors(historyFile: string): Map<string, RowAnchor & { seq: number }> {
  const out = new Map<string, RowAnchor & { seq: number }>();
  let text: string;
  try {
    text = readFileSync(historyFile, 'utf8');
  } catch {
    return out;
  }
  // Only lines that can name these rows are parsed; a torn last line was never acknowledged.
  for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
    if (!line.includes('"kimi_execution_runs"') && !line.includes('"execution_envelopes"')) continue;
    let e: { seq?: number; data?: { rows?: unknown } };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue;
    }
    if (!Array.isArray(e.data?.rows)) continue;
    for (const a of e.data.rows as RowAnchor[]) {
      if (a && Object.hasOwn(TABLES, a.table) && typeof a.sha256 === 'string') out.set(`${a.table}\u0000${String(a.id)}`, { ...a, seq: e.seq ?? 0 });
    }
  }
  return out;
}

/** `runs`: the contract's run count from history (its first run has nothing to vouch for and reads no history). */
export async function assertSpendVouched(ctx: Ctx, contractId: string, runs: number, sql: SqlExecutor): Promise<void> {
  // A first run costs one indexed query. Rows all deleted are still caught: history records the runs.
  const any = await sql.get('SELECT 1 AS one FROM execution_envelopes WHERE contract_id = ? LIMIT 1', [contractId]);
  if (!any && runs === 0) return;
  const anchors = kimiAnchors(paths.history(ctx.ws, contractId));
  for (const a of anchors.values()) {
    const table = a.table as keyof typeof TABLES;
    const row = await sql.get(`SELECT * FROM ${table} WHERE id = ?`, [a.id]);
    const what = `${a.table} row ${JSON.stringify(a.id)}`;
    const why = !row ? `${what}, named by event ${a.seq}, is missing from kair.db` : rowSha(row, { dialect: sql.dialect, table }) !== a.sha256 ? `${what} differs from what event ${a.seq} recorded` : null;
    if (why !== null) {
      throw kairError('INTEGRITY_FAILED', `the Kimi spend of ${contractId} cannot be trusted: ${why}; nothing was run or spent — see \`kair verify\``, { contract_id: contractId, table: a.table, id: a.id });
    }
  }
}
