/**
 * What an approver sees (`kair show`), what changed (`kair diff`), and `approve --expect-sha`
 * refusing a plan changed after it was read; the plan sha in request-approval and status; status
 * of a FAILED contract with its reason and next step; review with the run summary.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, registerSimulation, simPlan } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { bring, cloneWorkspace, contractDir, fixture, history, kair, kj, makeTempDir, makeWorkspace, ok, readJson, removeWorkspaces, snapshot } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const base = readJson(fixture('custom-kimi.json'));

function planFileOf(plan: Json): string {
  const f = join(makeTempDir('kair-plan-'), 'plan.json');
  writeFileSync(f, JSON.stringify(plan));
  return f;
}

/** A plan of base's with a third step, the two first swapped, one summary and the budget changed. */
const changed = {
  ...base,
  budget: { ...base.budget, maxCostUSD: 20 },
  steps: [
    { ...base.steps[1], summary: 'Two humans read the generated delta' },
    base.steps[0],
    { id: 'announce', summary: 'Tell the team' },
  ],
};

let W: string;
let shaA: string;
let shaB: string;

beforeAll(() => {
  W = makeWorkspace();
  ok(W, ['propose', 'Add chat', '--id', 'chat', '--requires', 'local:read']);
  shaA = ok(W, ['plan', 'chat', '--file', fixture('custom-kimi.json')]).plan_sha256;
  shaB = ok(W, ['plan', 'chat', '--file', planFileOf(changed)]).plan_sha256;
  ok(W, ['grant', 'chat', 'local:read']);
});

describe('kair show', () => {
  it('--json: intent, state, version, the current plan (sha, steps with lanes), controls, approvals, next command', () => {
    const ws = cloneWorkspace(W);
    ok(ws, ['request-approval', 'chat']);
    const d = ok(ws, ['show', 'chat']);
    expect(d).toMatchObject({
      contract_id: 'chat',
      intent: 'Add chat',
      state: 'AWAITING_APPROVAL',
      version: 1,
      plan_sha256: shaB,
      plan: {
        sha256: shaB,
        title: base.title,
        strategy: 'CUSTOM',
        kimi_eligible: true,
        steps: [
          { id: 'review-delta', lane: 'manual', summary: 'Two humans read the generated delta' },
          { id: 'generate', lane: 'kimi', summary: 'Generate the custom delta' },
          { id: 'announce', lane: 'manual', summary: 'Tell the team' },
        ],
      },
      controls: { required: ['local:read'], granted: ['local:read'], missing: [] },
      approvals: [],
      approvers: { valid: 0, min: 1 },
      last_run: null,
      next: [{ command: `kair approve chat --expect-sha ${shaB.slice(0, 12)}` }],
    });
    // After an approval: who, when, which plan, and whether it is signed.
    ok(ws, ['approve', 'chat'], { env: ALICE });
    const after = ok(ws, ['show', 'chat']);
    expect(after.approvals).toEqual([{ actor: 'alice', at: '2026-01-30T12:00:00.000Z', plan_sha256: shaB, valid: true, current: true, signed: false, verified: null }]);
    expect(after.next).toEqual([{ command: 'kair run chat', why: expect.any(String) }]);
  });

  it('text: the full sha, one step a line (number, id, lane, what it does), the next command', () => {
    const r = kair(W, ['show', 'chat']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`sha256 ${shaB}`);
    const lines = r.stdout.split('\n');
    expect(lines.find((l) => /\b1\.\s+review-delta\s+manual\s+Two humans read the generated delta$/.test(l))).toBeDefined();
    expect(lines.find((l) => /\b2\.\s+generate\s+kimi\s+Generate the custom delta$/.test(l))).toBeDefined();
    expect(r.stdout).toMatch(/next\s+kair request-approval chat/);
  });

  it('-q prints only the current plan sha (what --expect-sha takes)', () => {
    const r = kair(W, ['show', 'chat', '-q']);
    expect(r).toMatchObject({ code: 0, stdout: `${shaB}\n` });
  });

  it('an AEC step shows its lane and the simulation it asks for', () => {
    const ws = cloneWorkspace(W);
    ok(ws, ['plan', 'chat', '--file', fixture('mixed-lanes.json')]);
    const steps = ok(ws, ['show', 'chat']).plan.steps;
    expect(steps[1]).toEqual({ id: 'send-invoice', lane: 'aec', summary: 'Send the first invoice', simulation: 'send invoice' });
  });

  it('a kept plan changed on disk is INTEGRITY_FAILED (exit 7), never shown', () => {
    const ws = cloneWorkspace(W);
    const kept = join(contractDir(ws, 'chat'), 'plan', `${shaB}.json`);
    writeFileSync(kept, readFileSync(kept, 'utf8').replace('Tell the team', 'Wire the money'));
    for (const args of [['show', 'chat'], ['diff', 'chat'], ['diff', 'chat', '--from', shaB.slice(0, 8), '--to', shaA.slice(0, 8)]]) {
      const r = kj(ws, args);
      expect(r.code, args.join(' ')).toBe(7);
      expect(r.json.error).toMatchObject({ code: 'INTEGRITY_FAILED', details: { kind: 'plan_mismatch', plan_sha256: shaB } });
      expect(r.stdout).not.toContain('Wire the money');
    }
  });
});

