/**
 * The contract side of the storage port on PostgreSQL (ContractStore, src/store/port.ts).
 *
 * One boundary = one transaction: `BEGIN`, `SET LOCAL lock_timeout` (--lock-timeout), a
 * transaction-scoped advisory lock on (tenant, contract), the state folded from history (from the
 * newest valid checkpoint, chain checked), the decision, the sealed events, checkpoint rows, the
 * snapshot, the index row and any plan/DPC/artifact rows, `COMMIT`. Nothing is derived after a
 * commit point here: it all commits together or not at all, so nothing is ever "behind".
 *
 * Events are sealed and folded by the same functions as the local store, and the stored line is
 * the same `JSON.stringify` of the sealed event, so the same drafts give byte-identical lines and
 * hashes on both backends (an exported workspace verifies as a local one).
 */
import { GENESIS_HASH, canonicalHash, canonicalJson, sha256Hex } from '../../domain/canonical.js';
import type { Contract, EventDraft, HistoryEvent } from '../../domain/contract.js';
import { applyEvent } from '../../domain/contract.js';
import { exitCodeOf, isKairError, kairError } from '../../domain/errors.js';
import type { KairError } from '../../domain/errors.js';
import { assertId } from '../../domain/ids.js';
import { checkChain, checkLinks, jsonText, sealDrafts, sealEvent } from '../../domain/chain.js';
import type { Boundary, ChainIssue, ContractStore, CreateRequest, IndexRow, MutateRequest, Mutation, RunnerLiveness, StoredEvent, WriteMeta } from '../port.js';
import type { ConnectOptions, PgClient, PgTarget } from './connect.js';
import { mapPgError } from './connect.js';
import { pgRunnerLiveness } from './liveness.js';
import { retryConcurrentWrite } from '../retry.js';
import { PG_APPEND_ONLY_TABLES, lockKey, lockParts, openPgSession } from './migrations.js';

interface EventRow {
  seq: number;
  line: string;
  prev: string;
  hash: string;
}


function integrity(id: string, message: string, kind = 'chain_broken'): never {
  throw kairError('INTEGRITY_FAILED', `${id}: ${message}; nothing was written; run \`kair verify ${id}\``, { contract_id: id, kind });
}

/** A row's line parsed, and its columns checked against it (a column edited alone is tampering too). */
function parseRow(id: string, r: EventRow): HistoryEvent {
  let e: HistoryEvent;
  try {
    e = JSON.parse(r.line) as HistoryEvent;
  } catch {
    return integrity(id, `history row ${r.seq} is not valid JSON`);
  }
  if (e.seq !== Number(r.seq) || e.prev !== r.prev || e.hash !== r.hash) integrity(id, `history row ${r.seq} does not match its line`);
  return e;
}

/** A `kair verify` finding (the shape of src/app/verify.ts's). */
export interface VerifyFinding {
  contract_id?: string;
  kind: string;
  message: string;
}

export interface PgEventStoreOptions extends ConnectOptions {
  /** The workspace_id: every row this store reads or writes carries it. */
  tenant: string;
}

/**
 * One database session. Its calls must not overlap (each boundary is a transaction on this
 * session): a command uses one store at a time, as the CLI does; concurrent writers are separate
 * stores (separate processes, or separate sessions in tests).
 */
export class PgEventStore implements ContractStore {
  private constructor(
    private readonly client: PgClient,
    private readonly target: PgTarget,
    private readonly tenant: string,
  ) {}

  /** Connects (BACKEND_UNAVAILABLE / BACKEND_CONFIG_INVALID), migrates under the advisory lock, sets the search path. */
  static async open(o: PgEventStoreOptions): Promise<PgEventStore> {
    const conn = await openPgSession(o);
    return new PgEventStore(conn.client, conn.target, o.tenant);
  }

