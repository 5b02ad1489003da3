/**
 * AEC helpers for e2e and acceptance tests: a workspace with the fixture simulations registered
 * and activated and the fixture access policy applied, contracts approved on inline plans, and
 * read-only looks into the SQLite ledgers (better-sqlite3, opened read-only so the tests never
 * change what they observe).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import type { GateFacts } from '../../src/domain/aec/gates.js';
import type { Json } from './cli.js';
import { ROOT, kairPath, makeTempDir, makeWorkspace, ok } from './cli.js';

export const SIMULATIONS = join(ROOT, 'fixtures', 'simulations');
export const POLICY = join(ROOT, 'fixtures', 'access', 'policy.json');
export const SIMULATION_FIXTURES = ['send-invoice', 'void-invoice', 'ping', 'append-line'] as const;
/** The actor the fixture policy allows everything (`tester` has no rule: denied). */
export const ALICE = { KAIR_ACTOR: 'alice' };

/** Registers and activates the fixture simulations (or the given ones) and applies the fixture policy. */
export function setUpCatalog(ws: string, sims: readonly string[] = SIMULATION_FIXTURES, activate = true): void {
  for (const s of sims) ok(ws, ['sim', 'register', '--file', join(SIMULATIONS, `${s}.json`)]);
  if (activate) for (const s of sims) ok(ws, ['sim', 'activate', s]);
  const policy = JSON.parse(readFileSync(POLICY, 'utf8')) as { rules: { actor: string; action: string; decision: string }[] };
  for (const r of policy.rules) ok(ws, ['access', r.decision, r.actor, r.action]);
}

export interface SimStep {
  id: string;
  utterance: string;
  fields?: Record<string, string>;
  lang?: string;
  attempt?: number;
}

/** A kair.plan.v1 with only simulation (and optional manual) steps: not Kimi-eligible. */
export function simPlan(steps: (SimStep | { id: string; manual: true })[]): Json {
  return {
    version: 'kair.plan.v1',
    title: 'AEC test plan',
    steps: steps.map((s) =>
      'manual' in s
        ? { id: s.id, summary: `manual ${s.id}` }
        : { id: s.id, summary: `simulate ${s.utterance}`, simulation: { utterance: s.utterance, ...(s.fields ? { fields: s.fields } : {}), ...(s.lang ? { lang: s.lang } : {}), ...(s.attempt ? { attempt: s.attempt } : {}) } },
    ),
  };
}

/** propose → plan (inline) → [require + grant] → request-approval → approve, as alice. */
export function approveContract(ws: string, id: string, plan: Json, opts: { requires?: string[]; grant?: string[] } = {}): Json {
  const env = { env: ALICE };
  ok(ws, ['propose', `AEC ${id}`, '--id', id, ...(opts.requires?.length ? ['--requires', opts.requires.join(',')] : [])], env);
  const file = join(makeTempDir('kair-plan-'), `${id}.json`);
  writeFileSync(file, JSON.stringify(plan));
  ok(ws, ['plan', id, '--file', file], env);
  for (const g of opts.grant ?? []) ok(ws, ['grant', id, g], env);
  ok(ws, ['request-approval', id], env);
  return ok(ws, ['approve', id], env);
}

/** Opens .kair/kair.db read-only; the caller closes it. */
export function openLedger(ws: string): Database.Database {
  return new Database(kairPath(ws, 'kair.db'), { readonly: true, fileMustExist: true });
}

/** Runs one read-only query on .kair/kair.db. */
function query(ws: string, sql: string, args: unknown[]): Json[] {
  const db = openLedger(ws);
  try {
    return db.prepare(sql).all(...args) as Json[];
  } finally {
    db.close();
  }
}

export const ledgerRows = (ws: string, where = '1 = 1', ...args: unknown[]): Json[] => query(ws, `SELECT * FROM agent_execution_ledger WHERE ${where} ORDER BY row_id`, args);

export const tableRows = (ws: string, table: string, where = '1 = 1', ...args: unknown[]): Json[] => query(ws, `SELECT * FROM ${table} WHERE ${where}`, args);

/** A `command` simulation that appends one line to `file` per side effect (counts executions); its steps need confirmation. */
export function counterSimulation(ws: string, id: string, file: string, opts: { impact?: 'side_effecting' | 'impactful'; sleepMs?: number } = {}): void {
  const def = {
    id,
    title: `Count ${id}`,
    examples: [`count ${id}`],
    required_fields: [],
    // A command has side effects: it is at least side_effecting, so its steps need confirmation.
    impact: opts.impact ?? 'side_effecting',
    ...(opts.impact === 'impactful' ? { rollback_simulation_id: 'void-invoice' } : {}),
    access_action: `count:${id}`,
    executor: {
      kind: 'command',
      argv: ['node', '-e', `require('fs').appendFileSync(process.argv[1], 'x\\n'); const t = Date.now() + Number(process.argv[2]); while (Date.now() < t);`, file, String(opts.sleepMs ?? 0)],
      timeout_ms: 20_000,
    },
  };
  registerSimulation(ws, def, { allow: 'alice' });
}

/** Registers a definition (through a temp file), activates it unless told not to, and optionally allows an actor its action. */
export function registerSimulation(ws: string, def: Json, opts: { activate?: boolean; allow?: string } = {}): void {
  const f = join(makeTempDir('kair-sim-'), `${def.id}.json`);
  writeFileSync(f, JSON.stringify(def));
  ok(ws, ['sim', 'register', '--file', f]);
  if (opts.activate ?? true) ok(ws, ['sim', 'activate', def.id]);
  if (opts.allow !== undefined) ok(ws, ['access', 'allow', opts.allow, def.access_action]);
}

export const lineCount = (file: string): number => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

/**
 * Gate facts under which every gate of decideGates passes: an Active, impactful simulation with a
 * registered rollback, confirmed and allowed. Tests override what they exercise.
 */
export function passingFacts(over: Partial<GateFacts> = {}): GateFacts {
  return {
    packet_type: 'SimulationMatchPacket',
    packet_reason_code: 'SIM_FINDER_MATCH_OK',
    packet_valid: true,
    impact: 'impactful',
    policy_snapshot_ref: 'policy:v1',
    artifact_fingerprint_bundle_ref: 'fingerprints:abc',
    rollback: { simulation_id: 'void-invoice', registered: true },
    idempotency: { kind: 'fresh', next_attempt: 1 },
    retry_in_doubt: false,
    local_exec: { required: false, granted: false },
    confirmation: 'affirmative',
    access: 'allow',
    catalog: { registered: true, status: 'Active' },
    ...over,
  };
}

/** passingFacts for a simulation with no impact: no confirmation, no rollback. */
export const passingFactsNoImpact = (over: Partial<GateFacts> = {}): GateFacts =>
  passingFacts({ impact: 'none', rollback: { simulation_id: null, registered: false }, confirmation: null, ...over });

/** Run options that act as alice, whom the fixture policy allows. */
export const asAlice = { env: ALICE };

/** A fresh workspace with the fixture simulations Active and the fixture access policy. */
export function catalogWorkspace(): string {
  const ws = makeWorkspace();
  setUpCatalog(ws);
  return ws;
}

/** Every file under .kair/ but SQLite's own (hashed), and every row of every SQLite table. */
export function fingerprint(ws: string): { files: Record<string, string>; rows: Record<string, unknown[]> } {
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (!/kair\.db(-wal|-shm)?$/.test(name)) files[relative(ws, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(kairPath(ws));
  const db = new Database(kairPath(ws, 'kair.db'), { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    return { files, rows: Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`).all()])) };
  } finally {
    db.close();
  }
}
