// Fsyncs per kair command, for `npm run bench` (and by hand: `node scripts/fsync-counts.mjs`).
// kair's own fsyncs are counted from JavaScript by test/helpers/fsync-count.cjs (files and
// folders apart); with strace on the machine, every fsync/fdatasync the kernel sees is counted
// too, and the difference is SQLite's (WAL commits and checkpoints inside better-sqlite3).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin', 'kair.js');
const preload = join(root, 'test', 'helpers', 'fsync-count.cjs');

export const hasStrace = () => spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;

/** The commands whose fsyncs are reported, in an order that makes each one valid. */
export const STEPS = [
  ['init', ['init']],
  ['sim register', ['sim', 'register', '--file', join(root, 'fixtures', 'simulations', 'send-invoice.json')]],
  ['sim activate', ['sim', 'activate', 'send-invoice']],
  ['sim register (rollback)', ['sim', 'register', '--file', join(root, 'fixtures', 'simulations', 'void-invoice.json')]],
  ['sim activate (rollback)', ['sim', 'activate', 'void-invoice']],
  ['access allow', ['access', 'allow', 'bench', 'invoice:send']],
  ['propose', ['propose', 'fsync count', '--id', 'c']],
  ['plan', ['plan', 'c', '--file', join(root, 'fixtures', 'plans', 'mixed-lanes.json')]],
  ['grant', ['grant', 'c', 'ns:a']],
  ['revoke', ['revoke', 'c', 'ns:a']],
  ['request-approval', ['request-approval', 'c']],
  ['approve', ['approve', 'c']],
  ['run --json (Kimi + 1 AEC step)', ['run', 'c', '--json', '--confirm', 'yes']],
  // `pause` is valid only while a run runs; a run paused at a step stands in for it here.
  ['propose (2nd)', ['propose', 'fsync count 2', '--id', 'd']],
  ['plan (2nd)', ['plan', 'd', '--file', join(root, 'fixtures', 'plans', 'mixed-lanes.json')]],
  ['request-approval (2nd)', ['request-approval', 'd']],
  ['approve (2nd)', ['approve', 'd']],
  ['run --pause-at (Kimi step)', ['run', 'd', '--pause-at', 'send-invoice', '--json']],
  ['resume (1 AEC step)', ['resume', 'd', '--json', '--confirm', 'yes']],
  ['rewind', ['rewind', 'c', 'count a rewind']],
  ['close', ['close', 'c', 'count a close']],
  ['status --json', ['status', 'c', '--json']],
];

/** Runs STEPS in a fresh workspace; returns [{name, file, dir, fdatasync, kernel}] (kernel: strace total or null). */
export function countFsyncs({ strace = hasStrace(), steps = STEPS } = {}) {
  const ws = mkdtempSync(join(tmpdir(), 'kair-fsyncs-'));
  const env = { ...process.env, KAIR_ACTOR: 'bench', NO_COLOR: '1', NODE_OPTIONS: `--require ${preload}` };
  delete env.NODE_EXTRA_CA_CERTS;
  const rows = [];
  try {
    for (const [name, args] of steps) {
      const countFile = join(ws, '.fsync-count');
      rmSync(countFile, { force: true });
      const traceFile = join(ws, '.strace');
      const argv = [bin, ...args, '--dir', ws];
      const r = strace
        ? spawnSync('strace', ['-f', '-c', '-o', traceFile, '-e', 'trace=fsync,fdatasync', process.execPath, ...argv], { env: { ...env, KAIR_FSYNC_COUNT_FILE: countFile }, encoding: 'utf8' })
        : spawnSync(process.execPath, argv, { env: { ...env, KAIR_FSYNC_COUNT_FILE: countFile }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`kair ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
      // Only kair's own process (an AEC `command` step's child is not kair).
      const lines = readFileSync(countFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.argv[0] === bin);
      const own = lines.reduce((n, l) => ({ file: n.file + l.file, dir: n.dir + l.dir, fdatasync: n.fdatasync + l.fdatasync }), { file: 0, dir: 0, fdatasync: 0 });
      let kernel = null;
      if (strace) {
        const t = readFileSync(traceFile, 'utf8');
        kernel = [...t.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      }
      rows.push({ name, file: own.file, dir: own.dir, fdatasync: own.fdatasync, kernel });
    }
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
  return rows;
}

export function printFsyncs(rows) {
  console.log('\nfsyncs per command (kair\'s own: files + folders; all = as the kernel saw them, SQLite included)');
  console.log('command'.padEnd(34) + 'files'.padStart(7) + 'folders'.padStart(9) + 'all'.padStart(6) + 'SQLite'.padStart(8));
  for (const r of rows) {
    const own = r.file + r.dir + r.fdatasync;
    console.log(r.name.padEnd(34) + String(r.file + r.fdatasync).padStart(7) + String(r.dir).padStart(9) + String(r.kernel ?? '-').padStart(6) + String(r.kernel === null ? '-' : r.kernel - own).padStart(8));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) printFsyncs(countFsyncs());
