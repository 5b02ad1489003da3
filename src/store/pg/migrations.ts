/**
 * The PostgreSQL schema: numbered, forward-only migrations, applied under a session advisory lock
 * so that two processes migrating a fresh database at once do not race (one applies, the other
 * waits for the lock, then finds the rows in `schema_migrations` and skips them).
 *
 * Every table carries `tenant_id` (the workspace_id): many workspaces share one database.
 * History lines, snapshots, plans, DPC and artifacts are stored as the exact text the local
 * backend writes, never as jsonb (jsonb re-orders keys and drops duplicates: the bytes, and so
 * the hashes, would change). The execution side is src/store/sqlite/db.ts's schema after all of
 * its migrations, translated: same columns (plus tenant_id where the local table has none), same
 * CHECKs, the same append-only and forward-only triggers, and the AEC unique index that allows at
 * most one claim or outcome per key and attempt — here across every machine sharing the database.
 *
 * A released migration is never edited: fix forward with a new one.
 */
import { createHash } from 'node:crypto';
import { kairError } from '../../domain/errors.js';
import type { ConnectOptions, PgClient, PgConnection, PgTarget } from './connect.js';
import { connectPg, mapPgError, quoteIdent as q } from './connect.js';
import { WORKSPACES_SQL } from './config-store.js';

export interface PgMigration {
  id: number;
  name: string;
  sql: string;
}

/** A 64-bit advisory lock key from names (PostgreSQL takes a signed bigint). */
export function lockKey(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  return h.readBigInt64BE(0).toString();
}

/** pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low 32 bits), objsubid 1. */
export function lockParts(key: string): { classid: string; objid: string } {
  const k = BigInt.asUintN(64, BigInt(key));
  return { classid: (k >> 32n).toString(), objid: (k & 0xffffffffn).toString() };
}

const FUNCTIONS_SQL = `
CREATE FUNCTION kair_is_json(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  PERFORM t::jsonb;
  RETURN true;
EXCEPTION WHEN others THEN
  RETURN false;
END $$;

CREATE FUNCTION kair_json_type(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT jsonb_typeof(t::jsonb) $$;

-- RAISE with the table's name, as the SQLite triggers do.
CREATE FUNCTION kair_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
`;

const appendOnly = (t: string) => `
CREATE TRIGGER ${t}_no_update BEFORE UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION kair_append_only();
CREATE TRIGGER ${t}_no_delete BEFORE DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION kair_append_only();
CREATE TRIGGER ${t}_no_truncate BEFORE TRUNCATE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION kair_append_only();`;

