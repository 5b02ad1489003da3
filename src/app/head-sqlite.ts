/**
 * The execution chains in `kair head`: the newest row of each chain (the AEC ledger per contract,
 * the other ledgers, the change log per tenant, aec_refs), named `<table>` or
 * `<table>:<key>/<key>`; a later `verify --since-head` asks whether that row still holds its hash.
 */
import type { SqlExecutor } from '../store/port.js';
import { CHAINS } from '../store/sqlite/chain.js';
import type { ChainSpec } from '../store/sqlite/chain.js';
import type { Ctx } from './context.js';
import { readOnlyTransaction } from './db.js';
import type { ChainHead, ChainSource } from './head.js';

const specs: ChainSpec[] = Object.values(CHAINS);

function order(spec: ChainSpec): string {
  return spec.integerId ? `"${spec.id}"` : 'rowid';
}

/**
 * Dialect branch: PostgreSQL's aec_refs has no rowid (SQLite's implicit insertion order), so a
 * chain's head there is the row no other row names as its predecessor, and its `seq` the
 * chain's row count; whether the chain still holds it is whether a row still has that hash.
 */
const linked = (sql: SqlExecutor, spec: ChainSpec) => sql.dialect === 'postgres' && spec.table === 'aec_refs';

async function headsOf(sql: SqlExecutor, spec: ChainSpec): Promise<ChainHead[]> {
  const keys = spec.key.map((k) => `"${k}"`);
  const name = (r: Record<string, unknown>) => (spec.key.length ? `${spec.table}:${spec.key.map((k) => String(r[k])).join('/')}` : spec.table);
  if (linked(sql, spec)) {
    const rows = await sql.all(`SELECT a.row_hash, (SELECT count(*) FROM ${spec.table}) AS seq FROM ${spec.table} a WHERE NOT EXISTS (SELECT 1 FROM ${spec.table} b WHERE b.prev_hash = a.row_hash)`);
    return rows.filter((r) => typeof r.row_hash === 'string').map((r) => ({ name: name(r), seq: Number(r.seq), row_hash: r.row_hash as string }));
  }
  const rows = await sql.all(`SELECT ${keys.length ? `${keys.join(', ')}, ` : ''}MAX(${order(spec)}) AS seq FROM ${spec.table}${keys.length ? ` GROUP BY ${keys.join(', ')}` : ''}`);
  const out: ChainHead[] = [];
  for (const r of rows) {
    if (r.seq === null || r.seq === undefined) continue;
    const h = await sql.get<{ row_hash: string | null }>(`SELECT row_hash FROM ${spec.table} WHERE ${order(spec)} = ?`, [r.seq]);
    if (!h?.row_hash) continue;
    out.push({ name: name(r), seq: Number(r.seq), row_hash: h.row_hash });
  }
  return out;
}

export const sqliteChains: ChainSource = {
  heads: (ctx: Ctx) =>
    readOnlyTransaction(ctx, () => [], async (sql) => {
      const out: ChainHead[] = [];
      for (const s of specs) out.push(...(await headsOf(sql, s)));
      return out;
    }),
  holds: (ctx: Ctx, head: ChainHead) =>
    readOnlyTransaction(
      ctx,
      () => false,
      async (sql) => {
        const spec = specs.find((s) => head.name === s.table || head.name.startsWith(`${s.table}:`));
        if (!spec) return false;
        if (linked(sql, spec)) return (await sql.get(`SELECT 1 AS one FROM ${spec.table} WHERE row_hash = ?`, [head.row_hash])) !== undefined;
        const row = await sql.get<{ row_hash: string | null }>(`SELECT row_hash FROM ${spec.table} WHERE ${order(spec)} = ?`, [head.seq]);
        return row?.row_hash === head.row_hash;
      },
    ),
};
