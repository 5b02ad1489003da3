// Start-up ratios for `npm run bench`: each case runs once per round, the cases alternating, and
// its median is divided by the median of `node -e 0` measured in the same rounds.
import { spawnSync } from 'node:child_process';

/** cases: name → (round) => argv for node; the one named 'node -e 0' is the baseline. */
export function measureRatios(cases, rounds, env) {
  const times = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [name, args] of Object.entries(cases)) {
      const t = process.hrtime.bigint();
      const r = spawnSync(process.execPath, args(i), { env, stdio: 'ignore' });
      times[name].push(Number(process.hrtime.bigint() - t) / 1e6);
      if (r.status !== 0) throw new Error(`${name} exited ${r.status}`);
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const base = median(times['node -e 0']);
  return { base, results: Object.entries(times).map(([name, t]) => ({ name, median_ms: +median(t).toFixed(1), ratio: +(median(t) / base).toFixed(2) })) };
}

export function printRatios({ base, results }, rounds) {
  const width = Math.max(38, ...results.map((r) => r.name.length + 2));
  console.log(`rounds: ${rounds} (alternating), baseline node -e 0 = ${base.toFixed(1)} ms\n`);
  console.log('case'.padEnd(width) + 'median ms'.padStart(10) + 'ratio'.padStart(8));
  for (const r of results) console.log(r.name.padEnd(width) + String(r.median_ms).padStart(10) + `${r.ratio.toFixed(2)}x`.padStart(8));
}

/**
 * Grows contract `c` to `events` history events through kair's own store functions (`k`: a bundle
 * exporting decideGrant, commitEvents and loadContract): alternating grant/revoke of local:read,
 * appended 1,000 at a time. Returns the contract as committed.
 */
export function growHistory(k, w, c, events, meta) {
  for (let n = c.history_seq; n < events; ) {
    const drafts = [];
    for (let j = 0; j < 1000 && n < events; j++, n++) {
      const draft = k.decideGrant(c, c.controls.granted.length ? 'revoke' : 'grant', ['local:read']);
      drafts.push(draft);
      c = { ...c, controls: { ...c.controls, granted: draft.data.granted } };
    }
    c = k.commitEvents(w, k.loadContract(w, c.id).contract, drafts, meta).contract;
  }
  return c;
}
