/**
 * Locks are taken from a holder only when it is provably dead, never because of age; recovery is
 * race-free; a holder on another host is removed only by `kair unlock --force`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Json, RunResult } from '../helpers/cli.js';
import { BIN, NOW, baseEnv, history, kairAsync, kairPath, kj, makeWorkspace, ok, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const locksDir = (ws: string) => join(ws, '.kair', 'locks');
const lockDir = (ws: string, name: string) => join(locksDir(ws), `${name}.lock`);
const holderFile = (ws: string, name: string) => join(lockDir(ws, name), 'holder.json');
const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
const pidNs = readlinkSync('/proc/self/ns/pid');
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
};
const procState = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return 'gone';
  }
};

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

interface HolderRecord {
  host: string;
  boot_id: string | null;
  pid_ns: string | null;
  pid: number;
  pid_start: number | null;
  actor: string;
  command: string;
  since: string;
}

function holder(over: Partial<HolderRecord>): HolderRecord {
  return { host: hostname(), boot_id: bootId, pid_ns: pidNs, pid: process.pid, pid_start: startOf(process.pid), actor: 'mallory', command: 'run', since: NOW, ...over };
}

/** Puts a lock folder `name` in place as if `record`'s process held it. */
function plantLock(ws: string, name: string, record: HolderRecord | null): void {
  mkdirSync(lockDir(ws, name), { recursive: true });
  if (record) writeFileSync(holderFile(ws, name), JSON.stringify(record));
}

/** Seqs are 1..n and each prev is the hash before it: one chain, no fork. */
function expectOneChain(ws: string, id: string): void {
  const h = history(ws, id);
  expect(h.map((e) => e.seq)).toEqual(h.map((_, i) => i + 1));
  for (let i = 1; i < h.length; i++) expect(h[i]!.prev).toBe(h[i - 1]!.hash);
  const v = kj(ws, ['verify']);
  expect(v.code, v.stdout).toBe(0);
}

/** Starts `kair …args --json` and returns its pid and its result. */
function start(ws: string, args: string[], env: NodeJS.ProcessEnv): { pid: number; done: Promise<RunResult> } {
  const child = spawn(process.execPath, [BIN, ...args, '--json'], { cwd: ws, env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
  });
  return { pid: child.pid!, done };
}

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const grants = (ws: string, id: string) => history(ws, id).filter((e) => e.type === 'grant');

describe('a live holder keeps its lock however long it stalls', () => {
  it('a grant stopped (SIGSTOP) holding the lock, its lock 30 s old: a second grant gets LOCK_BUSY naming it; after SIGCONT the first finishes, one chain', async () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Stalled', '--id', 'c1']);
    const first = start(ws, ['grant', 'c1', 'ns:first'], { KAIR_STOPPOINT: 'lock:contract-c1' });
    try {
      await until('the first grant to stop holding the lock', () => procState(first.pid) === 'T');
      const record = JSON.parse(readFileSync(holderFile(ws, 'contract-c1'), 'utf8'));
      expect(record).toEqual({ host: hostname(), boot_id: bootId, pid_ns: pidNs, pid: first.pid, pid_start: startOf(first.pid), actor: 'tester', command: 'grant', since: NOW });
      // As if it had been stopped for 30 s: older than proper-lockfile's default staleness.
      const past = new Date(Date.now() - 30_000);
      utimesSync(lockDir(ws, 'contract-c1'), past, past);
      utimesSync(holderFile(ws, 'contract-c1'), past, past);
      const second = kj(ws, ['grant', 'c1', 'ns:second', '--lock-timeout', '1500']);
      expect(second.code, second.stdout).toBe(6);
      expect(second.json.error.code).toBe('LOCK_BUSY');
      expect(second.json.error.details.holder).toEqual(record);
      const msg: string = second.json.error.message;
      for (const part of [String(first.pid), hostname(), 'tester', 'grant', NOW]) expect(msg).toContain(part);
    } finally {
      process.kill(first.pid, 'SIGCONT');
    }
    const r = await first.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(grants(ws, 'c1').map((e) => e.data.granted)).toEqual([['ns:first']]);
    expectOneChain(ws, 'c1');
    expect(readdirSync(locksDir(ws))).toEqual([]);
  });
});

