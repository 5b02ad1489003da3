/**
 * The one case of issue 12's report that no other test states outright: a rewind followed by a
 * re-plan overwrote the approved plan. The plan alice approved under v1 must stay readable by its
 * sha (`show`/`diff`), beside the new current plan, and history must name both.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALICE } from '../helpers/aec.js';
import { contractDir, fixture, history, makeTempDir, makeWorkspace, ok, readJson, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

describe('plans are kept by sha across a rewind', () => {
  it('rewind, then re-plan: plan_v1.json is the new plan; the approved v1 plan is still kept, diffable and named in history', () => {
    const ws = makeWorkspace();
    const as = { env: ALICE };
    const v1 = readJson(fixture('custom-kimi.json'));
    ok(ws, ['propose', 'Add chat', '--id', 'chat'], as);
    const shaV1 = ok(ws, ['plan', 'chat', '--file', fixture('custom-kimi.json')], as).plan_sha256;
    ok(ws, ['request-approval', 'chat'], as);
    ok(ws, ['approve', 'chat', '--expect-sha', shaV1.slice(0, 12)], as);
    ok(ws, ['rewind', 'chat', 'the budget is too high'], as);

    const v2 = { ...v1, budget: { ...v1.budget, maxCostUSD: 5 } };
    const file = join(makeTempDir('kair-plan-'), 'v2.json');
    writeFileSync(file, JSON.stringify(v2));
    const shaV2 = ok(ws, ['plan', 'chat', '--file', file], as).plan_sha256;
    expect(shaV2).not.toBe(shaV1);

    const dir = join(contractDir(ws, 'chat'), 'plan');
    expect(existsSync(join(dir, `${shaV1}.json`))).toBe(true);
    expect(existsSync(join(dir, `${shaV2}.json`))).toBe(true);
    expect(readJson(join(dir, 'plan_v1.json')).budget.maxCostUSD).toBe(5);
    expect(history(ws, 'chat').filter((e) => e.type === 'plan').map((e) => e.data.plan_sha256)).toEqual([shaV1, shaV2]);
    // What alice approved is one command away, by sha: the approve event names it.
    const approved = history(ws, 'chat').find((e) => e.type === 'approve')!;
    expect(approved.data.plan_sha256).toBe(shaV1);
    const d = ok(ws, ['diff', 'chat', '--from', shaV1.slice(0, 8), '--to', 'current']);
    expect(d).toMatchObject({ from: shaV1, to: shaV2, identical: false, other: [{ path: 'budget.maxCostUSD', from: v1.budget.maxCostUSD, to: 5 }] });
    expect(ok(ws, ['show', 'chat']).plan_sha256).toBe(shaV2);
    expect(ok(ws, ['verify']).problems).toEqual([]);
  });
});
