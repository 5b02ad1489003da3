/**
 * The SQLite connection (`.kair/kair.db`) and its numbered, forward-only migrations.
 *
 * better-sqlite3 is required only when a database is opened, so any command may import this
 * module for free. The built CLI bundles its JavaScript and names the native addon's path
 * (scripts/build.mjs): resolving and compiling the package's files and the `bindings` search
 * cost more than the rest of opening a database.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import { kairError } from '../../domain/errors.js';
import { crossAnchoring } from './anchoring-migration.js';
import { sloWaivers } from './slo-migration.js';
import { accessPolicyRemoved } from './config-log-migration.js';
import { chainIntakeAndPolicyVersions } from './intake-policy-chains-migration.js';

export type Db = Database.Database;

declare const __filename: string | undefined;
declare const __KAIR_BUNDLED__: boolean | undefined;
declare const require: NodeJS.Require;
let loaded: { ctor: typeof Database; nativeBinding?: string } | undefined;
function loadDatabase(): { ctor: typeof Database; nativeBinding?: string } {
  if (loaded) return loaded;
  if (typeof __KAIR_BUNDLED__ === 'boolean') {
    // The addon stays in the installed package; its `bindings` lookup would search from the
    // bundle's folder instead, so it gets the path. Any other layout uses the package whole.
    const addon = join(dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node');
    if (existsSync(addon)) return (loaded = { ctor: require('better-sqlite3') as typeof Database, nativeBinding: addon });
  }
  // In the CJS bundle __filename is defined; under the ESM test runner import.meta.url is.
  const external = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
  return (loaded = { ctor: external('better-sqlite3') as typeof Database });
}

export interface Migration {
  /** 1, 2, 3… in order, never reused or renumbered once released. */
  id: number;
  name: string;
  /** Runs inside the migration's BEGIN IMMEDIATE transaction; must not open its own. */
  up(db: Db, now: string): void;
}

const KIMI_ENVELOPES_SQL = `
CREATE TABLE execution_envelopes (
  id              TEXT PRIMARY KEY,
  contract_id     TEXT NOT NULL,
  run_id          TEXT NOT NULL,
  plan_sha256     TEXT NOT NULL,
  actor           TEXT NOT NULL,
  provider        TEXT NOT NULL DEFAULT 'kimi' CHECK (provider = 'kimi'),
  max_cost_micros INTEGER NOT NULL CHECK (max_cost_micros >= 0),
  max_agents      INTEGER NOT NULL CHECK (max_agents > 0),
  max_runtime_sec INTEGER NOT NULL CHECK (max_runtime_sec > 0),
  allowed_scopes  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(allowed_scopes) AND json_type(allowed_scopes) = 'array'),
  status          TEXT NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);
CREATE INDEX execution_envelopes_contract_id ON execution_envelopes(contract_id);
CREATE INDEX execution_envelopes_run_id ON execution_envelopes(run_id);

-- runtime_sec is not in SPEC's column list: without it a reused envelope could not give back
-- the seed's result.runtimeSec.
CREATE TABLE kimi_execution_runs (
  id          TEXT PRIMARY KEY,
  envelope_id TEXT NOT NULL REFERENCES execution_envelopes(id),
  provider    TEXT NOT NULL,
  started_at  TEXT NOT NULL,
  finished_at TEXT,
  tokens_used INTEGER CHECK (tokens_used >= 0),
  cost_micros INTEGER CHECK (cost_micros >= 0),
  runtime_sec INTEGER CHECK (runtime_sec >= 0),
  status      TEXT NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  summary     TEXT,
  CHECK (status = 'RUNNING' OR finished_at IS NOT NULL),
  CHECK (status <> 'COMPLETED' OR (tokens_used IS NOT NULL AND cost_micros IS NOT NULL AND runtime_sec IS NOT NULL))
);
CREATE INDEX kimi_execution_runs_envelope_id ON kimi_execution_runs(envelope_id);

-- Execution records are evidence: the per-contract spend cap sums COMPLETED runs, so rows are
-- never deleted, limits never change, and statuses only move forward.
CREATE TRIGGER execution_envelopes_no_delete BEFORE DELETE ON execution_envelopes
BEGIN SELECT RAISE(ABORT, 'execution_envelopes rows are never deleted'); END;

CREATE TRIGGER execution_envelopes_update BEFORE UPDATE ON execution_envelopes
WHEN NOT (
       (OLD.status = 'PENDING' AND NEW.status IN ('RUNNING', 'FAILED', 'CANCELLED'))
    OR (OLD.status = 'RUNNING' AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED'))
  )
  OR NEW.id IS NOT OLD.id OR NEW.contract_id IS NOT OLD.contract_id OR NEW.run_id IS NOT OLD.run_id
  OR NEW.plan_sha256 IS NOT OLD.plan_sha256 OR NEW.actor IS NOT OLD.actor OR NEW.provider IS NOT OLD.provider
  OR NEW.max_cost_micros IS NOT OLD.max_cost_micros OR NEW.max_agents IS NOT OLD.max_agents
  OR NEW.max_runtime_sec IS NOT OLD.max_runtime_sec OR NEW.allowed_scopes IS NOT OLD.allowed_scopes
  OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'invalid execution_envelopes update'); END;

CREATE TRIGGER kimi_execution_runs_no_delete BEFORE DELETE ON kimi_execution_runs
BEGIN SELECT RAISE(ABORT, 'kimi_execution_runs rows are never deleted'); END;

CREATE TRIGGER kimi_execution_runs_update BEFORE UPDATE ON kimi_execution_runs
WHEN OLD.status <> 'RUNNING' OR NEW.status NOT IN ('COMPLETED', 'FAILED')
  OR NEW.id IS NOT OLD.id OR NEW.envelope_id IS NOT OLD.envelope_id OR NEW.provider IS NOT OLD.provider
  OR NEW.started_at IS NOT OLD.started_at
BEGIN SELECT RAISE(ABORT, 'invalid kimi_execution_runs update'); END;
`;

