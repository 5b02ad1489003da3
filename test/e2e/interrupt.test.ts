/**
 * SIGINT/SIGTERM during a run: kair stops before the next step, kills a running command's process
 * group, leaves the contract PAUSED with reason INTERRUPTED (a step in flight is in doubt), prints
 * the run document with error.code INTERRUPTED, and exits 130 (SIGINT) / 143 (SIGTERM). `resume`
 * continues and never repeats a completed step. A second signal, or SIGKILL, ends kair at once and
 * the next command recovers the run as CRASHED.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALICE, approveContract, counterSimulation, ledgerRows, lineCount, registerSimulation, simPlan } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { BIN, baseEnv, gone, history, kj, makeTempDir, makeWorkspace, removeWorkspaces } from '../helpers/cli.js';
import { RunOutputSchema } from '../../src/domain/output-schemas.js';

afterAll(removeWorkspaces);

const asAlice = { env: ALICE };
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** The process is stopped (SIGSTOP at a KAIR_STOPPOINT). */
function stopped(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('T');
  } catch {
    return false;
  }
}

interface Setup {
  ws: string;
  /** One line per execution of the quick first step. */
  firstCount: string;
  /** One line per execution of the slow step; the first execution writes its pid and hangs. */
  slowCount: string;
  pidFile: string;
}

/**
 * A contract `c` of two command steps: `first` (quick, counts its executions) and `slow` (counts
 * its executions; the first one writes the pid of a grandchild and hangs, later ones return at once).
 * `ignoreTerm` makes the hanging command ignore SIGTERM (so stopping takes the 2 s grace).
 */
function twoSteps(opts: { ignoreTerm?: boolean } = {}): Setup {
  const ws = makeWorkspace();
  const dir = makeTempDir('kair-int-');
  const firstCount = join(dir, 'first.count');
  const slowCount = join(dir, 'slow.count');
  const pidFile = join(dir, 'grandchild.pid');
  counterSimulation(ws, 'first', firstCount);
  const script = [
    `const fs = require('fs');`,
    `fs.appendFileSync(process.argv[1], 'x\\n');`,
    `if (fs.readFileSync(process.argv[1], 'utf8').split('\\n').filter(Boolean).length === 1) {`,
    opts.ignoreTerm ? `  process.on('SIGTERM', () => {});` : '',
    `  const c = require('child_process').spawn('sleep', ['30'], { stdio: 'ignore' });`,
    `  fs.writeFileSync(process.argv[2], String(c.pid));`,
    `  setInterval(() => {}, 1000);`,
    `}`,
  ].join('\n');
  registerSimulation(ws, { id: 'slow', title: 'Slow once', examples: ['slow once'], required_fields: [], impact: 'side_effecting', access_action: 'cmd:slow', executor: { kind: 'command', argv: ['node', '-e', script, slowCount, pidFile], timeout_ms: 60_000 } }, { allow: 'alice' });
  approveContract(ws, 'c', simPlan([{ id: 'first', utterance: 'count first' }, { id: 'slow', utterance: 'slow once' }]), { requires: ['local:exec'], grant: ['local:exec'] });
  return { ws, firstCount, slowCount, pidFile };
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: Json;
}

function start(ws: string, args: string[], env: Record<string, string | undefined> = ALICE) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ws, env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const ended = new Promise<Ended>((res) =>
    child.on('close', (code, signal) => {
      let json: Json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      res({ code, signal, stdout, stderr, json });
    }),
  );
  return { child, ended };
}

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  for (const t0 = Date.now(); !cond(); await sleep(25)) if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
}

/** Waits for the command's grandchild to exist and returns its pid. */
async function grandchildOf(pidFile: string): Promise<number> {
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '', 'the slow command to start');
  return Number(readFileSync(pidFile, 'utf8'));
}

async function within<T>(p: Promise<T>, ms: number, onLate: () => void): Promise<T> {
  const t = setTimeout(onLate, ms);
  try {
    return await p;
  } finally {
    clearTimeout(t);
  }
}

const status = (ws: string) => kj(ws, ['status', 'c'], asAlice).json.contract;

