// `npm run bench` (third part): the scale figures of SPEC §13. A workspace of 10,000 contracts,
// one of them with a 100,000-event history, built in-process through kair's own store functions
// (the same files `kair propose` and `kair grant` write, far faster than 110,000 CLI calls);
// then, through the CLI: status and list against `node -e 0` (ratios of medians, alternating),
// verify's events per second on the long history, 32 concurrent grants on one contract (all must
// be recorded), and grant/run beside a 10,000-entry index. Writes bench/scale-results.json.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { measureRatios, printRatios } from './bench-ratios.mjs';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'kair.js');
const env = { ...process.env, KAIR_ACTOR: 'bench', NO_COLOR: '1' };
delete env.NODE_EXTRA_CA_CERTS; // adds ~40 ms to every Node start on these machines
const rounds = Number(process.env.BENCH_ROUNDS ?? 11);
const contracts = Number(process.env.BENCH_CONTRACTS ?? 10_000);
const events = Number(process.env.BENCH_EVENTS ?? 100_000);

const bundle = join(root, 'node_modules', '.kair-bench', 'scale.cjs');
buildSync({ entryPoints: [join(root, 'scripts', 'bench-scale-entry.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: bundle, logLevel: 'error' });
const k = createRequire(import.meta.url)(bundle);

const ws = mkdtempSync(join(tmpdir(), 'kair-bench-scale-'));
const kair = (...args) => {
  const r = spawnSync(process.execPath, [bin, ...args, '--dir', ws], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kair ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r;
};
const seconds = (t) => Number(process.hrtime.bigint() - t) / 1e9;

// ---- build
kair('init');
const w = k.workspaceAt(ws);
const meta = { at: '2026-01-01T00:00:00.000Z', actor: 'bench' };
let t = process.hrtime.bigint();
const entries = [];
for (let i = 0; i < contracts; i++) {
  const id = `c${String(i).padStart(5, '0')}`;
  const intent = `scale contract ${i}`;
  entries.push(k.indexEntry(k.createContract(w, id, k.decidePropose(id, intent, []), meta, k.newDpc(intent, meta.at), null).contract));
}
k.writeIndex(w, entries);
const built = seconds(t);
// One long history: alternating grant/revoke events, appended 1,000 at a time.
t = process.hrtime.bigint();
const long = entries[0].id;
let c = k.loadContract(w, long).contract;
for (let n = c.history_seq; n < events; ) {
  const drafts = [];
  for (let j = 0; j < 1000 && n < events; j++, n++) {
    const draft = k.decideGrant(c, c.controls.granted.length ? 'revoke' : 'grant', ['local:read']);
    drafts.push(draft);
    c = { ...c, controls: { ...c.controls, granted: draft.data.granted } };
  }
  c = k.commitEvents(w, k.loadContract(w, long).contract, drafts, meta).contract;
}
const grown = seconds(t);
console.log(`built ${contracts} contracts in ${built.toFixed(1)} s; ${long} grown to ${c.history_seq} events in ${grown.toFixed(1)} s`);

// ---- start-up ratios at scale (alternating with node -e 0)
const cases = {
  'node -e 0': () => ['-e', '0'],
  [`kair status --json (${events} events)`]: () => [bin, 'status', long, '--json', '--dir', ws],
  'kair status --json (another contract)': () => [bin, 'status', entries[1].id, '--json', '--dir', ws],
  [`kair list --json (${contracts} contracts)`]: () => [bin, 'list', '--json', '--dir', ws],
  [`kair grant (index of ${contracts})`]: (i) => [bin, 'grant', entries[2].id, `bench:g${i}`, '--dir', ws, '-q'],
};
const measured = measureRatios(cases, rounds, env);

// ---- verify of the long history: events per second
t = process.hrtime.bigint();
const v = kair('verify', long, '--json');
const verifySec = seconds(t);
if (!JSON.parse(v.stdout).ok) throw new Error(`verify reported problems: ${v.stdout}`);

// ---- 32 concurrent grants on one contract: every one recorded
const target = entries[3].id;
const before = k.loadContract(w, target).contract.history_seq;
t = process.hrtime.bigint();
const codes = await Promise.all(
  Array.from({ length: 32 }, (_, i) => new Promise((done) => spawn(process.execPath, [bin, 'grant', target, `bench:c${i}`, '--dir', ws, '-q', '--lock-timeout', '60000'], { env, stdio: 'ignore' }).on('exit', done))),
);
const concurrentSec = seconds(t);
const after = k.loadContract(w, target).contract;
const recorded = after.history_seq - before;
if (codes.some((x) => x !== 0) || recorded !== 32 || after.controls.granted.length !== 32) {
  throw new Error(`32 concurrent grants: exit codes ${codes.join(',')}, ${recorded} events recorded, ${after.controls.granted.length} controls granted`);
}

console.log('');
printRatios(measured, rounds);
const eps = Math.round(c.history_seq / verifySec);
console.log(`\nkair verify ${long} (${c.history_seq} events): ${verifySec.toFixed(2)} s, ${eps} events/s (CLI, start-up included)`);
console.log(`32 concurrent kair grant on ${target}: all 32 recorded, ${concurrentSec.toFixed(2)} s in all`);

mkdirSync(join(root, 'bench'), { recursive: true });
writeFileSync(
  join(root, 'bench', 'scale-results.json'),
  JSON.stringify({ node: process.versions.node, rounds, contracts, events: c.history_seq, startup: measured.results, verify: { events: c.history_seq, seconds: +verifySec.toFixed(3), events_per_second: eps }, concurrent_grants: { processes: 32, recorded, seconds: +concurrentSec.toFixed(3) } }, null, 2) + '\n',
);
rmSync(ws, { recursive: true, force: true });

