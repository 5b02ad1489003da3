// `npm run bench` (third part): the scale figures of SPEC §13 and §18. One workspace grown in
// stages to 100, 10,000 and 100,000 contracts (BENCH_SCALE=10k stops at 10,000), built
// in-process through kair's own store functions (the same files `kair propose` and `kair grant`
// write, with fsync stubbed out while building: the files are the same, and 100,000 contracts
// built with four fsyncs each took minutes); one contract grown to a 100,000-event history. Then,
// through the CLI, ratios to `node -e 0` (medians, alternating): grant and propose at each size,
// status and list (whole, and `--limit 50`), verify's events per second, 32 concurrent grants on
// one contract, 8 writers on 8 contracts against 1 on 1, and the cost of an index compaction.
// Writes bench/scale-results.json.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { growHistory, measureRatios, printRatios } from './bench-ratios.mjs';

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
  const extra = typeof args.at(-1) === 'object' ? args.pop() : {};
  const r = spawnSync(process.execPath, [bin, ...args, '--dir', ws], { env: { ...env, ...extra }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kair ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r;
};
const seconds = (t) => Number(process.hrtime.bigint() - t) / 1e9;

// ---- build
kair('init');
const w = k.workspaceAt(ws);
const meta = { at: '2026-01-01T00:00:00.000Z', actor: 'bench' };
const sizes = process.env.BENCH_SCALE === '10k' ? [100, contracts] : [100, contracts, 100_000];
const fsMod = createRequire(import.meta.url)('node:fs');
const realFsync = fsMod.fsyncSync;
const entries = [];
let builtSec = 0;
/** Adds contracts up to `n` and writes the index checkpoint (sorted: ids are zero-padded). */
function growTo(n) {
  const t0 = process.hrtime.bigint();
  fsMod.fsyncSync = () => {};
  const from = entries.length;
  try {
    for (let i = from; i < n; i++) {
      const id = `c${String(i).padStart(6, '0')}`;
      const intent = `scale contract ${i}`;
      entries.push(k.indexEntry(k.createContract(w, id, k.decidePropose(id, intent, []), meta, k.newDpc(intent, meta.at), null).contract));
    }
    // The checkpoint: what the index holds now (the bench's own proposes and grants) plus the new contracts.
    const byId = new Map(k.readIndexMerged(w).entries.map((e) => [e.id, e]));
    for (let i = from; i < n; i++) byId.set(entries[i].id, entries[i]);
    for (const f of [k.indexFiles.log(w), k.indexFiles.compacting(w)]) rmSync(f, { force: true });
    k.writeIndex(w, [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1)));
  } finally {
    fsMod.fsyncSync = realFsync;
  }
  spawnSync('sync');
  builtSec += seconds(t0);
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/** 1 grant on 1 contract, then 8 grants at once on 8 other contracts: wall-clock ms, medians of `n` rounds. */
async function writers(n, tag) {
  const one = [];
  const eight = [];
  const grant = (id, ctl) => new Promise((done) => spawn(process.execPath, [bin, 'grant', id, ctl, '--dir', ws, '-q', '--lock-timeout', '60000'], { env, stdio: 'ignore' }).on('exit', done));
  for (let r = 0; r < n; r++) {
    let t0 = process.hrtime.bigint();
    await grant(entries[4].id, `bench:${tag}o${r}`);
    one.push(seconds(t0) * 1000);
    t0 = process.hrtime.bigint();
    const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => grant(entries[10 + i].id, `bench:${tag}e${r}`)));
    eight.push(seconds(t0) * 1000);
    if (codes.some((x) => x !== 0)) throw new Error(`8 writers: exit codes ${codes.join(',')}`);
  }
  return { one_ms: +median(one).toFixed(1), eight_ms: +median(eight).toFixed(1) };
}

const stages = [];
let long;
let c;
let measured;
for (const size of sizes) {
  growTo(size);
  const tag = `s${size}`;
  const cases = {
    'node -e 0': () => ['-e', '0'],
    [`kair grant (${size} contracts)`]: (i) => [bin, 'grant', entries[2].id, `bench:${tag}g${i}`, '--dir', ws, '-q'],
    [`kair propose (${size} contracts)`]: (i) => [bin, 'propose', 'a bench proposal', '--id', `p${tag}-${i}`, '--dir', ws, '-q'],
    [`kair status --json (${size} contracts)`]: () => [bin, 'status', entries[1].id, '--json', '--dir', ws],
    [`kair list --json --limit 50 (${size} contracts)`]: () => [bin, 'list', '--json', '--limit', '50', '--dir', ws],
  };
  if (size === contracts) {
    // One long history (growHistory: alternating grant/revoke, 1,000 events per append).
    const t0 = process.hrtime.bigint();
    long = entries[0].id;
    c = growHistory(k, w, k.loadContract(w, long).contract, events, meta);
    console.log(`${long} grown to ${c.history_seq} events in ${seconds(t0).toFixed(1)} s`);
    cases[`kair status --json (${events} events)`] = () => [bin, 'status', long, '--json', '--dir', ws];
  }
  if (size <= contracts) cases[`kair list --json (${size} contracts, whole)`] = () => [bin, 'list', '--json', '--dir', ws];
  const m = measureRatios(cases, rounds, env);
  if (size > contracts) {
    // The whole list at 100,000 is long: a few rounds are enough to see it is linear.
    const whole = measureRatios({ 'node -e 0': () => ['-e', '0'], [`kair list --json (${size} contracts, whole)`]: () => [bin, 'list', '--json', '--dir', ws] }, 3, env);
    m.results.push(whole.results[1]);
  }
  // One compaction at this size (the writer that finds the log past 64 KiB pays it once).
  const t0 = process.hrtime.bigint();
  kair('grant', entries[3].id, `bench:${tag}c`, '-q', { KAIR_INDEX_COMPACT_BYTES: '1' });
  const compactMs = seconds(t0) * 1000;
  const w8 = await writers(Math.max(3, rounds >> 1), tag);
  stages.push({ contracts: size, startup: m, grant_with_compaction_ms: +compactMs.toFixed(1), writers: w8 });
  if (size === contracts) measured = m;
  console.log(`stage ${size} contracts: built (total ${builtSec.toFixed(1)} s so far)`);
}