describe('SIGINT during a long command step', () => {
  it('kills the command group, pauses INTERRUPTED with the step in doubt, exits 130 with the run document; resume continues without repeating a step', async () => {
    const s = twoSteps();
    const { child, ended } = start(s.ws, ['run', 'c', '--confirm-all', 'yes', '--json']);
    const grandchild = await grandchildOf(s.pidFile);
    const t0 = Date.now();
    child.kill('SIGINT');
    const r = await within(ended, 10_000, () => child.kill('SIGKILL'));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.signal).toBe(null);
    expect(r.code).toBe(130);
    expect(r.json).toMatchObject({ ok: false, contract_id: 'c', run_id: 'c-run-1', state: 'PAUSED', status: 'PAUSED', error: { code: 'INTERRUPTED', details: { signal: 'SIGINT', step_id: 'slow', in_doubt: true } } });
    expect(r.json.steps.map((x: Json) => [x.id, x.status, x.reason_code])).toEqual([
      ['first', 'COMPLETED', 'AEC_DISPATCH_OK'],
      ['slow', 'PAUSED', 'INTERRUPTED'],
    ]);
    expect(RunOutputSchema.safeParse(r.json).success).toBe(true);
    await waitFor(() => gone(grandchild), 'the grandchild to die', 5000);

    expect(status(s.ws)).toMatchObject({ state: 'PAUSED', pause: { reason: 'INTERRUPTED', step_id: 'slow' } });
    const finished = history(s.ws, 'c').filter((e) => e.type === 'run.finished');
    expect(finished.at(-1)).toMatchObject({ state: 'PAUSED', data: { status: 'PAUSED', pause: { reason: 'INTERRUPTED', step_id: 'slow' }, error: { code: 'INTERRUPTED' } } });
    // The claim of the slow step has no outcome: in doubt.
    expect(ledgerRows(s.ws, "step_id = 'slow'").map((x) => x.event)).toEqual(['CLAIMED']);
    expect(kj(s.ws, ['verify'], asAlice).code).toBe(0);

    // resume: the in-doubt step is not run again without --retry-in-doubt.
    const again = kj(s.ws, ['resume', 'c', '--confirm-all', 'yes'], asAlice);
    expect(again.code).toBe(3);
    expect(again.json.error.code).toBe('AEC_IN_DOUBT');
    expect(lineCount(s.slowCount)).toBe(1);
    const done = kj(s.ws, ['resume', 'c', '--confirm-all', 'yes', '--retry-in-doubt'], asAlice);
    expect(done.code).toBe(0);
    expect(done.json).toMatchObject({ ok: true, state: 'COMPLETED', status: 'COMPLETED' });
    expect(lineCount(s.firstCount)).toBe(1);
    expect(lineCount(s.slowCount)).toBe(2);
    expect(kj(s.ws, ['verify'], asAlice).code).toBe(0);
  });
});

