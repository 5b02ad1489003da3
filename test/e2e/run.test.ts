/**
 * `kair run` / `kair resume` end to end with the Kimi lane (SPEC §8, §8.1, §14): a completed
 * CUSTOM run and everything it leaves on disk, refusals that spend nothing, Kimi aborts
 * (budget, runtime, per-contract cap), --pause-at + resume, --dry-run, run ids and retries.
 * Plans with a simulation step are not run here (the AEC lane is a separate suite).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../helpers/cli.js';
import { seedKimiSuccess } from '../helpers/kimi.js';
import {
  approvedRequiring,
  bringAll,
  cloneWorkspace,
  contractDir,
  dpcFile,
  editConfig,
  fixture,
  history,
  kair,
  kj,
  makeWorkspace,
  NOW,
  ok,
  planFile,
  readJson,
  removeWorkspaces,
  reverseKeys,
  snapshot,
} from '../helpers/cli.js';

afterAll(removeWorkspaces);

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const runsDir = (ws: string, id: string) => join(contractDir(ws, id), 'artifacts', 'run');
const archive = (ws: string, id: string, runId: string) => join(runsDir(ws, id), runId);

const SUCCESS_KIMI = (id: string, runId = `${id}-run-1`) => seedKimiSuccess(runId);
const STEPS_DONE = [
  { id: 'generate', lane: 'kimi', status: 'COMPLETED', reason_code: 'KIMI_OK' },
  { id: 'review-delta', lane: 'manual', status: 'COMPLETED', reason_code: 'MANUAL_RECORDED' },
];

/** relative path → sha256 of every file under `.kair/` except lock files. */
function tree(ws: string): Record<string, string> {
  const root = join(ws, '.kair');
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const rel = relative(root, p);
      if (rel === 'locks' || rel.startsWith(`locks/`)) continue;
      if (statSync(p).isDirectory()) walk(p);
      else out[rel] = sha256(readFileSync(p));
    }
  };
  walk(root);
  return out;
}

/** Everything under one folder (for "this archive is unchanged"). */
function folder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) out[name] = sha256(readFileSync(join(dir, name)));
  return out;
}

