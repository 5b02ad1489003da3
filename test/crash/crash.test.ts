/**
 * Issue 11's crash harness: every kill point of every mutating command (KAIR_CRASH_FULL=1, as
 * `npm run test:crash` sets), or of grant, run and resume (the default run, for CI), plus seeded
 * random instants. How to run and reproduce: docs/decisions/017-crash-harness.md.
 */
import { appendFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASES, baseSetup, inputs } from './cases.js';
import type { KillPoint, Violation } from './harness.js';
import { checkKillPoint, copyTemplate, durableRows, historyLines, makeTemp, pool, profile, seeded } from './harness.js';
import { KNOWN_FAILURES, isKnown } from './known-failures.js';

const FULL = process.env.KAIR_CRASH_FULL === '1';
/** Off (`0`) only while the product fixes of issue 11 land: known violations are then reported, not failed. */
const STRICT = process.env.KAIR_CRASH_STRICT !== '0';
const SEED = Number(process.env.KAIR_CRASH_SEED ?? 11);
const RANDOM_KILLS = Number(process.env.KAIR_CRASH_RANDOM ?? (FULL ? 12 : 3));
/** Kill points run side by side: each has its own copy of the template. */
const JOBS = Number(process.env.KAIR_CRASH_JOBS ?? 2);
/** Reproduce some commands (`KAIR_CRASH_CASE=run,sim register`), optionally only some points (`KAIR_CRASH_POINTS=12,14,140ms`). */
const ONLY_CASE = process.env.KAIR_CRASH_CASE?.split(',').map((n) => n.trim());
const ONLY_POINTS = process.env.KAIR_CRASH_POINTS?.split(',').map((p) => p.trim());
const SUMMARY = process.env.KAIR_CRASH_SUMMARY;

const cases = CASES.filter((c) => (ONLY_CASE ? ONLY_CASE.includes(c.name) : FULL || c.ci));

let base: string;
const made: string[] = [];
beforeAll(async () => {
  base = makeTemp('kair-crash-base-');
  made.push(base);
  await baseSetup(base);
});
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
  rmSync(inputs, { recursive: true, force: true });
});

describe.each(cases)('crash harness: $name', (c) => {
  it(
    'after a kill at each file-system operation and at random instants: verify passes, the next command recovers, nothing lost or done twice, no orphan',
    async () => {
      const template = copyTemplate(base);
      made.push(template);
      await c.setup(template);
      const prof = await profile(c, template);
      // Each kind of writer must be seen by the preload, or its kill points would be missing.
      const seen = new Set(prof.ops.map(([op]) => op));
      if (!c.sqliteOnly) {
        for (const op of ['openSync', 'writeSync', 'renameSync']) expect(seen, `${c.name} ops: ${[...seen].join(', ')}`).toContain(op);
        // proper-lockfile's mkdir of the lock folder: the lock library's calls are seen too.
        expect(prof.killOps.some((o) => /^mkdirSync \S+\.lock$/.test(o)), prof.killOps.join('\n')).toBe(true);
      }
      expect(prof.ops.filter(([op]) => op.startsWith('async:')), 'asynchronous writes under .kair/ cannot be killed at a precise point').toEqual([]);

      const rng = seeded(SEED ^ [...c.name].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7));
      const points: KillPoint[] = prof.killOps.map((op, i) => ({ point: `op ${i + 1}`, op, env: { KAIR_CRASH_AT: String(i + 1), ...(c.signal ? { KAIR_CRASH_SIGNAL: c.signal } : {}) } }));
      // Random instants are SIGKILLs from a worker thread: the signal cases are about the signal.
      for (let i = 0; i < (c.signal ? 0 : RANDOM_KILLS); i++) {
        const ms = Math.floor(rng() * (prof.durationMs + 1));
        points.push({ point: `random ${ms}ms`, op: null, env: { KAIR_CRASH_AFTER_MS: String(ms) } });
      }
      // The delays depend on the profile's duration as well as the seed: a delay is replayed by value.
      const chosen = ONLY_POINTS
        ? [
            ...points.filter((p) => p.op && ONLY_POINTS.includes(p.point.slice(3))),
            ...ONLY_POINTS.filter((t) => /^\d+ms$/.test(t)).map((t) => ({ point: `random ${t}`, op: null, env: { KAIR_CRASH_AFTER_MS: t.slice(0, -2) } })),
          ]
        : points;

      const templateState = { history: historyLines(template), rows: durableRows(template) };
      const started = Date.now();
      const results = await pool(chosen, JOBS, (kp) => checkKillPoint(c, template, kp, templateState));
      const violations = results.flatMap((r) => r.violations);
      const known = violations.filter((v) => isKnown(v));
      const unknown = violations.filter((v) => !isKnown(v));
      const failedPoints = new Set(violations.map((v) => v.point));
      const line = {
        command: c.name,
        kill_points: prof.killOps.length,
        random_instants: chosen.filter((p) => !p.op).length,
        // A random instant after the command finished kills nothing; it still checks the end state.
        random_landed: results.filter((r, i) => !chosen[i]!.op && r.killed).length,
        tried: chosen.length,
        passed: chosen.length - failedPoints.size,
        known_failing: new Set(known.map((v) => v.point)).size,
        seed: SEED,
        seconds: Math.round((Date.now() - started) / 100) / 10,
      };
      console.log(`crash ${JSON.stringify(line)}\n${violations.map(show).join('\n')}`);
      // `known`: the index of the matching entry of KNOWN_FAILURES, -1 for none.
      if (SUMMARY) appendFileSync(SUMMARY, JSON.stringify({ ...line, violations: violations.map((v) => ({ ...v, known: KNOWN_FAILURES.indexOf(isKnown(v)!) })) }) + '\n');

      expect(unknown.map(show)).toEqual([]);
      if (STRICT) expect(known.map(show)).toEqual([]);
    },
    FULL ? 1_800_000 : 600_000,
  );
});

function show(v: Violation): string {
  return `${v.command} @ ${v.point}${v.op ? ` [${v.op}]` : ''}: ${v.invariant}: ${v.detail}${isKnown(v) ? ' (known)' : ''}`;
}
