/**
 * `verify`'s SQLite side: the ledger projection, the hash chains and their append-only
 * triggers, the rows history names (cross-anchoring), the catalog and access policy against
 * their change log, and `aec_refs` bodies against their refs. Reads only; repairs nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { canonicalJson, sha256Hex } from '../domain/canonical.js';
import { ledgerRepo } from '../lanes/aec/ledger.js';
import { changeLogMismatches } from '../lanes/aec/change-log.js';
import { configDrift } from './config-cmd.js';
import { listContractIds } from '../store/fs/contracts.js';
import type { HistoryText } from '../store/fs/history.js';
import { paths } from '../store/fs/workspace.js';
import type { AnchoredTable, RowAnchor } from '../store/sqlite/chain.js';
import { ANCHORED_TABLES, CHAINS, checkChainTable, rowSha } from '../store/sqlite/chain.js';
import type { SqlExecutor } from '../store/port.js';
import type { Db } from '../store/sqlite/db.js';
import { openDb } from '../store/sqlite/db.js';
import type { Ctx } from './context.js';
import { readOnlyTransaction } from './db.js';
import type { VerifyResult } from './verify.js';

type Report = (kind: string, message: string, contractId?: string) => void;

/** What one contract's committed history says about SQLite. */
export interface HistoryRefs {
  exists: boolean;
  /** `table\0id` → the anchor of its latest naming and the event's seq. */
  named: Map<string, { anchor: RowAnchor; seq: number }>;
  /** Envelopes named the v1 way (by id only, before rows were anchored). */
  legacyEnvelopes: Set<string>;
  /** `run\0step` of AEC steps recorded before rows were anchored: their ledger rows count as named. */
  legacySteps: Set<string>;
  runsStarted: Set<string>;
}

const keyOf = (table: string, id: unknown) => `${table}\u0000${String(id)}`;

/**
 * Only lines that can name rows or start a run are parsed: this scan runs over every history
 * next to the file-side checks, which parse every line anyway. A torn last line was never
 * acknowledged and names nothing.
 */
function scanHistory(file: string): HistoryRefs {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return emptyRefs(false);
  }
  return scanHistoryLines(text.slice(0, text.lastIndexOf('\n') + 1).split('\n'));
}

type Scanned = { seq?: number; type?: string; data?: Record<string, unknown> };

/** The text test that decides which lines are parsed for what they name. */
const mayNameText = (line: string): boolean => line.includes('"rows":') || line.includes('envelope') || line.includes('"run.started"') || line.includes('"step.finished"');

/** Whether addRefs could record anything for this parsed event (false means it adds nothing, whatever its text). */
function mayNameEvent(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { type, data } = e as Scanned;
  if (type === 'run.started' || type === 'step.finished') return true;
  const d = (data ?? {}) as Record<string, unknown>;
  return typeof d.envelope_id === 'string' || Array.isArray(d.cancelled_envelopes) || Array.isArray(d.rows);
}

function addRefs(refs: HistoryRefs, e: Scanned): void {
  const data = e.data ?? {};
  if (e.type === 'run.started' && typeof data.run_id === 'string') refs.runsStarted.add(data.run_id);
  if (typeof data.envelope_id === 'string') refs.legacyEnvelopes.add(data.envelope_id);
  if (Array.isArray(data.cancelled_envelopes)) for (const id of data.cancelled_envelopes) refs.legacyEnvelopes.add(String(id));
  const step = data.step as { id?: unknown; lane?: unknown } | undefined;
  if (e.type === 'step.finished' && !('rows' in data) && step?.lane === 'aec') refs.legacySteps.add(`${String(data.run_id)}\u0000${String(step.id)}`);
  if (Array.isArray(data.rows)) {
    for (const a of data.rows as RowAnchor[]) {
      if (a && typeof a.table === 'string' && (typeof a.id === 'string' || typeof a.id === 'number') && typeof a.sha256 === 'string') {
        refs.named.set(keyOf(a.table, a.id), { anchor: a, seq: e.seq ?? 0 });
      }
    }
  }
}