const envelopes = (ws: string, id: string): Json[] => {
  const r = kj(ws, ['envelopes', '--contract', id]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.json.envelopes;
};

const events = (ws: string, id: string): Json[] => {
  const r = kj(ws, ['history', id]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.json.events;
};

/** A refused run: no envelope, no artifacts folder, no run id. */
function expectNothingSpent(ws: string, id: string) {
  expect(envelopes(ws, id)).toEqual([]);
  expect(existsSync(runsDir(ws, id))).toBe(false);
  expect(snapshot(ws, id).runs).toEqual([]);
}

/** The events appended after `before` lines (read from the file: cheap). */
const appended = (ws: string, id: string, before: number) => history(ws, id).slice(before);

/**
 * Template workspace (cloned per test):
 * - `ctl`: custom-kimi, requires local:read (granted), APPROVED
 * - `a`: custom-kimi, APPROVED; `planned`: custom-kimi, PLANNED
 * - `reuse`: reuse-only, APPROVED; `low`: run-budget-low, APPROVED; `slow`: run-runtime-exceeded, APPROVED
 */
let T: string;
beforeAll(async () => {
  T = makeWorkspace();
  await Promise.all([
    bringAll(T, { a: 'APPROVED', planned: 'PLANNED' }),
    bringAll(T, { reuse: 'APPROVED' }, 'reuse-only.json'),
    bringAll(T, { low: 'APPROVED' }, 'run-budget-low.json'),
    bringAll(T, { slow: 'APPROVED' }, 'run-runtime-exceeded.json'),
    approvedRequiring(T, 'ctl', 'local:read'),
  ]);
  // Nothing has run yet: no execution database.
  expect(existsSync(join(T, '.kair', 'kair.db'))).toBe(false);
}, 30_000);

describe('run: an approved CUSTOM plan completes', () => {
  let ws: string;
  let r: ReturnType<typeof kj>;
  let approved: Json;
  let seqBefore: number;
  beforeAll(() => {
    ws = cloneWorkspace(T);
    approved = snapshot(ws, 'ctl');
    seqBefore = history(ws, 'ctl').length;
    r = kj(ws, ['run', 'ctl']);
  });

  it('exits 0 with the run document', () => {
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toEqual({
      ok: true,
      contract_id: 'ctl',
      run_id: 'ctl-run-1',
      state: 'COMPLETED',
      status: 'COMPLETED',
      kimi: SUCCESS_KIMI('ctl'),
      steps: STEPS_DONE,
      artifacts: {
        run_request: '.kair/contracts/ctl/artifacts/run/ctl-run-1/run-request.json',
        run_result: '.kair/contracts/ctl/artifacts/run/ctl-run-1/run-result.json',
        run_result_sealed: '.kair/contracts/ctl/artifacts/run/ctl-run-1/run-result.1.json',
      },
    });
    // The pointer is a copy of the sealed result of the run's last segment.
    expect(readFileSync(join(ws, r.json.artifacts.run_result), 'utf8')).toBe(readFileSync(join(ws, r.json.artifacts.run_result_sealed), 'utf8'));
    for (const p of Object.values(r.json.artifacts) as string[]) expect(existsSync(join(ws, p)), p).toBe(true);
    const s = snapshot(ws, 'ctl');
    expect(s.state).toBe('COMPLETED');
    expect(s.runs).toEqual(['ctl-run-1']);
  });

  it('writes run-request.json before execution, with the approved plan hash, approvals, controls, lanes, steps, budget, scopes', () => {
    const req = readJson(join(ws, r.json.artifacts.run_request));
    expect(req).toEqual({
      version: 'kair.run-request.v1',
      run_id: 'ctl-run-1',
      contract_id: 'ctl',
      contract_version: 1,
      plan_sha256: approved.plan_sha256,
      actor: 'tester',
      requested_at: NOW,
      approvals: approved.approvals,
      controls: { required: ['local:read'], granted: ['local:read'] },
      lanes: ['kimi'],
      steps: [
        { id: 'generate', lane: 'kimi' },
        { id: 'review-delta', lane: 'manual' },
      ],
      budget: { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600 },
      scopes: ['custom_logic'],
    });
    expect(approved.approvals).toEqual([{ actor: 'tester', at: NOW, plan_sha256: approved.plan_sha256, valid: true }]);
  });

  it('writes run-result.json and the latest copies', () => {
    const res = readJson(join(ws, r.json.artifacts.run_result));
    expect(res).toEqual({
      version: 'kair.run-result.v1',
      run_id: 'ctl-run-1',
      contract_id: 'ctl',
      status: 'COMPLETED',
      started_at: NOW,
      finished_at: NOW,
      kimi: SUCCESS_KIMI('ctl'),
      steps: STEPS_DONE,
    });
    for (const name of ['run-request.json', 'run-result.json']) {
      expect(readFileSync(join(runsDir(ws, 'ctl'), name), 'utf8')).toBe(readFileSync(join(archive(ws, 'ctl', 'ctl-run-1'), name), 'utf8'));
    }
  });

  it('records run.started, kimi.started/completed with the seed messages, two step.finished, run.finished with artifact hashes', () => {
    const all = events(ws, 'ctl');
    const added = all.slice(seqBefore);
    expect(added.map((e: Json) => e.type)).toEqual(['run.started', 'kimi.started', 'kimi.completed', 'step.finished', 'step.finished', 'run.finished', 'dpc']);
    expect(added.every((e: Json) => e.actor === 'tester' && e.at === NOW)).toBe(true);
    const by = (t: string) => added.filter((e: Json) => e.type === t);
    expect(by('run.started')[0]).toMatchObject({ state: 'RUNNING', data: { run_id: 'ctl-run-1' } });
    expect(by('kimi.started')[0].data.message).toBe('Kimi execution started (budget $25, agents 5)');
    expect(by('kimi.completed')[0].data.message).toBe('Kimi execution completed (cost $0.02)');
    expect(by('step.finished').map((e: Json) => e.data.step)).toEqual(STEPS_DONE);
    const fin = by('run.finished')[0];
    expect(fin.state).toBe('COMPLETED');
    expect(fin.data).toMatchObject({ run_id: 'ctl-run-1', status: 'COMPLETED' });
    const arts: { path: string; sha256: string }[] = fin.data.artifacts;
    expect(arts.map((x) => x.path).sort()).toEqual([r.json.artifacts.run_request, r.json.artifacts.run_result_sealed].sort());
    expect(by('run.started')[0].data.artifacts).toEqual([arts.find((x) => x.path === r.json.artifacts.run_request)]);
    for (const x of arts) {
      expect(x.path.startsWith('.kair/')).toBe(true);
      expect(x.sha256).toBe(sha256(readFileSync(join(ws, x.path))));
    }
  });

  it('adds a run evidence entry to the DPC', () => {
    const dpc = readJson(dpcFile(ws, 'ctl'));
    const runEvidence = dpc.evidence.filter((e: Json) => e.kind === 'run');
    expect(runEvidence).toHaveLength(1);
    expect(runEvidence[0].ref).toBe(r.json.artifacts.run_result);
  });

  it('creates one COMPLETED envelope under the plan budget', () => {
    const env = envelopes(ws, 'ctl');
    expect(env).toHaveLength(1);
    expect(env[0]).toMatchObject({
      id: 'env_ctl-run-1',
      contract_id: 'ctl',
      run_id: 'ctl-run-1',
      plan_sha256: approved.plan_sha256,
      actor: 'tester',
      provider: 'kimi',
      max_cost_usd: 25,
      max_agents: 5,
      max_runtime_sec: 600,
      allowed_scopes: ['custom_logic'],
      status: 'COMPLETED',
      created_at: NOW,
    });
  });

  it('verify passes; review, accept and rewind after accept work', () => {
    const v = kj(ws, ['verify']);
    expect(v.code, v.stdout).toBe(0);
    expect(v.json.ok).toBe(true);
    expect(v.json.problems).toEqual([]);

    const rev = ok(ws, ['review', 'ctl']);
    expect(rev.contract.state).toBe('COMPLETED');
    const acc = ok(ws, ['accept', 'ctl']);
    expect(acc.contract.state).toBe('ACCEPTED');
    const rw = ok(ws, ['rewind', 'ctl', 'try another approach']);
    expect(rw.contract.state).toBe('REWOUND');
    expect(rw.contract.version).toBe(2);
    // The run's artifacts are kept.
    expect(existsSync(join(ws, r.json.artifacts.run_result))).toBe(true);
    expect(history(ws, 'ctl').slice(-4).map((e) => e.type)).toEqual(expect.arrayContaining(['review', 'accept', 'rewind']));
    expect(kj(ws, ['verify']).code).toBe(0);
  });
});

describe('run: refusals spend nothing', () => {
  it('PLANNED → exit 3 INVALID_TRANSITION, one gate.blocked, no envelope, no artifacts', () => {
    const ws = cloneWorkspace(T);
    const n = history(ws, 'planned').length;
    const r = kj(ws, ['run', 'planned']);
    expect(r.code).toBe(3);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    const added = appended(ws, 'planned', n);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ type: 'gate.blocked', state: 'PLANNED', data: { command: 'run', code: 'INVALID_TRANSITION' } });
    expectNothingSpent(ws, 'planned');
    expect(existsSync(join(ws, '.kair', 'kair.db'))).toBe(false);
  });

  it('hand-edited plan title → exit 3 APPROVAL_STALE, nothing spent', () => {
    const ws = cloneWorkspace(T);
    const plan = readJson(planFile(ws, 'a'));
    plan.title = 'Add chat, notifications and a little extra';
    writeFileSync(planFile(ws, 'a'), JSON.stringify(plan, null, 2) + '\n');
    const n = history(ws, 'a').length;
    const r = kj(ws, ['run', 'a']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('APPROVAL_STALE');
    const added = appended(ws, 'a', n);
    expect(added.map((e) => [e.type, e.data.code])).toEqual([['gate.blocked', 'APPROVAL_STALE']]);
    expect(snapshot(ws, 'a').state).toBe('APPROVED');
    expectNothingSpent(ws, 'a');
  });

  it('re-formatted plan_v1.json (same JSON, other whitespace and key order) still runs', () => {
    const ws = cloneWorkspace(T);
    const file = planFile(ws, 'a');
    const before = readFileSync(file, 'utf8');
    const text = JSON.stringify(reverseKeys(JSON.parse(before)), null, '\t') + '\n\n';
    expect(text).not.toBe(before);
    writeFileSync(file, text);
    const r = kj(ws, ['run', 'a']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, run_id: 'a-run-1', status: 'COMPLETED', state: 'COMPLETED' });
    expect(readJson(join(ws, r.json.artifacts.run_request)).plan_sha256).toBe(snapshot(ws, 'a').plan_sha256);
  });

  it('revoked required control → exit 3 CONTROLS_MISSING, nothing spent', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['revoke', 'ctl', 'local:read']);
    const n = history(ws, 'ctl').length;
    const r = kj(ws, ['run', 'ctl']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('CONTROLS_MISSING');
    expect(appended(ws, 'ctl', n).map((e) => [e.type, e.data.code])).toEqual([['gate.blocked', 'CONTROLS_MISSING']]);
    expect(snapshot(ws, 'ctl').state).toBe('APPROVED');
    expectNothingSpent(ws, 'ctl');
  });

  it('reuse-only → exit 3 NO_EXECUTION_REQUIRED "No execution required (reuse sufficient)", state stays APPROVED, no run id', () => {
    const ws = cloneWorkspace(T);
    const n = history(ws, 'reuse').length;
    const r = kj(ws, ['run', 'reuse']);
    expect(r.code).toBe(3);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('NO_EXECUTION_REQUIRED');
    expect(r.json.error.message).toBe('No execution required (reuse sufficient)');
    expect(r.json.run_id).toBeUndefined();
    expect(r.json.kimi).toBeUndefined();
    expect(appended(ws, 'reuse', n).map((e) => [e.type, e.data.code])).toEqual([['gate.blocked', 'NO_EXECUTION_REQUIRED']]);
    expect(snapshot(ws, 'reuse').state).toBe('APPROVED');
    expectNothingSpent(ws, 'reuse');
  });
});

