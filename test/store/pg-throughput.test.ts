/**
 * Figures for docs/scaling.md, measured at the store level on a real server (opt-in:
 * `KAIR_PG_BENCH=1 npx vitest run test/store/pg-throughput.test.ts`; CI does not run it):
 * 8 writer processes sharing one database through PgEventStore, grants per second on one
 * contract (they serialise on its advisory lock) and on 8 contracts (one each); the start-up of a
 * process that connects (node + bundle + connect + the migration check); and the wall time of
 * `kair init --backend postgres` (a CLI command that connects) next to `node -e 0`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decidePropose } from '../../src/domain/lifecycle.js';
import { PgEventStore } from '../../src/store/pg/event-store.js';
import { BIN, ROOT, baseEnv, makeTempDir } from '../helpers/cli.js';
import { usePg } from '../helpers/pg.js';

const pgt = usePg();
const META = { at: '2026-01-30T12:00:00.000Z', actor: 'bench', command: 'propose' };
const PROCS = 8;
const GRANTS = Number(process.env.KAIR_PG_BENCH_GRANTS ?? 50);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe.runIf(process.env.KAIR_PG_BENCH === '1')('PostgreSQL throughput (figures for docs/scaling.md)', () => {
  let worker = '';
  beforeAll(() => {
    mkdirSync(join(ROOT, 'node_modules', '.kair-test'), { recursive: true });
    worker = join(ROOT, 'node_modules', '.kair-test', `pg-granter-${process.pid}.cjs`);
    buildSync({ entryPoints: [join(ROOT, 'test', 'fixtures', 'pg-granter.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: worker, external: ['pg', 'pg-native', 'better-sqlite3'], logLevel: 'error' });
  });
  afterAll(() => rmSync(worker, { force: true }));

  async function round(schema: string, contracts: string[]): Promise<{ grantsPerSec: number; startup: number[]; open: number[] }> {
    const store = await PgEventStore.open({ env: { KAIR_DATABASE_URL: pgt.current.url }, urlEnv: 'KAIR_DATABASE_URL', schema, tenant: 'ws-bench' });
    try {
      for (const c of new Set(contracts)) await store.create({ id: c, drafts: (i: string) => [decidePropose(i, 'bench', [])], meta: META, dpcText: '{}\n', lockTimeoutMs: 10_000 });
    } finally {
      await store.close();
    }
    const children = contracts.map((c, i) => spawn(process.execPath, [worker, schema, 'ws-bench', c, String(GRANTS), `p${i}`], { env: { ...process.env, KAIR_DATABASE_URL: pgt.current.url }, stdio: ['pipe', 'pipe', 'inherit'] }));
    const lines = children.map((ch) => {
      const got: Record<string, unknown>[] = [];
      let buf = '';
      const waiters: (() => void)[] = [];
      ch.stdout!.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        for (let n = buf.indexOf('\n'); n >= 0; n = buf.indexOf('\n')) {
          got.push(JSON.parse(buf.slice(0, n)) as Record<string, unknown>);
          buf = buf.slice(n + 1);
          waiters.splice(0).forEach((w) => w());
        }
      });
      const next = async (k: number) => {
        while (got.length <= k) await new Promise<void>((r) => waiters.push(r));
        return got[k]!;
      };
      return next;
    });
    const ready = await Promise.all(lines.map((l) => l(0)));
    expect(ready.every((r) => r.ready)).toBe(true);
    const t0 = performance.now();
    for (const ch of children) ch.stdin!.end('go\n');
    const done = await Promise.all(lines.map((l) => l(1)));
    const wall = performance.now() - t0;
    expect(done.every((d) => d.done), JSON.stringify(done)).toBe(true);
    return { grantsPerSec: (PROCS * GRANTS) / (wall / 1000), startup: ready.map((r) => r.since_start_ms as number), open: ready.map((r) => r.open_ms as number) };
  }

  it('8 processes, one contract and 8 contracts', async () => {
    const one = await round('bench_one', Array.from({ length: PROCS }, () => 'c1'));
    const eight = await round('bench_eight', Array.from({ length: PROCS }, (_, i) => `c${i + 1}`));
    console.log(`8 processes x ${GRANTS} grants, one contract: ${one.grantsPerSec.toFixed(0)} grants/s`);
    console.log(`8 processes x ${GRANTS} grants, 8 contracts: ${eight.grantsPerSec.toFixed(0)} grants/s`);
    const all = [...one.startup, ...eight.startup];
    console.log(`start-up of a connecting process (node + bundle + connect + migration check): median ${median(all).toFixed(0)} ms; open (connect + check) median ${median([...one.open, ...eight.open]).toFixed(0)} ms`);
  }, 600_000);

  it('kair init --backend postgres next to node -e 0', () => {
    const time = (args: string[], env: NodeJS.ProcessEnv, cwd: string) => {
      const t = performance.now();
      const r = spawnSync(process.execPath, args, { env, cwd, encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      return performance.now() - t;
    };
    const env = baseEnv({ KAIR_DATABASE_URL: pgt.current.url });
    const base: number[] = [];
    const create: number[] = [];
    const recheck: number[] = [];
    for (let i = 0; i < 7; i++) {
      const dir = makeTempDir();
      base.push(time(['-e', '0'], env, dir));
      create.push(time([BIN, 'init', '--backend', 'postgres', '--json'], env, dir));
      recheck.push(time([BIN, 'init', '--backend', 'postgres', '--json'], env, dir));
    }
    console.log(`node -e 0 ${median(base).toFixed(0)} ms; kair init --backend postgres (new tenant) ${median(create).toFixed(0)} ms = ${(median(create) / median(base)).toFixed(2)}x; re-run (connect + check) ${median(recheck).toFixed(0)} ms = ${(median(recheck) / median(base)).toFixed(2)}x`);
  }, 300_000);
});