  /** Run liveness on this store's session (its locks end with the session). */
  liveness(): RunnerLiveness {
    return pgRunnerLiveness(this.client, this.target, this.tenant);
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  private async query<R extends object>(sql: string, params: unknown[] = [], contractId?: string): Promise<R[]> {
    try {
      return (await this.client.query<R>(sql, params)).rows;
    } catch (e) {
      throw mapPgError(e, this.target, contractId === undefined ? {} : { contractId });
    }
  }

  /**
   * Runs `fn` as one transaction holding the contract's writer lock. lock_timeout bounds the
   * wait for it (PostgreSQL reads 0 as "wait forever", so --lock-timeout 0 waits 1 ms). The
   * session's application_name says who writes while the transaction runs, so a writer that
   * times out can name the holder, as the local lock's holder record does.
   */
  private async transaction<T>(id: string, lockTimeoutMs: number, who: WriteMeta, fn: () => Promise<T>): Promise<T> {
    const key = lockKey('kair:contract', this.tenant, id);
    await this.query('BEGIN', [], id);
    try {
      const ms = Number.isFinite(lockTimeoutMs) ? Math.max(1, Math.floor(lockTimeoutMs)) : 10_000;
      await this.query(`SET LOCAL lock_timeout = ${ms}`, [], id);
      await this.query("SELECT set_config('application_name', $1, true)", [`kair ${who.command} by ${who.actor}`.slice(0, 63)], id);
      await this.query('SELECT pg_advisory_xact_lock($1)', [key], id);
      const out = await fn();
      await this.query('COMMIT', [], id);
      return out;
    } catch (e) {
      // A dead connection cannot roll back: the server does when the session ends.
      await this.client.query('ROLLBACK').catch(() => undefined);
      const mapped = mapPgError(e, this.target, { contractId: id });
      if (isKairError(mapped) && mapped.code === 'LOCK_BUSY') await this.nameHolder(mapped, key);
      throw mapped;
    }
  }

  /** Adds who holds the contract's lock to a LOCK_BUSY (best effort: it may have ended meanwhile). */
  private async nameHolder(err: KairError, key: string): Promise<void> {
    const { classid, objid } = lockParts(key);
    try {
      const r = await this.client.query<{ pid: number; application_name: string; client_addr: string | null; since: string | null }>(
        `SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr, a.xact_start::text AS since
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [classid, objid],
      );
      const h = r.rows[0];
      if (!h) return;
      err.details.holder = { pid: h.pid, application_name: h.application_name, client_addr: h.client_addr, since: h.since };
      err.message = err.message.replace(' (waited', ` (${JSON.stringify(h.application_name.slice(0, 80))}, server pid ${h.pid}${h.client_addr ? ` from ${h.client_addr}` : ''}; waited`);
    } catch {
      // the message without the holder is still right
    }
  }

  async exists(id: string): Promise<boolean> {
    const r = await this.query('SELECT 1 FROM contracts WHERE tenant_id = $1 AND contract_id = $2', [this.tenant, id], id);
    return r.length > 0;
  }

  /**
   * The state a writer decides on: from the newest checkpoint whose state hashes to what its
   * `checkpoint` event recorded, with every link and hash from there to the tail checked.
   */
  private async fold(id: string): Promise<Contract> {
    const cps = await this.query<{ through_seq: number; state: string }>('SELECT through_seq, state FROM checkpoints WHERE tenant_id = $1 AND contract_id = $2 ORDER BY through_seq DESC', [this.tenant, id], id);
    let base: Contract | null = null;
    let rows: EventRow[] | null = null;
    for (const cp of cps) {
      const k = Number(cp.through_seq);
      let state: Contract;
      try {
        state = JSON.parse(cp.state) as Contract;
      } catch {
        continue;
      }
      if (state.history_seq !== k) continue;
      const tail = await this.query<EventRow>('SELECT seq, line, prev, hash FROM history_events WHERE tenant_id = $1 AND contract_id = $2 AND seq > $3 ORDER BY seq', [this.tenant, id, k], id);
      const first = tail[0] ? parseRow(id, tail[0]) : null;
      const d = (first?.data ?? {}) as { through_seq?: unknown; state_sha256?: unknown };
      if (!first || first.seq !== k + 1 || first.type !== 'checkpoint' || d.through_seq !== k || d.state_sha256 !== sha256Hex(cp.state) || first.prev !== state.history_head) continue;
      base = state;
      rows = tail;
      break;
    }
    rows ??= await this.query<EventRow>('SELECT seq, line, prev, hash FROM history_events WHERE tenant_id = $1 AND contract_id = $2 ORDER BY seq', [this.tenant, id], id);
    const events = rows.map((r) => parseRow(id, r));
    const broken = checkLinks(events, base ? { seq: base.history_seq, hash: base.history_head } : { seq: 0, hash: GENESIS_HASH });
    if (broken) integrity(id, broken);
    let c = base;
    for (const e of events) c = applyEvent(c, e);
    if (!c) {
      if (await this.exists(id)) integrity(id, 'history is empty');
      throw kairError('CONTRACT_NOT_FOUND', `no contract ${id}`, { contract_id: id, hint: 'kair list shows the contracts' });
    }
    // A checkpoint beyond the tail means acknowledged events were removed.
    const newest = cps[0] ? Number(cps[0].through_seq) : 0;
    if (newest >= c.history_seq) integrity(id, `history ends at event ${c.history_seq} but a checkpoint covers event ${newest} (history truncated)`, 'history_truncated');
    const snap = await this.query<{ history_seq: number }>('SELECT history_seq FROM contracts WHERE tenant_id = $1 AND contract_id = $2', [this.tenant, id], id);
    if (snap[0] && Number(snap[0].history_seq) > c.history_seq) integrity(id, `history ends at event ${c.history_seq} but the snapshot records event ${snap[0].history_seq} (history truncated)`, 'history_truncated');
    return c;
  }

  async load(id: string): Promise<Contract> {
    assertId(id);
    await this.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', [], id);
    try {
      const c = await this.fold(id);
      await this.query('COMMIT', [], id);
      return c;
    } catch (e) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  /** Seals drafts after `c` (checkpoint events and rows where seq reaches a multiple of 64) and inserts them. */
  private async insertEvents(c: Contract, drafts: EventDraft[], meta: { at: string; actor: string }): Promise<{ contract: Contract; events: HistoryEvent[] }> {
    const { contract: cur, events, checkpoints } = sealDrafts(c, drafts, meta);
    if (events.length === 0) return { contract: c, events };
    for (const cp of checkpoints) {
      await this.query('INSERT INTO checkpoints (tenant_id, contract_id, through_seq, state) VALUES ($1, $2, $3, $4)', [this.tenant, c.id, cp.through, cp.state], c.id);
    }
    const params: unknown[] = [];
    const values = events.map((e) => {
      params.push(this.tenant, c.id, e.seq, e.type, JSON.stringify(e), e.prev, e.hash);
      const n = params.length;
      return `($${n - 6}, $${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
    });
    // A duplicate (tenant, contract, seq) is 23505 → CONCURRENT_WRITE (mapPgError).
    await this.query(`INSERT INTO history_events (tenant_id, contract_id, seq, type, line, prev, hash) VALUES ${values.join(', ')}`, params, c.id);
    return { contract: cur, events };
  }

  private async writeDerived(c: Contract): Promise<void> {
    await this.query('UPDATE contracts SET snapshot = $3, history_seq = $4, history_head = $5 WHERE tenant_id = $1 AND contract_id = $2', [this.tenant, c.id, jsonText(c), c.history_seq, c.history_head], c.id);
    await this.query(
      `INSERT INTO contract_index (tenant_id, contract_id, intent, state, version, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant_id, contract_id) DO UPDATE SET intent = EXCLUDED.intent, state = EXCLUDED.state, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
      [this.tenant, c.id, c.intent, c.state, c.version, c.updated_at],
      c.id,
    );
  }

  private boundary(start: Contract, meta: WriteMeta, sink: HistoryEvent[]): Boundary & { current(): Contract } {
    let cur = start;
    const id = start.id;
    return {
      get contract() {
        return cur;
      },
      current: () => cur,
      append: async (drafts) => {
        const r = await this.insertEvents(cur, drafts, meta);
        cur = r.contract;
        sink.push(...r.events);
        return r.events;
      },
      // The display copy (`copy`) is a local file only: here the current plan is the row of its sha.
      putPlan: async (sha, text) => {
        await this.query('INSERT INTO plans (tenant_id, contract_id, sha256, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [this.tenant, id, sha, text], id);
        const kept = await this.query<{ body: string }>('SELECT body FROM plans WHERE tenant_id = $1 AND contract_id = $2 AND sha256 = $3', [this.tenant, id, sha], id);
        if (kept[0]?.body !== text) integrity(id, `the plan kept as ${sha} differs from the plan with that sha`, 'plan_mismatch');
      },
      putDpc: async (text) => {
        await this.query('INSERT INTO dpc (tenant_id, contract_id, body) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, contract_id) DO UPDATE SET body = EXCLUDED.body', [this.tenant, id, text], id);
      },
      putArtifact: async (path, text) => {
        if (!path.startsWith(`.kair/contracts/${id}/`) || path.includes('..')) throw kairError('INTERNAL_ERROR', `artifact path ${JSON.stringify(path.slice(0, 80))} is outside contract ${id}`, { contract_id: id });
        await this.query(
          'INSERT INTO artifacts (tenant_id, path, contract_id, body, sha256) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, path) DO UPDATE SET body = EXCLUDED.body, sha256 = EXCLUDED.sha256',
          [this.tenant, path, id, text, sha256Hex(text)],
          id,
        );
      },
    };
  }

  /**
   * A given id: CONTRACT_EXISTS when taken. A chosen id (`propose` without --id): chosen again
   * when another creator took it between the choice and the insert (the row insert is the
   * arbiter, as the propose lock is locally).
   */
  async create(req: CreateRequest): Promise<{ contract: Contract; events: HistoryEvent[] }> {
    const pick = req.id;
    if (typeof pick === 'string') return this.createOne(pick, req);
    for (let attempt = 0; ; attempt++) {
      const id = await pick((cand) => this.exists(cand));
      try {
        return await this.createOne(id, req);
      } catch (e) {
        if (!isKairError(e) || e.code !== 'CONTRACT_EXISTS' || attempt >= 16) throw e;
      }
    }
  }

  private async createOne(id: string, req: CreateRequest): Promise<{ contract: Contract; events: HistoryEvent[] }> {
    assertId(id);
    const drafts = req.drafts(id);
    const meta = req.meta;
    if (drafts[0]?.type !== 'propose') throw kairError('INTERNAL_ERROR', 'a contract starts with its propose event', { contract_id: id });
    return this.transaction(id, req.lockTimeoutMs, meta, async () => {
      const seal0 = sealEvent(drafts[0]!, { seq: 1, at: meta.at, actor: meta.actor, prev: GENESIS_HASH });
      const first = applyEvent(null, seal0);
      // The row first (with the first state), so a second creator of the same id stops here.
      const made = await this.query('INSERT INTO contracts (tenant_id, contract_id, snapshot, history_seq, history_head) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1', [this.tenant, id, jsonText(first), 1, seal0.hash], id);
      if (made.length === 0) throw kairError('CONTRACT_EXISTS', `contract ${id} already exists`, { contract_id: id });
      const genesis = { history_seq: 0, history_head: GENESIS_HASH, id } as Contract;
      const r = await this.insertEvents(genesis, drafts, meta);
      await this.writeDerived(r.contract);
      await this.boundary(r.contract, meta, []).putDpc(req.dpcText);
      return r;
    });
  }

  /** The stored snapshot: on this backend it is written in every boundary's transaction, so it never lags. */
  async read(id: string): Promise<Contract> {
    assertId(id);
    const text = await this.snapshot(id);
    if (text === null) throw kairError('CONTRACT_NOT_FOUND', `no contract ${JSON.stringify(id)} in this workspace (see \`kair list\`)`, { contract_id: id });
    return JSON.parse(text) as Contract;
  }

  async mutate<T>(id: string, req: MutateRequest<T>): Promise<Mutation<T>> {
    assertId(id);
    // The unique seq refused our append: decided again on the new state.
    return retryConcurrentWrite(req, () => this.mutateOnce(id, req));
  }

  private async mutateOnce<T>(id: string, req: MutateRequest<T>): Promise<Mutation<T>> {
    let refused: unknown = null;
    const events: HistoryEvent[] = [];
    const out = await this.transaction(id, req.lockTimeoutMs, req.meta, async () => {
      const start = await this.fold(id);
      const tail = req.expectTail;
      if (tail && (start.history_seq !== tail.seq || start.history_head !== tail.hash)) {
        throw kairError('CONCURRENT_WRITE', `${id} changed while this command was preparing its change (event ${start.history_seq} was recorded after event ${tail.seq}); nothing was written`, {
          contract_id: id,
          expected_seq: tail.seq,
          found_seq: start.history_seq,
          hint: 'run the command again: it decides on the new state',
        });
      }
      const b = this.boundary(start, req.meta, events);
      await this.query('SAVEPOINT decide', [], id);
      let result: T | undefined;
      try {
        result = await req.decide(b);
      } catch (e) {
        // A gate refusal (exit 3) is recorded as its gate.blocked event; whatever the decision
        // wrote before refusing is rolled back with the savepoint.
        if (!req.onRefusal || !isKairError(e) || exitCodeOf(e.code) !== 3) throw e;
        await this.query('ROLLBACK TO SAVEPOINT decide', [], id);
        events.length = 0;
        const again = this.boundary(start, req.meta, events);
        await req.onRefusal(again, e);
        if (events.length) await this.writeDerived(again.current());
        refused = e;
        return null;
      }
      if (events.length) await this.writeDerived(b.current());
      return { contract: b.current(), result: result as T };
    });
    if (refused) throw refused;
    return { contract: out!.contract, events, result: out!.result };
  }

  /**
   * What `kair verify` will check on this backend, with its problem kinds: every chain
   * (`chain_broken`, rows whose columns differ from their line included), snapshot = fold
   * (`snapshot_mismatch`), plans kept by sha and the current plan (`plan_mismatch`), artifacts =
   * their recorded sha256 (`artifact_mismatch`), the append-only triggers (`trigger_missing`),
   * index rows without a contract (`contract_missing`); other index disagreements are warnings
   * (`index_behind`). One REPEATABLE READ snapshot of the tenant.
   */
  async verify(): Promise<{ problems: VerifyFinding[]; warnings: VerifyFinding[] }> {
    const problems: VerifyFinding[] = [];
    const warnings: VerifyFinding[] = [];
    await this.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const ids = (await this.query<{ contract_id: string; snapshot: string }>('SELECT contract_id, snapshot FROM contracts WHERE tenant_id = $1 ORDER BY contract_id', [this.tenant])).map((r) => [r.contract_id, r.snapshot] as const);
      const folded = new Map<string, Contract>();
      for (const [id, snapText] of ids) {
        const issues = await this.checkChain(id);
        if (issues.length) {
          problems.push(...issues.map((i) => ({ contract_id: id, kind: 'chain_broken', message: i.message })));
          continue;
        }
        let c: Contract;
        try {
          c = await this.fold(id);
        } catch (e) {
          problems.push({ contract_id: id, kind: isKairError(e) && typeof e.details.kind === 'string' ? e.details.kind : 'chain_broken', message: (e as Error).message });
          continue;
        }
        folded.set(id, c);
        let snap: unknown = null;
        try {
          snap = JSON.parse(snapText);
        } catch {
          // reported below
        }
        if (snap === null || canonicalJson(snap) !== canonicalJson(c)) problems.push({ contract_id: id, kind: 'snapshot_mismatch', message: `the snapshot of ${id} differs from its history` });
        if (c.plan_sha256) {
          const body = await this.plan(id, c.plan_sha256);
          if (body === null) problems.push({ contract_id: id, kind: 'plan_mismatch', message: `the plan ${c.plan_sha256} that history names is missing` });
        }
      }
      for (const r of await this.query<{ contract_id: string; sha256: string; body: string }>('SELECT contract_id, sha256, body FROM plans WHERE tenant_id = $1', [this.tenant])) {
        let sha: string | null;
        try {
          sha = canonicalHash(JSON.parse(r.body));
        } catch {
          sha = null;
        }
        if (sha !== r.sha256) problems.push({ contract_id: r.contract_id, kind: 'plan_mismatch', message: `the plan kept as ${r.sha256} does not hash to it` });
      }
      for (const r of await this.query<{ contract_id: string; path: string; sha256: string; body: string }>('SELECT contract_id, path, sha256, body FROM artifacts WHERE tenant_id = $1', [this.tenant])) {
        if (sha256Hex(r.body) !== r.sha256) problems.push({ contract_id: r.contract_id, kind: 'artifact_mismatch', message: `${r.path} differs from its recorded sha256` });
      }
      const known = new Map(ids);
      for (const r of await this.query<IndexRow>('SELECT contract_id AS id, intent, state, version, updated_at FROM contract_index WHERE tenant_id = $1', [this.tenant])) {
        if (!known.has(r.id)) {
          problems.push({ contract_id: r.id, kind: 'contract_missing', message: `the index names ${r.id}, which has no contract` });
          continue;
        }
        // Held to history, not to the snapshot (which has its own check above).
        const c = folded.get(r.id);
        if (c && (c.state !== r.state || c.version !== r.version || c.updated_at !== r.updated_at || c.intent !== r.intent)) warnings.push({ contract_id: r.id, kind: 'index_behind', message: `the index row of ${r.id} differs from its contract` });
      }
      const triggers = await this.query<{ name: string }>(
        "SELECT tgname AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgenabled <> 'D'",
        [this.target.schema],
      );
      const have = new Set(triggers.map((t) => t.name));
      for (const t of PG_APPEND_ONLY_TABLES) {
        for (const k of ['no_update', 'no_delete', 'no_truncate']) {
          if (!have.has(`${t}_${k}`)) problems.push({ kind: 'trigger_missing', message: `the trigger ${t}_${k} is missing or disabled` });
        }
      }
      await this.query('COMMIT');
    } catch (e) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
    return { problems, warnings };
  }

  async snapshot(id: string): Promise<string | null> {
    const r = await this.query<{ snapshot: string }>('SELECT snapshot FROM contracts WHERE tenant_id = $1 AND contract_id = $2', [this.tenant, id], id);
    return r[0]?.snapshot ?? null;
  }

  async history(id: string, page: { afterSeq?: number; limit?: number } = {}): Promise<StoredEvent[]> {
    const rows = await this.query<EventRow>(
      `SELECT seq, line, prev, hash FROM history_events WHERE tenant_id = $1 AND contract_id = $2 AND seq > $3 ORDER BY seq${page.limit === undefined ? '' : ' LIMIT $4'}`,
      page.limit === undefined ? [this.tenant, id, page.afterSeq ?? 0] : [this.tenant, id, page.afterSeq ?? 0, page.limit],
      id,
    );
    return rows.map((r) => ({ line: r.line, event: parseRow(id, r) }));
  }

  async historyTail(id: string, n: number): Promise<StoredEvent[]> {
    const rows = await this.query<EventRow>('SELECT seq, line, prev, hash FROM history_events WHERE tenant_id = $1 AND contract_id = $2 ORDER BY seq DESC LIMIT $3', [this.tenant, id, n], id);
    return rows.reverse().map((r) => ({ line: r.line, event: parseRow(id, r) }));
  }

  async checkChain(id: string): Promise<ChainIssue[]> {
    const rows = await this.query<EventRow>('SELECT seq, line, prev, hash FROM history_events WHERE tenant_id = $1 AND contract_id = $2 ORDER BY seq', [this.tenant, id], id);
    const issues: ChainIssue[] = [];
    const events: HistoryEvent[] = [];
    for (const r of rows) {
      let e: HistoryEvent;
      try {
        e = JSON.parse(r.line) as HistoryEvent;
      } catch {
        issues.push({ seq: Number(r.seq), message: `history row ${r.seq} is not valid JSON` });
        continue;
      }
      if (e.seq !== Number(r.seq) || e.prev !== r.prev || e.hash !== r.hash) issues.push({ seq: Number(r.seq), message: `history row ${r.seq}: its seq, prev or hash column differs from its line` });
      events.push(e);
    }
    return [...issues, ...checkChain(events)];
  }

  async listIndex(page: { after?: string; limit?: number; state?: string } = {}): Promise<IndexRow[]> {
    const params: unknown[] = [this.tenant, page.after ?? ''];
    let sql = 'SELECT contract_id AS id, intent, state, version, updated_at FROM contract_index WHERE tenant_id = $1 AND contract_id > $2';
    if (page.state !== undefined) {
      params.push(page.state);
      sql += ` AND state = $${params.length}`;
    }
    sql += ' ORDER BY contract_id';
    if (page.limit !== undefined) {
      params.push(page.limit);
      sql += ` LIMIT $${params.length}`;
    }
    return this.query<IndexRow>(sql, params);
  }

  async plan(id: string, sha: string): Promise<string | null> {
    const r = await this.query<{ body: string }>('SELECT body FROM plans WHERE tenant_id = $1 AND contract_id = $2 AND sha256 = $3', [this.tenant, id, sha], id);
    return r[0]?.body ?? null;
  }

  async currentPlan(id: string): Promise<string | null> {
    const text = await this.snapshot(id);
    const sha = text === null ? null : (JSON.parse(text) as Contract).plan_sha256;
    return sha ? this.plan(id, sha) : null;
  }

  async dpc(id: string): Promise<string | null> {
    const r = await this.query<{ body: string }>('SELECT body FROM dpc WHERE tenant_id = $1 AND contract_id = $2', [this.tenant, id], id);
    return r[0]?.body ?? null;
  }

  async artifact(path: string): Promise<string | null> {
    const r = await this.query<{ body: string }>('SELECT body FROM artifacts WHERE tenant_id = $1 AND path = $2', [this.tenant, path]);
    return r[0]?.body ?? null;
  }

  async artifacts(prefix: string): Promise<string[]> {
    // LIKE would read _ and % in ids as wildcards: compare the prefix itself.
    const r = await this.query<{ path: string }>('SELECT path FROM artifacts WHERE tenant_id = $1 AND left(path, length($2)) = $2 ORDER BY path', [this.tenant, prefix]);
    return r.map((x) => x.path);
  }
}
