// The last step of `npm run bench`: issue 15's table of figures, each with its goal (SPEC §18),
// from what the benches wrote to bench/ in this run (results.json, scale-results.json). A figure
// a bench did not produce is printed as "not measured", never left out.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(new URL('..', import.meta.url).pathname, 'bench');
const read = (name) => (existsSync(join(dir, name)) ? JSON.parse(readFileSync(join(dir, name), 'utf8')) : {});
const main = read('results.json');
const scale = read('scale-results.json');
const ratio = (results, test) => results?.find((r) => test(r.name))?.ratio;
const x = (v) => (v === undefined ? 'not measured' : `${v.toFixed(2)}x`);

const rows = [
  ['status --json', x(ratio(main.results, (n) => n === 'kair status --json')), '<= 1.15x', (v) => v <= 1.15, ratio(main.results, (n) => n === 'kair status --json')],
  ['grant', x(ratio(main.results, (n) => n === 'kair grant')), '<= 1.6x', (v) => v <= 1.6, ratio(main.results, (n) => n === 'kair grant')],
  ['run --json Kimi + 1 AEC step', x(ratio(main.results, (n) => n.startsWith('kair run --json (Kimi + 1 AEC'))), '<= 2.0x', (v) => v <= 2.0, ratio(main.results, (n) => n.startsWith('kair run --json (Kimi + 1 AEC'))],
];
const scaleGrant = ratio(scale.startup, (n) => n.startsWith('kair grant'));
const smallGrant = ratio(main.results, (n) => n === 'kair grant');
rows.push([`grant with ${scale.contracts ?? '?'} contracts`, scaleGrant === undefined ? 'not measured' : `${x(scaleGrant)} (${(scaleGrant / smallGrant).toFixed(2)} of the small workspace's)`, 'within 1.1x of 100 contracts', (v) => v <= 1.1, scaleGrant === undefined ? undefined : scaleGrant / smallGrant]);
const list = ratio(scale.startup, (n) => n.startsWith('kair list --json'));
rows.push([`list --json with ${scale.contracts ?? '?'} contracts`, x(list), '--limit 50 <= 1.3x at 100,000', (v) => v <= 1.3, list]);
const eps = scale.verify?.events_per_second;
rows.push(['verify', eps === undefined ? 'not measured' : `${eps} events/s`, '>= 250,000 events/s', (v) => v >= 250_000, eps]);
const cg = scale.concurrent_grants?.seconds;
rows.push(['32 concurrent grants on one contract', cg === undefined ? 'not measured' : `${cg.toFixed(2)} s`, '<= 1 s', (v) => v <= 1, cg]);

console.log('\nissue 15 figures (goals, not gates; a miss is reported with its profile in docs/decisions/029)');
console.log('figure'.padEnd(40) + 'now'.padEnd(44) + 'goal');
for (const [name, now, goal, met, v] of rows) console.log(name.padEnd(40) + now.padEnd(44) + goal.padEnd(34) + (v === undefined ? '' : met(v) ? 'met' : 'MISSED'));
if (main.fsyncs) {
  console.log('\nfsyncs per command (own = kair\'s files and folders; all = the kernel\'s count, SQLite included)');
  for (const f of main.fsyncs) console.log(`${f.name.padEnd(40)}own ${f.file + f.dir + f.fdatasync}${f.kernel === null ? '' : `, all ${f.kernel}`}`);
}
