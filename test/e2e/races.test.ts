/**
 * Issue 11's race suite: commands that contend for one contract, in bounded rounds. Whatever
 * order the processes land in, history never forks, nothing a command acknowledged is lost, and
 * each step's side effect happens exactly once (counted by a `command` simulation that appends
 * a line per execution). Lock-specific races (stopped holders, recovery raced) live elsewhere.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, approveContract, counterSimulation, ledgerRows, lineCount, simPlan } from '../helpers/aec.js';
import type { HistoryEvent, Json, RunResult } from '../helpers/cli.js';
import { fixture, history, kairAsync, kj, makeTempDir, makeWorkspace, ok, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const ROUNDS = Number(process.env.KAIR_RACE_ROUNDS ?? 2);
const asAlice = { env: ALICE };

/** A fresh copy of `template`'s workspace whose counter file (outside .kair/) is its own. */
function round(template: string): { ws: string; effects: string } {
  const ws = makeTempDir('kair-race-');
  cpSync(join(template, '.kair'), join(ws, '.kair'), { recursive: true });
  return { ws, effects: join(template, 'effects') };
}

/** 0 forks: seqs 1..n, each `prev` the hash before it, and verify agrees. */
function expectOneChain(ws: string, id: string): HistoryEvent[] {
  const events = history(ws, id);
  events.forEach((e, i) => {
    expect(e.seq, `${id} line ${i + 1}`).toBe(i + 1);
    if (i > 0) expect(e.prev, `${id} seq ${e.seq} prev`).toBe(events[i - 1]!.hash);
  });
  const v = kj(ws, ['verify']);
  expect(v.code, v.stdout).toBe(0);
  return events;
}

/** 0 lost: every contract a successful command printed is in history at the seq it printed. */
function expectAcknowledged(events: HistoryEvent[], results: RunResult[]): void {
  for (const r of results) {
    const c: Json = r.json?.contract;
    if (r.code !== 0 || !c?.history_seq) continue;
    expect(events[c.history_seq - 1]?.hash, `acknowledged seq ${c.history_seq}`).toBe(c.history_head);
  }
}

const outcomes = (rs: RunResult[]) => JSON.stringify(rs.map((r) => [r.code, r.json?.error?.code ?? r.json?.state ?? r.json?.contract?.state]));

