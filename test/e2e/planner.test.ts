/**
 * `kair plan --generate / --refine` with the stub provider, through the built CLI: the same
 * intent gives the byte-identical plan, the plan is set like any other (approvals voided, kept
 * by sha), the call is recorded (prompt kept by sha, DPC evidence, the plan event's `planner`),
 * a generated plan routes through `run --dry-run`, `--debug` prints on stderr only without
 * --json, and bad input is refused with nothing written.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalHash } from '../../src/domain/canonical.js';
import type { PromptPayload } from '../../src/domain/planner/prompt.js';
import { promptOf } from '../../src/domain/planner/prompt.js';
import { stubAnswer } from '../../src/domain/planner/stub.js';
import { PUBLISHED_SCHEMAS } from '../../src/domain/schemas.js';
import { setUpCatalog } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { cloneWorkspace, contractDir, dpcFile, editConfig, history, historyFile, kair, kj, makeWorkspace, ok, planFile, readJson, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const INTENT = 'Build a chat widget with notifications. Send the invoice customer=acme amount=120. Tell the sales team';

/** The fixture catalog (Active) and policy, and a DRAFT contract `inv` requiring local:read. */
let T: string;
beforeAll(() => {
  T = makeWorkspace();
  setUpCatalog(T, ['send-invoice', 'void-invoice']);
  ok(T, ['propose', INTENT, '--id', 'inv', '--requires', 'local:read']);
  ok(T, ['dpc', 'inv', '--add-constraint', 'No new servers']);
});

const files = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
const snapshotOfTree = (ws: string) => Object.fromEntries(files(join(ws, '.kair')).filter((f) => !f.includes('/locks/')).map((f) => [f, readFileSync(f, 'utf8')]));

