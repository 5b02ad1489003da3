/**
 * Seed 001 §13 AT-AGENT-13, §10.1 (agent_execution_current must fully rebuild from
 * agent_execution_ledger; no silent transitions; the unique idempotency index), §12 (resume point
 * from the ledger only); SPEC §9.6 (ledger append-only: UPDATE/DELETE refused by triggers; unique
 * index; `aec rebuild` rebuilds the projection, `--check` reports drift with exit 7), §11 (`kair
 * verify` checks the ledger projection), §14 "AEC details" (the unique index includes `attempt`).
 * The projection is tampered with through a writable better-sqlite3 connection (it is not
 * append-only); the CLI must notice and repair it from the ledger.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, kairPath, kj, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, catalogWorkspace, ledgerRows, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);


/** Several runs' worth of ledger: completed, replayed, paused-then-confirmed, refused, escalated. */
let base: string;
let projection: Json[];

beforeAll(() => {
  base = catalogWorkspace();
  approveContract(base, 'a', simPlan([{ id: 'ping', utterance: 'ping' }, { id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '5' } }]));
  approveContract(base, 'b', simPlan([{ id: 'void', utterance: 'void invoice', fields: { customer: 'acme' } }, { id: 'order', utterance: 'order a pizza' }]));
  expect(kj(base, ['run', 'a'], asAlice).code).toBe(3); // paused at send
  expect(kj(base, ['resume', 'a', '--confirm', 'yes'], asAlice).code).toBe(0);
  expect(kj(base, ['run', 'b'], asAlice).code).toBe(3); // missing simulation
  expect(kj(base, ['run', 'b'], asAlice).code).toBe(3); // void replayed, missing again
  projection = currentRows(base);
});

function currentRows(ws: string): Json[] {
  return tableRows(ws, 'agent_execution_current').sort((x, y) => `${x.correlation_id}/${x.step_id}`.localeCompare(`${y.correlation_id}/${y.step_id}`));
}

/** A writable connection for tampering; closed before the CLI runs again. */
function tamper(ws: string, fn: (db: Database.Database) => void): void {
  const db = new Database(kairPath(ws, 'kair.db'), { fileMustExist: true });
  try {
    fn(db);
  } finally {
    db.close();
  }
}

function expectCheckPasses(ws: string, rows: number): void {
  const r = kj(ws, ['aec', 'rebuild', '--check']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.json).toEqual({ ok: true, check: true, rows, drift_count: 0, drift: [] });
}

