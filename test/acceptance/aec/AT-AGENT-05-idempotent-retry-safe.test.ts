/**
 * Seed 001 §13 AT-AGENT-05, §9 (retry-safe, no duplicate side effects), §12 (resume point from
 * the persisted ledger only); SPEC §9.3 (FAILED → `kair run` retries under the same approval;
 * dispatched steps replay), §9.6 (a stored success is replayed with AEC_IDEMPOTENT_REPLAY and no
 * executor call, even if the policy version changed; a stored executor failure is dispatched again
 * as a new attempt, the ledger keeping every attempt), §14 "AEC details". Side effects are counted
 * in files written by `command` simulations.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Json } from '../../helpers/cli.js';
import { kj, makeTempDir, makeWorkspace, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, counterSimulation, ledgerRows, lineCount, registerSimulation, simPlan } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

const EXEC = { requires: ['local:exec'], grant: ['local:exec'] };


const rowsOf = (ws: string, contract: string, step: string) => ledgerRows(ws, 'contract_id = ? AND step_id = ?', contract, step);

describe('AT-AGENT-05-idempotent-retry-safe', () => {
  it('a retry after a refusal replays the step that already ran (AEC_IDEMPOTENT_REPLAY, no second side effect) and dispatches the next one', () => {
    const ws = makeWorkspace();
    const counter = join(makeTempDir('kair-count-'), 'tally.txt');
    counterSimulation(ws, 'tally', counter);
    // alice has no rule for report:archive yet: the second step is refused (fail closed).
    registerSimulation(ws, { id: 'archive-report', title: 'Archive the report', examples: ['archive the report'], required_fields: [], impact: 'none', access_action: 'report:archive', executor: { kind: 'builtin', name: 'noop' } });
    approveContract(
      ws,
      'retry',
      simPlan([
        { id: 'count', utterance: 'count tally' },
        { id: 'archive', utterance: 'archive the report' },
      ]),
      EXEC,
    );

    // The counter is a command: side_effecting, so its step is confirmed up front.
    const first = kj(ws, ['run', 'retry', '--confirm', 'yes'], asAlice);
    expect(first.code, first.stdout + first.stderr).toBe(3);
    expect(first.json).toMatchObject({ run_id: 'retry-run-1', state: 'FAILED', error: { code: 'ACCESS_SCOPE_VIOLATION' } });
    expect(first.json.steps.map((s: Json) => [s.id, s.status, s.reason_code])).toEqual([
      ['count', 'COMPLETED', 'AEC_DISPATCH_OK'],
      ['archive', 'REFUSED', 'ACCESS_SCOPE_VIOLATION'],
    ]);
    expect(lineCount(counter)).toBe(1);
    const stored = first.json.steps[0];

    // Fix the cause (this changes the policy snapshot version, part of the key), then retry.
    ok(ws, ['access', 'allow', 'alice', 'report:archive']);
    const second = kj(ws, ['run', 'retry'], asAlice);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.json).toMatchObject({ ok: true, run_id: 'retry-run-2', state: 'COMPLETED', status: 'COMPLETED' });
    expect(second.json.steps.map((s: Json) => [s.id, s.status, s.reason_code])).toEqual([
      ['count', 'REPLAYED', 'AEC_IDEMPOTENT_REPLAY'],
      ['archive', 'COMPLETED', 'AEC_DISPATCH_OK'],
    ]);
    // The stored outcome is returned, and the command did not run again.
    expect(second.json.steps[0].outcome).toEqual(stored.outcome);
    expect(second.json.steps[0].simulation_id).toBe('tally');
    expect(lineCount(counter)).toBe(1);

    const count = rowsOf(ws, 'retry', 'count');
    expect(count.map((x) => [x.run_id, x.event, x.reason_code, x.attempt])).toEqual([
      ['retry-run-1', 'CLAIMED', 'AEC_DISPATCH_OK', 1],
      ['retry-run-1', 'SUCCEEDED', 'AEC_DISPATCH_OK', 1],
      ['retry-run-2', 'REPLAYED', 'AEC_IDEMPOTENT_REPLAY', 1],
    ]);
    // The replay differs only in policy version, so it is the same simulation and fields.
    expect(count[2].simulation_id).toBe(count[1].simulation_id);
    expect(count[2].required_fields_fingerprint).toBe(count[1].required_fields_fingerprint);
    expect(count[2].policy_snapshot_ref).not.toBe(count[1].policy_snapshot_ref);
    expect(count[2].dispatch_envelope_ref).toBeNull();
    expect(JSON.parse(count[2].outcome)).toEqual(JSON.parse(count[1].outcome));

    expect(ok(ws, ['aec', 'stats']).stats).toMatchObject({ dispatches: 2, succeeded: 2, replayed: 1, duplicate_side_effects: 0 });
    expect(kj(ws, ['aec', 'replay', 'retry-run-2']).code).toBe(0);
  });

  it('an executor failure is retried as a new attempt of the same key; the step that succeeded before is replayed', () => {
    const ws = makeWorkspace();
    const dir = makeTempDir('kair-count-');
    const counter = join(dir, 'tally.txt');
    const attempts = join(dir, 'flaky-attempts.txt');
    const fixed = join(dir, 'fixed');
    counterSimulation(ws, 'tally', counter);
    // Every execution appends a line; it fails (exit 1) until the `fixed` file exists.
    registerSimulation(ws, {
      id: 'flaky',
      title: 'Flaky upload',
      examples: ['upload the flaky file'],
      required_fields: [],
      impact: 'side_effecting',
      access_action: 'file:upload',
      executor: { kind: 'command', argv: ['node', '-e', "const fs = require('fs'); fs.appendFileSync(process.argv[1], 'x\\n'); if (!fs.existsSync(process.argv[2])) process.exit(1);", attempts, fixed], timeout_ms: 20_000 },
    });
    ok(ws, ['access', 'allow', 'alice', 'file:upload']);
    approveContract(
      ws,
      'flaky-c',
      simPlan([
        { id: 'count', utterance: 'count tally' },
        { id: 'upload', utterance: 'upload the flaky file' },
      ]),
      EXEC,
    );

    // Both steps are commands (side_effecting): --confirm answers the first, resume the second.
    const paused = kj(ws, ['run', 'flaky-c', '--confirm', 'yes'], asAlice);
    expect(paused.json).toMatchObject({ state: 'PAUSED', error: { code: 'AEC_CONFIRM_REQUIRED' } });
    const first = kj(ws, ['resume', 'flaky-c', '--confirm', 'yes'], asAlice);
    expect(first.code, first.stdout + first.stderr).toBe(5);
    expect(first.json).toMatchObject({ state: 'FAILED', error: { code: 'AEC_EXECUTOR_FAILED' } });
    expect(first.json.steps.map((s: Json) => [s.id, s.status, s.reason_code])).toEqual([
      ['count', 'COMPLETED', 'AEC_DISPATCH_OK'],
      ['upload', 'FAILED', 'AEC_EXECUTOR_FAILED'],
    ]);
    expect([lineCount(counter), lineCount(attempts)]).toEqual([1, 1]);

    writeFileSync(fixed, '');
    const second = kj(ws, ['run', 'flaky-c', '--confirm', 'yes'], asAlice);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.json.steps.map((s: Json) => [s.id, s.status, s.reason_code])).toEqual([
      ['count', 'REPLAYED', 'AEC_IDEMPOTENT_REPLAY'],
      ['upload', 'COMPLETED', 'AEC_DISPATCH_OK'],
    ]);
    expect([lineCount(counter), lineCount(attempts)]).toEqual([1, 2]);

    // Same key (nothing in it changed), attempts 1 and 2 both kept; one success.
    const upload = rowsOf(ws, 'flaky-c', 'upload');
    expect(upload.map((x) => [x.run_id, x.event, x.attempt])).toEqual([
      ['flaky-c-run-1', 'HALTED', 1],
      ['flaky-c-run-1', 'CLAIMED', 1],
      ['flaky-c-run-1', 'FAILED', 1],
      ['flaky-c-run-2', 'CLAIMED', 2],
      ['flaky-c-run-2', 'SUCCEEDED', 2],
    ]);
    expect(new Set(upload.map((x) => x.idempotency_key))).toEqual(new Set([second.json.steps[1].idempotency_key]));
    expect(rowsOf(ws, 'flaky-c', 'count').map((x) => x.event)).toEqual(['CLAIMED', 'SUCCEEDED', 'REPLAYED']);
    expect(ok(ws, ['aec', 'stats']).stats).toMatchObject({ succeeded: 2, failed: 1, duplicate_side_effects: 0 });
  });
});
