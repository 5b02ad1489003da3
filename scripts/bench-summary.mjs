// The last step of `npm run bench`: issue 15's table of figures, each with its goal (SPEC §18),
// from what the benches wrote to bench/ in this run (results.json, scale-results.json,
// verify-results.json). A figure a bench did not produce is printed as "not measured", never
// left out. Wall-clock ratios on a shared machine move with its load, printed with them; the
// instruction counts of scripts/icount.sh are the steadier figures (docs/decisions/037).
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';

const dir = join(new URL('..', import.meta.url).pathname, 'bench');
const read = (name) => (existsSync(join(dir, name)) ? JSON.parse(readFileSync(join(dir, name), 'utf8')) : {});
const main = read('results.json');
const scale = read('scale-results.json');
const verifyBench = read('verify-results.json');
const ratio = (results, test) => results?.find((r) => test(r.name))?.ratio;
const x = (v) => (v === undefined ? 'not measured' : `${v.toFixed(2)}x`);
const named = (name) => ratio(main.results, (n) => n === name);

const rows = [];
const row = (name, now, goal, met, v) => rows.push([name, now, goal, met, v]);
row('status --json', x(named('kair status --json')), '<= 1.15x', (v) => v <= 1.15, named('kair status --json'));
row('grant', x(named('kair grant')), '<= 1.6x', (v) => v <= 1.6, named('kair grant'));
const mixed = ratio(main.results, (n) => n.startsWith('kair run --json (Kimi + 1 AEC'));
row('run --json Kimi + 1 AEC step', x(mixed), '<= 2.0x', (v) => v <= 2.0, mixed);
row('run --json Kimi alone (for comparison)', x(named('kair run --json (Kimi stub)')), '(no goal of its own)', () => true, undefined);

// The scale rows compare stages of one bench-scale run (100 → the largest workspace it built).
const stages = scale.stages ?? [];
const small = stages.find((st) => st.contracts === 100) ?? stages[0];
const large = stages.at(-1);
const atStage = (st, prefix) => (st ? ratio(st.startup, (n) => n.startsWith(prefix)) : undefined);
const n = (v) => (v === undefined ? '?' : v.toLocaleString('en-US'));
if (stages.length < 2) for (const what of ['grant', 'propose', 'status --json']) row(`${what} with 100,000 contracts`, 'not measured', 'against 100 contracts', () => true, undefined);
for (const st of stages.filter((s) => s !== small)) {
  for (const [what, prefix] of [
    ['grant', 'kair grant'],
    ['propose', 'kair propose'],
    ['status --json', 'kair status --json ('],
  ]) {
    const big = atStage(st, prefix);
    const base = atStage(small, prefix);
    const rel = big === undefined || base === undefined ? undefined : big / base;
    const goal = what === 'status --json' ? 'unchanged from 100 contracts' : 'within 1.1x of 100 contracts';
    row(`${what} with ${n(st.contracts)} contracts`, big === undefined ? 'not measured' : `${x(big)} (${rel.toFixed(2)} of the ${small.contracts}-contract figure)`, goal, (v) => v <= 1.1, rel);
  }
}
const page = atStage(large, 'kair list --json --limit 50');
row(`list --json --limit 50, ${n(large?.contracts)} contracts`, x(page), '<= 1.3x at 100,000', (v) => v <= 1.3, page);
// Whole list: ms per 1,000 contracts at each stage (linear = about the same at every size).
const whole = stages.map((st) => ({ contracts: st.contracts, ms: st.startup.find((r) => r.name.includes('whole'))?.median_ms })).filter((w) => w.ms !== undefined);
if (whole.length) {
  const perK = whole.map((w) => `${n(w.contracts)}: ${w.ms} ms`).join(', ');
  const last = whole.at(-1);
  const mid = whole.find((w) => w.contracts >= 10_000) ?? whole[0];
  const growth = last.contracts > mid.contracts ? (last.ms / mid.ms) / (last.contracts / mid.contracts) : undefined;
  row('list --json whole', `${perK}`, 'linear in contracts', (v) => v <= 1.25, growth);
} else row('list --json whole', 'not measured', 'linear in contracts', () => true, undefined);
// Writers on different contracts: 8 grants on 8 contracts at once against 1 grant alone.
const w8 = large?.writers;
row(`8 writers on 8 contracts vs 1 (${n(large?.contracts)} contracts)`, w8 ? `${w8.eight_ms} ms vs ${w8.one_ms} ms (${(w8.eight_ms / w8.one_ms).toFixed(2)}x on ${availableParallelism()} cores)` : 'not measured', 'no wait beyond one index update', () => true, undefined);
const spread = verifyBench.spread;
if (spread) row('8 procs x 4 grants: 8 contracts vs 1', `${spread.eight_contracts_seconds} s vs ${spread.one_contract_seconds} s`, '(contention, for comparison)', () => true, undefined);
// bench-verify's median of several rounds when it ran, else bench-scale's single reading.
const vb = verifyBench.verify;
const eps = vb?.events_per_second ?? scale.verify?.events_per_second;
const vload = vb?.load_average ? ` (${vb.cores} cores, load ${vb.load_average.join('->')})` : '';
row('verify', eps === undefined ? 'not measured' : `${eps.toLocaleString('en-US')} events/s${vload}`, '>= 250,000 events/s', (v) => v >= 250_000, eps);
const cg = verifyBench.concurrent_grants?.concurrent_32_seconds ?? scale.concurrent_grants?.seconds;
row('32 concurrent grants on one contract', cg === undefined ? 'not measured' : `${cg.toFixed(2)} s (all recorded)`, '<= 1 s', (v) => v <= 1, cg);

console.log(`\nissue 15 figures (goals, not gates; each miss has its profile in docs/decisions/037). Load average now: ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${availableParallelism()} cores`);
console.log('figure'.padEnd(50) + 'now'.padEnd(60) + 'goal');
for (const [name, now, goal, met, v] of rows) console.log(name.padEnd(50) + now.padEnd(60) + goal.padEnd(34) + (v === undefined ? '' : met(v) ? 'met' : 'MISSED'));
if (main.fsyncs) {
  console.log("\nfsyncs per command (own = kair's files and folders; all = the kernel's count, SQLite included)");
  for (const f of main.fsyncs) console.log(`${f.name.padEnd(50)}own ${f.file + f.dir + f.fdatasync}${f.kernel === null ? '' : `, all ${f.kernel}`}`);
} else console.log('\nfsyncs per command: not measured');