describe('plan --generate with the stub', () => {
  it('gives the byte-identical plan for the same intent, DPC and controls, and records the call', () => {
    const a = cloneWorkspace(T);
    const b = cloneWorkspace(T);
    const ra = ok(a, ['plan', 'inv', '--generate']);
    const rb = ok(b, ['plan', 'inv', '--generate']);
    expect(readFileSync(planFile(a, 'inv'), 'utf8')).toBe(readFileSync(planFile(b, 'inv'), 'utf8'));
    expect(ra.plan_sha256).toBe(rb.plan_sha256);
    expect(ra.contract.state).toBe('PLANNED');
    const plan = readJson(planFile(a, 'inv'));
    expect(plan.strategy).toBe('CUSTOM');
    expect(plan.steps.map((s: Json) => s.id)).toEqual(['generate', 'send-invoice', 'tell-sales-team', 'review']);
    // Kept by sha like every plan.
    expect(canonicalHash(readJson(join(contractDir(a, 'inv'), 'plan', `${ra.plan_sha256}.json`)))).toBe(ra.plan_sha256);

    // The call: the plan event names it, the prompt is kept by its sha, the DPC has the evidence.
    const pl = ra.planner;
    expect(pl).toMatchObject({ mode: 'generate', provider: 'stub', model: 'kair-stub-1' });
    expect(pl.tokens_in).toBeGreaterThan(0);
    expect(pl.tokens_out).toBeGreaterThan(0);
    const events = history(a, 'inv');
    const planEvent = events.find((e) => e.type === 'plan')!;
    expect(planEvent.data.planner).toEqual(pl);
    const promptPath = join(a, pl.prompt_ref);
    const payload = readJson(promptPath) as PromptPayload;
    expect(canonicalHash(payload)).toBe(pl.prompt_sha256);
    expect(payload).toMatchObject({ provider: 'stub', model: 'kair-stub-1', max_tokens: 4096 });
    // Replayable: the stub answers the kept prompt with the plan that was set.
    expect(canonicalHash(JSON.parse(stubAnswer(promptOf(payload))))).toBe(ra.plan_sha256);
    const dpc = readJson(dpcFile(a, 'inv'));
    const [prompt, planEv] = dpc.evidence;
    expect(prompt).toMatchObject({ kind: 'prompt', ref: pl.prompt_ref });
    expect(prompt.note).toContain(pl.prompt_sha256);
    expect(prompt.note).toContain('stub');
    expect(prompt.note).toContain(`${pl.tokens_in} tokens in, ${pl.tokens_out} tokens out`);
    expect(planEv).toMatchObject({ kind: 'plan', note: `sha256 ${ra.plan_sha256}` });
    expect(PUBLISHED_SCHEMAS['output-lifecycle']!.safeParse(ra).success).toBe(true);
    expect(kj(a, ['verify']).code).toBe(0);
  });

  it('routes the generated plan through run --dry-run (Kimi and AEC lanes), and a refine voids the approval', () => {
    const w = cloneWorkspace(T);
    ok(w, ['plan', 'inv', '--generate']);
    ok(w, ['grant', 'inv', 'local:read']);
    ok(w, ['request-approval', 'inv']);
    ok(w, ['approve', 'inv']);
    // The dry run predicts the real run's first stop: the impactful invoice waits for a confirmation.
    const d = kj(w, ['run', 'inv', '--dry-run']);
    expect(d.code, d.stdout + d.stderr).toBe(3);
    const dry = d.json;
    expect(dry.error.code).toBe('AEC_CONFIRM_REQUIRED');
    expect(dry.lanes).toEqual(['kimi', 'aec']);
    expect(dry.steps.map((x: Json) => ({ id: x.id, lane: x.lane }))).toEqual([
      { id: 'generate', lane: 'kimi' },
      { id: 'send-invoice', lane: 'aec' },
      { id: 'tell-sales-team', lane: 'manual' },
      { id: 'review', lane: 'manual' },
    ]);
    expect(dry.steps[1]).toMatchObject({ status: 'needs_confirmation', simulation_id: 'send-invoice' });
    const r = ok(w, ['plan', 'inv', '--refine', 'Drop tell-sales-team. Void the invoice customer=acme']);
    expect(r.contract.state).toBe('PLANNED');
    expect(r.contract.approvals.every((x: Json) => !x.valid)).toBe(true);
    expect(r.planner.mode).toBe('refine');
    expect(readJson(planFile(w, 'inv')).steps.map((s: Json) => s.id)).toEqual(['generate', 'send-invoice', 'void-invoice', 'review']);
    const payload = readJson(join(w, r.planner.prompt_ref)) as PromptPayload;
    expect(promptOf(payload)).toMatchObject({ mode: 'refine', feedback: 'Drop tell-sales-team. Void the invoice customer=acme' });
    expect(history(w, 'inv').filter((e) => e.type === 'plan').at(-1)!.data.voided_approvals).toBe(1);
  });

  it('verify reports a kept prompt that was edited or deleted (dpc_mismatch, exit 7)', () => {
    const w = cloneWorkspace(T);
    const r = ok(w, ['plan', 'inv', '--generate']);
    const file = join(w, r.planner.prompt_ref);
    writeFileSync(file, readFileSync(file, 'utf8').replace('Tell the sales team', 'Tell nobody'));
    const v = kj(w, ['verify']);
    expect(v.code).toBe(7);
    expect(v.json.problems).toEqual([expect.objectContaining({ contract_id: 'inv', kind: 'dpc_mismatch' })]);
    rmSync(file);
    expect(kj(w, ['verify']).json.problems[0].message).toContain('missing');
  });

  it('--debug prints the prompt payload, the DPC path and a DPC preview on stderr; with --json nothing extra', () => {
    const w = cloneWorkspace(T);
    const text = kair(w, ['plan', 'inv', '--generate', '--debug', '--instructions', 'Keep it small']);
    expect(text.code).toBe(0);
    expect(text.stderr).toContain('--- planner prompt payload ---');
    expect(text.stderr).toContain('"model": "kair-stub-1"');
    expect(text.stderr).toContain('Keep it small');
    expect(text.stderr).toContain('--- DPC: .kair/contracts/inv/dpc/dpc_v1.json ---');
    expect(text.stderr).toContain('"kind": "prompt"');
    expect(text.stdout).toContain('Planned inv with the stub planner');
    const json = kj(w, ['plan', 'inv', '--generate', '--debug']);
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
    expect(json.json.ok).toBe(true);
  });

  it('--instructions changes the prompt and so the plan', () => {
    const a = cloneWorkspace(T);
    const plain = ok(a, ['plan', 'inv', '--generate']);
    const steered = ok(a, ['plan', 'inv', '--generate', '--instructions', 'Void the invoice customer=acme']);
    expect(steered.planner.prompt_sha256).not.toBe(plain.planner.prompt_sha256);
    expect(readJson(planFile(a, 'inv')).steps.map((s: Json) => s.id)).toContain('void-invoice');
  });
});