const emptyRefs = (exists: boolean): HistoryRefs => ({ exists, named: new Map(), legacyEnvelopes: new Set(), legacySteps: new Set(), runsStarted: new Set() });

function scanHistoryLines(lines: readonly string[]): HistoryRefs {
  const refs = emptyRefs(true);
  for (const line of lines) {
    if (!mayNameText(line)) continue;
    let e: Scanned;
    try {
      e = JSON.parse(line) as Scanned;
    } catch {
      continue; // the file-side checks report unparsable lines
    }
    addRefs(refs, e);
  }
  return refs;
}

/**
 * scanHistory of a history verify has already read and parsed: the same refs, from the same
 * bytes. An event that could name nothing is skipped before its text is searched (most events),
 * which is what searching its text first and then parsing it would conclude too.
 */
export function scanHistoryRead(read: HistoryText): HistoryRefs {
  const refs = emptyRefs(true);
  for (let j = 0; j < read.events.length; j++) {
    const e = read.events[j];
    if (!mayNameEvent(e)) continue;
    const s = read.starts[j]!;
    if (mayNameText(read.text.slice(s, read.text.indexOf('\n', s)))) addRefs(refs, e as Scanned);
  }
  return refs;
}

/** The contract a run id belongs to (`<contract>-run-<n>`). */
const contractOfRun = (runId: string): string | undefined => /^(.+)-run-\d+$/.exec(runId)?.[1];

let expectedTriggers: Map<string, string> | undefined;

/** Every trigger the migrations create, with its SQL: learnt from a fresh in-memory database. */
function triggersOfSchema(): Map<string, string> {
  if (expectedTriggers) return expectedTriggers;
  const mem = openDb(':memory:', { now: () => '1970-01-01T00:00:00.000Z' });
  try {
    return (expectedTriggers = triggerMap(mem));
  } finally {
    mem.close();
  }
}

const TRIGGERS_SQL = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'";
const triggerMap = (db: Db) => new Map((db.prepare(TRIGGERS_SQL).all() as { name: string; sql: string }[]).map((t) => [t.name, t.sql]));

export async function verifyDb(ctx: Ctx, out: VerifyResult, id?: string, scanned?: ReadonlyMap<string, HistoryRefs>): Promise<void> {
  const problem: Report = (kind, message, contract_id) => out.problems.push({ ...(contract_id === undefined ? {} : { contract_id }), kind, message });
  const warning: Report = (kind, message, contract_id) => out.warnings.push({ ...(contract_id === undefined ? {} : { contract_id }), kind, message });
  const ids = id !== undefined ? [id] : listContractIds(ctx.ws);
  const histories = new Map(ids.map((cid) => [cid, scanned?.get(cid) ?? scanHistory(paths.history(ctx.ws, cid))]));
  if (!existsSync(paths.db(ctx.ws))) {
    for (const [cid, h] of histories) {
      const n = h.named.size + h.legacyEnvelopes.size;
      if (n > 0) problem('db_missing', `.kair/kair.db is missing, but the history of ${cid} names ${n} row(s) in it`, cid);
    }
    return;
  }
  // One read transaction: every check sees the same state.
  await readOnlyTransaction(ctx, () => undefined, async (sql) => {
    await checkLedgerProjection(sql, out);
    await checkTriggers(sql, problem);
    await checkChains(sql, problem);
    await checkNamedRows(ctx, sql, histories, problem, warning, id);
    if (id === undefined) {
      await checkChangeLog(sql, problem);
      await checkRefs(sql, problem);
      const drift = await configDrift(ctx, sql);
      if (drift) warning('config_drift', drift);
    }
  });
}