// AEC catalog and access policy (SPEC §9.1, §9.5). `definition` is the validated
// `sim register` document as JSON; every policy change appends a version row, and the policy
// snapshot version is max(version) (0 when there is none).
const AEC_CATALOG_ACCESS_SQL = `
CREATE TABLE simulations (
  id            TEXT PRIMARY KEY,
  definition    TEXT NOT NULL CHECK (json_valid(definition) AND json_type(definition) = 'object'),
  status        TEXT NOT NULL CHECK (status IN ('Draft', 'Active', 'Deprecated', 'Disabled')),
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  registered_by TEXT NOT NULL
);

CREATE TRIGGER simulations_no_delete BEFORE DELETE ON simulations
BEGIN SELECT RAISE(ABORT, 'simulations rows are never deleted'); END;

CREATE TRIGGER simulations_update BEFORE UPDATE ON simulations
WHEN NEW.id IS NOT OLD.id OR NEW.definition IS NOT OLD.definition OR NEW.created_at IS NOT OLD.created_at
  OR NEW.registered_by IS NOT OLD.registered_by
BEGIN SELECT RAISE(ABORT, 'only the status of a simulation changes'); END;

CREATE TABLE access_policy (
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  decision   TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'require-ap')),
  updated_at TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  PRIMARY KEY (actor, action)
);

CREATE TABLE access_policy_versions (
  version    INTEGER PRIMARY KEY AUTOINCREMENT,
  changed_at TEXT NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  decision   TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'require-ap'))
);

CREATE TRIGGER access_policy_versions_append_only_update BEFORE UPDATE ON access_policy_versions
BEGIN SELECT RAISE(ABORT, 'access_policy_versions is append-only'); END;
CREATE TRIGGER access_policy_versions_append_only_delete BEFORE DELETE ON access_policy_versions
BEGIN SELECT RAISE(ABORT, 'access_policy_versions is append-only'); END;
`;