// ---- verify of the long history: events per second
let t = process.hrtime.bigint();
const v = kair('verify', long, '--json');
const verifySec = seconds(t);
if (!JSON.parse(v.stdout).ok) throw new Error(`verify reported problems: ${v.stdout}`);

// ---- 32 concurrent grants on one contract: every one recorded
const target = entries[5].id;
const before = k.loadContract(w, target).contract;
t = process.hrtime.bigint();
const codes = await Promise.all(
  Array.from({ length: 32 }, (_, i) => new Promise((done) => spawn(process.execPath, [bin, 'grant', target, `bench:c${i}`, '--dir', ws, '-q', '--lock-timeout', '60000'], { env, stdio: 'ignore' }).on('exit', done))),
);
const concurrentSec = seconds(t);
const after = k.loadContract(w, target).contract;
const recorded = after.history_seq - before.history_seq;
const granted = after.controls.granted.length - before.controls.granted.length;
if (codes.some((x) => x !== 0) || recorded !== 32 || granted !== 32) {
  throw new Error(`32 concurrent grants: exit codes ${codes.join(',')}, ${recorded} events recorded, ${granted} controls granted`);
}

console.log(`\nbuilt ${entries.length} contracts in ${builtSec.toFixed(1)} s (fsync stubbed while building)`);
for (const st of stages) {
  console.log(`\n== ${st.contracts} contracts`);
  printRatios(st.startup, rounds);
  console.log(`grant that also compacts the index: ${st.grant_with_compaction_ms} ms (once per 64 KiB of index log, ~600 writes)`);
  console.log(`1 grant on 1 contract: ${st.writers.one_ms} ms; 8 grants at once on 8 contracts: ${st.writers.eight_ms} ms in all (${(st.writers.eight_ms / st.writers.one_ms).toFixed(2)}x on ${availableParallelism()} cores)`);
}
const ratioOf = (st, prefix) => st.startup.results.find((r) => r.name.startsWith(prefix))?.ratio;
console.log('\n== writers and pages against workspace size (ratios to node -e 0; goal: within 1.1x of the 100-contract figure)');
console.log('contracts'.padEnd(12) + 'grant'.padStart(8) + 'propose'.padStart(9) + 'status'.padStart(8) + 'list --limit 50'.padStart(17) + 'list whole'.padStart(12));
for (const st of stages) {
  const whole = st.startup.results.find((r) => r.name.includes('whole'));
  console.log(String(st.contracts).padEnd(12) + `${ratioOf(st, 'kair grant')}x`.padStart(8) + `${ratioOf(st, 'kair propose')}x`.padStart(9) + `${ratioOf(st, 'kair status --json (' + st.contracts)}x`.padStart(8) + `${ratioOf(st, 'kair list --json --limit')}x`.padStart(17) + `${whole ? whole.median_ms + ' ms' : ''}`.padStart(12));
}
const eps = Math.round(c.history_seq / verifySec);
console.log(`\nkair verify ${long} (${c.history_seq} events): ${verifySec.toFixed(2)} s, ${eps} events/s (CLI, start-up included)`);
console.log(`32 concurrent kair grant on ${target}: all 32 recorded, ${concurrentSec.toFixed(2)} s in all`);

mkdirSync(join(root, 'bench'), { recursive: true });
writeFileSync(
  join(root, 'bench', 'scale-results.json'),
  JSON.stringify(
    {
      node: process.versions.node,
      rounds,
      contracts,
      events: c.history_seq,
      startup: measured.results,
      stages: stages.map((st) => ({ contracts: st.contracts, startup: st.startup.results, grant_with_compaction_ms: st.grant_with_compaction_ms, writers: st.writers })),
      verify: { events: c.history_seq, seconds: +verifySec.toFixed(3), events_per_second: eps },
      concurrent_grants: { processes: 32, recorded, seconds: +concurrentSec.toFixed(3) },
    },
    null,
    2,
  ) + '\n',
);
rmSync(ws, { recursive: true, force: true });