/** agent_execution_current must be exactly what the ledger folds to (workspace-wide). */
async function checkLedgerProjection(sql: SqlExecutor, out: VerifyResult): Promise<void> {
  const d = await ledgerRepo(sql).drift(20);
  for (const x of d.drift) {
    out.problems.push({ contract_id: x.stored?.contract_id ?? x.expected?.contract_id, kind: 'ledger_projection', message: `agent_execution_current ${x.kind} for ${x.correlation_id} step ${x.step_id}; \`kair aec rebuild\` recomputes it` });
  }
  if (d.count > d.drift.length) out.problems.push({ kind: 'ledger_projection', message: `${d.count - d.drift.length} more drifted step(s) in agent_execution_current` });
}

/** Dialect branch: SQLite's triggers are read from sqlite_master; PostgreSQL's are the PostgreSQL store's verify (pg_trigger). */
async function checkTriggers(sql: SqlExecutor, problem: Report): Promise<void> {
  if (sql.dialect !== 'sqlite') return;
  const have = new Map((await sql.all<{ name: string; sql: string }>(TRIGGERS_SQL)).map((t) => [t.name, t.sql]));
  for (const [name, sql] of triggersOfSchema()) {
    const found = have.get(name);
    if (found === undefined) problem('trigger_missing', `the SQLite trigger ${name} is missing: rows it guards could be changed without a trace`);
    else if (found !== sql) problem('trigger_missing', `the SQLite trigger ${name} is not the one kair created`);
  }
}

async function checkChains(sql: SqlExecutor, problem: Report): Promise<void> {
  for (const spec of Object.values(CHAINS)) {
    for (const b of await checkChainTable(sql, spec)) problem('ledger_chain_broken', b.message, spec.key.includes('contract_id' as never) ? b.chain.split('/')[1] : undefined);
  }
}

const RUN_TABLES = ['execution_envelopes', 'agent_execution_ledger', 'agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger'] as const;

/**
 * Every row history names exists with the hash of its latest naming; every execution row is
 * named (else a warning: SQLite commits before history, so a crash leaves such rows); and the
 * run of every row is in its contract's history (else history lost the events that created it).
 */
async function checkNamedRows(ctx: Ctx, sql: SqlExecutor, histories: Map<string, HistoryRefs>, problem: Report, warning: Report, only?: string): Promise<void> {
  for (const [cid, h] of histories) {
    for (const { anchor, seq } of h.named.values()) {
      if (!Object.hasOwn(ANCHORED_TABLES, anchor.table)) continue;
      const table = anchor.table as AnchoredTable;
      const row = await sql.get(`SELECT * FROM ${table} WHERE ${ANCHORED_TABLES[table]} = ?`, [anchor.id]);
      if (!row) problem('row_missing', `${table} row ${JSON.stringify(anchor.id)}, named by event ${seq}, is missing from kair.db`, cid);
      else if (rowSha(row, { dialect: sql.dialect, table }) !== anchor.sha256) problem('row_mismatch', `${table} row ${JSON.stringify(anchor.id)} differs from what event ${seq} recorded`, cid);
    }
  }

  const truncated = new Set<string>();
  const missing = new Set<string>();
  /** Per contract: rows only events written before rows were anchored name (no hash to check). */
  const unanchored = new Map<string, number>();
  const historyOf = (cid: string): HistoryRefs => {
    let h = histories.get(cid);
    if (!h) histories.set(cid, (h = scanHistory(paths.history(ctx.ws, cid))));
    return h;
  };
  for (const table of RUN_TABLES) {
    const where = only === undefined ? '' : table === 'execution_envelopes' || table === 'agent_execution_ledger' ? 'WHERE contract_id = ?' : "WHERE run_id LIKE ? ESCAPE '\\'";
    const args = only === undefined ? [] : table === 'execution_envelopes' || table === 'agent_execution_ledger' ? [only] : [`${only.replace(/[\\%_]/g, (c) => `\\${c}`)}-run-%`];
    for await (const row of pages(sql, table, ANCHORED_TABLES[table], where, args)) {
      const runId = String(row.run_id);
      const cid = typeof row.contract_id === 'string' ? row.contract_id : contractOfRun(runId);
      if (cid === undefined || (only !== undefined && cid !== only)) continue;
      const h = historyOf(cid);
      if (!h.exists) {
        if (!missing.has(cid)) problem('contract_missing', `kair.db holds rows of ${cid} (run ${runId}), whose history is missing`, cid);
        missing.add(cid);
        continue;
      }
      if (!h.runsStarted.has(runId)) {
        if (!truncated.has(runId)) problem('history_truncated', `kair.db holds rows of run ${runId}, which the history of ${cid} no longer records (history was cut below its run.started)`, cid);
        truncated.add(runId);
        continue;
      }
      const idCol = ANCHORED_TABLES[table];
      const rowId = row[idCol];
      const legacy = table === 'execution_envelopes' ? h.legacyEnvelopes.has(String(rowId)) : h.legacySteps.has(`${runId}\u0000${String(row.step_id)}`);
      if (legacy && !h.named.has(keyOf(table, rowId))) unanchored.set(cid, (unanchored.get(cid) ?? 0) + 1);
      if (!h.named.has(keyOf(table, rowId)) && !legacy) {
        const what = table === 'execution_envelopes' ? `envelope ${String(rowId)} (${String(row.status)})` : `${table} row ${String(rowId)} (step ${String(row.step_id)})`;
        const next = table === 'execution_envelopes' ? `the next command on ${cid} closes it` : 'resuming the run names it';
        warning('orphan_row', `${what} of ${runId} is named by no history event (a run stopped between its SQLite commit and its history append); ${next}`, cid);
      }
    }
  }
  // History is immutable, so these rows cannot be given a hash after the fact: they are reported,
  // once per contract, rather than silently trusted. A rewind and a new run anchor new rows.
  for (const [cid, n] of unanchored) {
    warning('unanchored_row', `${n} execution row(s) of ${cid} are named only by events written before kair anchored rows in history (an older kair): their content has no recorded hash, so an edit of them cannot be detected`, cid);
  }
}