describe('a signal between steps', () => {
  it('SIGTERM before the second step: exits 143, PAUSED INTERRUPTED before it, and resume runs only that step', async () => {
    const s = twoSteps();
    const { child, ended } = start(s.ws, ['run', 'c', '--confirm-all', 'yes', '--json'], { ...ALICE, KAIR_STOPPOINT: 'run.before:slow' });
    await waitFor(() => stopped(child.pid!), 'kair to stop before the second step');
    expect(lineCount(s.firstCount)).toBe(1);
    child.kill('SIGTERM');
    child.kill('SIGCONT');
    const r = await within(ended, 10_000, () => child.kill('SIGKILL'));
    expect(r.code).toBe(143);
    expect(r.json).toMatchObject({ ok: false, state: 'PAUSED', status: 'PAUSED', error: { code: 'INTERRUPTED', details: { signal: 'SIGTERM', step_id: 'slow' } } });
    expect(r.json.steps.map((x: Json) => [x.id, x.status])).toEqual([
      ['first', 'COMPLETED'],
      ['slow', 'PENDING'],
    ]);
    expect(lineCount(s.slowCount)).toBe(0);
    expect(status(s.ws)).toMatchObject({ state: 'PAUSED', pause: { reason: 'INTERRUPTED', step_id: 'slow' } });
    // The first step's event was written at the pause boundary, under the lock.
    const types = history(s.ws, 'c').map((e) => e.type);
    expect(types.slice(types.lastIndexOf('run.started'))).toEqual(['run.started', 'step.finished', 'run.finished', 'dpc']);
    expect(kj(s.ws, ['verify'], asAlice).code).toBe(0);
    // The slow step hangs on its first execution: resume it in the background and stop it with SIGINT.
    const res = start(s.ws, ['resume', 'c', '--confirm-all', 'yes']);
    const grandchild = await grandchildOf(s.pidFile);
    res.child.kill('SIGINT');
    const r2 = await within(res.ended, 10_000, () => res.child.kill('SIGKILL'));
    expect(r2.code).toBe(130);
    expect(r2.stderr).toContain('INTERRUPTED');
    await waitFor(() => gone(grandchild), 'the grandchild to die', 5000);
    const done = kj(s.ws, ['resume', 'c', '--confirm-all', 'yes', '--retry-in-doubt'], asAlice);
    expect(done.code).toBe(0);
    expect(lineCount(s.firstCount)).toBe(1);
    expect(lineCount(s.slowCount)).toBe(2);
  });

  it('SIGINT right after the start boundary pauses before the first step, nothing executed', async () => {
    const s = twoSteps();
    const { child, ended } = start(s.ws, ['run', 'c', '--confirm-all', 'yes'], { ...ALICE, KAIR_STOPPOINT: 'run.before:first' });
    await waitFor(() => stopped(child.pid!), 'kair to stop before the first step');
    child.kill('SIGINT');
    child.kill('SIGCONT');
    const r = await within(ended, 10_000, () => child.kill('SIGKILL'));
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('kair: INTERRUPTED: interrupted by SIGINT; the run paused before step first');
    expect(lineCount(s.firstCount)).toBe(0);
    expect(status(s.ws)).toMatchObject({ state: 'PAUSED', pause: { reason: 'INTERRUPTED', step_id: 'first' } });
    expect(ledgerRows(s.ws)).toEqual([]);
  });
});

describe('a second signal, and SIGKILL', () => {
  it('a second SIGINT while stopping ends kair at once; the next command recovers the run as CRASHED', async () => {
    const s = twoSteps({ ignoreTerm: true });
    const { child, ended } = start(s.ws, ['run', 'c', '--confirm-all', 'yes', '--json']);
    const grandchild = await grandchildOf(s.pidFile);
    child.kill('SIGINT');
    // The command ignores SIGTERM: stopping waits for the 2 s grace. The second signal does not.
    await sleep(300);
    const t0 = Date.now();
    child.kill('SIGINT');
    const r = await within(ended, 10_000, () => child.kill('SIGKILL'));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(r.signal).toBe('SIGINT');
    expect(r.stdout).toBe('');
    await waitFor(() => gone(grandchild), 'the grandchild to die', 6000);
    expect(kj(s.ws, ['verify'], asAlice).code).toBe(0);
    expect(kj(s.ws, ['pause', 'c'], asAlice).code).toBe(3);
    expect(status(s.ws)).toMatchObject({ state: 'PAUSED', pause: { reason: 'CRASHED' } });
  });

  it('SIGKILL during a command step still ends as CRASHED on the next command', async () => {
    const s = twoSteps();
    const { child, ended } = start(s.ws, ['run', 'c', '--confirm-all', 'yes', '--json']);
    const grandchild = await grandchildOf(s.pidFile);
    child.kill('SIGKILL');
    const r = await ended;
    expect(r.signal).toBe('SIGKILL');
    await waitFor(() => gone(grandchild), 'the grandchild to die', 6000);
    expect(kj(s.ws, ['pause', 'c'], asAlice).code).toBe(3);
    expect(status(s.ws)).toMatchObject({ state: 'PAUSED', pause: { reason: 'CRASHED' } });
    expect(kj(s.ws, ['verify'], asAlice).code).toBe(0);
    // The killed kair left its KAIR_OUTPUT folder (its pid in the name); the next kair that runs
    // a command step removes the folders of dead processes.
    const leftovers = () => readdirSync(tmpdir()).filter((n) => n.startsWith(`kair-out-${child.pid}-`));
    expect(leftovers()).toHaveLength(1);
    expect(kj(s.ws, ['resume', 'c', '--retry-in-doubt', '--confirm-all', 'yes'], asAlice).code).toBe(0);
    expect(leftovers()).toEqual([]);
  });
});
