/**
 * The write path made cheap (docs/decisions/010): kair's own lock and atomic writes leave nothing
 * behind, the index follows a run's state changes while it skips the updated_at-only ones, and
 * the bundle `run` loads stays free of what only other commands need.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { approveContract, asAlice, setUpCatalog, simPlan } from '../helpers/aec.js';
import { BIN, bring, kairPath, kj, makeTempDir, makeWorkspace, ok, readIndex, readJson, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' });
}

const indexEntryOf = (ws: string, id: string) => readIndex(ws).find((e: { id: string }) => e.id === id);

describe('write path', () => {
  it('a run leaves no temp file or lock behind, and its index entry matches the contract', () => {
    const ws = makeWorkspace();
    bring(ws, 'c1', 'APPROVED');
    expect(ok(ws, ['run', 'c1']).status).toBe('COMPLETED');
    expect(filesUnder(kairPath(ws)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(kairPath(ws, 'locks'))).toEqual([]);
    const c = ok(ws, ['status', 'c1']).contract;
    expect(indexEntryOf(ws, 'c1')).toEqual({ id: 'c1', intent: c.intent, state: 'COMPLETED', updated_at: c.updated_at, version: c.version });
    expect(ok(ws, ['verify'])).toMatchObject({ problems: [], warnings: [] });
  });

  it('a run writes its snapshot and index entry once, after its last append: killed mid-run, history says RUNNING, the checkpoints lag and are repaired', () => {
    const ws = makeWorkspace();
    bring(ws, 'c1', 'APPROVED');
    const killed = kj(ws, ['run', 'c1'], { env: { KAIR_FAILPOINT: 'kimi.running' } });
    expect(killed.code).not.toBe(0);
    // SPEC §18: history is the commit log; the run's start appended run.started and nothing else.
    expect(readJson(kairPath(ws, 'contracts', 'c1', 'contract.json')).state).toBe('APPROVED');
    expect(indexEntryOf(ws, 'c1').state).toBe('APPROVED');
    // Readers roll the snapshot forward from history; verify calls the lag a warning.
    expect(ok(ws, ['status', 'c1']).contract.state).toBe('RUNNING');
    const v = ok(ws, ['verify']);
    expect(v.problems).toEqual([]);
    expect(v.warnings.map((w: { kind: string }) => w.kind)).toContain('snapshot_behind');
    // The next writer records the crashed run and writes both checkpoints from history.
    ok(ws, ['grant', 'c1', 'ns:x']);
    expect(indexEntryOf(ws, 'c1').state).toBe('PAUSED');
    expect(readJson(kairPath(ws, 'contracts', 'c1', 'contract.json')).state).toBe('PAUSED');
    expect(ok(ws, ['verify'])).toMatchObject({ problems: [] });
  });

  it('--pause-at the first step pauses before it: the start was its locked boundary, nothing runs until resume', () => {
    const ws = makeWorkspace();
    bring(ws, 'c1', 'APPROVED');
    const r = kj(ws, ['run', 'c1', '--pause-at', 'generate']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ status: 'PAUSED', state: 'PAUSED' });
    expect(r.json.kimi).toBeUndefined();
    expect(r.json.steps.map((s: { status: string }) => s.status)).toEqual(['PENDING', 'PENDING']);
    expect(ok(ws, ['status', 'c1']).contract.pause).toEqual({ requested_by: 'tester', reason: 'PAUSE_AT', step_id: 'generate' });
    expect(ok(ws, ['envelopes', '--contract', 'c1']).envelopes).toEqual([]);
    expect(ok(ws, ['resume', 'c1'])).toMatchObject({ status: 'COMPLETED', kimi: { status: 'COMPLETED' } });
    expect(ok(ws, ['verify'])).toMatchObject({ problems: [], warnings: [] });
  });

  it('the lifecycle bundle (run, grant…) carries neither zod nor commander; the read path not even SQLite', () => {
    const dist = join(dirname(BIN), '..', 'dist');
    const lifecycle = readFileSync(join(dist, 'kair-lifecycle.cjs'), 'utf8');
    expect(lifecycle).not.toMatch(/node_modules\/(zod|commander)\//);
    const read = readFileSync(join(dist, 'kair.cjs'), 'utf8');
    expect(read).not.toMatch(/node_modules\/(zod|commander|better-sqlite3)\//);
    // The local store's writing half (lock, fence, checkpoints) is served by the lifecycle bundle (decision 032).
    expect(read).not.toMatch(/src\/store\/fs\/(adapter-write|lock|writer-load|contract-writes)\.ts|node_modules\/proper-lockfile\//);
    expect(lifecycle).toMatch(/src\/store\/fs\/adapter-write\.ts/);
    // node:tty pulls in net and the stream stack: +0.2x on `status` when it crept in once.
    expect(read).not.toMatch(/require\("(node:)?tty"\)/);
    // bin/kair.js reads an ASCII bundle as latin1, without UTF-8 decoding (decision 011).
    for (const [name, text] of [['kair.cjs', read], ['kair-lifecycle.cjs', lifecycle]]) {
      expect([...text.matchAll(/[^\t\n\r\x20-\x7e]/g)].map((m) => text.slice(m.index - 30, m.index + 10)), name).toEqual([]);
    }
  });

  it('run (both lanes) and grant load no Node module only other commands need (decision 011)', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws);
    bring(ws, 'k', 'APPROVED');
    approveContract(ws, 'a', simPlan([{ id: 'ping', utterance: 'ping' }]));
    const dir = makeTempDir('kair-modules-');
    const preload = join(dir, 'modules.cjs');
    writeFileSync(preload, "process.on('exit', () => require('node:fs').writeFileSync(process.env.MODULES_OUT, process.moduleLoadList.join('\\n')));\n");
    const loaded = (args: string[], env: Record<string, string> = {}): string[] => {
      const out = join(dir, `${args.join('-')}.txt`);
      const r = kj(ws, args, { env: { ...env, NODE_OPTIONS: `--require ${preload}`, MODULES_OUT: out } });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return readFileSync(out, 'utf8').split('\n');
    };
    // child_process (net, dgram) only for the `command` executor; assert, worker_threads and the
    // fs stream classes came with proper-lockfile's and write-file-atomic's own imports; rimraf
    // with rmSync for a file that unlink removes.
    const unwanted = ['child_process', 'net', 'assert', 'worker_threads', 'internal/fs/streams', 'internal/fs/promises', 'internal/fs/rimraf', 'internal/readline/interface'].map((m) => `NativeModule ${m}`);
    for (const [args, env] of [[['run', 'k'], {}], [['run', 'a'], asAlice.env], [['grant', 'k', 'x:y'], {}]] as const) {
      expect(loaded([...args], env).filter((m) => unwanted.includes(m)), args.join(' ')).toEqual([]);
    }
    // status reads a snapshot: no hashing, no atomic writer, no signature checks (decision 029;
    // a merge once made it load show's modules, +17M instructions).
    const readOnly = [...unwanted, 'crypto', 'stream', 'internal/worker'].map((m) => (m.startsWith('NativeModule') ? m : `NativeModule ${m}`));
    expect(loaded(['status', 'k', '--json']).filter((m) => readOnly.includes(m)), 'status --json').toEqual([]);
    expect(loaded(['status', 'k']).filter((m) => readOnly.includes(m)), 'status').toEqual([]);
  });
});
