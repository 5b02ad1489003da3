/**
 * verify's fast path (decision 037): one pass that folds and drops each line, with the history
 * split at checkpoint events over worker threads when it is long. It must report exactly what the
 * exact single-core path reports (KAIR_VERIFY_FAST=0), whatever is wrong with the history: every
 * case below runs verify with the exact path, the fast path on one thread, and the fast path on
 * 2 and 4 threads (KAIR_VERIFY_WORKER_BYTES=1 makes this short history "long"), and compares the
 * documents byte for byte.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGrant } from '../../src/domain/lifecycle.js';
import type { Contract } from '../../src/domain/contract.js';
import { commitEvents, updateIndex } from '../../src/store/fs/contract-writes.js';
import { indexEntry, loadContract } from '../../src/store/fs/contracts.js';
import { paths, workspaceAt } from '../../src/store/fs/workspace.js';
import { ALICE, setUpCatalog } from '../helpers/aec.js';
import { cloneWorkspace, fixture, kair, ok, removeWorkspaces, makeWorkspace } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const asAlice = { env: ALICE };
const MODES = {
  exact: { KAIR_VERIFY_FAST: '0' },
  one: { KAIR_VERIFY_WORKER_BYTES: String(1 << 30) },
  two: { KAIR_VERIFY_WORKER_BYTES: '1', KAIR_VERIFY_THREADS: '2' },
  four: { KAIR_VERIFY_WORKER_BYTES: '1', KAIR_VERIFY_THREADS: '4' },
};

/** `grants` grant/revoke events appended to c1 by kair's own store functions (checkpoints every 64). */
function grow(root: string, grants: number): void {
  const ws = workspaceAt(root);
  let c: Contract = loadContract(ws, 'c1').contract;
  const drafts = [];
  let k = c;
  for (let j = 0; j < grants; j++) {
    const d = decideGrant(k, k.controls.granted.includes('local:read') ? 'revoke' : 'grant', ['local:read']);
    drafts.push(d);
    k = { ...k, controls: { ...k.controls, granted: d.data.granted as string[] } };
  }
  c = commitEvents(ws, c, drafts, { at: '2026-01-30T12:00:00.000Z', actor: 'alice' }).contract;
  updateIndex(ws, { actor: 'alice', command: 'grant', now: () => '2026-01-30T12:00:00.000Z' }, 0, [indexEntry(c)]);
}

let T: string;
beforeAll(() => {
  // c1: a run through both lanes (artifacts, SQLite anchors, DPC), 200 grants, a rewind, a second
  // plan, approval and run; the kept events fall in every stretch. c2: a short clean contract.
  T = makeWorkspace();
  setUpCatalog(T, ['send-invoice', 'void-invoice']);
  ok(T, ['access', 'allow', 'alice', 'invoice:send']);
  const lifecycle = () => {
    ok(T, ['plan', 'c1', '--file', fixture('mixed-lanes.json')], asAlice);
    ok(T, ['request-approval', 'c1'], asAlice);
    ok(T, ['approve', 'c1'], asAlice);
    // the second run pauses at its AEC step (the same invoice after a rewind): a pause is history too
    expect([0, 3]).toContain(kair(T, ['run', 'c1', '--confirm', 'yes', '--json'], asAlice).code);
  };
  ok(T, ['propose', 'long one', '--id', 'c1'], asAlice);
  lifecycle();
  grow(T, 200);
  ok(T, ['rewind', 'c1', 'once more'], asAlice);
  lifecycle();
  ok(T, ['propose', 'short one', '--id', 'c2'], asAlice);
});

const hist = (ws: string) => paths.history(workspaceAt(ws), 'c1');
const lines = (ws: string) => readFileSync(hist(ws), 'utf8').split('\n').slice(0, -1);
const setLines = (ws: string, l: string[]) => writeFileSync(hist(ws), l.join('\n') + '\n');
/** The line with its keys in another order and its hash over that text (not the canonical one). */
function ownHashed(line: string): string {
  const { hash: _, ...rest } = JSON.parse(line) as Record<string, unknown>;
  const text = JSON.stringify(Object.fromEntries(Object.entries(rest).reverse()));
  return `${text.slice(0, -1)},"hash":"${createHash('sha256').update(String(rest.prev) + text).digest('hex')}"}`;
}
const cp = (ws: string, k: number) => join(paths.checkpoints(workspaceAt(ws), 'c1'), `${k}.json`);

