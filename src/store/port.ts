/**
 * The storage port: what the use cases (src/app) and the lanes (src/lanes) need from storage,
 * with two adapters behind it — the local one (files in `.kair/` + `kair.db`, src/store/fs and
 * src/store/sqlite) and PostgreSQL (src/store/pg). docs/decisions/031-storage-port.md gives the
 * reasoning; docs/architecture.md ("The storage port") the overview.
 *
 * Status: the contract side is on the port (decision 032). The use cases reach contracts only
 * through `ContractStore` (`await ctx.storage()`): the local adapter is src/store/fs/adapter.ts
 * (reads; bundled with the read path) + adapter-write.ts (mutate/create/load, served from the
 * lifecycle bundle), the PostgreSQL one src/store/pg/event-store.ts; src/store/open.ts picks one
 * from the config. Still direct, for the next steps: the lanes' SQLite (ExecutionStore), `verify`,
 * `head`, `unlock`, temp sweeping, the run loop's run artifacts and run-request reads, signature
 * checks' history reads, and `rollback --dry-run`. The table below is the map from each function
 * the use cases and lanes imported from src/store to the port member that replaces it.
 *
 * | today (src/store/…)                                            | port                                   |
 * |-----------------------------------------------------------------|----------------------------------------|
 * | fs/contracts assertContract, contractExists                     | ContractStore.exists                    |
 * | fs/contracts loadContract (read-only display), readJsonFile of contract.json | ContractStore.read, ContractStore.snapshot |
 * | fs/writer-load loadForWrite, checkpointSeqs; fs/history lastEvent, readHistoryTail, truncateTorn | ContractStore.load; inside ContractStore.mutate (the boundary's `contract`; torn lines do not exist in PG) |
 * | fs/lock acquireLock/withLock(contractLock), fs/chain passFence  | inside ContractStore.mutate (the lock; the fence is the unique seq) |
 * | fs/contract-writes appendToHistory, writeSnapshot, updateIndex, commitEvents | ContractStore.mutate (Boundary.append; snapshot + index row in the same commit) |
 * | fs/contract-writes createContract (+ PROPOSE_LOCK)               | ContractStore.create                    |
 * | fs/history readHistory; fs/chain checkChain                       | ContractStore.history, ContractStore.checkChain |
 * | fs/contracts readIndex, rebuildIndexEntries, listContractIds, indexEntry | ContractStore.listIndex           |
 * | paths.planBySha / paths.plan + writeFileAtomicSync (plan by sha, plan_v1.json) | Boundary.putPlan, ContractStore.plan, ContractStore.currentPlan |
 * | paths.dpc + writeJsonAtomic                                      | Boundary.putDpc, ContractStore.dpc      |
 * | paths.runs/… + writeFileAtomicSync, writeText (run requests, results, latest copies) | Boundary.putArtifact, ContractStore.artifact, ContractStore.artifacts |
 * | fs/temp sweepTemps, listDir, isTempName                          | local adapter only (PG has no temp files) |
 * | fs/lock INDEX_LOCK, breakLock, lockHolder, lockBusy (kair unlock) | local adapter only; PG: pg_locks / pg_terminate_backend via an admin command |
 * | fs/pid runnerVerdict, selfIdentity, isPidAlive (run liveness)     | RunnerLiveness (PG: a session advisory lock held for the run) |
 * | sqlite/db openDb + `db.prepare(sql).run/get/all` in lanes/aec/*, lanes/kimi/*, app/head-sqlite, verify-db | ExecutionStore.sql (SqlExecutor), one transaction per boundary |
 * | sqlite/chain insertChained, checkChainTable, rowSha, envelopeAnchors, stepAnchors, CHAINS, ANCHORED_TABLES | unchanged logic over ExecutionStore.sql (dialect-neutral SQL) |
 * | fs/workspace findWorkspace, loadConfig, paths, rel, workspaceAt   | stay local: the config and `.kair/` folder name the backend |
 * | fs/input readInputFile, readStdinText, quotedPath                 | not storage: stay as they are           |
 * | fs/atomic jsonText; fs/chain sealEvent, checkChain…; indexEntry    | src/domain/chain.ts (moved: the same on both backends) |
 */
import type { IndexEntry } from '../domain/chain.js';
import type { Contract, EventDraft, HistoryEvent } from '../domain/contract.js';

/** An index row: what `list` shows (the local `contracts/index.json` entry). */
export type IndexRow = IndexEntry;

/** Who writes, for lock holder records and history: the local adapter records them in its lock. */
export interface WriteMeta {
  at: string;
  actor: string;
  command: string;
}

/** A history line as stored: the exact text (no trailing newline) and the event it parses to. */
export interface StoredEvent {
  line: string;
  event: HistoryEvent;
}

