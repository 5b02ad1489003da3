/**
 * `kair run` gates (SPEC §4, §8 steps 1–2, §14 check order) and `--dry-run`. The lanes are not
 * in this build yet, so no test here expects a run to execute; every case stops at a gate or
 * is a dry run.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approvedRequiring,
  bringAll,
  cloneWorkspace,
  contractDir,
  editConfig,
  history,
  historyFile,
  kj,
  makeStandardWorkspace,
  ok,
  planFile,
  readJson,
  removeWorkspaces,
  reverseKeys,
  snapshotFile,
} from '../helpers/cli.js';

afterAll(removeWorkspaces);

const runDir = (ws: string, id: string) => join(contractDir(ws, id), 'artifacts', 'run');

/** Bytes of the files a refused run must not touch. */
function frozen(ws: string, id: string) {
  return { history: readFileSync(historyFile(ws, id), 'utf8'), snapshot: readFileSync(snapshotFile(ws, id), 'utf8') };
}

/** Exactly one gate.blocked {command: 'run', code} was appended, nothing else changed state. */
function expectBlocked(ws: string, id: string, before: { history: string }, code: string, state: string) {
  const after = readFileSync(historyFile(ws, id), 'utf8');
  expect(after.startsWith(before.history)).toBe(true);
  const added = after.slice(before.history.length).trim().split('\n').map((l) => JSON.parse(l));
  expect(added).toHaveLength(1);
  expect(added[0]).toMatchObject({ type: 'gate.blocked', state, data: { command: 'run', code } });
  expect(readJson(snapshotFile(ws, id)).state).toBe(state);
  expect(existsSync(runDir(ws, id))).toBe(false);
}

/** The standard workspace, plus: reuse (reuse-only, APPROVED), mixed (mixed-lanes, APPROVED), ctl (requires local:read). */
let T: string;
beforeAll(async () => {
  T = await makeStandardWorkspace();
  await Promise.all([
    bringAll(T, { reuse: 'APPROVED' }, 'reuse-only.json'),
    bringAll(T, { mixed: 'APPROVED' }, 'mixed-lanes.json'),
    approvedRequiring(T, 'ctl', 'local:read'),
  ]);
});

describe('run: state gate', () => {
  let ws: string;
  beforeAll(() => {
    ws = cloneWorkspace(T);
  });

  it.each([
    ['draft', 'DRAFT'],
    ['planned', 'PLANNED'],
    ['awaiting', 'AWAITING_APPROVAL'],
    ['rewound', 'REWOUND'],
  ])('run %s → exit 3 INVALID_TRANSITION, one gate.blocked, nothing run', (id, state) => {
    const before = frozen(ws, id);
    const r = kj(ws, ['run', id]);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    expect(r.json.error.details.state).toBe(state);
    expectBlocked(ws, id, before, 'INVALID_TRANSITION', state);
  });

  it('--dry-run in a refused state exits 3 too and appends nothing', () => {
    const before = frozen(ws, 'draft');
    const r = kj(ws, ['run', 'draft', '--dry-run']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    expect(frozen(ws, 'draft')).toEqual(before);
  });
});

describe('run: approval, plan hash and controls gates', () => {
  it('APPROVAL_REQUIRED when approvals.min is raised after approval (counted as configured now)', () => {
    const ws = cloneWorkspace(T);
    editConfig(ws, (c) => (c.approvals.min = 2));
    const dry = frozen(ws, 'approved');
    const d = kj(ws, ['run', 'approved', '--dry-run']);
    expect(d.code).toBe(3);
    expect(d.json.error.code).toBe('APPROVAL_REQUIRED');
    expect(frozen(ws, 'approved')).toEqual(dry);
    const before = frozen(ws, 'approved');
    const r = kj(ws, ['run', 'approved']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('APPROVAL_REQUIRED');
    expectBlocked(ws, 'approved', before, 'APPROVAL_REQUIRED', 'APPROVED');
  });

  it('APPROVAL_STALE after the plan file is hand-edited; dry run refuses it too', () => {
    const ws = cloneWorkspace(T);
    const plan = readJson(planFile(ws, 'approved'));
    plan.budget.maxCostUSD = 1; // a cheaper plan is still a different plan
    writeFileSync(planFile(ws, 'approved'), JSON.stringify(plan, null, 2) + '\n');
    const dry = frozen(ws, 'approved');
    const d = kj(ws, ['run', 'approved', '--dry-run']);
    expect(d.code).toBe(3);
    expect(d.json.error.code).toBe('APPROVAL_STALE');
    expect(frozen(ws, 'approved')).toEqual(dry);
    const before = frozen(ws, 'approved');
    const r = kj(ws, ['run', 'approved']);
    expect(r.code).toBe(3);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('APPROVAL_STALE');
    expectBlocked(ws, 'approved', before, 'APPROVAL_STALE', 'APPROVED');
  });

  it('a missing or unparsable plan file counts as stale', () => {
    const ws = cloneWorkspace(T);
    writeFileSync(planFile(ws, 'approved'), '{ "version": ');
    expect(kj(ws, ['run', 'approved', '--dry-run']).json.error.code).toBe('APPROVAL_STALE');
    rmSync(planFile(ws, 'approved'));
    const r = kj(ws, ['run', 'approved']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('APPROVAL_STALE');
  });

  it('CONTROLS_MISSING after a required control is revoked', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['revoke', 'ctl', 'local:read']);
    const before = frozen(ws, 'ctl');
    const r = kj(ws, ['run', 'ctl']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('CONTROLS_MISSING');
    expect(r.json.error.message).toContain('local:read');
    expectBlocked(ws, 'ctl', before, 'CONTROLS_MISSING', 'APPROVED');
    const d = kj(ws, ['run', 'ctl', '--dry-run']);
    expect(d.code).toBe(3);
    expect(d.json.error.code).toBe('CONTROLS_MISSING');
  });

  it('revoking a control that is not required does not block the run gates', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['grant', 'ctl', 'network:read']);
    ok(ws, ['revoke', 'ctl', 'network:read']);
    const d = kj(ws, ['run', 'ctl', '--dry-run']);
    expect(d.code).toBe(0);
    expect(d.json.dry_run).toBe(true);
  });

  it('check order: approvals, then the plan hash, then controls', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['revoke', 'ctl', 'local:read']);
    writeFileSync(planFile(ws, 'ctl'), '{}');
    expect(kj(ws, ['run', 'ctl', '--dry-run']).json.error.code).toBe('APPROVAL_STALE');
    editConfig(ws, (c) => (c.approvals.min = 3));
    expect(kj(ws, ['run', 'ctl', '--dry-run']).json.error.code).toBe('APPROVAL_REQUIRED');
  });
});

