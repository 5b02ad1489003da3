/**
 * `verify` and `kair head` on PostgreSQL, execution side (decision 035): what src/app/verify-db.ts
 * and src/app/head-sqlite.ts check and compute on kair.db, for one tenant of a shared schema.
 *
 * - Triggers: every trigger the migrations create on the execution tables is present, enabled,
 *   on its table and calling its function, and every kair function is the one the migrations
 *   wrote (a trigger "replaced by a harmless one" is caught as on SQLite) → `trigger_missing`.
 *   A superuser can disable a trigger (`ALTER TABLE … DISABLE TRIGGER`) or edit rows with
 *   `session_replication_role = replica`: what such an edit leaves is caught by the chains and
 *   the anchors below, and a trigger left disabled is reported.
 * - Chains: each chain of CHAINS (the AEC ledger per (tenant, contract), the other ledgers, the
 *   change log, dev intake, aec_refs, policy versions per tenant) walked in id order: the first
 *   broken link or edited row of each chain → `ledger_chain_broken`.
 * - Anchors: every row history names (`data.rows`) exists with the hash of its latest naming →
 *   `row_missing` / `row_mismatch` (an envelope or Kimi run is not chained: this is what catches
 *   an edit of one).
 * - Heads: the newest row of each chain, `{name, seq, row_hash}` named as head-sqlite.ts names
 *   them, for the `kair head` preimage; `holds` answers `verify --since-head`.
 *
 * Rows are read through the execution store, so they are the tenant's rows exactly as the local
 * table returns them (no PostgreSQL-only columns) and hash as they do on SQLite.
 */
import { GENESIS_HASH, sha256Hex } from '../../domain/canonical.js';
import { canonicalJson } from '../../domain/canonical.js';
import type { ExecutionStore, SqlExecutor } from '../port.js';
import { ANCHORED_TABLES, CHAINS } from '../sqlite/chain.js';
import type { ChainSpec } from '../sqlite/chain.js';
import type { PgClient } from './connect.js';
import { PG_MIGRATIONS } from './migrations.js';
import type { PgExecutionStore } from './sql-executor.js';

export interface ExecFinding {
  contract_id?: string;
  kind: string;
  message: string;
}

/** A chain head as `kair head` records it (src/app/head.ts ChainHead). */
export interface ExecChainHead {
  name: string;
  seq: number;
  row_hash: string;
}

const specs: ChainSpec[] = Object.values(CHAINS);

// The canonical row JSON of chain.ts (RFC 8785 over the row without prev_hash/row_hash). Written
// out here rather than imported so that this module needs nothing but the chain specs from the
// SQLite side: a row hash is defined by the data, not by which engine computed it.
const rowJson = (row: Record<string, unknown>): string => {
  const { prev_hash: _p, row_hash: _h, ...rest } = row;
  return canonicalJson(rest);
};

interface ExpectedTrigger {
  name: string;
  table: string;
  fn: string;
}

let expected: { triggers: ExpectedTrigger[]; functions: Map<string, string> } | undefined;

/** The triggers and functions the migrations create (learnt from their SQL, as verify-db learns SQLite's from a fresh schema). */
export function expectedExecutionSchema(): { triggers: ExpectedTrigger[]; functions: Map<string, string> } {
  if (expected) return expected;
  const triggers: ExpectedTrigger[] = [];
  const functions = new Map<string, string>();
  for (const m of PG_MIGRATIONS) {
    for (const f of m.sql.matchAll(/CREATE FUNCTION (\w+)\([^)]*\)[^$]*?\$\$([\s\S]*?)\$\$/g)) functions.set(f[1]!, f[2]!);
    // The contract side's triggers (migration 2) are the event store's to check.
    if (m.id < 3) continue;
    for (const t of m.sql.matchAll(/CREATE TRIGGER (\w+) BEFORE \w+ ON (\w+) FOR EACH \w+ EXECUTE FUNCTION (\w+)\(\)/g)) triggers.push({ name: t[1]!, table: t[2]!, fn: t[3]! });
  }
  return (expected = { triggers, functions });
}

