// The last step of `npm run bench`: issue 15's table of figures, each with its goal (SPEC §18),
// from what the benches wrote to bench/ in this run (results.json, scale-results.json,
// verify-results.json). A figure
// a bench did not produce is printed as "not measured", never left out.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(new URL('..', import.meta.url).pathname, 'bench');
const read = (name) => (existsSync(join(dir, name)) ? JSON.parse(readFileSync(join(dir, name), 'utf8')) : {});
const main = read('results.json');
const scale = read('scale-results.json');
const verifyBench = read('verify-results.json');
const ratio = (results, test) => results?.find((r) => test(r.name))?.ratio;
const x = (v) => (v === undefined ? 'not measured' : `${v.toFixed(2)}x`);

const rows = [
  ['status --json', x(ratio(main.results, (n) => n === 'kair status --json')), '<= 1.15x', (v) => v <= 1.15, ratio(main.results, (n) => n === 'kair status --json')],
  ['grant', x(ratio(main.results, (n) => n === 'kair grant')), '<= 1.6x', (v) => v <= 1.6, ratio(main.results, (n) => n === 'kair grant')],
  ['run --json Kimi + 1 AEC step', x(ratio(main.results, (n) => n.startsWith('kair run --json (Kimi + 1 AEC'))), '<= 2.0x', (v) => v <= 2.0, ratio(main.results, (n) => n.startsWith('kair run --json (Kimi + 1 AEC'))],
];
// The scale rows compare stages of one bench-scale run (100 → the largest workspace it built).
const stages = scale.stages ?? [];
const small = stages.find((st) => st.contracts === 100) ?? stages[0];
const large = stages.at(-1);
const atStage = (st, prefix) => (st ? ratio(st.startup, (n) => n.startsWith(prefix)) : undefined);
for (const [what, prefix] of [
  ['grant', 'kair grant'],
  ['propose', 'kair propose'],
]) {
  const big = atStage(large, prefix);
  const base = atStage(small, prefix);
  const rel = big === undefined || base === undefined ? undefined : big / base;
  rows.push([`${what} with ${large?.contracts ?? '?'} contracts`, big === undefined ? 'not measured' : `${x(big)} (${rel.toFixed(2)} of the ${small.contracts}-contract figure)`, 'within 1.1x of 100 contracts', (v) => v <= 1.1, rel]);
}
const page = atStage(large, 'kair list --json --limit 50');
rows.push([`list --json --limit 50, ${large?.contracts ?? '?'} contracts`, x(page), '<= 1.3x at 100,000', (v) => v <= 1.3, page]);
// bench-verify's median of several rounds when it ran, else bench-scale's single reading.
const eps = verifyBench.verify?.events_per_second ?? scale.verify?.events_per_second;
rows.push(['verify', eps === undefined ? 'not measured' : `${eps} events/s`, '>= 250,000 events/s', (v) => v >= 250_000, eps]);
const cg = verifyBench.concurrent_grants?.concurrent_32_seconds ?? scale.concurrent_grants?.seconds;
rows.push(['32 concurrent grants on one contract', cg === undefined ? 'not measured' : `${cg.toFixed(2)} s`, '<= 1 s', (v) => v <= 1, cg]);

console.log('\nissue 15 figures (goals, not gates; a miss is reported with its profile in docs/decisions/029)');
console.log('figure'.padEnd(46) + 'now'.padEnd(44) + 'goal');
for (const [name, now, goal, met, v] of rows) console.log(name.padEnd(46) + now.padEnd(44) + goal.padEnd(34) + (v === undefined ? '' : met(v) ? 'met' : 'MISSED'));
if (main.fsyncs) {
  console.log('\nfsyncs per command (own = kair\'s files and folders; all = the kernel\'s count, SQLite included)');
  for (const f of main.fsyncs) console.log(`${f.name.padEnd(46)}own ${f.file + f.dir + f.fdatasync}${f.kernel === null ? '' : `, all ${f.kernel}`}`);
}