describe('dead holders are recovered', () => {
  it('a lock folder without a holder record is taken over about 2 s after it was made (not 10 s, not LOCK_BUSY)', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Orphan lock', '--id', 'c1']);
    const made = Date.now();
    plantLock(ws, 'contract-c1', null);
    const r = kj(ws, ['grant', 'c1', 'ns:a']);
    const took = Date.now() - made;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(took).toBeGreaterThanOrEqual(1_900);
    expect(took).toBeLessThan(9_000); // the old staleness: 10 s
    expect(grants(ws, 'c1')).toHaveLength(1);
    expect(readdirSync(locksDir(ws))).toEqual([]);
  });

  it('a grant killed while holding the lock leaves its record; the next grant recovers the lock at once', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Killed holder', '--id', 'c1']);
    const killed = kj(ws, ['grant', 'c1', 'ns:lost'], { env: { KAIR_FAILPOINT: 'lock:contract-c1' } });
    expect(killed.code).toBe(-1); // SIGKILL
    const record = JSON.parse(readFileSync(holderFile(ws, 'contract-c1'), 'utf8'));
    expect(record).toMatchObject({ host: hostname(), boot_id: bootId, command: 'grant' });
    const r = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(grants(ws, 'c1').map((e) => e.data.granted)).toEqual([['ns:a']]);
    expectOneChain(ws, 'c1');
  });

  it.each([
    ['whole', (pid: number) => JSON.stringify(holder({ pid }))],
    ['cut short', () => '{"host":'],
  ])('a holder killed before renaming its record into place (%s) is judged by it at once, not after 2 s', (_name, content) => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Unrenamed', '--id', 'c1']);
    const dead = deadPid();
    mkdirSync(lockDir(ws, 'contract-c1'), { recursive: true });
    writeFileSync(join(lockDir(ws, 'contract-c1'), `holder.json.${dead}.tmp`), content(dead));
    const r = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(existsSync(lockDir(ws, 'contract-c1'))).toBe(false);
  });

  const cases: [string, () => Partial<HolderRecord>, number][] = [
    ['its pid is gone', () => ({ pid: deadPid() }), 0],
    ['its pid now belongs to a process started at another time (pid reuse)', () => ({ pid_start: startOf(process.pid) + 1 }), 0],
    ['it was taken before the machine last booted', () => ({ boot_id: '00000000-0000-0000-0000-000000000000' }), 0],
    ['(control) its pid lives in another pid namespace (a container), which kair cannot see into: LOCK_BUSY', () => ({ pid: deadPid(), pid_ns: 'pid:[1]' }), 6],
    ['(control) a record of an older kair, without pid_ns, whose pid is alive: LOCK_BUSY', () => ({ pid_ns: undefined }), 6],
    ['(control) its pid is alive with the same start time: LOCK_BUSY', () => ({}), 6],
  ];
  it.each(cases)('a record on this host whose holder is judged by its identity: %s', (_name, over, exit) => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Judged', '--id', 'c1']);
    const record = holder(over());
    plantLock(ws, 'contract-c1', record);
    const r = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
    expect(r.code, r.stdout + r.stderr).toBe(exit);
    if (exit === 0) {
      expect(grants(ws, 'c1')).toHaveLength(1);
      expect(existsSync(lockDir(ws, 'contract-c1'))).toBe(false);
    } else {
      expect(r.json.error.details.holder).toEqual({ ...record, pid_ns: record.pid_ns ?? null });
      expect(grants(ws, 'c1')).toHaveLength(0);
      expect(existsSync(holderFile(ws, 'contract-c1'))).toBe(true);
    }
  });

  it('a holder that has exited but is not reaped yet (a zombie, which kill -0 still finds) is dead', async () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Zombie', '--id', 'c1']);
    // The shell's background child exits at once, and the sleep the shell becomes never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number(await new Promise<string>((r) => parent.stdout.once('data', (d: Buffer) => r(d.toString()))));
      await until('the child to become a zombie', () => procState(zombie) === 'Z');
      plantLock(ws, 'contract-c1', holder({ pid: zombie, pid_start: startOf(zombie) }));
      const r = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(grants(ws, 'c1')).toHaveLength(1);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('a recoverer that died holding the recover file does not block recovery (and what killed recoverers left is swept); a live one makes others wait', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Recover file', '--id', 'c1']);
    plantLock(ws, 'contract-c1', holder({ pid: deadPid() }));
    const recoverFile = join(locksDir(ws), 'contract-c1.recover');
    writeFileSync(recoverFile, JSON.stringify(holder({ pid: process.pid, command: 'grant' })));
    const busy = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
    expect(busy.code, busy.stdout).toBe(6);
    expect(busy.json.error.message).toContain('being recovered');
    writeFileSync(recoverFile, JSON.stringify(holder({ pid: deadPid(), command: 'grant' })));
    // What recoverers killed between their rename and their delete leave: swept by the next one.
    const dead = deadPid();
    mkdirSync(join(locksDir(ws), `contract-c1.lock.dead-${dead}-k1ll3d`));
    writeFileSync(join(locksDir(ws), `contract-c1.recover.dead-${dead}-k1ll3d`), '{}');
    const r = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readdirSync(locksDir(ws))).toEqual([]);
  });

  it('8 commands waiting on a holder that dies race to recover its lock (recovery slowed down): one holder at a time, all 8 recorded, one chain', async () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Raced recovery', '--id', 'c1']);
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    const gone = new Promise((r) => sleeper.on('exit', r));
    plantLock(ws, 'contract-c1', holder({ pid: sleeper.pid!, pid_start: startOf(sleeper.pid!) }));
    // Each grant stops itself as soon as it holds the lock, so the test sees how many hold it at
    // once: a recoverer that removed a new owner's lock would make two.
    const env = { KAIR_TEST_RECOVER_DELAY_MS: '150', KAIR_STOPPOINT: 'lock:contract-c1' };
    const procs = Array.from({ length: 8 }, (_, i) => start(ws, ['grant', 'c1', `ns:p${i}`, '--lock-timeout', '30000'], env));
    const finished = new Set<number>();
    procs.forEach((p, i) => void p.done.then(() => finished.add(i)));
    // Let all 8 start and wait on the live holder, then kill it: they all find it dead.
    await new Promise((r) => setTimeout(r, 2_500));
    sleeper.kill('SIGKILL');
    await gone;
    let most = 0;
    try {
      while (finished.size < procs.length) {
        await until('a grant to hold the lock', () => finished.size === procs.length || procs.some((p, i) => !finished.has(i) && procState(p.pid) === 'T'), 20_000);
        // Give any other recoverer the time to (wrongly) take the lock too.
        await new Promise((r) => setTimeout(r, 500));
        const stopped = procs.filter((p, i) => !finished.has(i) && procState(p.pid) === 'T');
        most = Math.max(most, stopped.length);
        for (const p of stopped) process.kill(p.pid, 'SIGCONT');
        await Promise.race([Promise.all(stopped.map((p) => p.done)), new Promise((r) => setTimeout(r, 5_000))]);
      }
    } finally {
      for (const [i, p] of procs.entries()) if (!finished.has(i)) process.kill(p.pid, 'SIGCONT');
    }
    const results = await Promise.all(procs.map((p) => p.done));
    expect(most).toBe(1);
    for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(grants(ws, 'c1')).toHaveLength(8);
    expect(new Set(grants(ws, 'c1').flatMap((e) => e.data.granted as string[]))).toEqual(new Set(Array.from({ length: 8 }, (_, i) => `ns:p${i}`)));
    expectOneChain(ws, 'c1');
    expect(readdirSync(locksDir(ws))).toEqual([]);
  });
});