export interface ChainIssue {
  seq: number;
  message: string;
}

/**
 * One §8.7 boundary (a whole command, or one step boundary of a run): everything it writes
 * commits together or not at all. On the local backend the commit point is the history append
 * and the rest is derived (repaired by the next writer); on PostgreSQL it is one transaction.
 */
export interface Boundary {
  /** The state decided on: folded from history (never from the snapshot), chain checked. */
  readonly contract: Contract;
  /**
   * Seals `drafts` after the current head (checkpoint events inserted where seq reaches a
   * multiple of 64) and returns the sealed events; `contract` moves on. May be called more
   * than once (repairs, then the decision).
   */
  append(drafts: EventDraft[]): Promise<HistoryEvent[]>;
  /**
   * The plan kept by sha (`text`, its canonical JSON: immutable, the same sha with other text is
   * INTEGRITY_FAILED) and, locally, `copy` as the current plan's display copy (plan_v1.json).
   * Call it before appending the event that names the sha: locally the kept file is durable
   * before the event (and a first plan's copy too), a later plan's copy is written after the
   * commit point, as what history derives.
   */
  putPlan(sha: string, text: string, copy?: string): Promise<void>;
  /**
   * `dpc/dpc_v1.json`, the current text: derived from the `dpc` event that records its sha, so
   * locally it is written after the commit point (a failure is a warning, never the outcome).
   */
  putDpc(text: string): Promise<void>;
  /** An artifact under its local workspace-relative path (e.g. `.kair/contracts/c1/artifacts/run/c1-run-1/run-result.1.json`), durable before an event names it. */
  putArtifact(path: string, text: string): Promise<void>;
}

/** What a crashed run's repair did on the execution side (the Kimi envelopes it cancelled). */
export interface CancelledRun {
  ids: string[];
  rows: unknown[];
}

export interface MutateRequest<T> {
  /**
   * Decides on the boundary's contract and appends through it. A thrown error rolls the whole
   * boundary back — except the `gate.blocked` event of an exit-3 refusal, which `onRefusal`
   * appends in its own commit.
   */
  decide: (b: Boundary) => Promise<T>;
  /** Called with the refusal when `decide` throws a gate refusal: appends the gate.blocked event in its own commit. */
  onRefusal?: (b: Boundary, e: unknown) => Promise<void>;
  /** --lock-timeout: how long to wait for the contract's writer lock (LOCK_BUSY after it). */
  lockTimeoutMs: number;
  /** The head the caller decided on outside the lock (plan --generate): anything else is CONCURRENT_WRITE. */
  expectTail?: { seq: number; hash: string };
  /**
   * The command appends again under a later mutate (a run's start and step boundaries): locally
   * the snapshot and the index entry are written once, after the last one (decision 029).
   * PostgreSQL writes them in every transaction (they cost no fsync there).
   */
  checkpointsLater?: boolean;
  /**
   * Repairs of a contract whose runner died: the execution side's open Kimi envelopes of the
   * run are cancelled first (an execution-side action the contract store does not know), then
   * the `recovery` event that reports them is appended. Absent: a dead runner is left as it is.
   */
  cancelRun?: (runId: string, at: string) => Promise<CancelledRun>;
  /** Reports what does not change the outcome: a derived file not written after the commit point. */
  warn?: (message: string) => void;
  meta: WriteMeta;
}

export interface Mutation<T> {
  contract: Contract;
  /** Every event this boundary appended: repairs, the decision's, a refusal's gate.blocked. */
  events: HistoryEvent[];
  result: T;
}

export interface CreateRequest {
  /**
   * The id, or how to choose a free one; the choice runs where two creators cannot pick the
   * same id (locally under the propose lock; on PostgreSQL a taken id is chosen again).
   */
  id: string | ((taken: (id: string) => Promise<boolean>) => Promise<string>);
  /** The contract's first events (its `propose` event first), for the chosen id. */
  drafts: (id: string) => EventDraft[];
  /** `dpc/dpc_v1.json`'s first text. */
  dpcText: string;
  lockTimeoutMs: number;
  warn?: (message: string) => void;
  meta: WriteMeta;
}

