/**
 * Each mutating command performs at most its budgeted number of fsyncs (SPEC §18, decision 029),
 * so a regression fails CI rather than only a benchmark. kair's own fsyncs are counted from
 * JavaScript by test/helpers/fsync-count.cjs; where strace can trace, every fsync/fdatasync the
 * kernel sees is counted too, which adds SQLite's (its WAL commits happen inside better-sqlite3).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, baseEnv, fixture, makeTempDir, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const PRELOAD = join(ROOT, 'test', 'helpers', 'fsync-count.cjs');
const SIMS = join(ROOT, 'fixtures', 'simulations');
const STRACE = spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { stdio: 'ignore' }).status === 0;

interface Budget {
  name: string;
  args: string[];
  /** kair's own fsyncs (files and folders), and why each is there. */
  own: number;
  why: string;
  /** Everything the kernel sees, SQLite included (checked where strace runs). */
  all: number;
}

// The order makes each command valid; `pause` is valid only while a run runs, so a run paused
// at a step (and its resume) stands in for it.
const BUDGETS: Budget[] = [
  { name: 'init', args: ['init'], own: 4, all: 4, why: 'config.json + .kair/ folder; the empty index + contracts/ folder' },
  { name: 'sim register (creates kair.db)', args: ['sim', 'register', '--file', join(SIMS, 'send-invoice.json')], own: 0, all: 16, why: 'SQLite only: the migrations and the registration, each a WAL commit, then the checkpoint at close' },
  { name: 'sim activate', args: ['sim', 'activate', 'send-invoice'], own: 0, all: 5, why: 'SQLite only: the WAL file created (folder fsync), the change and its change-log row, the checkpoint' },
  { name: 'sim register', args: ['sim', 'register', '--file', join(SIMS, 'void-invoice.json')], own: 0, all: 5, why: 'SQLite only, as sim activate' },
  { name: 'sim activate (rollback)', args: ['sim', 'activate', 'void-invoice'], own: 0, all: 5, why: 'SQLite only' },
  { name: 'access allow', args: ['access', 'allow', 'tester', 'invoice:send'], own: 0, all: 5, why: 'SQLite only' },
  { name: 'propose', args: ['propose', 'budget', '--id', 'c'], own: 7, all: 7, why: 'staged history, snapshot (content only), DPC + dpc/ folder, the staged folder, contracts/ after the rename, the index' },
  { name: 'plan', args: ['plan', 'c', '--file', fixture('mixed-lanes.json')], own: 8, all: 8, why: 'plan/<sha>.json + plan_v1.json + one plan/ folder fsync before the event; history; DPC, snapshot, index, PLAN.md (contents only)' },
  { name: 'grant', args: ['grant', 'c', 'ns:a'], own: 3, all: 3, why: 'history append; snapshot and index (contents only)' },
  { name: 'revoke', args: ['revoke', 'c', 'ns:a'], own: 3, all: 3, why: 'as grant' },
  { name: 'request-approval', args: ['request-approval', 'c'], own: 3, all: 3, why: 'as grant' },
  { name: 'approve', args: ['approve', 'c'], own: 3, all: 3, why: 'as grant' },
  {
    name: 'run (Kimi + 1 AEC step)',
    args: ['run', 'c', '--confirm', 'yes'],
    own: 15,
    all: 23,
    why: 'run-request.json + run folder, + the parents of the two folders this first run creates (runs/ and runs/<run_id>/, so a power cut cannot lose them after history names their files), then history at the start, at the boundary between the steps and at the end (3); run-result.1.json + run folder; after the last append only: the result pointer, 2 latest copies, DPC, snapshot, index. SQLite: WAL folder, the envelope, Kimi run and AEC ledger commits, the checkpoint',
  },
  { name: 'rewind', args: ['rewind', 'c', 'budget'], own: 4, all: 4, why: 'history; DPC, snapshot, index (contents only)' },
  { name: 'close', args: ['close', 'c', 'budget'], own: 3, all: 3, why: 'as grant' },
  { name: 'propose (2nd)', args: ['propose', 'budget 2', '--id', 'd'], own: 7, all: 7, why: 'as propose' },
  { name: 'plan (2nd)', args: ['plan', 'd', '--file', fixture('mixed-lanes.json')], own: 8, all: 8, why: 'as plan' },
  { name: 'request-approval (2nd)', args: ['request-approval', 'd'], own: 3, all: 3, why: 'as grant' },
  { name: 'approve (2nd)', args: ['approve', 'd'], own: 3, all: 3, why: 'as grant' },
  { name: 'run --pause-at', args: ['run', 'd', '--pause-at', 'send-invoice'], own: 15, all: 21, why: 'as run (its first run, so two new folders): the pause is recorded at the boundary before the AEC step, which does not run (fewer SQLite commits)' },
  { name: 'resume (1 AEC step)', args: ['resume', 'd', '--confirm', 'yes'], own: 9, all: 15, why: 'history at the resume and at the end; run-result.2.json + run folder; pointer, latest result, DPC, snapshot, index. SQLite: the AEC step' },
  { name: 'status (read-only)', args: ['status', 'd'], own: 0, all: 0, why: 'reads only' },
];

describe('fsync budget per command (decision 029)', () => {
  it('every mutating command performs at most its budgeted fsyncs', () => {
    const ws = makeTempDir('kair-fsyncs-');
    const measured: string[] = [];
    for (const b of BUDGETS) {
      const out = join(ws, '.count');
      const trace = join(ws, '.strace');
      rmSync(out, { force: true });
      const env = baseEnv({ NODE_OPTIONS: `--require ${PRELOAD}`, KAIR_FSYNC_COUNT_FILE: out });
      const argv = [BIN, ...b.args];
      const r = STRACE
        ? spawnSync('strace', ['-f', '-c', '-o', trace, '-e', 'trace=fsync,fdatasync', process.execPath, ...argv], { cwd: ws, env, encoding: 'utf8' })
        : spawnSync(process.execPath, argv, { cwd: ws, env, encoding: 'utf8' });
      expect(r.status, `${b.name}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(existsSync(out), `${b.name}: the preload wrote no count`).toBe(true);
      const counts = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv: string[]; file: number; dir: number; fdatasync: number });
      // Only kair's own process (an AEC `command` step's child is not kair).
      const own = counts.filter((c) => c.argv[0] === BIN).reduce((n, c) => n + c.file + c.dir + c.fdatasync, 0);
      let all: number | null = null;
      if (STRACE) {
        all = [...readFileSync(trace, 'utf8').matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      }
      measured.push(`${b.name}: own ${own}/${b.own}, all ${all ?? '-'}/${b.all}`);
      expect(own, `${b.name} (${b.why}): ${measured.join('; ')}`).toBeLessThanOrEqual(b.own);
      if (all !== null) expect(all, `${b.name} (${b.why}): ${measured.join('; ')}`).toBeLessThanOrEqual(b.all);
    }
  });
});