/** Triggers of the execution tables: present, enabled, on their table, calling an unchanged function. */
export async function checkExecutionTriggers(client: PgClient, schema: string): Promise<ExecFinding[]> {
  const { triggers, functions } = expectedExecutionSchema();
  const have = await client.query<{ name: string; table: string; enabled: string; fn: string; fn_schema: string }>(
    `SELECT t.tgname AS name, c.relname AS table, t.tgenabled AS enabled, p.proname AS fn, pn.nspname AS fn_schema
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
      WHERE n.nspname = $1 AND NOT t.tgisinternal`,
    [schema],
  );
  const byName = new Map(have.rows.map((r) => [r.name, r]));
  const out: ExecFinding[] = [];
  const problem = (message: string) => out.push({ kind: 'trigger_missing', message });
  for (const e of triggers) {
    const t = byName.get(e.name);
    if (!t) problem(`the PostgreSQL trigger ${e.name} on ${e.table} is missing: rows it guards could be changed without a trace`);
    // 'D' = disabled; 'R' fires only under session_replication_role = replica: not in normal sessions.
    else if (t.enabled === 'D' || t.enabled === 'R') problem(`the PostgreSQL trigger ${e.name} on ${e.table} is disabled`);
    else if (t.table !== e.table || t.fn !== e.fn || t.fn_schema !== schema) problem(`the PostgreSQL trigger ${e.name} is not the one kair created (it runs ${t.fn_schema}.${t.fn} on ${t.table})`);
  }
  const used = new Set(triggers.map((t) => t.fn));
  const procs = await client.query<{ name: string; src: string }>(
    'SELECT p.proname AS name, p.prosrc AS src FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1',
    [schema],
  );
  const src = new Map(procs.rows.map((r) => [r.name, r.src]));
  for (const [name, body] of functions) {
    if (!used.has(name)) continue;
    const now = src.get(name);
    if (now === undefined) problem(`the PostgreSQL function ${name}, which kair's triggers call, is missing`);
    else if (now !== body) problem(`the PostgreSQL function ${name}, which kair's triggers call, is not the one kair created`);
  }
  return out;
}

const orderOf = (spec: ChainSpec): string => (spec.integerId ? `"${spec.id}"` : 'rowid');

/** Rows of a chained table in chain order, a page at a time (a ledger may hold millions). */
async function* chainRows(sql: SqlExecutor, spec: ChainSpec, page: number): AsyncGenerator<Record<string, unknown>> {
  // Rows ordered by rowid name it in the select list to page on it; it is not part of the row.
  const select = spec.integerId ? `SELECT * FROM ${spec.table} WHERE "${spec.id}" > ? ORDER BY "${spec.id}" LIMIT ${page}` : `SELECT rowid AS kair_order, * FROM ${spec.table} WHERE rowid > ? ORDER BY rowid LIMIT ${page}`;
  for (let after: unknown = -1; ; ) {
    const rows = await sql.all(select, [after]);
    for (const row of rows) {
      if (!spec.integerId) {
        after = row.kair_order;
        delete row.kair_order;
        delete row.rowid;
      } else after = row[spec.id];
      yield row;
    }
    if (rows.length < page) return;
  }
}

/** Every chain of the tenant, walked in order: the first break of each. */
export async function checkExecutionChains(sql: SqlExecutor, page = 5000): Promise<ExecFinding[]> {
  const out: ExecFinding[] = [];
  for (const spec of specs) {
    const heads = new Map<string, string>();
    const broken = new Set<string>();
    for await (const row of chainRows(sql, spec, page)) {
      const chain = spec.key.map((k) => String(row[k])).join('/') || spec.table;
      const prev = heads.get(chain) ?? GENESIS_HASH;
      heads.set(chain, typeof row.row_hash === 'string' ? row.row_hash : GENESIS_HASH);
      if (broken.has(chain)) continue;
      const id = row[spec.id] as string | number;
      let why: string | undefined;
      if (row.prev_hash !== prev) why = row.prev_hash == null ? 'has no prev_hash' : `has prev_hash ${String(row.prev_hash).slice(0, 12)}… where its predecessor's row_hash is ${prev.slice(0, 12)}… (a row was deleted, inserted or reordered)`;
      else if (row.row_hash == null) why = 'has no row_hash';
      else if (row.row_hash !== sha256Hex(prev + rowJson(row))) why = 'does not hash to its row_hash (the row was edited)';
      if (why === undefined) continue;
      broken.add(chain);
      const contract = spec.key.includes('contract_id' as never) ? String(row.contract_id) : undefined;
      out.push({ ...(contract === undefined ? {} : { contract_id: contract }), kind: 'ledger_chain_broken', message: `${spec.table} ${spec.id} ${JSON.stringify(id)} (chain ${chain}) ${why}` });
    }
  }
  return out;
}

/**
 * The rows history names, held to their latest naming. History lines are read as stored (exact
 * text), and only those that can name rows are parsed.
 */
