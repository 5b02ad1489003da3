/**
 * SPEC §9.6, §12, §14: at most one side effect per idempotency key under concurrent runs and
 * crashes. Side effects are counted with a `command` simulation that appends a line to a file.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { ALICE, approveContract, counterSimulation, ledgerRows, lineCount, registerSimulation, simPlan } from '../helpers/aec.js';
import { ROOT, kair, kairAsync, kj, makeTempDir, makeWorkspace, removeWorkspaces, snapshot } from '../helpers/cli.js';

afterAll(() => {
  removeWorkspaces();
  rmSync(join(ROOT, 'node_modules', '.kair-test'), { recursive: true, force: true });
});

const asAlice = { env: ALICE };

function counterWorkspace(sleepMs = 0) {
  const ws = makeWorkspace();
  const file = join(makeTempDir('kair-count-'), 'effects.txt');
  counterSimulation(ws, 'tick', file, { sleepMs });
  approveContract(ws, 'c', simPlan([{ id: 'tick', utterance: 'count tick' }]), { requires: ['local:exec'], grant: ['local:exec'] });
  return { ws, file };
}

describe('concurrency: one side effect per key', () => {
  it('8 `kair run` of the same approved step at once → exactly one side effect, one run', async () => {
    const { ws, file } = counterWorkspace(300);
    const results = await Promise.all(Array.from({ length: 8 }, () => kairAsync(ws, ['run', 'c', '--confirm', 'yes', '--json'], asAlice)));
    const codes = results.map((r) => r.code).sort();
    // On failure, say what each process got.
    const outcomes = JSON.stringify(results.map((r) => [r.code, r.json?.error?.code, r.json?.error?.message, r.stderr.slice(0, 300)]));
    expect(codes.filter((c) => c === 0), outcomes).toHaveLength(1);
    // The others are kept out by the lock or by RUNNING (INVALID_TRANSITION) / COMPLETED.
    for (const r of results.filter((x) => x.code !== 0)) expect(['LOCK_BUSY', 'INVALID_TRANSITION']).toContain(r.json.error.code);
    expect(lineCount(file)).toBe(1);
    expect(ledgerRows(ws, "event = 'SUCCEEDED'")).toHaveLength(1);
    expect(snapshot(ws, 'c').runs).toEqual(['c-run-1']);
  });

  it('8 processes dispatching the same step straight through the dispatcher (no contract lock) → one side effect', async () => {
    const { ws, file } = counterWorkspace(300);
    // Inside node_modules/ so that the bundle's require('better-sqlite3') resolves.
    const worker = join(ROOT, 'node_modules', '.kair-test', `dispatch-worker-${process.pid}.cjs`);
    buildSync({ entryPoints: [join(ROOT, 'test', 'fixtures', 'dispatch-worker.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: worker, external: ['better-sqlite3'], logLevel: 'error' });
    const runs = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<string>((resolve, reject) => {
            const child = spawn(process.execPath, [worker, ws, 'c', 'tick', 'count tick']);
            let out = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr.on('data', (d: Buffer) => (out += d.toString()));
            child.on('error', reject);
            child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`worker exited ${code}: ${out}`))));
          }),
      ),
    );
    const outcomes = runs.map((r) => JSON.parse(r) as { status: string; reason_code: string });
    expect(outcomes.filter((o) => o.status === 'COMPLETED')).toHaveLength(1);
    // Every other process found the claim (in doubt while it ran) or the success (replay).
    for (const o of outcomes.filter((x) => x.status !== 'COMPLETED')) expect(['AEC_IN_DOUBT', 'AEC_IDEMPOTENT_REPLAY']).toContain(o.reason_code);
    expect(lineCount(file)).toBe(1);
    expect(ledgerRows(ws, "event = 'CLAIMED'")).toHaveLength(1);
    expect(ledgerRows(ws, "event = 'SUCCEEDED'")).toHaveLength(1);
  });
});

describe('crash between claim and outcome → IN_DOUBT', () => {
  for (const point of ['aec.claimed', 'aec.executed'] as const) {
    it(`SIGKILL at ${point}: resume reports AEC_IN_DOUBT (exit 3) and runs nothing; --retry-in-doubt runs it once more`, () => {
      const { ws, file } = counterWorkspace();
      const killed = kair(ws, ['run', 'c', '--confirm', 'yes', '--json'], { env: { ...ALICE, KAIR_FAILPOINT: point } });
      expect(killed.code).not.toBe(0);
      const effectsAtCrash = point === 'aec.claimed' ? 0 : 1;
      expect(lineCount(file)).toBe(effectsAtCrash);
      expect(ledgerRows(ws).map((r) => r.event)).toEqual(['CLAIMED']);

      const resumed = kj(ws, ['resume', 'c'], asAlice);
      expect(resumed.code, resumed.stdout).toBe(3);
      expect(resumed.json.error.code).toBe('AEC_IN_DOUBT');
      const claim = ledgerRows(ws, "event = 'CLAIMED'")[0];
      expect(resumed.json.error.details).toMatchObject({ step_id: 'tick', idempotency_key: claim.idempotency_key });
      expect(resumed.json.state).toBe('PAUSED');
      expect(snapshot(ws, 'c').pause).toMatchObject({ reason: 'AEC_IN_DOUBT', step_id: 'tick' });
      expect(lineCount(file)).toBe(effectsAtCrash);

      // Still in doubt on a plain resume; nothing runs until the user says so.
      expect(kj(ws, ['resume', 'c'], asAlice).json.error.code).toBe('AEC_IN_DOUBT');
      expect(lineCount(file)).toBe(effectsAtCrash);

      const retried = kj(ws, ['resume', 'c', '--retry-in-doubt', '--confirm', 'yes'], asAlice);
      expect(retried.code, retried.stdout).toBe(0);
      expect(retried.json.status).toBe('COMPLETED');
      expect(lineCount(file)).toBe(effectsAtCrash + 1);
      const rows = ledgerRows(ws).filter((r) => r.event === 'CLAIMED' || r.event === 'SUCCEEDED');
      expect(rows.map((r) => [r.event, r.attempt])).toEqual([
        ['CLAIMED', 1],
        ['CLAIMED', 2],
        ['SUCCEEDED', 2],
      ]);
      expect(kj(ws, ['verify']).code).toBe(0);
      expect(kj(ws, ['aec', 'rebuild', '--check']).code).toBe(0);
      expect(kj(ws, ['aec', 'replay', 'c-run-1']).code).toBe(0);
    });
  }
});

describe('a command executor past its timeout is killed', () => {
  it('AEC_STEP_TIMEOUT, exit 5, contract FAILED, TIMED_OUT in the ledger', () => {
    const ws = makeWorkspace();
    // A command that would take 10 s, killed at 300 ms.
    registerSimulation(
      ws,
      { id: 'quick', title: 'Quick', examples: ['quick timeout'], required_fields: [], impact: 'side_effecting', access_action: 'count:quick', executor: { kind: 'command', argv: ['node', '-e', 'setTimeout(() => {}, 10000)'], timeout_ms: 300 } },
      { allow: 'alice' },
    );
    approveContract(ws, 't', simPlan([{ id: 'wait', utterance: 'quick timeout' }]), { requires: ['local:exec'], grant: ['local:exec'] });
    const t0 = Date.now();
    const r = kj(ws, ['run', 't', '--confirm', 'yes'], asAlice);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(r.code, r.stdout).toBe(5);
    expect(r.json.error.code).toBe('AEC_STEP_TIMEOUT');
    expect(r.json.state).toBe('FAILED');
    expect(r.json.steps[0]).toMatchObject({ id: 'wait', status: 'FAILED', reason_code: 'AEC_STEP_TIMEOUT' });
    expect(ledgerRows(ws).map((x) => x.event)).toEqual(['CLAIMED', 'TIMED_OUT']);
  });
});
