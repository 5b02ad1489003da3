import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backendArgs, backendEnvOf } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/temp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'bin', 'kair.js');
const plan = join(root, 'fixtures', 'plans', 'custom-kimi.json');

function kair(ws: string, args: string[], env: Record<string, string> = {}) {
  // backendArgs/backendEnvOf: on the PostgreSQL pass, init makes a tenant and the CLI gets its URL.
  const r = spawnSync(process.execPath, [bin, ...backendArgs(args)], {
    cwd: ws,
    encoding: 'utf8',
    env: { ...process.env, ...backendEnvOf(ws), KAIR_ACTOR: 'tester', KAIR_NOW: '2026-01-30T12:00:00.000Z', NO_COLOR: '1', ...env },
  });
  let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test documents are asserted field by field
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = null;
  }
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, json };
}

function approvedWorkspace(): string {
  const ws = makeTempDir('kair-crash-');
  for (const args of [['init'], ['propose', 'crash me', '--id', 'c1'], ['plan', 'c1', '--file', plan], ['request-approval', 'c1'], ['approve', 'c1']]) {
    expect(kair(ws, args).code).toBe(0);
  }
  return ws;
}

describe('SIGKILL during a run (SPEC §12, §8 step 7, §14 Integrity)', () => {
  it('a run killed while its Kimi envelope is RUNNING: verify accepts the state, the next command recovers it', () => {
    const ws = approvedWorkspace();
    const killed = kair(ws, ['run', 'c1', '--json'], { KAIR_FAILPOINT: 'kimi.running' });
    expect(killed.signal).toBe('SIGKILL');

    // Read-only commands show the dead runner without repairing anything.
    const status = kair(ws, ['status', 'c1', '--json']);
    expect(status.json.contract.state).toBe('RUNNING');
    expect(status.json.contract.running.alive).toBe(false);
    expect(kair(ws, ['verify', '--json']).code).toBe(0);
    const before = kair(ws, ['envelopes', '--contract', 'c1', '--json']).json.envelopes;
    expect(before.map((e: { status: string }) => e.status)).toEqual(['RUNNING']);

    // The next mutating command records the recovery: PAUSED (CRASHED), the envelope CANCELLED.
    expect(kair(ws, ['grant', 'c1', 'local:read', '--json']).code).toBe(0);
    const after = kair(ws, ['status', 'c1', '--json']).json.contract;
    expect(after.state).toBe('PAUSED');
    expect(after.pause).toMatchObject({ reason: 'CRASHED', step_id: 'generate' });
    expect(after.running).toBeUndefined();
    expect(kair(ws, ['envelopes', '--contract', 'c1', '--json']).json.envelopes.map((e: { status: string }) => e.status)).toEqual(['CANCELLED']);
    const events = kair(ws, ['history', 'c1', '--json']).json.events;
    const recovery = events.find((e: { type: string }) => e.type === 'recovery');
    expect(recovery.data).toMatchObject({ kind: 'crashed_run', run_id: 'c1-run-1', cancelled_envelopes: ['env_c1-run-1'] });

    // resume continues the same run: a new envelope attempt, then COMPLETED with the seed figures.
    const resumed = kair(ws, ['resume', 'c1', '--json']);
    expect(resumed.code).toBe(0);
    expect(resumed.json).toMatchObject({ run_id: 'c1-run-1', status: 'COMPLETED', kimi: { status: 'COMPLETED', result: { tokensUsed: 10000, costUSD: 0.02 } } });
    expect(kair(ws, ['verify', '--json']).json).toMatchObject({ ok: true, problems: [] });
    const history = readFileSync(join(ws, '.kair', 'contracts', 'c1', 'history.jsonl'), 'utf8');
    expect(history.endsWith('\n')).toBe(true);
  });
});