/** The contract side: contracts, their history, plans by sha, DPC, artifacts and the index. */
export interface ContractStore {
  exists(id: string): Promise<boolean>;
  /**
   * Creates a contract whole or not at all (its events, snapshot, index row, DPC).
   * CONTRACT_EXISTS when a given id is taken.
   */
  create(req: CreateRequest): Promise<{ contract: Contract; events: HistoryEvent[] }>;
  /** One boundary under the contract's writer lock. CONTRACT_NOT_FOUND when there is no such contract. */
  mutate<T>(id: string, req: MutateRequest<T>): Promise<Mutation<T>>;
  /** The state folded from history (chain checked from the newest valid checkpoint); no lock. */
  load(id: string): Promise<Contract>;
  /**
   * The state for display (status, show, the read commands): locally the snapshot rolled forward
   * from history, no chain check and no lock; CONTRACT_NOT_FOUND when there is no such contract.
   */
  read(id: string): Promise<Contract>;
  /** The stored snapshot text, for read-only display (may lag history on the local backend). */
  snapshot(id: string): Promise<string | null>;
  /** History lines with seq > afterSeq, at most `limit` (all when absent), in seq order. */
  history(id: string, page?: { afterSeq?: number; limit?: number }): Promise<StoredEvent[]>;
  /** The last `n` events (`history --limit N`). */
  historyTail(id: string, n: number): Promise<StoredEvent[]>;
  /** Walks the whole chain: seq order, prev links, hashes, and stored columns = the line. */
  checkChain(id: string): Promise<ChainIssue[]>;
  /** Index rows ordered by id, after `after` (exclusive), at most `limit`. */
  listIndex(page?: { after?: string; limit?: number; state?: string }): Promise<IndexRow[]>;
  /** The plan kept by `sha`. */
  plan(id: string, sha: string): Promise<string | null>;
  /**
   * The current plan as the workspace shows it: locally plan/plan_v1.json, the derived copy a
   * person can open and edit (which is why `run` and `approve` hash it: an edited copy is a
   * stale plan); on PostgreSQL the plan of the snapshot's sha.
   */
  currentPlan(id: string): Promise<string | null>;
  dpc(id: string): Promise<string | null>;
  artifact(path: string): Promise<string | null>;
  /** Paths of the artifacts under a prefix (`kair artifacts <id> --out DIR` writes them out). */
  artifacts(prefix: string): Promise<string[]>;
}

/**
 * The execution side, for the lanes. The lanes' SQL is plain SQL over the tables of
 * src/store/sqlite/db.ts with `?` parameters; the PostgreSQL adapter (src/store/pg/sql-executor.ts)
 * runs the same statements through src/store/pg/dialect.ts (placeholders `?` → `$n`,
 * `INSERT OR REPLACE` → `ON CONFLICT … DO UPDATE`, `INSERT OR IGNORE` → `ON CONFLICT DO NOTHING`,
 * and the workspace's tenant on every row written and read, without the lanes naming it: decision 035).
 * Statements that only SQLite understands (pragma, sqlite_master, sqlite_sequence) are sent only
 * when `dialect` is 'sqlite'.
 */
export interface SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  all<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  get<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R | undefined>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
  /**
   * Serialises the appends to one hash chain until the transaction ends: call it before reading
   * the chain head (`key` = the values of the chain's key columns, CHAINS in sqlite/chain.ts).
   * SQLite: nothing to do (the transaction is BEGIN IMMEDIATE, which already serialises every
   * writer). PostgreSQL: `pg_advisory_xact_lock` on ("kair:chain", tenant, table, key); a table
   * whose integer ids are shared by several chains (the AEC ledger: ids per tenant, chains per
   * contract) is locked as a whole, since two chains' writers would otherwise pick the same id.
   */
  lockChain(table: string, key: readonly unknown[]): Promise<void>;
}

export interface ExecutionStore {
  /**
   * Runs `fn` in one transaction (one §8.7 boundary: the claim commits before the executor runs).
   * Called again inside `fn` it nests (a savepoint). A thrown error rolls the transaction back.
   */
  transaction<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Optional: a transaction that only reads and must not wait for or hold back writers (SQLite: a
   * deferred BEGIN, where `transaction` is BEGIN IMMEDIATE). Without it, `readOnly` uses `transaction`.
   */
  read?<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T>;
}

/** A read-only transaction: the store's `read` where it has one, else `transaction`. */
export function readOnly<T>(store: ExecutionStore, fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
  return store.read ? store.read(fn) : store.transaction(fn);
}

/**
 * Whether a run's runner is alive. Local: `{host, boot_id, pid, pid_start}` in `run.started`
 * and the pid rules. PostgreSQL: a session advisory lock on the run, held for the whole run on
 * the runner's connection; it is released by the server when the runner's session ends, so any
 * machine can tell a dead runner (the lock is free) from a live one.
 */
export interface RunnerLiveness {
  /** Takes the run's liveness lock; resolves to a release function. */
  hold(runId: string): Promise<() => Promise<void>>;
  /** 'alive' when another session holds the run's lock, 'dead' when nobody does. */
  verdict(runId: string): Promise<'alive' | 'dead'>;
}

export interface StoragePort {
  readonly kind: 'local' | 'postgres';
  readonly contracts: ContractStore;
  readonly execution?: ExecutionStore;
  readonly liveness?: RunnerLiveness;
  close(): Promise<void>;
}