/** verify in every mode: all four documents must be the same text. */
function verifyAll(ws: string, args: string[] = []): { code: number; json: { ok: boolean; problems: { kind: string; message: string }[]; warnings: { kind: string }[]; events: number } } {
  const runs = Object.entries(MODES).map(([name, env]) => ({ name, r: kair(ws, ['verify', ...args, '--json'], { env }) }));
  for (const { name, r } of runs) {
    expect(r.stdout, name).toBe(runs[0]!.r.stdout);
    expect(r.code, name).toBe(runs[0]!.r.code);
  }
  return { code: runs[0]!.r.code, json: JSON.parse(runs[0]!.r.stdout) };
}

describe('verify: the fast path reports what the exact path reports', () => {
  it('a clean workspace (both lanes, checkpoints, a rewind): ok in every mode, every event counted', () => {
    const v = verifyAll(T);
    expect(v.code).toBe(0);
    expect(v.json).toMatchObject({ ok: true, problems: [], warnings: [] });
    expect(v.json.events).toBe(lines(T).length + 1);
    expect(verifyAll(T, ['c1']).json.events).toBe(lines(T).length);
    expect(lines(T).filter((l) => l.includes('"type":"checkpoint"')).length).toBeGreaterThanOrEqual(3);
  });

  it.each([
    ['an edited event in the first stretch', (ws: string) => setLines(ws, lines(ws).map((l, i) => (i === 20 ? l.replace('"local:read"', '"local:write"') : l)))],
    ['an edited event in the last stretch', (ws: string) => setLines(ws, lines(ws).map((l, i, a) => (i === a.length - 3 ? l.replace('"alice"', '"mallory"') : l)))],
    ['spaces in a line (its hash is over the canonical text: fine)', (ws: string) => setLines(ws, lines(ws).map((l, i) => (i === 100 ? l.replace('{"actor"', '{ "actor"') : l)))],
    ['a line hashed over its own non-canonical text', (ws: string) => setLines(ws, lines(ws).map((l, i) => (i === 100 ? ownHashed(l) : l)))],
    ['two lines swapped', (ws: string) => setLines(ws, lines(ws).map((l, i, a) => (i === 120 ? a[121]! : i === 121 ? a[120]! : l)))],
    ['a line that is not JSON', (ws: string) => setLines(ws, lines(ws).map((l, i) => (i === 90 ? l.slice(0, 40) : l)))],
    ['a torn last line', (ws: string) => appendFileSync(hist(ws), '{"actor":"ali')],
    ['the history cut short', (ws: string) => setLines(ws, lines(ws).slice(0, 150))],
    ['an edited checkpoint file', (ws: string) => writeFileSync(cp(ws, 127), readFileSync(cp(ws, 127), 'utf8').replace('"COMPLETED"', '"APPROVED"'))],
    ['a missing checkpoint file (writers fold from an older one: fine)', (ws: string) => rmSync(cp(ws, 63))],
    ['a reformatted checkpoint file (same state: fine)', (ws: string) => writeFileSync(cp(ws, 63), JSON.stringify(JSON.parse(readFileSync(cp(ws, 63), 'utf8')), null, 2))],
    ['a snapshot left at an earlier state', (ws: string) => writeFileSync(paths.snapshot(workspaceAt(ws), 'c1'), readFileSync(cp(ws, 127)))],
    ['an edited snapshot', (ws: string) => writeFileSync(paths.snapshot(workspaceAt(ws), 'c1'), readFileSync(paths.snapshot(workspaceAt(ws), 'c1'), 'utf8').replace('"long one"', '"short"'))],
    ['a run artifact edited', (ws: string) => {
      const f = join(paths.runs(workspaceAt(ws), 'c1'), 'c1-run-1', 'run-result.1.json');
      writeFileSync(f, readFileSync(f, 'utf8').replace('COMPLETED', 'FAILED'));
    }],
    ['the plan copy edited', (ws: string) => writeFileSync(paths.plan(workspaceAt(ws), 'c1'), '{}')],
  ])('%s: the same document in every mode', (name, harm) => {
    const ws = cloneWorkspace(T);
    harm(ws);
    const v = verifyAll(ws);
    if (name.endsWith('fine)')) expect(v.json).toMatchObject({ ok: true, problems: [], warnings: [] });
    else expect(v.json.problems.length + v.json.warnings.length).toBeGreaterThan(0);
  });
});