describe('run: routing', () => {
  let ws: string;
  beforeAll(() => {
    ws = cloneWorkspace(T);
  });

  it('a reuse-only plan → exit 3 NO_EXECUTION_REQUIRED "No execution required (reuse sufficient)", nothing spent', () => {
    const before = frozen(ws, 'reuse');
    const r = kj(ws, ['run', 'reuse']);
    expect(r.code).toBe(3);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('NO_EXECUTION_REQUIRED');
    expect(r.json.error.message).toBe('No execution required (reuse sufficient)');
    expectBlocked(ws, 'reuse', before, 'NO_EXECUTION_REQUIRED', 'APPROVED');
    expect(existsSync(join(ws, '.kair', 'outbox'))).toBe(false);
  });

  it('the same refusal from --dry-run: exit 3, nothing appended', () => {
    const before = frozen(ws, 'reuse');
    const r = kj(ws, ['run', 'reuse', '--dry-run']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('NO_EXECUTION_REQUIRED');
    expect(r.json.error.message).toBe('No execution required (reuse sufficient)');
    expect(frozen(ws, 'reuse')).toEqual(before);
  });

  it('a lane:"kimi" step in a plan that is not Kimi-eligible is refused the same way', () => {
    const ws2 = cloneWorkspace(T);
    const plan = { version: 'kair.plan.v1', title: 'Sneaky', strategy: 'OSS', steps: [{ id: 'gen', summary: 'generate', lane: 'kimi' }] };
    ok(ws2, ['plan', 'draft', '--plan-json', JSON.stringify(plan)]);
    ok(ws2, ['request-approval', 'draft']);
    ok(ws2, ['approve', 'draft']);
    const r = kj(ws2, ['run', 'draft', '--dry-run']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('NO_EXECUTION_REQUIRED');
  });

  it('--dry-run prints the routing (custom-kimi: kimi lane + a manual step) and writes nothing', () => {
    const before = frozen(ws, 'approved');
    const r = kj(ws, ['run', 'approved', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, dry_run: true });
    expect(r.json.lanes).toEqual(['kimi']);
    expect(r.json.steps).toEqual([
      { id: 'generate', lane: 'kimi', status: 'ok', reason_code: 'KIMI_OK' },
      { id: 'review-delta', lane: 'manual', status: 'ok', reason_code: 'MANUAL_RECORDED' },
    ]);
    expect(frozen(ws, 'approved')).toEqual(before);
    expect(existsSync(runDir(ws, 'approved'))).toBe(false);
    expect(readJson(snapshotFile(ws, 'approved')).runs).toEqual([]);
  });

  it('--dry-run of mixed-lanes routes to both lanes and, with no catalog, predicts the Finder refusal (exit 3)', () => {
    const r = kj(ws, ['run', 'mixed', '--dry-run']);
    expect(r.code, r.stdout).toBe(3);
    expect(r.json.dry_run).toBe(true);
    expect(r.json.error.code).toBe('SIM_FINDER_MISSING_SIMULATION');
    expect([...r.json.lanes].sort()).toEqual(['aec', 'kimi']);
    expect(r.json.steps.map((s: { id: string; lane: string; status: string }) => [s.id, s.lane, s.status])).toEqual([
      ['generate', 'kimi', 'ok'],
      ['send-invoice', 'aec', 'refused'],
    ]);
  });

  it('re-formatting plan_v1.json (same content, other whitespace and key order) does not make it stale', () => {
    const file = planFile(ws, 'approved');
    const plan = readJson(file);
    const text = JSON.stringify(reverseKeys(plan), null, '\t').replace(/\n/g, '\r\n') + '\r\n\r\n';
    expect(text).not.toBe(readFileSync(file, 'utf8'));
    writeFileSync(file, text);
    const r = kj(ws, ['run', 'approved', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, dry_run: true, lanes: ['kimi'] });
    // verify does not flag it either
    const v = kj(ws, ['verify', 'approved']);
    expect(v.code).toBe(0);
    expect(v.json.warnings.filter((w: { kind: string }) => w.kind === 'plan_changed')).toEqual([]);
  });

  it('--pause-at an unknown step is a usage error (exit 2), nothing appended', () => {
    const before = frozen(ws, 'approved');
    const r = kj(ws, ['run', 'approved', '--dry-run', '--pause-at', 'no-such-step']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('USAGE_ERROR');
    const real = kj(ws, ['run', 'approved', '--pause-at', 'no-such-step']);
    expect(real.code).toBe(2);
    expect(frozen(ws, 'approved')).toEqual(before);
    expect(history(ws, 'approved').filter((e) => e.type === 'gate.blocked')).toEqual([]);
  });
});