// The contract side: what a local workspace keeps under .kair/contracts/.
const CONTRACTS_SQL = `
CREATE TABLE contracts (
  tenant_id    text   NOT NULL,
  contract_id  text   NOT NULL CHECK (contract_id ~ '^[a-z0-9][a-z0-9_-]{0,79}$'),
  snapshot     text   NOT NULL,            -- contract.json, exact text
  history_seq  bigint NOT NULL CHECK (history_seq >= 1),
  history_head text   NOT NULL,
  PRIMARY KEY (tenant_id, contract_id)
);

-- history.jsonl: one row per line. (tenant_id, contract_id, seq) is unique, so two writers can
-- never both append one seq: a chain cannot fork even if the advisory lock were bypassed.
CREATE TABLE history_events (
  tenant_id   text   NOT NULL,
  contract_id text   NOT NULL,
  seq         bigint NOT NULL CHECK (seq >= 1),
  type        text   NOT NULL,
  line        text   NOT NULL,             -- the exact line, without its newline
  prev        text   NOT NULL CHECK (length(prev) = 64),
  hash        text   NOT NULL CHECK (length(hash) = 64),
  PRIMARY KEY (tenant_id, contract_id, seq),
  FOREIGN KEY (tenant_id, contract_id) REFERENCES contracts (tenant_id, contract_id) DEFERRABLE INITIALLY DEFERRED
);
${appendOnly('history_events')}

-- checkpoints/<through_seq>.json: canonical state folded through that event.
CREATE TABLE checkpoints (
  tenant_id    text   NOT NULL,
  contract_id  text   NOT NULL,
  through_seq  bigint NOT NULL CHECK (through_seq >= 1),
  state        text   NOT NULL,
  PRIMARY KEY (tenant_id, contract_id, through_seq)
);
${appendOnly('checkpoints')}

-- plan/<sha>.json: the canonical JSON of each validated plan, kept by its sha.
CREATE TABLE plans (
  tenant_id   text NOT NULL,
  contract_id text NOT NULL,
  sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  body        text NOT NULL,
  PRIMARY KEY (tenant_id, contract_id, sha256)
);
${appendOnly('plans')}

-- dpc/dpc_v1.json: the current text (derived from the dpc-writing events).
CREATE TABLE dpc (
  tenant_id   text NOT NULL,
  contract_id text NOT NULL,
  body        text NOT NULL,
  PRIMARY KEY (tenant_id, contract_id)
);

-- Every other file under .kair/contracts/<id>/ (plan_v1.json, PLAN.md, run requests and results,
-- latest copies), keyed by its workspace-relative path as the local backend lays it out.
CREATE TABLE artifacts (
  tenant_id   text NOT NULL,
  path        text NOT NULL CHECK (path LIKE '.kair/%' AND path NOT LIKE '%..%'),
  contract_id text NOT NULL,
  body        text NOT NULL,
  sha256      text NOT NULL,
  PRIMARY KEY (tenant_id, path)
);
CREATE INDEX artifacts_contract ON artifacts (tenant_id, contract_id, path);

-- contracts/index.json: one row per contract (rewritten in the same transaction as its events,
-- so on this backend it never lags).
CREATE TABLE contract_index (
  tenant_id   text    NOT NULL,
  contract_id text    NOT NULL,
  intent      text    NOT NULL,
  state       text    NOT NULL,
  version     integer NOT NULL,
  updated_at  text    NOT NULL,
  PRIMARY KEY (tenant_id, contract_id)
);
CREATE INDEX contract_index_state ON contract_index (tenant_id, state, contract_id);
`;

