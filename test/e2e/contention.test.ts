/**
 * Many writers at once, the way `npm run bench` drives them (scripts/bench-verify.mjs has the
 * timings; here only what must hold whatever the timing): waiters poll the lock in short jittered
 * rounds and judge a live holder again only now and then, and still every grant is recorded once,
 * each chain is contiguous, the index ends right and verify finds nothing.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../helpers/cli.js';
import { history, kairAsync, kj, makeWorkspace, ok, readIndex, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

/** `procs` processes at once, each running `per` grants one after another on ids[i % ids.length]. */
async function burst(ws: string, ids: string[], procs: number, per: number): Promise<void> {
  await Promise.all(
    Array.from({ length: procs }, async (_, i) => {
      for (let j = 0; j < per; j++) {
        const r = await kairAsync(ws, ['grant', ids[i % ids.length]!, `ns:p${i}g${j}`, '--json', '--lock-timeout', '60000']);
        expect(r.code, r.stdout + r.stderr).toBe(0);
      }
    }),
  );
}

function expectContiguous(events: HistoryEvent[]): void {
  events.forEach((e, i) => {
    expect(e.seq).toBe(i + 1);
    if (i > 0) expect(e.prev).toBe(events[i - 1]!.hash);
  });
}

function expectAllRecorded(ws: string, id: string, controls: string[]): void {
  const events = history(ws, id);
  expectContiguous(events);
  const grants = events.filter((e) => e.type === 'grant');
  expect(grants).toHaveLength(controls.length);
  expect(grants.flatMap((e) => e.data.changed as string[]).sort()).toEqual([...controls].sort());
}

describe('writers in a crowd', () => {
  it('32 concurrent grants on one contract: all 32 recorded once, a contiguous chain, the index entry current, verify clean', async () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Crowded', '--id', 'c1']);
    await burst(ws, ['c1'], 32, 1);
    expectAllRecorded(ws, 'c1', Array.from({ length: 32 }, (_, i) => `ns:p${i}g0`));
    const entry = (readIndex(ws) as { id: string; history_seq?: number }[]).find((e) => e.id === 'c1');
    expect(entry).toBeDefined();
    const v = kj(ws, ['verify']);
    expect(v.code, v.stdout).toBe(0);
    expect(v.json).toMatchObject({ ok: true, problems: [], warnings: [] });
    expect(readdirSync(join(ws, '.kair', 'locks'))).toEqual([]);
  });

  it('8 processes × 4 grants on 8 contracts and on one: every grant recorded, every chain contiguous, verify clean', async () => {
    const ws = makeWorkspace();
    const ids = Array.from({ length: 8 }, (_, i) => `s${i}`);
    for (const id of [...ids, 'one']) ok(ws, ['propose', `Spread ${id}`, '--id', id]);
    await burst(ws, ids, 8, 4);
    await burst(ws, ['one'], 8, 4);
    ids.forEach((id, i) => expectAllRecorded(ws, id, Array.from({ length: 4 }, (_, j) => `ns:p${i}g${j}`)));
    expectAllRecorded(ws, 'one', Array.from({ length: 32 }, (_, k) => `ns:p${k >> 2}g${k & 3}`));
    const v = kj(ws, ['verify']);
    expect(v.code, v.stdout).toBe(0);
    expect(v.json).toMatchObject({ ok: true, problems: [], warnings: [] });
    expect(readdirSync(join(ws, '.kair', 'locks'))).toEqual([]);
  });
});