/** The catalog and the access policy hold exactly the rows their change log last recorded. */
async function checkChangeLog(sql: SqlExecutor, problem: Report): Promise<void> {
  for (const m of await changeLogMismatches(sql)) problem(m.kind, m.message);
}

const PAGE = 5000;

/**
 * The rows of `table` matching `where`, in id order, a page at a time: a million-row ledger is
 * never held in memory at once (plain keyset paging, the same SQL on both dialects).
 */
async function* pages(sql: SqlExecutor, table: string, id: string, where: string, args: readonly unknown[]): AsyncGenerator<Record<string, unknown>> {
  const and = where === '' ? 'WHERE' : `${where} AND`;
  let after: unknown;
  for (;;) {
    const rows = after === undefined ? await sql.all(`SELECT * FROM ${table} ${where} ORDER BY ${id} LIMIT ${PAGE}`, args) : await sql.all(`SELECT * FROM ${table} ${and} ${id} > ? ORDER BY ${id} LIMIT ${PAGE}`, [...args, after]);
    yield* rows;
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]![id];
  }
}

/** A content-addressed ref (`kind:<sha256>`) must still hash to its name; `policy:v<n>` must hold version n. */
async function checkRefs(sql: SqlExecutor, problem: Report): Promise<void> {
  for await (const r of pages(sql, 'aec_refs', 'ref', '', []) as AsyncGenerator<{ ref: string; body: string }>) {
    const hashed = /^[a-z_]+:([0-9a-f]{64})$/.exec(r.ref);
    if (hashed) {
      if (sha256Hex(r.body) !== hashed[1]) problem('row_mismatch', `aec_refs ${r.ref}: the body no longer hashes to its ref`);
      continue;
    }
    const policy = /^policy:v(\d+)$/.exec(r.ref);
    if (policy) {
      let version: unknown;
      try {
        version = (JSON.parse(r.body) as { version?: unknown }).version;
      } catch {
        version = undefined;
      }
      if (version !== Number(policy[1]) || canonicalJson(JSON.parse(r.body)) !== r.body) problem('row_mismatch', `aec_refs ${r.ref}: the body is not policy version ${policy[1]}`);
    }
  }
}