// The execution side: .kair/kair.db after its seven migrations, per tenant. Tables the lanes
// read in insertion order (SQLite's implicit rowid: `ORDER BY rowid`) get an explicit `rowid`
// column, so that SQL runs unchanged; like tenant_id where SQLite has none, it is left out of a
// row's canonical JSON (decision 031).
const EXECUTION_SQL = `
CREATE TABLE execution_envelopes (
  tenant_id       text    NOT NULL,
  id              text    NOT NULL,
  contract_id     text    NOT NULL,
  run_id          text    NOT NULL,
  plan_sha256     text    NOT NULL,
  actor           text    NOT NULL,
  provider        text    NOT NULL DEFAULT 'kimi' CHECK (provider = 'kimi'),
  max_cost_micros bigint  NOT NULL CHECK (max_cost_micros >= 0),
  max_agents      integer NOT NULL CHECK (max_agents > 0),
  max_runtime_sec integer NOT NULL CHECK (max_runtime_sec > 0),
  allowed_scopes  text    NOT NULL DEFAULT '[]' CHECK (kair_is_json(allowed_scopes) AND kair_json_type(allowed_scopes) = 'array'),
  status          text    NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
  created_at      text    NOT NULL,
  updated_at      text    NOT NULL,
  rowid           bigserial NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX execution_envelopes_contract_id ON execution_envelopes (tenant_id, contract_id);
CREATE INDEX execution_envelopes_run_id ON execution_envelopes (tenant_id, run_id);

CREATE TABLE kimi_execution_runs (
  tenant_id   text    NOT NULL,
  id          text    NOT NULL,
  envelope_id text    NOT NULL,
  provider    text    NOT NULL,
  started_at  text    NOT NULL,
  finished_at text,
  tokens_used bigint  CHECK (tokens_used >= 0),
  cost_micros bigint  CHECK (cost_micros >= 0),
  runtime_sec integer CHECK (runtime_sec >= 0),
  status      text    NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  summary     text,
  rowid       bigserial NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, envelope_id) REFERENCES execution_envelopes (tenant_id, id),
  CHECK (status = 'RUNNING' OR finished_at IS NOT NULL),
  CHECK (status <> 'COMPLETED' OR (tokens_used IS NOT NULL AND cost_micros IS NOT NULL AND runtime_sec IS NOT NULL))
);
CREATE INDEX kimi_execution_runs_envelope_id ON kimi_execution_runs (tenant_id, envelope_id);

-- Execution records are evidence: never deleted, limits never change, statuses only move forward.
CREATE FUNCTION kair_envelope_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT ((OLD.status = 'PENDING' AND NEW.status IN ('RUNNING', 'FAILED', 'CANCELLED'))
       OR (OLD.status = 'RUNNING' AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED')))
     OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.id IS DISTINCT FROM OLD.id
     OR NEW.contract_id IS DISTINCT FROM OLD.contract_id OR NEW.run_id IS DISTINCT FROM OLD.run_id
     OR NEW.plan_sha256 IS DISTINCT FROM OLD.plan_sha256 OR NEW.actor IS DISTINCT FROM OLD.actor
     OR NEW.provider IS DISTINCT FROM OLD.provider OR NEW.max_cost_micros IS DISTINCT FROM OLD.max_cost_micros
     OR NEW.max_agents IS DISTINCT FROM OLD.max_agents OR NEW.max_runtime_sec IS DISTINCT FROM OLD.max_runtime_sec
     OR NEW.allowed_scopes IS DISTINCT FROM OLD.allowed_scopes OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR NEW.rowid IS DISTINCT FROM OLD.rowid THEN
    RAISE EXCEPTION 'invalid execution_envelopes update' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER execution_envelopes_update BEFORE UPDATE ON execution_envelopes FOR EACH ROW EXECUTE FUNCTION kair_envelope_update();
CREATE TRIGGER execution_envelopes_no_delete BEFORE DELETE ON execution_envelopes FOR EACH ROW EXECUTE FUNCTION kair_append_only();
CREATE TRIGGER execution_envelopes_no_truncate BEFORE TRUNCATE ON execution_envelopes FOR EACH STATEMENT EXECUTE FUNCTION kair_append_only();

CREATE FUNCTION kair_kimi_run_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'RUNNING' OR NEW.status NOT IN ('COMPLETED', 'FAILED')
     OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.id IS DISTINCT FROM OLD.id
     OR NEW.envelope_id IS DISTINCT FROM OLD.envelope_id OR NEW.provider IS DISTINCT FROM OLD.provider
     OR NEW.started_at IS DISTINCT FROM OLD.started_at OR NEW.rowid IS DISTINCT FROM OLD.rowid THEN
    RAISE EXCEPTION 'invalid kimi_execution_runs update' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER kimi_execution_runs_update BEFORE UPDATE ON kimi_execution_runs FOR EACH ROW EXECUTE FUNCTION kair_kimi_run_update();
CREATE TRIGGER kimi_execution_runs_no_delete BEFORE DELETE ON kimi_execution_runs FOR EACH ROW EXECUTE FUNCTION kair_append_only();
CREATE TRIGGER kimi_execution_runs_no_truncate BEFORE TRUNCATE ON kimi_execution_runs FOR EACH STATEMENT EXECUTE FUNCTION kair_append_only();

CREATE TABLE simulations (
  tenant_id     text NOT NULL,
  id            text NOT NULL,
  definition    text NOT NULL CHECK (kair_is_json(definition) AND kair_json_type(definition) = 'object'),
  status        text NOT NULL CHECK (status IN ('Draft', 'Active', 'Deprecated', 'Disabled')),
  created_at    text NOT NULL,
  updated_at    text NOT NULL,
  registered_by text NOT NULL,
  rowid         bigserial NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE FUNCTION kair_simulation_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.id IS DISTINCT FROM OLD.id
     OR NEW.definition IS DISTINCT FROM OLD.definition OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR NEW.registered_by IS DISTINCT FROM OLD.registered_by OR NEW.rowid IS DISTINCT FROM OLD.rowid THEN
    RAISE EXCEPTION 'only the status of a simulation changes' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER simulations_update BEFORE UPDATE ON simulations FOR EACH ROW EXECUTE FUNCTION kair_simulation_update();
CREATE TRIGGER simulations_no_delete BEFORE DELETE ON simulations FOR EACH ROW EXECUTE FUNCTION kair_append_only();
CREATE TRIGGER simulations_no_truncate BEFORE TRUNCATE ON simulations FOR EACH STATEMENT EXECUTE FUNCTION kair_append_only();

CREATE TABLE access_policy (
  tenant_id  text NOT NULL,
  actor      text NOT NULL,
  action     text NOT NULL,
  decision   text NOT NULL CHECK (decision IN ('allow', 'deny', 'require-ap')),
  updated_at text NOT NULL,
  updated_by text NOT NULL,
  rowid      bigserial NOT NULL,
  PRIMARY KEY (tenant_id, actor, action)
);

CREATE TABLE access_policy_versions (
  tenant_id  text   NOT NULL,
  version    bigint NOT NULL,
  changed_at text   NOT NULL,
  actor      text   NOT NULL,
  action     text   NOT NULL,
  decision   text   NOT NULL CHECK (decision IN ('allow', 'deny', 'require-ap', 'removed')),
  prev_hash  text,
  row_hash   text,
  PRIMARY KEY (tenant_id, version)
);
${appendOnly('access_policy_versions')}

CREATE TABLE aec_refs (
  tenant_id  text NOT NULL,
  ref        text NOT NULL,
  kind       text NOT NULL,
  body       text NOT NULL CHECK (kair_is_json(body)),
  created_at text NOT NULL,
  prev_hash  text,
  row_hash   text,
  PRIMARY KEY (tenant_id, ref)
);
${appendOnly('aec_refs')}

CREATE TABLE agent_execution_access_decision_ledger (
  tenant_id               text    NOT NULL,
  id                      bigint  NOT NULL,
  correlation_id          text    NOT NULL,
  run_id                  text    NOT NULL,
  step_id                 text    NOT NULL,
  actor                   text    NOT NULL,
  action                  text    NOT NULL,
  decision                text    NOT NULL CHECK (decision IN ('allow', 'deny', 'require-ap')),
  rule                    text    CHECK (rule IS NULL OR kair_is_json(rule)),
  policy_snapshot_version bigint  NOT NULL CHECK (policy_snapshot_version >= 0),
  checked_by              text    NOT NULL CHECK (checked_by IN ('precheck', 'executor')),
  created_at              text    NOT NULL,
  prev_hash               text,
  row_hash                text,
  PRIMARY KEY (tenant_id, id)
);
${appendOnly('agent_execution_access_decision_ledger')}

CREATE TABLE agent_execution_confirmation_ledger (
  tenant_id      text   NOT NULL,
  id             bigint NOT NULL,
  correlation_id text   NOT NULL,
  run_id         text   NOT NULL,
  step_id        text   NOT NULL,
  actor          text   NOT NULL,
  lexicon        text   NOT NULL,
  lang           text   NOT NULL,
  token          text   NOT NULL,
  normalized     text   NOT NULL,
  result         text   NOT NULL CHECK (result IN ('affirmative', 'negative', 'ambiguous')),
  source         text   NOT NULL CHECK (source IN ('flag', 'prompt')),
  proof_ref      text   NOT NULL,
  created_at     text   NOT NULL,
  prev_hash      text,
  row_hash       text,
  PRIMARY KEY (tenant_id, id)
);
${appendOnly('agent_execution_confirmation_ledger')}

CREATE TABLE agent_execution_ledger (
  tenant_id                       text    NOT NULL,
  row_id                          bigint  NOT NULL,
  plan_id                         text    NOT NULL,
  correlation_id                  text    NOT NULL,
  contract_id                     text    NOT NULL,
  run_id                          text    NOT NULL,
  step_id                         text    NOT NULL,
  simulation_id                   text,
  required_fields_fingerprint     text,
  idempotency_key                 text    NOT NULL,
  attempt                         integer NOT NULL CHECK (attempt >= 1),
  event                           text    NOT NULL CHECK (event IN ('HALTED', 'CLAIMED', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'REPLAYED')),
  reason_code                     text    NOT NULL,
  actor                           text    NOT NULL,
  finder_packet_ref               text    NOT NULL,
  catalog_snapshot_ref            text    NOT NULL,
  policy_snapshot_ref             text,
  artifact_fingerprint_bundle_ref text,
  access_decision_id              bigint,
  confirmation_id                 bigint,
  confirmation_proof_ref          text,
  rollback_plan_ref               text,
  dispatch_envelope_ref           text,
  decision_ref                    text    NOT NULL,
  dispatch_decision_hash          text    NOT NULL,
  outcome                         text    CHECK (outcome IS NULL OR kair_is_json(outcome)),
  latency_us                      bigint  CHECK (latency_us IS NULL OR latency_us >= 0),
  created_at                      text    NOT NULL,
  prev_hash                       text,
  row_hash                        text,
  PRIMARY KEY (tenant_id, row_id),
  FOREIGN KEY (tenant_id, access_decision_id) REFERENCES agent_execution_access_decision_ledger (tenant_id, id),
  FOREIGN KEY (tenant_id, confirmation_id) REFERENCES agent_execution_confirmation_ledger (tenant_id, id)
);
-- At most one claim and one outcome per key and attempt, whichever machine writes it: the second
-- runner's INSERT fails (23505) and it reads the first one's row instead of dispatching again.
CREATE UNIQUE INDEX agent_execution_ledger_idempotency
  ON agent_execution_ledger (tenant_id, correlation_id, step_id, idempotency_key, attempt, event)
  WHERE event NOT IN ('HALTED', 'REPLAYED');
CREATE INDEX agent_execution_ledger_step ON agent_execution_ledger (tenant_id, correlation_id, step_id, row_id);
CREATE INDEX agent_execution_ledger_run ON agent_execution_ledger (tenant_id, run_id, row_id);
CREATE INDEX agent_execution_ledger_replay ON agent_execution_ledger (tenant_id, correlation_id, created_at);
CREATE INDEX agent_execution_ledger_chain ON agent_execution_ledger (tenant_id, contract_id, row_id);
${appendOnly('agent_execution_ledger')}

-- The projection, rebuilt from the ledger (lanes/aec/ledger.ts): the one table rows change in.
CREATE TABLE agent_execution_current (
  tenant_id       text    NOT NULL,
  correlation_id  text    NOT NULL,
  step_id         text    NOT NULL,
  plan_id         text    NOT NULL,
  contract_id     text    NOT NULL,
  run_id          text    NOT NULL,
  simulation_id   text,
  idempotency_key text    NOT NULL,
  attempt         integer NOT NULL,
  status          text    NOT NULL,
  reason_code     text    NOT NULL,
  success_row_id  bigint,
  last_row_id     bigint  NOT NULL,
  rows            integer NOT NULL,
  updated_at      text    NOT NULL,
  PRIMARY KEY (tenant_id, correlation_id, step_id)
);
CREATE INDEX agent_execution_current_plan ON agent_execution_current (tenant_id, plan_id, step_id);

CREATE TABLE dev_intake (
  tenant_id         text NOT NULL,
  id                text NOT NULL,
  contract_id       text NOT NULL,
  correlation_id    text NOT NULL,
  run_id            text NOT NULL,
  step_id           text NOT NULL,
  utterance         text NOT NULL,
  fields            text NOT NULL CHECK (kair_is_json(fields)),
  lang              text NOT NULL,
  finder_packet_ref text NOT NULL,
  actor             text NOT NULL,
  created_at        text NOT NULL,
  prev_hash         text,
  row_hash          text,
  rowid             bigserial NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, correlation_id, step_id, utterance)
);
${appendOnly('dev_intake')}

CREATE TABLE change_log (
  tenant_id   text   NOT NULL,
  id          bigint NOT NULL,
  table_name  text   NOT NULL CHECK (length(table_name) > 0),
  row_key     text   NOT NULL CHECK (kair_is_json(row_key)),
  action      text   NOT NULL,
  actor       text   NOT NULL,
  changed_at  text   NOT NULL,
  change      text   NOT NULL CHECK (kair_is_json(change)),
  row_sha256  text   NOT NULL,
  prev_hash   text   NOT NULL,
  row_hash    text   NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX change_log_row ON change_log (tenant_id, table_name, row_key, id);
${appendOnly('change_log')}

CREATE TABLE slo_waivers (
  tenant_id  text NOT NULL,
  id         text NOT NULL,
  until      text NOT NULL,
  reason     text NOT NULL,
  created_at text NOT NULL,
  created_by text NOT NULL,
  rowid      bigserial NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
${appendOnly('slo_waivers')}
`;