// The AEC ledgers (SPEC §9.3–§9.6, §14 "AEC details"). Every table here is append-only but
// agent_execution_current, which is a projection rebuilt from agent_execution_ledger by one SQL
// definition (lanes/aec/ledger.ts). The unique index makes a claim or an outcome of one attempt
// of one key impossible to record twice; HALTED and REPLAYED rows (decisions that dispatch
// nothing) may repeat, so the index leaves them out.
const AEC_LEDGERS_SQL = `
CREATE TABLE aec_refs (
  ref        TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  body       TEXT NOT NULL CHECK (json_valid(body)),
  created_at TEXT NOT NULL
);

CREATE TABLE agent_execution_access_decision_ledger (
  id                      INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id               TEXT NOT NULL,
  correlation_id          TEXT NOT NULL,
  run_id                  TEXT NOT NULL,
  step_id                 TEXT NOT NULL,
  actor                   TEXT NOT NULL,
  action                  TEXT NOT NULL,
  decision                TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'require-ap')),
  rule                    TEXT CHECK (rule IS NULL OR json_valid(rule)),
  policy_snapshot_version INTEGER NOT NULL CHECK (policy_snapshot_version >= 0),
  checked_by              TEXT NOT NULL CHECK (checked_by IN ('precheck', 'executor')),
  created_at              TEXT NOT NULL
);

CREATE TABLE agent_execution_confirmation_ledger (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id      TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  run_id         TEXT NOT NULL,
  step_id        TEXT NOT NULL,
  actor          TEXT NOT NULL,
  lexicon        TEXT NOT NULL,
  lang           TEXT NOT NULL,
  token          TEXT NOT NULL,
  normalized     TEXT NOT NULL,
  result         TEXT NOT NULL CHECK (result IN ('affirmative', 'negative', 'ambiguous')),
  source         TEXT NOT NULL CHECK (source IN ('flag', 'prompt')),
  proof_ref      TEXT NOT NULL,
  created_at     TEXT NOT NULL
);

CREATE TABLE agent_execution_ledger (
  row_id                          INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id                       TEXT NOT NULL,
  plan_id                         TEXT NOT NULL,
  correlation_id                  TEXT NOT NULL,
  contract_id                     TEXT NOT NULL,
  run_id                          TEXT NOT NULL,
  step_id                         TEXT NOT NULL,
  simulation_id                   TEXT,
  required_fields_fingerprint     TEXT,
  idempotency_key                 TEXT NOT NULL,
  attempt                         INTEGER NOT NULL CHECK (attempt >= 1),
  event                           TEXT NOT NULL CHECK (event IN ('HALTED', 'CLAIMED', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'REPLAYED')),
  reason_code                     TEXT NOT NULL,
  actor                           TEXT NOT NULL,
  finder_packet_ref               TEXT NOT NULL,
  catalog_snapshot_ref            TEXT NOT NULL,
  policy_snapshot_ref             TEXT,
  artifact_fingerprint_bundle_ref TEXT,
  access_decision_id              INTEGER REFERENCES agent_execution_access_decision_ledger(id),
  confirmation_id                 INTEGER REFERENCES agent_execution_confirmation_ledger(id),
  confirmation_proof_ref          TEXT,
  rollback_plan_ref               TEXT,
  dispatch_envelope_ref           TEXT,
  decision_ref                    TEXT NOT NULL,
  dispatch_decision_hash          TEXT NOT NULL,
  outcome                         TEXT CHECK (outcome IS NULL OR json_valid(outcome)),
  latency_us                      INTEGER CHECK (latency_us IS NULL OR latency_us >= 0),
  created_at                      TEXT NOT NULL
);
CREATE UNIQUE INDEX agent_execution_ledger_idempotency
  ON agent_execution_ledger (tenant_id, correlation_id, step_id, idempotency_key, attempt, event)
  WHERE event NOT IN ('HALTED', 'REPLAYED');
CREATE INDEX agent_execution_ledger_step ON agent_execution_ledger (tenant_id, correlation_id, step_id, row_id);
CREATE INDEX agent_execution_ledger_run ON agent_execution_ledger (run_id, row_id);
CREATE INDEX agent_execution_ledger_replay ON agent_execution_ledger (tenant_id, correlation_id, created_at);

CREATE TABLE agent_execution_current (
  tenant_id         TEXT NOT NULL,
  correlation_id    TEXT NOT NULL,
  step_id           TEXT NOT NULL,
  plan_id           TEXT NOT NULL,
  contract_id       TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  simulation_id     TEXT,
  idempotency_key   TEXT NOT NULL,
  attempt           INTEGER NOT NULL,
  status            TEXT NOT NULL,
  reason_code       TEXT NOT NULL,
  success_row_id    INTEGER,
  last_row_id       INTEGER NOT NULL,
  rows              INTEGER NOT NULL,
  updated_at        TEXT NOT NULL,
  PRIMARY KEY (tenant_id, correlation_id, step_id)
);
CREATE INDEX agent_execution_current_plan ON agent_execution_current (tenant_id, plan_id, step_id);

CREATE TABLE dev_intake (
  id             TEXT PRIMARY KEY,
  tenant_id      TEXT NOT NULL,
  contract_id    TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  run_id         TEXT NOT NULL,
  step_id        TEXT NOT NULL,
  utterance      TEXT NOT NULL,
  fields         TEXT NOT NULL CHECK (json_valid(fields)),
  lang           TEXT NOT NULL,
  finder_packet_ref TEXT NOT NULL,
  actor          TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  UNIQUE (tenant_id, correlation_id, step_id, utterance)
);
` + ['aec_refs', 'agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger', 'agent_execution_ledger', 'dev_intake']
  .map(
    (t) => `
CREATE TRIGGER ${t}_no_update BEFORE UPDATE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;
CREATE TRIGGER ${t}_no_delete BEFORE DELETE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;`,
  )
  .join('');

/** Append only. A released migration is never edited: fix forward with a new one. */
export const MIGRATIONS: readonly Migration[] = [
  { id: 1, name: 'kimi_envelopes', up: (db) => db.exec(KIMI_ENVELOPES_SQL) },
  { id: 2, name: 'aec_catalog_access', up: (db) => db.exec(AEC_CATALOG_ACCESS_SQL) },
  { id: 3, name: 'aec_ledgers', up: (db) => db.exec(AEC_LEDGERS_SQL) },
  { id: 4, name: 'cross_anchoring', up: crossAnchoring },
  { id: 5, name: 'slo_waivers', up: sloWaivers },
  { id: 6, name: 'access_policy_removed', up: accessPolicyRemoved },
  { id: 7, name: 'chain_intake_policy_versions', up: chainIntakeAndPolicyVersions },
];