describe('32 concurrent grants on one contract', () => {
  it('all 32 recorded, one chain, no lock left behind', async () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Crowded', '--id', 'c1']);
    const env = { KAIR_TEST_RECOVER_DELAY_MS: '30' };
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => kairAsync(ws, ['grant', 'c1', `ns:p${i}`, '--json', '--lock-timeout', '60000'], { env })));
    for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(grants(ws, 'c1')).toHaveLength(32);
    expectOneChain(ws, 'c1');
    expect(readdirSync(locksDir(ws))).toEqual([]);
  });
});

describe('lock names', () => {
  it('a contract called index has its own lock, apart from the index lock', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Named index', '--id', 'index']);
    const r = kj(ws, ['grant', 'index', 'ns:a', '--lock-timeout', '500']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expectOneChain(ws, 'index');
  });
});

describe('a holder on another host, and kair unlock', () => {
  const remote = () => holder({ host: 'build-7.elsewhere', pid: 48213, pid_start: 777, boot_id: 'another-machine' });

  it('is never recovered automatically: LOCK_BUSY names host, pid, actor, command and since', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Remote', '--id', 'c1']);
    plantLock(ws, 'contract-c1', remote());
    const r = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
    expect(r.code).toBe(6);
    expect(r.json.error.details).toMatchObject({ lock: 'contract-c1', holder: remote() });
    for (const part of ['build-7.elsewhere', '48213', 'mallory', 'run', NOW, 'kair unlock c1 --force']) expect(r.json.error.message).toContain(part);
    expect(grants(ws, 'c1')).toHaveLength(0);
    expect(existsSync(holderFile(ws, 'contract-c1'))).toBe(true);
  });

  it('unlock without --force: USAGE_ERROR saying to add it, lock kept; with --force: removed, one unlock event, state unchanged', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Remote', '--id', 'c1']);
    plantLock(ws, 'contract-c1', remote());
    const refused = kj(ws, ['unlock', 'c1']);
    expect(refused.code).toBe(2);
    expect(refused.json.error.code).toBe('USAGE_ERROR');
    expect(refused.json.error.message).toContain('--force');
    expect(existsSync(holderFile(ws, 'contract-c1'))).toBe(true);
    const before = history(ws, 'c1');

    const r = kj(ws, ['unlock', 'c1', '--force']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, lock: 'contract-c1', removed: remote(), contract: { id: 'c1', state: 'DRAFT' } });
    const after = history(ws, 'c1');
    expect(after).toHaveLength(before.length + 1);
    expect(after.at(-1)).toMatchObject({ type: 'unlock', state: 'DRAFT', actor: 'tester', data: { lock: 'contract-c1', holder: remote() } });
    expect(readdirSync(locksDir(ws))).toEqual([]);
    const shown = spawnSync(process.execPath, [BIN, 'history', 'c1'], { cwd: ws, env: baseEnv(), encoding: 'utf8' });
    expect(shown.stdout).toContain('contract-c1 removed (held by pid 48213 on build-7.elsewhere)');
    ok(ws, ['grant', 'c1', 'ns:a']);
    expectOneChain(ws, 'c1');

    const nothing = kj(ws, ['unlock', 'c1', '--force']);
    expect(nothing.code).toBe(0);
    expect(nothing.json).toEqual({ ok: true, lock: 'contract-c1', removed: null });
    expect(history(ws, 'c1')).toHaveLength(after.length + 1); // the grant only
  });

  it('unlock refuses a live holder on this host (LOCK_BUSY) and leaves its lock', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Live', '--id', 'c1']);
    plantLock(ws, 'contract-c1', holder({}));
    const r = kj(ws, ['unlock', 'c1', '--force']);
    expect(r.code).toBe(6);
    expect(r.json.error).toMatchObject({ code: 'LOCK_BUSY', details: { lock: 'contract-c1', holder: holder({}) } });
    expect(r.json.error.message).toContain(String(process.pid));
    expect(existsSync(holderFile(ws, 'contract-c1'))).toBe(true);
    expect(history(ws, 'c1')).toHaveLength(1);
  });

  it('unlock --index --force removes a remote index lock (no history event); text output says what happened', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Index', '--id', 'c1']);
    plantLock(ws, '_index', remote());
    // The grant commits and its index entry is appended; only the fold waits, which is no
    // failure of the grant (never exit 6, no warning): verify names the way out once the fold is
    // overdue (index-log.test.ts), doctor lists the lock.
    const busy = kj(ws, ['grant', 'c1', 'ns:a', '--lock-timeout', '300']);
    expect(busy.code).toBe(0);
    expect(busy.stderr).not.toContain('was not updated');
    const r = kj(ws, ['unlock', '--index', '--force']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toEqual({ ok: true, lock: '_index', removed: remote() });
    expect(existsSync(lockDir(ws, '_index'))).toBe(false);
    const again = spawnSync(process.execPath, [BIN, 'unlock', '--index', '--force'], { cwd: ws, env: baseEnv(), encoding: 'utf8' });
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('nothing to remove');
  });

  it("unlock --propose --force removes propose's remote lock (its LOCK_BUSY names that command); a live local holder is refused", () => {
    const ws = makeWorkspace();
    plantLock(ws, '_propose', remote());
    // Only a propose without --id takes it (it picks a free slug under it).
    const busy = kj(ws, ['propose', 'Blocked', '--lock-timeout', '300']);
    expect(busy.code).toBe(6);
    expect(busy.json.error.message).toContain('kair unlock --propose --force');
    expect(existsSync(kairPath(ws, 'contracts', 'blocked'))).toBe(false);
    const r = kj(ws, ['unlock', '--propose', '--force']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toEqual({ ok: true, lock: '_propose', removed: remote() });
    expect(existsSync(lockDir(ws, '_propose'))).toBe(false);
    ok(ws, ['propose', 'Blocked']);

    plantLock(ws, '_propose', holder({}));
    const live = kj(ws, ['unlock', '--propose', '--force']);
    expect(live.code).toBe(6);
    expect(live.json.error).toMatchObject({ code: 'LOCK_BUSY', details: { lock: '_propose' } });
    expect(existsSync(holderFile(ws, '_propose'))).toBe(true);
  });

  it.each([
    [['unlock', '--force'], 2, 'USAGE_ERROR'],
    [['unlock', 'c1', '--index', '--force'], 2, 'USAGE_ERROR'],
    [['unlock', 'c1', '--propose', '--force'], 2, 'USAGE_ERROR'],
    [['unlock', '--index', '--propose', '--force'], 2, 'USAGE_ERROR'],
    [['unlock', '--propose'], 2, 'USAGE_ERROR'],
    [['unlock', '../x', '--force'], 2, 'INVALID_ID'],
    [['unlock', 'nope', '--force'], 4, 'CONTRACT_NOT_FOUND'],
  ])('kair %j → exit %i %s, nothing written', (args, exit, code) => {
    const ws = makeWorkspace();
    const r = kj(ws, args as string[]);
    expect(r.code).toBe(exit);
    expect(r.json.error.code).toBe(code);
    expect(existsSync(locksDir(ws)) ? readdirSync(locksDir(ws)) : []).toEqual([]);
  });
});