export async function checkNamedRows(sql: SqlExecutor): Promise<ExecFinding[]> {
  const latest = new Map<string, { contract: string; seq: number; table: keyof typeof ANCHORED_TABLES; id: string | number; sha256: string }>();
  const lines = await sql.all<{ contract_id: string; seq: number; line: string }>(`SELECT contract_id, seq, line FROM history_events WHERE line LIKE '%"rows":%' ORDER BY contract_id, seq`);
  for (const l of lines) {
    let e: { data?: { rows?: unknown } };
    try {
      e = JSON.parse(l.line) as typeof e;
    } catch {
      continue; // the event store's chain check reports it
    }
    if (!Array.isArray(e.data?.rows)) continue;
    for (const a of e.data.rows as { table?: unknown; id?: unknown; sha256?: unknown }[]) {
      if (!a || typeof a.table !== 'string' || !(a.table in ANCHORED_TABLES) || (typeof a.id !== 'string' && typeof a.id !== 'number') || typeof a.sha256 !== 'string') continue;
      latest.set(`${a.table}\u0000${String(a.id)}`, { contract: l.contract_id, seq: l.seq, table: a.table as keyof typeof ANCHORED_TABLES, id: a.id, sha256: a.sha256 });
    }
  }
  const out: ExecFinding[] = [];
  for (const a of latest.values()) {
    const row = await sql.get(`SELECT * FROM ${a.table} WHERE ${ANCHORED_TABLES[a.table]} = ?`, [a.id]);
    if (!row) out.push({ contract_id: a.contract, kind: 'row_missing', message: `${a.table} row ${JSON.stringify(a.id)}, named by event ${a.seq}, is missing from the database` });
    else if (sha256Hex(rowJson(row)) !== a.sha256) out.push({ contract_id: a.contract, kind: 'row_mismatch', message: `${a.table} row ${JSON.stringify(a.id)} differs from what event ${a.seq} recorded` });
  }
  return out;
}

/** Triggers, chains and anchors of one tenant. Reads only. */
export async function verifyExecution(client: PgClient, store: PgExecutionStore): Promise<{ problems: ExecFinding[]; warnings: ExecFinding[] }> {
  const problems = [...(await checkExecutionTriggers(client, store.target.schema))];
  await store.transaction(async (sql) => {
    problems.push(...(await checkExecutionChains(sql)), ...(await checkNamedRows(sql)));
  });
  return { problems, warnings: [] };
}

/** The newest row of each chain of the tenant, named as head-sqlite.ts names them. */
export async function executionChainHeads(store: ExecutionStore): Promise<ExecChainHead[]> {
  return store.transaction(async (sql) => {
    const out: ExecChainHead[] = [];
    for (const spec of specs) {
      const keys = spec.key.map((k) => `"${k}"`);
      const rows = await sql.all(`SELECT ${keys.length ? `${keys.join(', ')}, ` : ''}MAX(${orderOf(spec)}) AS seq FROM ${spec.table}${keys.length ? ` GROUP BY ${keys.join(', ')}` : ''}`);
      for (const r of rows) {
        if (r.seq === null || r.seq === undefined) continue;
        const h = await sql.get<{ row_hash: string | null }>(`SELECT row_hash FROM ${spec.table} WHERE ${orderOf(spec)} = ?`, [r.seq]);
        if (!h?.row_hash) continue;
        const name = spec.key.length ? `${spec.table}:${spec.key.map((k) => String(r[k])).join('/')}` : spec.table;
        out.push({ name, seq: Number(r.seq), row_hash: h.row_hash });
      }
    }
    return out;
  });
}

/** Whether the chain a head names still holds that row with that hash (`verify --since-head`). */
export async function executionChainHolds(store: ExecutionStore, head: ExecChainHead): Promise<boolean> {
  const spec = specs.find((s) => head.name === s.table || head.name.startsWith(`${s.table}:`));
  if (!spec) return false;
  return store.transaction(async (sql) => {
    const row = await sql.get<{ row_hash: string | null }>(`SELECT row_hash FROM ${spec.table} WHERE ${orderOf(spec)} = ?`, [head.seq]);
    return row?.row_hash === head.row_hash;
  });
}

/**
 * The whole PostgreSQL verify: the contract side (PgEventStore.verify) and this one. The event
 * store also checks the append-only triggers of the chained execution tables by name; a trigger
 * both report is reported once, with this module's message (it says what is wrong with it).
 */
export function mergeVerify(
  contractSide: { problems: ExecFinding[]; warnings: ExecFinding[] },
  executionSide: { problems: ExecFinding[]; warnings: ExecFinding[] },
): { problems: ExecFinding[]; warnings: ExecFinding[] } {
  const triggerOf = (f: ExecFinding) => (f.kind === 'trigger_missing' ? /trigger (\w+)/.exec(f.message)?.[1] : undefined);
  const mine = new Set<string | undefined>(executionSide.problems.map(triggerOf).filter((t) => t !== undefined));
  return {
    problems: [...contractSide.problems.filter((f) => !mine.has(triggerOf(f))), ...executionSide.problems],
    warnings: [...contractSide.warnings, ...executionSide.warnings],
  };
}