const MIGRATIONS_TABLE_SQL = 'CREATE TABLE IF NOT EXISTS migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)';

export interface OpenDbOptions {
  /** Path to better_sqlite3.node when bundled (loads in ~1 ms instead of searching). */
  nativeBinding?: string;
  /** Clock for `migrations.applied_at`; defaults to the system clock. */
  now?: () => string;
  /** The migrations to apply; tests pass their own list. Defaults to MIGRATIONS. */
  migrations?: readonly Migration[];
}

export const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens (creating if needed) the database, sets the connection pragmas and applies pending
 * migrations. Safe for several processes opening the same file at once.
 */
export function openDb(file: string, opts: OpenDbOptions = {}): Db {
  const inMemory = file === ':memory:' || file === '';
  if (!inMemory) mkdirSync(dirname(file), { recursive: true });
  const { ctor, nativeBinding } = loadDatabase();
  const binding = opts.nativeBinding ?? nativeBinding;
  const db = new ctor(file, { timeout: BUSY_TIMEOUT_MS, ...(binding ? { nativeBinding: binding } : {}) });
  try {
    // busy_timeout first: switching to WAL and migrating take locks another process may hold.
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Switching a fresh file to WAL needs an exclusive lock; when another process holds a lock
    // at that instant SQLite may answer with the current mode instead of waiting, so retry.
    // It may also throw SQLITE_BUSY outright: this pragma does not go through the busy handler.
    const switchToWal = (): unknown => {
      try {
        return db.pragma('journal_mode = WAL', { simple: true });
      } catch (e) {
        if ((e as { code?: string }).code === 'SQLITE_BUSY') return 'busy';
        throw e;
      }
    };
    let mode = switchToWal();
    for (const deadline = Date.now() + BUSY_TIMEOUT_MS; !inMemory && mode !== 'wal' && Date.now() < deadline; ) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      mode = switchToWal();
    }
    if (!inMemory && mode !== 'wal') {
      throw kairError('INTERNAL_ERROR', `${file}: SQLite refused WAL mode (journal_mode is ${String(mode)}); is it on a network filesystem?`, { file });
    }
    // FULL, not NORMAL. In WAL mode NORMAL survives a killed process but may lose the last
    // commits on power loss or an OS crash. kair commits SQLite first and then appends (and
    // fsyncs) the history event that reports it, and the per-contract spend cap sums the
    // COMPLETED rows; with NORMAL a power cut could keep the fsynced event while losing the
    // row it describes, under-counting spend. FULL fsyncs the WAL on each commit, which costs
    // one fsync per commit and kair makes only a few commits per command.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db, opts.migrations ?? MIGRATIONS, opts.now ?? (() => new Date().toISOString()));
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export interface AppliedMigration {
  id: number;
  name: string;
  applied_at: string;
}

export function appliedMigrations(db: Db): AppliedMigration[] {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'").get();
  if (!exists) return [];
  return db.prepare('SELECT id, name, applied_at FROM migrations ORDER BY id').all() as AppliedMigration[];
}

function assertWellFormed(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.id !== i + 1) throw new Error(`migration ${JSON.stringify(m.name)} has id ${m.id}; ids must be 1, 2, 3… in order`);
  });
}

/**
 * Applies each pending migration in its own BEGIN IMMEDIATE transaction. The write lock is
 * taken before the "already applied?" re-check, so when two processes open a fresh file at
 * once the second waits (busy_timeout), then sees the row and skips. Returns the ids applied
 * by this call.
 */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS, now: () => string = () => new Date().toISOString()): number[] {
  assertWellFormed(migrations);
  const applied = new Set(appliedMigrations(db).map((m) => m.id));
  const newest = Math.max(0, ...applied);
  if (newest > migrations.length) {
    throw kairError(
      'INTERNAL_ERROR',
      `the database schema is at migration ${newest} but this kair knows only ${migrations.length}; a newer kair wrote it — upgrade kair`,
      { schema_version: newest, known: migrations.length },
    );
  }
  const ran: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.id)) continue;
    const didRun = db
      .transaction(() => {
        db.exec(MIGRATIONS_TABLE_SQL);
        if (db.prepare('SELECT 1 FROM migrations WHERE id = ?').get(m.id)) return false;
        const at = now();
        m.up(db, at);
        db.prepare('INSERT INTO migrations (id, name, applied_at) VALUES (?, ?, ?)').run(m.id, m.name, at);
        return true;
      })
      .immediate();
    if (didRun) ran.push(m.id);
  }
  return ran;
}