describe('races', () => {
  let counted: string;
  beforeAll(() => {
    // Two counting steps of 150 ms each: wide enough for the others to arrive mid-run.
    counted = makeWorkspace();
    const effects = join(counted, 'effects');
    mkdirSync(effects);
    counterSimulation(counted, 'tick-a', join(effects, 'a.txt'), { sleepMs: 150 });
    counterSimulation(counted, 'tick-b', join(effects, 'b.txt'), { sleepMs: 150 });
    approveContract(
      counted,
      'c',
      simPlan([
        { id: 'a', utterance: 'count tick-a' },
        { id: 'b', utterance: 'count tick-b' },
      ]),
      { requires: ['local:exec'], grant: ['local:exec'] },
    );
  });

  /** Each step ran at most once, and exactly as often as the ledger says it succeeded. */
  function expectEffects(ws: string, effects: string): { a: number; b: number } {
    const a = lineCount(join(effects, 'a.txt'));
    const b = lineCount(join(effects, 'b.txt'));
    expect(a).toBeLessThanOrEqual(1);
    expect(b).toBeLessThanOrEqual(1);
    const succeeded = ledgerRows(ws, "event = 'SUCCEEDED'");
    expect(succeeded.map((r) => r.step_id).sort()).toEqual([...(a ? ['a'] : []), ...(b ? ['b'] : [])]);
    return { a, b };
  }

  it(`32 concurrent grants on one contract, ${ROUNDS} round(s): all recorded, one chain`, async () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Contended', '--id', 'g']);
    for (let r = 0; r < ROUNDS; r++) {
      // Counts ignore checkpoint events (one lands wherever seq reaches a multiple of 64).
      const before = history(ws, 'g').filter((e) => e.type !== 'checkpoint').length;
      const controls = Array.from({ length: 32 }, (_, i) => `ns:r${r}p${i}`);
      const results = await Promise.all(controls.map((c) => kairAsync(ws, ['grant', 'g', c, '--json'])));
      for (const res of results) expect(res.code, res.stdout + res.stderr).toBe(0);
      const events = expectOneChain(ws, 'g');
      expect(events.filter((e) => e.type === 'grant')).toHaveLength(32 * (r + 1));
      expect(events.filter((e) => e.type !== 'checkpoint').length).toBe(before + 32);
      expectAcknowledged(events, results);
    }
  });

  it(`8 concurrent runs and resumes of one approved contract, ${ROUNDS} round(s): one run, each step once`, async () => {
    for (let r = 0; r < ROUNDS; r++) {
      const { ws, effects } = round(counted);
      mkdirSync(effects, { recursive: true });
      for (const f of ['a.txt', 'b.txt']) writeFileSync(join(effects, f), '');
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => kairAsync(ws, [i % 2 ? 'resume' : 'run', 'c', '--confirm-all', 'yes', '--json'], asAlice)),
      );
      const winners = results.filter((x) => x.code === 0);
      expect(winners, outcomes(results)).toHaveLength(1);
      for (const x of results.filter((y) => y.code !== 0)) expect(['LOCK_BUSY', 'INVALID_TRANSITION', 'CONCURRENT_WRITE'], outcomes(results)).toContain(x.json?.error?.code);
      const events = expectOneChain(ws, 'c');
      expect(events.filter((e) => e.type === 'run.started')).toHaveLength(1);
      expect(expectEffects(ws, effects)).toEqual({ a: 1, b: 1 });
    }
  });

  it(`8 concurrent resumes of one paused run, ${ROUNDS} round(s): one resumes, step b runs once`, async () => {
    for (let r = 0; r < ROUNDS; r++) {
      const { ws, effects } = round(counted);
      mkdirSync(effects, { recursive: true });
      for (const f of ['a.txt', 'b.txt']) writeFileSync(join(effects, f), '');
      const paused = kj(ws, ['run', 'c', '--pause-at', 'b', '--confirm-all', 'yes'], asAlice);
      expect(paused.json?.state, paused.stdout).toBe('PAUSED');
      const results = await Promise.all(Array.from({ length: 8 }, () => kairAsync(ws, ['resume', 'c', '--confirm-all', 'yes', '--json'], asAlice)));
      expect(results.filter((x) => x.code === 0), outcomes(results)).toHaveLength(1);
      for (const x of results.filter((y) => y.code !== 0)) expect(['LOCK_BUSY', 'INVALID_TRANSITION', 'CONCURRENT_WRITE'], outcomes(results)).toContain(x.json?.error?.code);
      const events = expectOneChain(ws, 'c');
      expect(events.filter((e) => e.type === 'resume')).toHaveLength(1);
      expect(expectEffects(ws, effects)).toEqual({ a: 1, b: 1 });
    }
  });

  it(`revoke racing run, ${ROUNDS} round(s): nothing starts after the revoke but the step in flight`, async () => {
    for (let r = 0; r < ROUNDS; r++) {
      const { ws, effects } = round(counted);
      mkdirSync(effects, { recursive: true });
      for (const f of ['a.txt', 'b.txt']) writeFileSync(join(effects, f), '');
      const run = kairAsync(ws, ['run', 'c', '--confirm-all', 'yes', '--json'], asAlice);
      // Staggered so that rounds see the revoke before, during and after the run.
      await new Promise((res) => setTimeout(res, 120 * r));
      const revoke = await kairAsync(ws, ['revoke', 'c', 'local:exec', '--json'], asAlice);
      const results = [await run, revoke];
      expect(revoke.code, revoke.stdout + revoke.stderr).toBe(0);
      const events = expectOneChain(ws, 'c');
      expectAcknowledged(events, results);
      const at = events.findIndex((e) => e.type === 'revoke');
      const afterRevoke = events.slice(at + 1).filter((e) => e.type === 'step.finished' && e.data?.step?.status === 'COMPLETED');
      expect(afterRevoke.length, outcomes(results)).toBeLessThanOrEqual(1);
      expect(events.slice(at + 1).some((e) => e.type === 'run.started'), 'a run started after the revoke').toBe(false);
      expectEffects(ws, effects);
    }
  });

  it(`rewind racing run, ${ROUNDS} round(s): a rewound version never runs`, async () => {
    for (let r = 0; r < ROUNDS; r++) {
      const { ws, effects } = round(counted);
      mkdirSync(effects, { recursive: true });
      for (const f of ['a.txt', 'b.txt']) writeFileSync(join(effects, f), '');
      const results = await Promise.all([kairAsync(ws, ['run', 'c', '--confirm-all', 'yes', '--json'], asAlice), kairAsync(ws, ['rewind', 'c', 'changed our mind', '--json'], asAlice)]);
      const events = expectOneChain(ws, 'c');
      expectAcknowledged(events, results);
      const rewound = events.findIndex((e) => e.type === 'rewind');
      if (rewound >= 0) expect(events.slice(rewound + 1).some((e) => e.type === 'run.started' || e.type === 'step.finished'), outcomes(results)).toBe(false);
      expect(results.some((x) => x.code === 0), outcomes(results)).toBe(true);
      expectEffects(ws, effects);
    }
  });

  it(`approve racing plan and run, ${ROUNDS} round(s): a run only ever executes the plan that was approved`, async () => {
    const template = makeWorkspace();
    ok(template, ['propose', 'Race the approval', '--id', 'p']);
    ok(template, ['plan', 'p', '--file', fixture('custom-kimi.json')]);
    ok(template, ['request-approval', 'p']);
    for (let r = 0; r < ROUNDS; r++) {
      const { ws } = round(template);
      const results = await Promise.all([
        kairAsync(ws, ['approve', 'p', '--json'], asAlice),
        kairAsync(ws, ['plan', 'p', '--file', fixture('mixed-lanes.json'), '--json']),
        kairAsync(ws, ['run', 'p', '--json'], asAlice),
      ]);
      const events = expectOneChain(ws, 'p');
      expectAcknowledged(events, results);
      // Walk history: a run may start only while the latest approval matches the latest plan.
      let planSha: string | null = null;
      let approvedSha: string | null = null;
      for (const e of events) {
        if (e.type === 'plan') {
          planSha = e.data.plan_sha256 ?? e.data.sha256;
          approvedSha = null;
        }
        if (e.type === 'approve') approvedSha = e.data.plan_sha256 ?? planSha;
        if (e.type === 'run.started') expect(approvedSha, `run.started at seq ${e.seq} ${outcomes(results)}`).toBe(planSha);
      }
      const c = kj(ws, ['status', 'p']).json.contract;
      if (c.state === 'APPROVED') expect(c.approvals.filter((a: Json) => a.valid).map((a: Json) => a.plan_sha256)).toContain(c.plan_sha256);
    }
  });
});