describe('run: Kimi aborts before anything is spent', () => {
  it('budget exceeded → exit 5 BUDGET_EXCEEDED, envelope FAILED, $0, contract FAILED, kimi.aborted and no kimi.started', () => {
    const ws = cloneWorkspace(T);
    const n = history(ws, 'low').length;
    const r = kj(ws, ['run', 'low']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('BUDGET_EXCEEDED');
    expect(r.json.error.message).toBe('Execution aborted: budget exceeded ($0.02 > $0.01)');
    expect(r.json).toMatchObject({ contract_id: 'low', run_id: 'low-run-1', state: 'FAILED', status: 'FAILED' });
    expect(r.json.kimi).toMatchObject({
      executionEnvelopeId: 'env_low-run-1',
      executionRunId: 'kexec_low-run-1',
      status: 'FAILED',
      maxCostUSD: 0.01,
      maxAgents: 5,
      maxRuntimeSec: 600,
      result: { tokensUsed: 0, costUSD: 0, summary: 'Execution aborted: budget exceeded ($0.02 > $0.01)', status: 'FAILED' },
    });
    expect(r.json.steps).toEqual([
      { id: 'generate', lane: 'kimi', status: 'FAILED', reason_code: 'BUDGET_EXCEEDED' },
      { id: 'review-delta', lane: 'manual', status: 'PENDING', reason_code: null },
    ]);
    expect(snapshot(ws, 'low').state).toBe('FAILED');

    const added = appended(ws, 'low', n);
    const types = added.map((e) => e.type);
    expect(types).not.toContain('kimi.started');
    expect(types).not.toContain('kimi.completed');
    expect(types).toContain('run.started');
    const aborted = added.filter((e) => e.type === 'kimi.aborted');
    expect(aborted).toHaveLength(1);
    expect(aborted[0]!.data.message).toBe('Kimi execution aborted (budget exceeded)');
    expect(added.find((e) => e.type === 'run.finished')).toMatchObject({ state: 'FAILED', data: { status: 'FAILED' } });

    const env = envelopes(ws, 'low');
    expect(env).toHaveLength(1);
    expect(env[0]).toMatchObject({ id: 'env_low-run-1', status: 'FAILED', max_cost_usd: 0.01 });

    const res = readJson(join(ws, r.json.artifacts.run_result));
    expect(res).toMatchObject({ version: 'kair.run-result.v1', run_id: 'low-run-1', status: 'FAILED', kimi: r.json.kimi, steps: r.json.steps });
    expect(res.error.code).toBe('BUDGET_EXCEEDED');
    expect(existsSync(join(ws, r.json.artifacts.run_request))).toBe(true);
  });

  it('runtime exceeded (5 features, 1 agent, 60 s → 100 s) → exit 5 RUNTIME_EXCEEDED', () => {
    const ws = cloneWorkspace(T);
    const n = history(ws, 'slow').length;
    const r = kj(ws, ['run', 'slow']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('RUNTIME_EXCEEDED');
    expect(r.json.error.message).toBe('Execution aborted: runtime exceeded (100s > 60s)');
    expect(r.json.kimi).toMatchObject({
      status: 'FAILED',
      maxAgents: 1,
      maxRuntimeSec: 60,
      result: { tokensUsed: 0, costUSD: 0, summary: 'Execution aborted: runtime exceeded (100s > 60s)', status: 'FAILED' },
    });
    expect(r.json.steps[0]).toEqual({ id: 'generate', lane: 'kimi', status: 'FAILED', reason_code: 'RUNTIME_EXCEEDED' });
    expect(snapshot(ws, 'slow').state).toBe('FAILED');
    const types = appended(ws, 'slow', n).map((e) => e.type);
    expect(types).toContain('kimi.aborted');
    expect(types).not.toContain('kimi.started');
    expect(envelopes(ws, 'slow').map((e) => e.status)).toEqual(['FAILED']);
  });

  it('per-contract cap: $0.02 spent, cap $0.03 → the next version’s run exits 5 CONTRACT_BUDGET_EXCEEDED, $0 spent', () => {
    const ws = cloneWorkspace(T);
    editConfig(ws, (c) => (c.kimi.max_cost_usd_per_contract = 0.03));
    const first = kj(ws, ['run', 'a']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.json.kimi.result.costUSD).toBe(0.02);
    ok(ws, ['rewind', 'a', 'do it again']);
    ok(ws, ['plan', 'a', '--file', fixture('custom-kimi.json')]);
    ok(ws, ['request-approval', 'a']);
    ok(ws, ['approve', 'a']);
    // The dry run predicts it and writes nothing.
    const before = tree(ws);
    const d = kj(ws, ['run', 'a', '--dry-run']);
    expect(d.code).toBe(5);
    expect(d.json.error.code).toBe('CONTRACT_BUDGET_EXCEEDED');
    expect(tree(ws)).toEqual(before);
    const n = history(ws, 'a').length;
    const r = kj(ws, ['run', 'a']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('CONTRACT_BUDGET_EXCEEDED');
    expect(r.json.state).toBe('FAILED');
    expect(r.json.run_id).toBe('a-run-2');
    expect(r.json.kimi).toMatchObject({ status: 'FAILED', result: { tokensUsed: 0, costUSD: 0, status: 'FAILED' } });
    const types = appended(ws, 'a', n).map((e) => e.type);
    expect(types).toContain('kimi.aborted');
    expect(types).not.toContain('kimi.started');
    // One envelope per attempt; only the first one spent anything.
    const env = envelopes(ws, 'a');
    expect(env.map((e) => [e.run_id, e.status])).toEqual([
      ['a-run-1', 'COMPLETED'],
      ['a-run-2', 'FAILED'],
    ]);
    // A cap exactly at the total ($0.02 + $0.02 = $0.04) passes: FAILED → run again completes.
    editConfig(ws, (c) => (c.kimi.max_cost_usd_per_contract = 0.04));
    const again = kj(ws, ['run', 'a']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.json).toMatchObject({ run_id: 'a-run-3', state: 'COMPLETED', kimi: { status: 'COMPLETED', result: { costUSD: 0.02 } } });
    expect(envelopes(ws, 'a').map((e) => e.status)).toEqual(['COMPLETED', 'FAILED', 'COMPLETED']);
    expect(snapshot(ws, 'a').runs).toEqual(['a-run-1', 'a-run-2', 'a-run-3']);
  });
});

describe('run: --pause-at and resume', () => {
  it('--pause-at review-delta pauses after generate (exit 0); resume completes without re-running Kimi', () => {
    const ws = cloneWorkspace(T);
    const r = kj(ws, ['run', 'a', '--pause-at', 'review-delta']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, run_id: 'a-run-1', status: 'PAUSED', state: 'PAUSED' });
    expect(r.json.kimi).toEqual(SUCCESS_KIMI('a'));
    expect(r.json.steps).toEqual([STEPS_DONE[0], { id: 'review-delta', lane: 'manual', status: 'PENDING', reason_code: null }]);
    const s = snapshot(ws, 'a');
    expect(s.state).toBe('PAUSED');
    expect(s.pause).toEqual({ requested_by: 'tester', reason: 'PAUSE_AT', step_id: 'review-delta' });
    expect(readJson(join(ws, r.json.artifacts.run_result)).status).toBe('PAUSED');

    const res = kj(ws, ['resume', 'a']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.json).toMatchObject({ ok: true, contract_id: 'a', run_id: 'a-run-1', state: 'COMPLETED', status: 'COMPLETED' });
    expect(res.json.kimi).toEqual(SUCCESS_KIMI('a'));
    expect(res.json.steps).toEqual(STEPS_DONE);
    expect(res.json.artifacts.run_result).toBe(r.json.artifacts.run_result);
    expect(readJson(join(ws, res.json.artifacts.run_result))).toMatchObject({ status: 'COMPLETED', steps: STEPS_DONE });

    expect(envelopes(ws, 'a')).toHaveLength(1);
    const evs = events(ws, 'a');
    expect(evs.filter((e: Json) => e.type === 'kimi.started')).toHaveLength(1);
    const generated = evs.filter((e: Json) => e.type === 'step.finished' && e.data.step.id === 'generate');
    expect(generated).toHaveLength(1);
    expect(evs.filter((e: Json) => e.type === 'resume')).toHaveLength(1);
    const done = snapshot(ws, 'a');
    expect(done.runs).toEqual(['a-run-1']);
    expect(done.pause).toBeUndefined();
    expect(done.running).toBeUndefined();
    expect(kj(ws, ['verify']).code).toBe(0);
  });

  it('--pause-at an unknown step → exit 2 USAGE_ERROR, nothing written', () => {
    const ws = cloneWorkspace(T);
    const before = tree(ws);
    const r = kj(ws, ['run', 'a', '--pause-at', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('USAGE_ERROR');
    expect(tree(ws)).toEqual(before);
  });

  it('pause of a contract that is not running → exit 3 INVALID_TRANSITION', () => {
    const ws = cloneWorkspace(T);
    const n = history(ws, 'a').length;
    const r = kj(ws, ['pause', 'a']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    expect(appended(ws, 'a', n).map((e) => [e.type, e.data.command, e.data.code])).toEqual([['gate.blocked', 'pause', 'INVALID_TRANSITION']]);
    expect(snapshot(ws, 'a').state).toBe('APPROVED');
  });
});

describe('run --dry-run writes nothing', () => {
  it('approved → exit 0 with routing and the Kimi estimate; .kair byte-identical, no kair.db created', () => {
    const ws = cloneWorkspace(T);
    const before = tree(ws);
    expect(Object.keys(before)).not.toContain('kair.db');
    const r = kj(ws, ['run', 'a', '--dry-run']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      ok: true,
      dry_run: true,
      lanes: ['kimi'],
      steps: [
        { id: 'generate', lane: 'kimi' },
        { id: 'review-delta', lane: 'manual' },
      ],
      kimi_estimate: { tokens: 10000, costUSD: 0.02, runtimeSec: 8 },
    });
    expect(r.json.kimi_estimate).toEqual({ tokens: 10000, costUSD: 0.02, runtimeSec: 8 });
    expect(r.json.run_id).toBeUndefined();
    expect(tree(ws)).toEqual(before);
  });

  it('a dry run with an existing kair.db leaves it (and everything else) byte-identical', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['run', 'ctl']);
    const before = tree(ws);
    expect(Object.keys(before)).toContain('kair.db');
    const r = kj(ws, ['run', 'a', '--dry-run']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(tree(ws)).toEqual(before);
  });

  it('budget-low → exit 5 BUDGET_EXCEEDED and nothing written', () => {
    const ws = cloneWorkspace(T);
    const before = tree(ws);
    const r = kj(ws, ['run', 'low', '--dry-run']);
    expect(r.code).toBe(5);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('BUDGET_EXCEEDED');
    expect(tree(ws)).toEqual(before);
  });

  it('unapproved → exit 3 and nothing written (no gate.blocked)', () => {
    const ws = cloneWorkspace(T);
    const before = tree(ws);
    const r = kj(ws, ['run', 'planned', '--dry-run']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    expect(tree(ws)).toEqual(before);
  });
});

describe('run: run ids and retries', () => {
  it('a second run from COMPLETED → exit 3 INVALID_TRANSITION, no second envelope', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['run', 'a']);
    const n = history(ws, 'a').length;
    const r = kj(ws, ['run', 'a']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    expect(r.json.error.details.state).toBe('COMPLETED');
    expect(appended(ws, 'a', n).map((e) => [e.type, e.data.code])).toEqual([['gate.blocked', 'INVALID_TRANSITION']]);
    expect(envelopes(ws, 'a')).toHaveLength(1);
    expect(snapshot(ws, 'a').runs).toEqual(['a-run-1']);
  });

  it('FAILED → run again: exit 5 with <id>-run-2 and a second envelope; the first archive is unchanged', () => {
    const ws = cloneWorkspace(T);
    const first = kj(ws, ['run', 'low']);
    expect(first.code).toBe(5);
    expect(first.json.run_id).toBe('low-run-1');
    const archived = folder(archive(ws, 'low', 'low-run-1'));
    expect(Object.keys(archived).sort()).toEqual(['run-request.json', 'run-result.1.json', 'run-result.json']);

    const second = kj(ws, ['run', 'low']);
    expect(second.code, second.stdout + second.stderr).toBe(5);
    expect(second.json.error.code).toBe('BUDGET_EXCEEDED');
    expect(second.json.run_id).toBe('low-run-2');
    expect(second.json.kimi.executionEnvelopeId).toBe('env_low-run-2');
    expect(second.json.artifacts.run_result).toBe('.kair/contracts/low/artifacts/run/low-run-2/run-result.json');

    expect(folder(archive(ws, 'low', 'low-run-1'))).toEqual(archived);
    expect(readJson(join(runsDir(ws, 'low'), 'run-result.json')).run_id).toBe('low-run-2');
    expect(readJson(join(runsDir(ws, 'low'), 'run-request.json')).run_id).toBe('low-run-2');
    expect(envelopes(ws, 'low').map((e) => [e.id, e.run_id, e.status])).toEqual([
      ['env_low-run-1', 'low-run-1', 'FAILED'],
      ['env_low-run-2', 'low-run-2', 'FAILED'],
    ]);
    expect(snapshot(ws, 'low')).toMatchObject({ state: 'FAILED', runs: ['low-run-1', 'low-run-2'] });
    expect(history(ws, 'low').filter((e) => e.type === 'kimi.aborted')).toHaveLength(2);
    expect(kj(ws, ['verify']).code).toBe(0);
  });
});

// Without --json: a short human summary, no JSON on stdout.
describe('run: human output', () => {
  it('prints the run id and status to stdout, nothing JSON', () => {
    const ws = cloneWorkspace(T);
    const r = kair(ws, ['run', 'a']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('a-run-1 COMPLETED');
    expect(r.json).toBeUndefined();
  });
});