describe('kair diff', () => {
  it('with no valid approval, --from defaults to the previous plan: added, moved, changed field by field, other keys as paths', () => {
    const d = ok(W, ['diff', 'chat']);
    expect(d).toEqual({
      ok: true,
      contract_id: 'chat',
      from: shaA,
      to: shaB,
      from_ref: 'previous',
      to_ref: 'current',
      identical: false,
      steps: {
        added: [{ id: 'announce', index: 2, step: { id: 'announce', summary: 'Tell the team' } }],
        removed: [],
        moved: [{ id: 'review-delta', from: 1, to: 0 }],
        changed: [{ id: 'review-delta', path: 'summary', op: 'replace', from: 'A human reads the generated delta', to: 'Two humans read the generated delta' }],
      },
      other: [{ path: 'budget.maxCostUSD', op: 'replace', from: 25, to: 20 }],
    });
  });

  it('both ways by sha prefix (8+ hex, any case); a removal; exit 0 whatever the difference', () => {
    const d = ok(W, ['diff', 'chat', '--from', shaB.slice(0, 8).toUpperCase(), '--to', shaA]);
    expect(d).toMatchObject({ from: shaB, to: shaA, from_ref: 'sha', to_ref: 'sha' });
    expect(d.steps.removed).toEqual([{ id: 'announce', index: 2, step: { id: 'announce', summary: 'Tell the team' } }]);
    expect(ok(W, ['diff', 'chat', '--from', shaB, '--to', 'current']).identical).toBe(true);
  });

  it('text: a line per change', () => {
    const r = kair(W, ['diff', 'chat']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`chat: plan ${shaA.slice(0, 12)} (previous) → ${shaB.slice(0, 12)} (current)`);
    expect(r.stdout).toContain('+ announce (step 3): Tell the team');
    expect(r.stdout).toContain('review-delta moved: step 2 → 1');
    expect(r.stdout).toContain('~ review-delta: summary: "A human reads the generated delta" → "Two humans read the generated delta"');
    expect(r.stdout).toContain('~ budget.maxCostUSD: 25 → 20');
    expect(kair(W, ['diff', 'chat', '-q'])).toMatchObject({ code: 0, stdout: '' });
  });

  it('with a valid approval, --from defaults to the approved plan (identical to the current one)', () => {
    const ws = cloneWorkspace(W);
    ok(ws, ['request-approval', 'chat']);
    ok(ws, ['approve', 'chat']);
    expect(ok(ws, ['diff', 'chat'])).toMatchObject({ from: shaB, to: shaB, from_ref: 'approved', identical: true });
    // Re-planning voids it: `approved` names nothing, and the error points at the void approval's plan.
    ok(ws, ['plan', 'chat', '--file', fixture('custom-kimi.json')]);
    const r = kj(ws, ['diff', 'chat', '--from', 'approved']);
    expect(r.code).toBe(4);
    expect(r.json.error).toMatchObject({ code: 'PLAN_NOT_FOUND', details: { flag: '--from', hint: expect.stringContaining(`--from ${shaB.slice(0, 12)}`) } });
    expect(ok(ws, ['diff', 'chat', '--from', shaB.slice(0, 12)])).toMatchObject({ from: shaB, to: shaA });
  });

  it('the first plan has no previous one: every step and key is added', () => {
    const ws = makeWorkspace();
    bring(ws, 'one', 'PLANNED');
    const d = ok(ws, ['diff', 'one']);
    expect(d).toMatchObject({ from: null, identical: false });
    expect(d.steps.added.map((s: Json) => s.id)).toEqual(['generate', 'review-delta']);
  });

  it('bad references: a short or non-hex sha is USAGE_ERROR naming the flag, an unknown one PLAN_NOT_FOUND; nothing is written', () => {
    const before = readFileSync(join(contractDir(W, 'chat'), 'history.jsonl'), 'utf8');
    const cases: [string[], number, string, string][] = [
      [['--from', shaA.slice(0, 7)], 2, 'USAGE_ERROR', '--from'],
      [['--to', 'latest'], 2, 'USAGE_ERROR', '--to'],
      [['--from', 'zzzzzzzz'], 2, 'USAGE_ERROR', '--from'],
      [['--from', '0123abcd'], 4, 'PLAN_NOT_FOUND', '--from'],
      [['--to', 'f'.repeat(64)], 4, 'PLAN_NOT_FOUND', '--to'],
      [['--from', 'approved'], 4, 'PLAN_NOT_FOUND', '--from'],
    ];
    for (const [args, exit, code, flag] of cases) {
      const r = kj(W, ['diff', 'chat', ...args]);
      expect(r.code, args.join(' ')).toBe(exit);
      expect(r.json.error.code).toBe(code);
      expect(r.json.error.details.flag).toBe(flag);
      expect(r.json.error.details.hint).toEqual(expect.any(String));
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const draft = makeWorkspace();
    bring(draft, 'd', 'DRAFT');
    expect(kj(draft, ['diff', 'd']).json.error.code).toBe('PLAN_NOT_FOUND');
    expect(kj(draft, ['show', 'd']).json).toMatchObject({ ok: true, plan: null, plan_sha256: null });
    expect(readFileSync(join(contractDir(W, 'chat'), 'history.jsonl'), 'utf8')).toBe(before);
  });

  it('`diff` and `show` are also valid contract ids', () => {
    const ws = makeWorkspace();
    bring(ws, 'diff', 'PLANNED');
    bring(ws, 'show', 'PLANNED');
    expect(ok(ws, ['show', 'diff']).contract_id).toBe('diff');
    expect(ok(ws, ['diff', 'diff']).contract_id).toBe('diff');
    expect(ok(ws, ['diff', 'show']).contract_id).toBe('show');
    expect(ok(ws, ['show', 'show']).contract_id).toBe('show');
  });
});

describe('approve --expect-sha', () => {
  it('a plan changed between request-approval and approve is refused (APPROVAL_STALE, both shas, no approval recorded)', () => {
    const ws = cloneWorkspace(W);
    // alice asks for approval of A and tells bob its sha; before bob approves, the plan becomes B.
    ok(ws, ['plan', 'chat', '--file', fixture('custom-kimi.json')]);
    const asked = ok(ws, ['request-approval', 'chat']);
    expect(asked.plan_sha256).toBe(shaA);
    ok(ws, ['plan', 'chat', '--file', planFileOf(changed)]);
    ok(ws, ['request-approval', 'chat']);
    const events = history(ws, 'chat').length;
    const r = kj(ws, ['approve', 'chat', '--expect-sha', shaA.slice(0, 12)], { env: { KAIR_ACTOR: 'bob' } });
    expect(r.code).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'APPROVAL_STALE', details: { contract_id: 'chat', expected_sha256_prefix: shaA.slice(0, 12), current_sha256: shaB, hint: expect.stringContaining('kair diff chat') } });
    expect(snapshot(ws, 'chat')).toMatchObject({ state: 'AWAITING_APPROVAL', approvals: [] });
    // The refusal is recorded like every gate refusal, and nothing else is.
    const after = history(ws, 'chat').slice(events);
    expect(after.map((e) => [e.type, e.data.code])).toEqual([['gate.blocked', 'APPROVAL_STALE']]);
    // With the sha of what is current, the approval goes through.
    const approved = ok(ws, ['approve', 'chat', '--expect-sha', shaB.slice(0, 8)], { env: { KAIR_ACTOR: 'bob' } });
    expect(approved.contract).toMatchObject({ state: 'APPROVED', approvals: [{ actor: 'bob', plan_sha256: shaB, valid: true }] });
    // A repeat approval with a sha that is not current is refused too (it would read as consent to that sha).
    expect(kj(ws, ['approve', 'chat', '--expect-sha', shaA.slice(0, 8)], { env: { KAIR_ACTOR: 'bob' } }).code).toBe(3);
  });

  it('a prefix shorter than 8 hex digits, or not hex, is USAGE_ERROR naming the flag; nothing is written', () => {
    const ws = cloneWorkspace(W);
    ok(ws, ['request-approval', 'chat']);
    const events = history(ws, 'chat').length;
    for (const bad of [shaB.slice(0, 7), 'not-a-sha', `${shaB}0`, '']) {
      const r = kj(ws, ['approve', 'chat', '--expect-sha', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--expect-sha' } });
      expect(r.json.error.message).toContain('8 to 64 hex digits');
    }
    expect(history(ws, 'chat')).toHaveLength(events);
  });
});

describe('the sha in request-approval and status', () => {
  it('request-approval prints the sha and the approver commands; status --json carries plan_sha256 and next', () => {
    const ws = cloneWorkspace(W);
    const r = kair(ws, ['request-approval', 'chat']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`plan sha256 ${shaB}`);
    expect(r.stdout).toContain(`kair approve chat --expect-sha ${shaB.slice(0, 12)}`);
    const s = ok(ws, ['status', 'chat']);
    expect(s).toMatchObject({ plan_sha256: shaB, next: [{ command: `kair approve chat --expect-sha ${shaB.slice(0, 12)}` }] });
    expect(s.last_run).toBeUndefined();
    expect(kair(ws, ['status', 'chat']).stdout).toMatch(/next\s+kair approve chat --expect-sha/);
  });
});

describe('a FAILED contract: status explains, show has the last run, review summarizes', () => {
  let F: string;
  beforeAll(() => {
    F = makeWorkspace();
    // A command simulation whose executor fails: the run FAILS at its AEC step.
    registerSimulation(
      F,
      { id: 'boom', title: 'Explode', examples: ['explode now'], required_fields: [], impact: 'side_effecting', access_action: 'boom:run', executor: { kind: 'command', argv: ['node', '-e', 'process.exit(3)'], timeout_ms: 20_000 } },
      { allow: 'alice' },
    );
    ok(F, ['propose', 'Fails', '--id', 'f', '--requires', 'local:exec'], { env: ALICE });
    ok(F, ['plan', 'f', '--file', planFileOf(simPlan([{ id: 'prep', manual: true }, { id: 'blow', utterance: 'explode now' }, { id: 'after', manual: true }]))], { env: ALICE });
    ok(F, ['grant', 'f', 'local:exec'], { env: ALICE });
    ok(F, ['request-approval', 'f'], { env: ALICE });
    ok(F, ['approve', 'f'], { env: ALICE });
    const r = kj(F, ['run', 'f', '--confirm', 'yes'], { env: ALICE });
    expect(r.code, r.stdout + r.stderr).toBe(5);
  });

  it('status --json: the reason (failing step and its code) and the next commands; text shows both', () => {
    const s = ok(F, ['status', 'f']);
    expect(s.contract.state).toBe('FAILED');
    expect(s.last_run).toMatchObject({
      run_id: 'f-run-1',
      status: 'FAILED',
      failed_step: 'blow',
      reason: { code: 'AEC_EXECUTOR_FAILED' },
      steps: [
        { id: 'prep', lane: 'manual', status: 'COMPLETED' },
        { id: 'blow', lane: 'aec', status: 'FAILED', reason_code: 'AEC_EXECUTOR_FAILED' },
        { id: 'after', lane: 'manual', status: 'PENDING', reason_code: null },
      ],
    });
    expect(s.next.map((n: Json) => n.command)).toEqual(['kair aec ledger f', 'kair run f', 'kair rewind f "<reason>"']);
    const text = kair(F, ['status', 'f']).stdout;
    expect(text).toContain('last run  f-run-1 FAILED at step blow: AEC_EXECUTOR_FAILED');
    expect(text).toMatch(/next\s+kair aec ledger f/);
    expect(text).toContain('kair run f');
  });

  it('show carries the same last run', () => {
    expect(ok(F, ['show', 'f']).last_run).toMatchObject({ status: 'FAILED', failed_step: 'blow', reason: { code: 'AEC_EXECUTOR_FAILED' } });
  });

  it('review (of a completed run) prints the steps with status and reason, the cost and the run id', () => {
    const ws = makeWorkspace();
    bring(ws, 'c', 'APPROVED');
    ok(ws, ['run', 'c']);
    const r = kair(ws, ['review', 'c']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('c-run-1 COMPLETED · Kimi: 10000 tokens, $0.02');
    expect(r.stdout).toMatch(/generate\s+kimi\s+COMPLETED\s+KIMI_OK/);
    expect(r.stdout).toMatch(/review-delta\s+manual\s+COMPLETED\s+MANUAL_RECORDED/);
    const d = ok(ws, ['review', 'c']);
    expect(d.run.run_id).toBe('c-run-1');
    expect(d.last_run).toMatchObject({ run_id: 'c-run-1', status: 'COMPLETED', failed_step: null, kimi: { tokens: 10000, cost_usd: 0.02 } });
  });
});

describe('hostile text', () => {
  it('control characters in a plan (title, summary, a details key) are shown escaped, never raw, in show and diff', () => {
    const ws = makeWorkspace();
    bring(ws, 'h', 'PLANNED');
    const evil = { ...base, title: 'T\u001b]0;pwn\u0007', steps: [{ ...base.steps[0], summary: 'one\ntwo\u202e', details: { 'k\u001b[2J': 'v' } }, base.steps[1]] };
    ok(ws, ['plan', 'h', '--file', planFileOf(evil)]);
    for (const args of [['show', 'h'], ['diff', 'h']]) {
      const r = kair(ws, args, { env: { FORCE_COLOR: '1', NO_COLOR: undefined } });
      expect(r.code, args.join(' ')).toBe(0);
      for (const raw of ['\u0007', '\u202e', '\u001b]', '\u001b[2J']) expect(r.stdout).not.toContain(raw);
      expect(r.stdout).toContain('\\u202e');
    }
  });
});

describe('help', () => {
  it.each(['show', 'diff'])('kair %s --help shows an example', (cmd) => {
    const r = kair(W, [cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`kair ${cmd} chat`);
  });
});