export const PG_MIGRATIONS: readonly PgMigration[] = [
  { id: 1, name: 'functions', sql: FUNCTIONS_SQL },
  { id: 2, name: 'contracts', sql: CONTRACTS_SQL },
  { id: 3, name: 'execution', sql: EXECUTION_SQL },
  // aec_refs is chained in insertion order (its ids are text): kair.db orders it by SQLite's
  // implicit rowid, which the translation of migration 3 left out (decision 035).
  { id: 4, name: 'aec-refs-order', sql: 'ALTER TABLE aec_refs ADD COLUMN rowid bigserial NOT NULL;' },
  { id: 5, name: 'workspaces', sql: WORKSPACES_SQL },
];

/** Tables whose rows are never updated or deleted (verify checks their triggers exist). */
export const PG_APPEND_ONLY_TABLES = [
  'history_events',
  'checkpoints',
  'plans',
  'access_policy_versions',
  'aec_refs',
  'agent_execution_access_decision_ledger',
  'agent_execution_confirmation_ledger',
  'agent_execution_ledger',
  'dev_intake',
  'change_log',
  'slo_waivers',
] as const;


/** The migrations already applied, in order (empty on a fresh schema). */
export async function appliedPgMigrations(client: PgClient, schema: string): Promise<{ id: number; name: string }[]> {
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${q(schema)}.schema_migrations`]);
  if (!exists.rows[0]?.t) return [];
  const r = await client.query<{ id: number; name: string }>(`SELECT id, name FROM ${q(schema)}.schema_migrations ORDER BY id`);
  return r.rows;
}

/**
 * Brings the schema up to date; returns the ids this call applied. The common case (up to
 * date) is one query without the lock. Otherwise the session lock serialises migrators, and
 * each migration commits with its `schema_migrations` row in one transaction.
 */
export async function migratePg(client: PgClient, target: Pick<PgTarget, 'schema'>, migrations: readonly PgMigration[] = PG_MIGRATIONS, now: () => string = () => new Date().toISOString()): Promise<number[]> {
  migrations.forEach((m, i) => {
    if (m.id !== i + 1) throw new Error(`migration ${JSON.stringify(m.name)} has id ${m.id}; ids must be 1, 2, 3… in order`);
  });
  const schema = target.schema;
  const check = (applied: { id: number }[]) => {
    const newest = Math.max(0, ...applied.map((m) => m.id));
    if (newest > migrations.length) {
      throw kairError('BACKEND_CONFIG_INVALID', `the database schema ${schema} is at migration ${newest} but this kair knows only ${migrations.length}; a newer kair wrote it`, {
        schema,
        schema_version: newest,
        known: migrations.length,
        hint: 'upgrade kair on this machine',
      });
    }
    return new Set(applied.map((m) => m.id));
  };
  if (check(await appliedPgMigrations(client, schema)).size === migrations.length) return [];
  const key = lockKey('kair:migrate', schema);
  await client.query('SELECT pg_advisory_lock($1)', [key]);
  const ran: number[] = [];
  try {
    // CREATE SCHEMA checks the database's CREATE privilege even when the schema exists: look first.
    const has = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (has.rowCount === 0) await client.query(`CREATE SCHEMA ${q(schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${q(schema)}.schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)`);
    const applied = check(await appliedPgMigrations(client, schema));
    for (const m of migrations) {
      if (applied.has(m.id)) continue;
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL search_path TO ${q(schema)}`);
        await client.query(m.sql);
        await client.query(`INSERT INTO ${q(schema)}.schema_migrations (id, name, applied_at) VALUES ($1, $2, $3)`, [m.id, m.name, now()]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
      ran.push(m.id);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
  }
  return ran;
}

/** A session on the workspace's schema: connected (BACKEND_UNAVAILABLE / BACKEND_CONFIG_INVALID), migrated under the advisory lock, its search path set. */
export async function openPgSession(o: ConnectOptions): Promise<PgConnection> {
  const conn = await connectPg(o);
  try {
    await migratePg(conn.client, conn.target);
    await conn.client.query(`SET search_path TO ${q(conn.target.schema)}`);
  } catch (e) {
    await conn.client.end().catch(() => undefined);
    throw mapPgError(e, conn.target);
  }
  return conn;
}