describe('plan --generate refusals write nothing', () => {
  const cases: [string, string[], number, string][] = [
    ['--generate with --file', ['plan', 'inv', '--generate', '--file', 'x.json'], 2, 'USAGE_ERROR'],
    ['--generate and --refine', ['plan', 'inv', '--generate', '--refine', 'x'], 2, 'USAGE_ERROR'],
    ['--instructions alone', ['plan', 'inv', '--instructions', 'x'], 2, 'USAGE_ERROR'],
    ['--debug alone', ['plan', 'inv', '--debug'], 2, 'USAGE_ERROR'],
    ['an empty --refine', ['plan', 'inv', '--refine', ' '], 2, 'USAGE_ERROR'],
    ['an unknown provider', ['plan', 'inv', '--generate', '--provider', 'gpt'], 2, 'USAGE_ERROR'],
    ['an unknown provider outside any workspace', ['plan', 'inv', '--generate', '--provider', 'gpt', '--dir', '/nonexistent-kair'], 2, 'USAGE_ERROR'],
    ['empty --instructions', ['plan', 'inv', '--generate', '--instructions', ''], 2, 'USAGE_ERROR'],
    ['--refine without a plan', ['plan', 'inv', '--refine', 'more tests'], 2, 'USAGE_ERROR'],
    ['openai-compatible unconfigured', ['plan', 'inv', '--generate', '--provider', 'openai-compatible'], 2, 'PLANNER_NOT_CONFIGURED'],
    ['an unknown contract', ['plan', 'nope', '--generate'], 4, 'CONTRACT_NOT_FOUND'],
  ];
  it.each(cases)('%s → exit %i %s', (_name, args, exit, code) => {
    const w = cloneWorkspace(T);
    const before = snapshotOfTree(w);
    const r = kj(w, args, { env: { KAIR_PLANNER_API_KEY: undefined } });
    expect(r.code, r.stdout + r.stderr).toBe(exit);
    expect(r.json.error.code).toBe(code);
    expect(r.json.error.details.hint ?? r.json.error.message).toBeTruthy();
    expect(snapshotOfTree(w)).toEqual(before);
  });

  it('the stub keeps to planner.max_tokens too: a plan over it is PLANNER_FAILED (exit 5), nothing written', () => {
    const w = cloneWorkspace(T);
    editConfig(w, (c) => {
      c.planner = { max_tokens: 20 };
    });
    const before = snapshotOfTree(w);
    const r = kj(w, ['plan', 'inv', '--generate']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.error).toMatchObject({ code: 'PLANNER_FAILED', details: { provider: 'stub', max_tokens: 20 } });
    expect(snapshotOfTree(w)).toEqual(before);
  });

  it('--debug escapes control characters of a hostile intent', () => {
    const w = cloneWorkspace(T);
    ok(w, ['propose', 'Build \u001b]0;owned\u0007 a thing\u001b[2J', '--id', 'evil']);
    const r = kair(w, ['plan', 'evil', '--generate', '--debug']);
    expect(r.code, r.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex -- control characters are what must not be printed
    const control = /[\u0000-\u0008\u000b-\u001f\u007f]/;
    expect(r.stderr).not.toMatch(control);
    expect(r.stdout).not.toMatch(control);
  });

  it('in a state that takes no plan: INVALID_TRANSITION recorded as one gate.blocked event, the provider never asked', () => {
    const w = cloneWorkspace(T);
    ok(w, ['plan', 'inv', '--generate']);
    ok(w, ['grant', 'inv', 'local:read']);
    ok(w, ['request-approval', 'inv']);
    ok(w, ['approve', 'inv']);
    ok(w, ['run', 'inv', '--pause-at', 'generate']);
    const n = history(w, 'inv').length;
    const r = kj(w, ['plan', 'inv', '--generate']);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    const after = history(w, 'inv');
    expect(after.length).toBe(n + 1);
    expect(after.at(-1)).toMatchObject({ type: 'gate.blocked', data: { command: 'plan' } });
    expect(readdirSync(join(contractDir(w, 'inv'), 'dpc')).filter((f) => f.startsWith('prompt-')).length).toBe(1);
    expect(existsSync(historyFile(w, 'inv'))).toBe(true);
  });
});
