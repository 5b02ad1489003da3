/**
 * The SQLite chains in `kair head`: the newest row of each chain (the AEC ledger per contract,
 * the other ledgers, the change log per tenant, aec_refs), named `<table>` or
 * `<table>:<key>/<key>`; a later `verify --since-head` asks whether that row still holds its hash.
 */
import type { Db } from '../store/sqlite/db.js';
import { CHAINS } from '../store/sqlite/chain.js';
import type { ChainSpec } from '../store/sqlite/chain.js';
import type { Ctx } from './context.js';
import { readDb } from './db.js';
import type { ChainHead, ChainSource } from './head.js';

const specs: ChainSpec[] = Object.values(CHAINS);

function order(spec: ChainSpec): string {
  return spec.integerId ? `"${spec.id}"` : 'rowid';
}

function headsOf(db: Db, spec: ChainSpec): ChainHead[] {
  const keys = spec.key.map((k) => `"${k}"`);
  const rows = db
    .prepare(
      `SELECT ${keys.length ? `${keys.join(', ')}, ` : ''}MAX(${order(spec)}) AS seq FROM ${spec.table}${keys.length ? ` GROUP BY ${keys.join(', ')}` : ''}`,
    )
    .all() as Record<string, unknown>[];
  const hashAt = db.prepare(`SELECT row_hash FROM ${spec.table} WHERE ${order(spec)} = ?`);
  const out: ChainHead[] = [];
  for (const r of rows) {
    if (r.seq === null || r.seq === undefined) continue;
    const h = hashAt.get(r.seq) as { row_hash: string | null } | undefined;
    if (!h?.row_hash) continue;
    const name = spec.key.length ? `${spec.table}:${spec.key.map((k) => String(r[k])).join('/')}` : spec.table;
    out.push({ name, seq: Number(r.seq), row_hash: h.row_hash });
  }
  return out;
}

export const sqliteChains: ChainSource = {
  heads: (ctx: Ctx) => readDb(ctx, () => [], (db) => specs.flatMap((s) => headsOf(db, s))),
  holds: (ctx: Ctx, head: ChainHead) =>
    readDb(
      ctx,
      () => false,
      (db) => {
        const spec = specs.find((s) => head.name === s.table || head.name.startsWith(`${s.table}:`));
        if (!spec) return false;
        const row = db.prepare(`SELECT row_hash FROM ${spec.table} WHERE ${order(spec)} = ?`).get(head.seq) as { row_hash: string | null } | undefined;
        return row?.row_hash === head.row_hash;
      },
    ),
};
