// `npm run bench` (verify and contention): `kair verify`'s events per second on a long history,
// and how long concurrent writers take. A contract with a 100,000-event history is grown
// in-process through kair's own store functions (the files `kair grant` writes); everything
// measured goes through the CLI. Figures:
//   - verify: median of BENCH_VERIFY_ROUNDS runs of `kair verify <id> --json` (start-up included);
//   - one grant alone (median), the floor 32 × that, and 32 sequential grants;
//   - 32 concurrent grants on one contract: all recorded, the chain contiguous, verify ok (median of rounds);
//   - 8 processes × 4 grants each, on 8 different contracts against all on one contract.
// Writes bench/verify-results.json.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, watch, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildSync } from 'esbuild';
import { growHistory } from './bench-ratios.mjs';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'kair.js');
const env = { ...process.env, KAIR_ACTOR: 'bench', NO_COLOR: '1' };
delete env.NODE_EXTRA_CA_CERTS; // adds ~40 ms to every Node start on these machines
const events = Number(process.env.BENCH_EVENTS ?? 100_000);
const verifyRounds = Number(process.env.BENCH_VERIFY_ROUNDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const only = process.env.BENCH_ONLY ?? 'verify,concurrent,spread';

const bundle = join(root, 'node_modules', '.kair-bench', 'verify.cjs');
buildSync({ entryPoints: [join(root, 'scripts', 'bench-verify-entry.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: bundle, logLevel: 'error' });
const k = createRequire(import.meta.url)(bundle);

const ws = mkdtempSync(join(tmpdir(), 'kair-bench-verify-'));
const kair = (...args) => {
  const r = spawnSync(process.execPath, [bin, ...args, '--dir', ws], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kair ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r;
};
const seconds = (t) => Number(process.hrtime.bigint() - t) / 1e9;
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const w = (kair('init'), k.workspaceAt(ws));
const meta = { at: '2026-01-01T00:00:00.000Z', actor: 'bench' };
let made = 0;
const propose = () => {
  const id = `c${String(made++).padStart(5, '0')}`;
  return k.createContract(w, id, k.decidePropose(id, `bench ${id}`, []), meta, k.newDpc(`bench ${id}`, meta.at), null).contract;
};
const results = { node: process.versions.node };

if (only.includes('verify')) {
  // One long history (growHistory: alternating grant/revoke, 1,000 events per append).
  let t = process.hrtime.bigint();
  const c = growHistory(k, w, propose(), events, meta);
  const long = c.id;
  k.writeIndex(w, [k.indexEntry(c)]);
  console.log(`${long} grown to ${c.history_seq} events in ${seconds(t).toFixed(1)} s`);
  const times = [];
  // Wall clock on a shared machine: the load it ran under goes with the figure.
  const loadBefore = loadavg()[0];
  for (let i = 0; i < verifyRounds; i++) {
    t = process.hrtime.bigint();
    const v = kair('verify', long, '--json');
    times.push(seconds(t));
    const doc = JSON.parse(v.stdout);
    if (!doc.ok) throw new Error(`verify reported problems: ${v.stdout.slice(0, 2000)}`);
  }
  const s = median(times);
  const load = [+loadBefore.toFixed(2), +loadavg()[0].toFixed(2)];
  results.verify = { events: c.history_seq, rounds: verifyRounds, seconds: +s.toFixed(3), events_per_second: Math.round(c.history_seq / s), all_seconds: times.map((x) => +x.toFixed(3)), cores: availableParallelism(), load_average: load };
  console.log(`kair verify ${long} (${c.history_seq} events): median ${s.toFixed(3)} s of ${verifyRounds}, ${results.verify.events_per_second} events/s (CLI, start-up included; ${availableParallelism()} cores, load average ${load.join(' -> ')})`);
}

/** Starts `procs` processes at once, each running `per` grants one after another; resolves to the wall time. */
async function burst(ids, procs, per) {
  const t = process.hrtime.bigint();
  const one = (id, i, j) =>
    new Promise((done) =>
      spawn(process.execPath, [bin, 'grant', id, `bench:p${i}g${j}`, '--dir', ws, '-q', '--lock-timeout', '60000'], { env, stdio: 'ignore' }).on('exit', (code) => {
        if (code !== 0) throw new Error(`grant ${id} exited ${code}`);
        done();
      }),
    );
  await Promise.all(
    Array.from({ length: procs }, async (_, i) => {
      for (let j = 0; j < per; j++) await one(ids[i % ids.length], i, j);
    }),
  );
  return seconds(t);
}
/**
 * `burst` on one contract, timing with fs.watch how long its lock stood free between one
 * holder's release and the next holder's mkdir (what waiters asleep in a long round cost).
 */
async function watchedBurst(id, procs) {
  const lockDir = join(ws, '.kair', 'locks', `contract-${id}.lock`);
  let free = 0;
  let releasedAt = null;
  const w = watch(join(ws, '.kair', 'locks'), (_, f) => {
    if (f !== `contract-${id}.lock`) return;
    const now = performance.now();
    if (!existsSync(lockDir)) releasedAt = now;
    else if (releasedAt !== null) {
      free += now - releasedAt;
      releasedAt = null;
    }
  });
  const seconds = await burst([id], procs, 1);
  w.close();
  return { seconds, lockFreeSeconds: free / 1000 };
}

/** Every grant landed, the chain is contiguous and verify finds nothing wrong. */
function check(id, want) {
  const c = k.loadContract(w, id).contract;
  if (c.controls.granted.length !== want) throw new Error(`${id}: ${c.controls.granted.length} controls granted, expected ${want}`);
  const v = JSON.parse(kair('verify', id, '--json').stdout);
  if (!v.ok) throw new Error(`${id}: verify reported problems`);
}

if (only.includes('concurrent')) {
  const single = [];
  const seq = [];
  const conc = [];
  const idle = [];
  for (let r = 0; r < rounds; r++) {
    const a = propose();
    single.push(await burst([a.id], 1, 1));
    const b = propose();
    seq.push(await burst([b.id], 1, 32));
    check(b.id, 32);
    const c = propose();
    const watched = await watchedBurst(c.id, 32);
    conc.push(watched.seconds);
    idle.push(watched.lockFreeSeconds);
    check(c.id, 32);
  }
  results.concurrent_grants = {
    rounds,
    one_grant_seconds: +median(single).toFixed(3),
    floor_32x_one_seconds: +(32 * median(single)).toFixed(3),
    sequential_32_seconds: +median(seq).toFixed(3),
    concurrent_32_seconds: +median(conc).toFixed(3),
    concurrent_32_all: conc.map((x) => +x.toFixed(3)),
    lock_free_between_holders_seconds: +median(idle).toFixed(3),
  };
  const g = results.concurrent_grants;
  console.log(`one grant: ${g.one_grant_seconds} s (32 × = ${g.floor_32x_one_seconds} s); 32 in a row: ${g.sequential_32_seconds} s`);
  console.log(`32 concurrent grants on one contract: all recorded, median ${g.concurrent_32_seconds} s [${g.concurrent_32_all.join(', ')}]; lock free between holders ${g.lock_free_between_holders_seconds} s (median)`);
}

if (only.includes('spread')) {
  const one = [];
  const eight = [];
  for (let r = 0; r < rounds; r++) {
    const a = propose();
    one.push(await burst([a.id], 8, 4));
    check(a.id, 32);
    const ids = Array.from({ length: 8 }, () => propose().id);
    eight.push(await burst(ids, 8, 4));
    for (const id of ids) check(id, 4);
  }
  results.spread = { rounds, one_contract_seconds: +median(one).toFixed(3), eight_contracts_seconds: +median(eight).toFixed(3) };
  console.log(`8 processes × 4 grants: on one contract ${results.spread.one_contract_seconds} s, on 8 contracts ${results.spread.eight_contracts_seconds} s (medians of ${rounds})`);
}

mkdirSync(join(root, 'bench'), { recursive: true });
writeFileSync(join(root, 'bench', 'verify-results.json'), JSON.stringify(results, null, 2) + '\n');
rmSync(ws, { recursive: true, force: true });
