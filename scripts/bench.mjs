// `npm run bench`: start-up and command cost as ratios of medians against `node -e 0`, measured
// alternately in one run (never absolute times in assertions), each with its goal (SPEC §18), and
// the fsyncs each command performs (scripts/fsync-counts.mjs). Writes bench/results.json;
// scripts/bench-summary.mjs prints the whole table of goals once the scale bench has run too.
import { spawnSync } from 'node:child_process';
import { measureRatios, printRatios } from './bench-ratios.mjs';
import { countFsyncs, hasStrace, printFsyncs } from './fsync-counts.mjs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'kair.js');
const env = { ...process.env, KAIR_ACTOR: 'bench', NO_COLOR: '1' };
delete env.NODE_EXTRA_CA_CERTS; // adds ~40 ms to every Node start on these machines
const rounds = Number(process.env.BENCH_ROUNDS ?? 21);
const ws = mkdtempSync(join(tmpdir(), 'kair-bench-'));
const kair = (...args) => {
  const r = spawnSync(process.execPath, [bin, ...args, '--dir', ws], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kair ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r;
};
const plan = join(root, 'fixtures', 'plans', 'custom-kimi.json');
const mixed = join(root, 'fixtures', 'plans', 'mixed-lanes.json');

kair('init');
// SPEC §13: run --json with the Kimi stub and one AEC step (an impactful simulation, confirmed up front).
for (const s of ['send-invoice', 'void-invoice']) {
  kair('sim', 'register', '--file', join(root, 'fixtures', 'simulations', `${s}.json`));
  kair('sim', 'activate', s);
}
kair('access', 'allow', 'bench', 'invoice:send');
kair('propose', 'bench status', '--id', 'b');
for (let i = 0; i < 20; i++) kair('grant', 'b', `ns:p${i}`);
// run --json needs a fresh approved contract per round: prepare them up front.
for (let i = 0; i < rounds; i++) {
  kair('propose', `bench run ${i}`, '--id', `r${i}`);
  kair('plan', `r${i}`, '--file', plan);
  kair('request-approval', `r${i}`);
  kair('approve', `r${i}`);
  kair('propose', `bench mixed run ${i}`, '--id', `m${i}`);
  kair('plan', `m${i}`, '--file', mixed);
  kair('request-approval', `m${i}`);
  kair('approve', `m${i}`);
}

const cases = {
  'node -e 0': () => ['-e', '0'],
  'kair status --json': () => [bin, 'status', 'b', '--json', '--dir', ws],
  'kair list --json': () => [bin, 'list', '--json', '--dir', ws],
  'kair grant': (i) => [bin, 'grant', 'b', `bench:g${i}`, '--dir', ws, '-q'],
  'kair run --json (Kimi stub)': (i) => [bin, 'run', `r${i}`, '--json', '--dir', ws],
  'kair run --json (Kimi + 1 AEC step)': (i) => [bin, 'run', `m${i}`, '--json', '--confirm', 'yes', '--dir', ws],
};
/** SPEC §18's goals, as ratios to `node -e 0` (goals, not gates: a miss is reported, never fatal). */
export const GOALS = { 'kair status --json': 1.15, 'kair grant': 1.6, 'kair run --json (Kimi + 1 AEC step)': 2.0 };
const measured = measureRatios(cases, rounds, env);
printRatios(measured, rounds);
const { results } = measured;
console.log('');
for (const r of results) {
  const goal = GOALS[r.name];
  if (goal) console.log(`${r.name.padEnd(38)} ${r.ratio.toFixed(2)}x  goal <= ${goal.toFixed(2)}x  ${r.ratio <= goal ? 'met' : 'MISSED'}`);
}
const fsyncs = countFsyncs({ strace: hasStrace() });
printFsyncs(fsyncs);
mkdirSync(join(root, 'bench'), { recursive: true });
writeFileSync(join(root, 'bench', 'results.json'), JSON.stringify({ node: process.versions.node, rounds, results, goals: GOALS, fsyncs }, null, 2) + '\n');
rmSync(ws, { recursive: true, force: true });