describe('AT-AGENT-13-current-rebuilds-from-ledger-without-drift', () => {
  it('after runs, the projection agrees with the ledger: `aec rebuild --check` exit 0, `verify` exit 0; a full rebuild changes nothing', () => {
    const ws = cloneWorkspace(base);
    expect(projection.map((x) => [x.correlation_id, x.step_id, x.status, x.reason_code])).toEqual([
      ['a:v1', 'ping', 'SUCCEEDED', 'AEC_DISPATCH_OK'],
      ['a:v1', 'send', 'SUCCEEDED', 'AEC_DISPATCH_OK'],
      ['b:v1', 'order', 'HALTED', 'SIM_FINDER_MISSING_SIMULATION'],
      ['b:v1', 'void', 'SUCCEEDED', 'AEC_IDEMPOTENT_REPLAY'],
    ]);
    // Each projected row is the last ledger row of its step, with the step's counts.
    for (const p of projection) {
      const rows = ledgerRows(ws, 'correlation_id = ? AND step_id = ?', p.correlation_id, p.step_id);
      expect(p.last_row_id).toBe(rows.at(-1).row_id);
      expect(p.rows).toBe(rows.length);
      expect(p.success_row_id).toBe(rows.find((x) => x.event === 'SUCCEEDED')?.row_id ?? null);
    }
    expectCheckPasses(ws, 4);
    expect(kj(ws, ['verify']).code).toBe(0);

    const rebuilt = kj(ws, ['aec', 'rebuild']);
    expect(rebuilt.code, rebuilt.stdout + rebuilt.stderr).toBe(0);
    expect(rebuilt.json).toMatchObject({ ok: true, check: false, rows: 4 });
    expect(currentRows(ws)).toEqual(projection);
  });

  it('a tampered projection (a row changed, a row deleted, a row with no ledger evidence) is drift: --check exit 7 INTEGRITY_FAILED, verify exit 7; `aec rebuild` repairs it from the ledger', () => {
    const ws = cloneWorkspace(base);
    tamper(ws, (db) => {
      expect(db.prepare("UPDATE agent_execution_current SET status = 'FAILED', reason_code = 'AEC_EXECUTOR_FAILED' WHERE correlation_id = 'a:v1' AND step_id = 'send'").run().changes).toBe(1);
      expect(db.prepare("DELETE FROM agent_execution_current WHERE correlation_id = 'a:v1' AND step_id = 'ping'").run().changes).toBe(1);
      const ghost = db.prepare("SELECT * FROM agent_execution_current WHERE correlation_id = 'b:v1' AND step_id = 'void'").get() as Json;
      db.prepare(`INSERT INTO agent_execution_current (${Object.keys(ghost).join(', ')}) VALUES (${Object.keys(ghost).map(() => '?').join(', ')})`).run(
        ...Object.values({ ...ghost, step_id: 'ghost', plan_id: 'b:v1/ghost', status: 'SUCCEEDED' }),
      );
    });

    const check = kj(ws, ['aec', 'rebuild', '--check']);
    expect(check.code, check.stdout + check.stderr).toBe(7);
    expect(check.json).toMatchObject({ ok: false, check: true, drift_count: 3, error: { code: 'INTEGRITY_FAILED' } });
    expect(check.json.drift.map((d: Json) => [d.correlation_id, d.step_id, d.kind]).sort()).toEqual([
      ['a:v1', 'ping', 'missing'],
      ['a:v1', 'send', 'different'],
      ['b:v1', 'ghost', 'extra'],
    ]);
    const send = check.json.drift.find((d: Json) => d.step_id === 'send');
    expect(send.stored.status).toBe('FAILED');
    expect(send.expected.status).toBe('SUCCEEDED');

    const verify = kj(ws, ['verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(7);
    expect(verify.json).toMatchObject({ ok: false, error: { code: 'INTEGRITY_FAILED' } });
    expect(verify.json.problems.filter((p: Json) => p.kind === 'ledger_projection')).toHaveLength(3);

    // --check never repairs.
    expect(kj(ws, ['aec', 'rebuild', '--check']).code).toBe(7);

    const rebuilt = kj(ws, ['aec', 'rebuild']);
    expect(rebuilt.code, rebuilt.stdout + rebuilt.stderr).toBe(0);
    expect(rebuilt.json).toMatchObject({ ok: true, check: false, rows: 4 });
    expect(currentRows(ws)).toEqual(projection);
    expectCheckPasses(ws, 4);
    expect(kj(ws, ['verify']).code).toBe(0);
  });

  it('an emptied projection rebuilds entirely from the ledger, and runs resume from the ledger afterwards', () => {
    const ws = cloneWorkspace(base);
    tamper(ws, (db) => db.prepare('DELETE FROM agent_execution_current').run());
    const check = kj(ws, ['aec', 'rebuild', '--check']);
    expect(check.code).toBe(7);
    expect(check.json.drift.map((d: Json) => d.kind)).toEqual(['missing', 'missing', 'missing', 'missing']);
    expect(kj(ws, ['aec', 'rebuild']).code).toBe(0);
    expect(currentRows(ws)).toEqual(projection);

    // The ledger alone says `void` succeeded: a retry of `b` replays it, and the projection stays in step.
    const retry = kj(ws, ['run', 'b'], asAlice);
    expect(retry.code).toBe(3);
    expect(retry.json.steps[0]).toMatchObject({ id: 'void', status: 'REPLAYED' });
    expectCheckPasses(ws, 4);
  });

  it('the ledger itself is append-only (UPDATE/DELETE refused by triggers) and a claim of one (tenant, correlation, step, key, attempt) cannot be recorded twice', () => {
    const ws = cloneWorkspace(base);
    tamper(ws, (db) => {
      expect(() => db.prepare("UPDATE agent_execution_ledger SET reason_code = 'AEC_EXECUTOR_FAILED' WHERE event = 'SUCCEEDED'").run()).toThrow(/append-only/);
      expect(() => db.prepare("DELETE FROM agent_execution_ledger WHERE event = 'CLAIMED'").run()).toThrow(/append-only/);
      for (const t of ['agent_execution_access_decision_ledger', 'agent_execution_confirmation_ledger', 'dev_intake', 'aec_refs']) {
        expect(() => db.prepare(`DELETE FROM ${t}`).run(), t).toThrow(/append-only/);
      }

      const claim = db.prepare("SELECT * FROM agent_execution_ledger WHERE event = 'CLAIMED' ORDER BY row_id LIMIT 1").get() as Json;
      const { row_id: _id, ...copy } = claim;
      const insert = (row: Json) => db.prepare(`INSERT INTO agent_execution_ledger (${Object.keys(row).join(', ')}) VALUES (${Object.keys(row).map(() => '?').join(', ')})`).run(...Object.values(row));
      let err: unknown;
      try {
        insert(copy);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string } | undefined)?.code).toBe('SQLITE_CONSTRAINT_UNIQUE');
      // The same for its outcome.
      const success = db.prepare('SELECT * FROM agent_execution_ledger WHERE event = ? AND idempotency_key = ? AND attempt = ?').get('SUCCEEDED', claim.idempotency_key, claim.attempt) as Json;
      const { row_id: _sid, ...successCopy } = success;
      expect(() => insert(successCopy)).toThrow(/UNIQUE/);
      // A next attempt of the same key is a different claim (rolled back: this only probes the index).
      db.exec('BEGIN');
      expect(() => insert({ ...copy, attempt: claim.attempt + 1 })).not.toThrow();
      db.exec('ROLLBACK');
    });
    expect(ledgerRows(ws).length).toBe(ledgerRows(base).length);
    expectCheckPasses(ws, 4);
  });
});
