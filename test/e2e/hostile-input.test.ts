/**
 * Hostile input and executors: write_file never leaves .kair/outbox/, `command` executors see an
 * allow-listed environment, their output is redacted wherever it is stored and their whole
 * process group dies at the timeout; human output escapes control characters; bad actors,
 * KAIR_NOW values and inputs (FIFOs, devices, huge or deep JSON, stdin that never ends) are
 * refused with exit 2, promptly, and nothing is written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, SIMULATIONS, approveContract, ledgerRows, registerSimulation, simPlan } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { BIN, baseEnv, gone, bring, cloneWorkspace, editConfig, fixture, history, kair, kj, kairPath, makeTempDir, makeWorkspace, ok, planFile, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const asAlice = { env: ALICE };

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

/** A contract whose history holds only its `propose` event, and no plan: what "nothing written" compares with. */
function untouched(ws: string, id: string): void {
  expect(history(ws, id).map((e) => e.type)).toEqual(['propose']);
  expect(existsSync(planFile(ws, id))).toBe(false);
}

describe('write_file stays inside .kair/outbox/', () => {
  let base: string;
  beforeAll(() => {
    base = makeWorkspace();
    registerSimulation(
      base,
      { id: 'drop', title: 'Write a file', examples: ['write a file'], required_fields: ['path', 'content'], impact: 'side_effecting', access_action: 'file:write', executor: { kind: 'builtin', name: 'write_file' } },
      { allow: 'alice' },
    );
  });

  /** A clone of the base workspace with `c` approved to write `content` at `path`. */
  function approved(path: string) {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'c', simPlan([{ id: 'w', utterance: 'write a file', fields: { path, content: 'PWNED' } }]));
    return ws;
  }

  const cases: { name: string; path: (outside: string) => string; arrange: (ws: string, outside: string) => void }[] = [
    {
      name: 'a symlink inside the outbox pointing outside',
      path: () => 'link.txt',
      arrange: (ws, outside) => {
        mkdirSync(kairPath(ws, 'outbox'), { recursive: true });
        symlinkSync(join(outside, 'victim.txt'), kairPath(ws, 'outbox', 'link.txt'));
      },
    },
    {
      name: 'the outbox itself a symlink',
      path: () => 'victim.txt',
      arrange: (ws, outside) => symlinkSync(outside, kairPath(ws, 'outbox')),
    },
    {
      name: 'a symlinked intermediate folder',
      path: () => 'sub/victim.txt',
      arrange: (ws, outside) => {
        mkdirSync(kairPath(ws, 'outbox'), { recursive: true });
        symlinkSync(outside, kairPath(ws, 'outbox', 'sub'));
      },
    },
    { name: 'a path with ..', path: () => '../../victim.txt', arrange: () => {} },
    { name: 'an absolute path', path: (outside) => join(outside, 'victim.txt'), arrange: () => {} },
  ];

  it.each(cases)('$name → AEC_EXECUTOR_FAILED (exit 5), PATH_OUTSIDE_OUTBOX, nothing written outside', ({ path, arrange }) => {
    const outside = makeTempDir('kair-outside-');
    const victim = join(outside, 'victim.txt');
    writeFileSync(victim, 'original\n');
    const ws = approved(path(outside));
    arrange(ws, outside);
    const r = kj(ws, ['run', 'c', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.error.code).toBe('AEC_EXECUTOR_FAILED');
    expect(r.json.error.details.reason).toBe('PATH_OUTSIDE_OUTBOX');
    expect(readFileSync(victim, 'utf8')).toBe('original\n');
    expect(readdirSync(outside)).toEqual(['victim.txt']);
    // No temp file was left behind, and the refused content was written nowhere.
    expect(filesUnder(ws).filter((f) => f.includes('kair-tmp'))).toEqual([]);
    expect(filesUnder(kairPath(ws)).filter((f) => f.includes('outbox'))).toEqual([]);
    expect(existsSync(join(ws, 'victim.txt'))).toBe(false);
    expect(existsSync(kairPath(ws, 'victim.txt'))).toBe(false);
  });

  it('a hard link in the outbox to a file outside: the write replaces the link, the outside file is unchanged', () => {
    const outside = makeTempDir('kair-outside-');
    const victim = join(outside, 'victim.txt');
    writeFileSync(victim, 'original\n');
    const ws = approved('hard.txt');
    mkdirSync(kairPath(ws, 'outbox'), { recursive: true });
    linkSync(victim, kairPath(ws, 'outbox', 'hard.txt'));
    const r = kj(ws, ['run', 'c', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('original\n');
    expect(readFileSync(kairPath(ws, 'outbox', 'hard.txt'), 'utf8')).toBe('PWNED');
  });

  it('a plain relative path (with a new sub-folder) is written inside the outbox, no temp file left', () => {
    const ws = approved('deep/er/out.txt');
    const r = kj(ws, ['run', 'c', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(kairPath(ws, 'outbox', 'deep', 'er', 'out.txt'), 'utf8')).toBe('PWNED');
    expect(filesUnder(kairPath(ws, 'outbox')).map((f) => f.slice(kairPath(ws, 'outbox').length))).toEqual(['/deep/er/out.txt']);
  });
});

describe('command executors', () => {
  const TOKEN = `ghp_${'A1b2C3d4E5'.repeat(4)}`;
  let base: string;
  beforeAll(() => {
    base = makeWorkspace();
  });

  function commandContract(def: Json): string {
    const ws = cloneWorkspace(base);
    registerSimulation(ws, { title: 'Command', required_fields: [], impact: 'side_effecting', ...def, access_action: `cmd:${def.id}` }, { allow: 'alice' });
    approveContract(ws, 'c', simPlan([{ id: 's', utterance: def.examples[0] }]), { requires: ['local:exec'], grant: ['local:exec'] });
    return ws;
  }

  const printEnv = "console.log(['GITHUB_TOKEN', 'SECRET_THING', 'PATH', 'KAIR_STEP_ID'].map((k) => k + (process.env[k] === undefined ? ' unset' : ' set')).join(', '))";

  it('sees PATH, HOME… and the KAIR_* variables, but not GITHUB_TOKEN or anything else kair has', () => {
    const ws = commandContract({ id: 'envp', examples: ['print the env'], executor: { kind: 'command', argv: ['node', '-e', printEnv], timeout_ms: 10_000 } });
    const r = kj(ws, ['run', 'c', '--confirm', 'yes'], { env: { ...ALICE, GITHUB_TOKEN: TOKEN, SECRET_THING: 'x' } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const ledger = readFileSync(kairPath(ws, 'contracts', 'c', 'artifacts', 'run', 'run-result.json'), 'utf8');
    expect(ledger).toContain('GITHUB_TOKEN unset, SECRET_THING unset, PATH set, KAIR_STEP_ID set');
  });

  it('env_allow lets a named variable through; an echoed token is redacted in history, run-result, ledger and refs', () => {
    const ws = commandContract({
      id: 'leak',
      examples: ['leak the token'],
      env_allow: ['GITHUB_TOKEN'],
      executor: { kind: 'command', argv: ['node', '-e', "console.log('GITHUB_TOKEN=' + process.env.GITHUB_TOKEN); console.error('token ' + process.env.GITHUB_TOKEN)"], timeout_ms: 10_000 },
    });
    const r = kj(ws, ['run', 'c', '--confirm', 'yes'], { env: { ...ALICE, GITHUB_TOKEN: TOKEN } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toContain(TOKEN);
    // Every stored place: history, artifacts, the SQLite ledger and refs (database and WAL bytes).
    const stored = filesUnder(kairPath(ws));
    expect(stored.some((f) => f.endsWith('kair.db'))).toBe(true);
    for (const f of stored) expect(readFileSync(f, 'latin1').includes(TOKEN), f).toBe(false);
    const result = readFileSync(kairPath(ws, 'contracts', 'c', 'artifacts', 'run', 'run-result.json'), 'utf8');
    expect(result).toContain('GITHUB_TOKEN=[REDACTED]');
    expect(result).toContain('token [REDACTED]');
  });

  it('env_allow must list environment variable names (SIMULATION_INVALID, exit 2, nothing registered)', () => {
    const ws = cloneWorkspace(base);
    const f = join(makeTempDir('kair-sim-'), 'bad.json');
    writeFileSync(f, JSON.stringify({ id: 'bad', title: 'Bad', examples: ['bad'], required_fields: [], impact: 'side_effecting', access_action: 'x:y', env_allow: ['OK_NAME', 'NOT=A NAME'], executor: { kind: 'command', argv: ['true'], timeout_ms: 100 } }));
    const r = kj(ws, ['sim', 'register', '--file', f]);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('SIMULATION_INVALID');
    expect(r.json.error.details.problems).toEqual([expect.objectContaining({ path: 'env_allow[1]' })]);
    expect(ok(ws, ['sim', 'list']).simulations).toEqual([]);
  });

  it('a command flooding its output is stopped at 16 MiB with its whole process group (OUTPUT_TOO_LARGE, exit 5)', () => {
    const dir = makeTempDir('kair-pg-');
    const pidFile = join(dir, 'grandchild.pid');
    const ws = commandContract({ id: 'flood', examples: ['flood the output'], executor: { kind: 'command', argv: ['sh', '-c', 'sleep 30 & echo $! > "$0"; yes', pidFile], timeout_ms: 60_000 } });
    const t0 = Date.now();
    const r = kj(ws, ['run', 'c', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.error.details.reason).toBe('OUTPUT_TOO_LARGE');
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(gone(Number(readFileSync(pidFile, 'utf8')))).toBe(true);
  });

  it('at the timeout the whole process group is killed: a background grandchild never writes its marker', async () => {
    const dir = makeTempDir('kair-pg-');
    const marker = join(dir, 'marker');
    const pidFile = join(dir, 'grandchild.pid');
    // The command starts a grandchild that would write the marker 1.5 s later, then hangs.
    const script = `const c = require('child_process').spawn('sh', ['-c', 'sleep 1.5; echo late > "$0"', process.argv[1]], { stdio: 'ignore' }); require('fs').writeFileSync(process.argv[2], String(c.pid)); setInterval(() => {}, 1000);`;
    const ws = commandContract({ id: 'hang', examples: ['hang around'], executor: { kind: 'command', argv: ['node', '-e', script, marker, pidFile], timeout_ms: 400 } });
    const t0 = Date.now();
    const r = kj(ws, ['run', 'c', '--confirm', 'yes'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.error.code).toBe('AEC_STEP_TIMEOUT');
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    expect(gone(grandchild)).toBe(true);
    // Past the moment the grandchild would have written it.
    await new Promise((res) => setTimeout(res, Math.max(0, 2500 - (Date.now() - t0))));
    expect(existsSync(marker)).toBe(false);
  });
});

/** An approved contract whose one step runs a command that starts a grandchild and hangs. */
function hangingRun(prefix: string): { ws: string; pidFile: string } {
  const ws = makeWorkspace();
  const pidFile = join(makeTempDir(prefix), 'grandchild.pid');
  const script = `const c = require('child_process').spawn('sleep', ['30'], { stdio: 'ignore' }); require('fs').writeFileSync(process.argv[1], String(c.pid)); setInterval(() => {}, 1000);`;
  registerSimulation(ws, { id: 'hang', title: 'Hang', examples: ['hang around'], required_fields: [], impact: 'side_effecting', access_action: 'cmd:hang', executor: { kind: 'command', argv: ['node', '-e', script, pidFile], timeout_ms: 60_000 } }, { allow: 'alice' });
  approveContract(ws, 'c', simPlan([{ id: 's', utterance: 'hang around' }]), { requires: ['local:exec'], grant: ['local:exec'] });
  return { ws, pidFile };
}

describe('command executors and Ctrl-C', () => {
  it("Ctrl-C at the terminal (SIGINT to kair's process group) takes the command's own process group down at once", async () => {
    const { ws, pidFile } = hangingRun('kair-pg-');
    // Its own process group, as a shell gives a foreground job.
    const child = spawn(process.execPath, [BIN, 'run', 'c', '--confirm', 'yes', '--json'], { cwd: ws, env: baseEnv(ALICE), stdio: 'ignore', detached: true });
    const ended = new Promise<void>((res) => child.on('exit', () => res()));
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await new Promise((res) => setTimeout(res, 50));
    await new Promise((res) => setTimeout(res, 200)); // the pid file exists; let the write finish
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    const t0 = Date.now();
    process.kill(-child.pid!, 'SIGINT');
    const deadline = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 10_000);
    await ended;
    clearTimeout(deadline);
    expect(Date.now() - t0).toBeLessThan(5000);
    // The supervisor kills the group from its own SIGINT handler, racing kair's exit: allow it a
    // moment (well under the 2 s grace after which SIGKILL would be needed).
    for (let i = 0; i < 20 && !gone(grandchild); i++) await new Promise((res) => setTimeout(res, 50));
    expect(gone(grandchild)).toBe(true);
  });
});

describe('kill -TERM of kair alone during a run', () => {
  it('stops kair promptly with 143, takes the command group down, and leaves the run PAUSED (INTERRUPTED) with the step in doubt', async () => {
    const { ws, pidFile } = hangingRun('kair-term-');
    const child = spawn(process.execPath, [BIN, 'run', 'c', '--confirm', 'yes', '--json'], { cwd: ws, env: baseEnv(ALICE), stdio: 'ignore' });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await new Promise((res) => setTimeout(res, 50));
    await new Promise((res) => setTimeout(res, 200));
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const deadline = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const r = await ended;
    clearTimeout(deadline);
    // kair handles the signal itself now: it exits 143 rather than dying of it.
    expect(r).toEqual({ code: 143, signal: null });
    expect(Date.now() - t0).toBeLessThan(3000);
    for (let i = 0; i < 100 && !gone(grandchild); i++) await new Promise((res) => setTimeout(res, 50));
    expect(gone(grandchild)).toBe(true);
    // Nothing half-committed: verify passes, and the pause was recorded by kair itself (no crash to recover).
    expect(kj(ws, ['verify'], { env: ALICE }).code).toBe(0);
    expect(kj(ws, ['status', 'c'], { env: ALICE }).json.contract).toMatchObject({ state: 'PAUSED', pause: { reason: 'INTERRUPTED', step_id: 's' } });
    expect(kj(ws, ['resume', 'c'], { env: ALICE }).json.error.code).toBe('AEC_IN_DOUBT');
  });
});

// `script` (util-linux) gives kair a terminal, so it asks for confirmation instead of pausing.
const hasScript = spawnSync('script', ['--version']).status === 0;

describe.skipIf(!hasScript)('a confirmation prompt on a terminal', () => {
  it('Ctrl-C at the prompt ends kair at once (130), before anything is dispatched', async () => {
    const ws = makeWorkspace();
    for (const s of ['send-invoice', 'void-invoice']) {
      ok(ws, ['sim', 'register', '--file', join(SIMULATIONS, `${s}.json`)]);
      ok(ws, ['sim', 'activate', s]);
    }
    ok(ws, ['access', 'allow', 'alice', 'invoice:send']);
    approveContract(ws, 'c', simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '1' } }]));
    const env = baseEnv({ ...ALICE, CI: undefined, KAIR_NO_INPUT: undefined });
    const child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} run c`, '/dev/null'], { cwd: ws, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const ended = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    for (let i = 0; i < 200 && !out.includes('Confirm?'); i++) await new Promise((res) => setTimeout(res, 50));
    expect(out).toContain('Confirm?');
    const t0 = Date.now();
    child.stdin.write('\u0003');
    const deadline = setTimeout(() => child.kill('SIGKILL'), 8000);
    const code = await ended;
    clearTimeout(deadline);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(code).toBe(130);
    expect(ledgerRows(ws, "event = 'CLAIMED'")).toEqual([]);
  });
});

describe('text output escapes control characters', () => {
  const HOSTILE = '\u001b[2J\u001b]0;PWNED\u0007 and\r\nmore\u009b';
  let ws: string;
  beforeAll(() => {
    ws = makeWorkspace();
    ok(ws, ['propose', HOSTILE, '--id', 'evil']);
  });

  it.each([['list'], ['status', 'evil'], ['propose', `${HOSTILE} again`, '--id', 'evil2'], ['history', 'evil', '--actor', 'x']])('`kair %s` prints no ESC, BEL, CR or C1 byte', (...args) => {
    const r = kair(ws, args);
    expect(r.code, r.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex -- the bytes that must not reach a terminal
    expect(r.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    if (args[0] !== 'history') expect(r.stdout).toContain('\\x1b[2J\\x1b]0;PWNED\\x07 and\\r\\nmore\\x9b');
  });

  it('with colour forced, the only ESC bytes are kair\'s own colour codes', () => {
    const r = kair(ws, ['list'], { env: { FORCE_COLOR: '1', NO_COLOR: undefined } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\u001b[');
    // eslint-disable-next-line no-control-regex -- ESC not starting an SGR sequence
    expect(r.stdout).not.toMatch(/\u001b(?!\[[0-9;]*m)/);
  });

  it('an error message on stderr is escaped too (a --file path with ESC); --json keeps the exact strings', () => {
    const r = kair(ws, ['plan', 'evil', '--file', '\u001b[2J\u001b]0;PWNED\u0007.json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('\\x1b[2J');
    // eslint-disable-next-line no-control-regex -- see above
    expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(ok(ws, ['status', 'evil']).contract.intent).toBe(HOSTILE);
  });
});

describe('actor names', () => {
  let ws: string;
  beforeAll(() => {
    ws = makeWorkspace();
  });

  it.each([
    ['--actor empty', ['--actor', ''], {}],
    ['--actor blank', ['--actor', '   '], {}],
    ['--by with a newline', ['--by', 'mallory\nalice'], {}],
    ['--actor with ESC', ['--actor', '\u001b[2Jx'], {}],
    ['KAIR_ACTOR with a C1 control', [], { KAIR_ACTOR: 'eve\u009b' }],
    ['KAIR_ACTOR empty', [], { KAIR_ACTOR: '' }],
  ] as [string, string[], Record<string, string>][])('%s → USAGE_ERROR (exit 2), nothing recorded', (_name, flags, env) => {
    const r = kj(ws, ['propose', 'who am I', '--id', 'who', ...flags], { env });
    expect(r.code, r.stdout).toBe(2);
    expect(r.json.error.code).toBe('USAGE_ERROR');
    expect(existsSync(kairPath(ws, 'contracts', 'who'))).toBe(false);
  });

  it('a $USER with control characters (no --actor, KAIR_ACTOR or git name) → USAGE_ERROR naming the way out, nothing recorded', () => {
    const r = kj(ws, ['propose', 'who am I', '--id', 'who'], { env: { KAIR_ACTOR: undefined, USER: 'eve\u001b[2J', HOME: makeTempDir('kair-home-'), XDG_CONFIG_HOME: undefined } });
    expect(r.code, r.stdout).toBe(2);
    expect(r.json.error.code).toBe('USAGE_ERROR');
    expect(r.json.error.message).toContain('--actor');
    expect(existsSync(kairPath(ws, 'contracts', 'who'))).toBe(false);
  });
});

describe('KAIR_NOW', () => {
  let ws: string;
  beforeAll(() => {
    ws = makeWorkspace();
  });

  it.each(['1', '2026-01-30', '2026-01-30T12:00:00', 'yesterday', '2026-13-45T99:00:00Z'])('KAIR_NOW=%j → USAGE_ERROR (exit 2) before anything is written', (now) => {
    for (const args of [['list'], ['propose', 'clocked', '--id', 'clocked']]) {
      const r = kj(ws, args, { env: { KAIR_NOW: now } });
      expect(r.code, r.stdout).toBe(2);
      expect(r.json.error.code).toBe('USAGE_ERROR');
      expect(r.json.error.message).toContain('KAIR_NOW');
    }
    expect(existsSync(kairPath(ws, 'contracts', 'clocked'))).toBe(false);
  });

  it('an RFC 3339 time with an offset is accepted', () => {
    const c = ok(ws, ['propose', 'offset', '--id', 'offset'], { env: { KAIR_NOW: '2026-01-30T13:00:00+01:00' } }).contract;
    expect(c.updated_at).toBe('2026-01-30T12:00:00.000Z');
  });

  it.each([['version'], ['completion', 'bash'], ['--help'], ['--version'], ['init']])('`kair %s` never reads it (exit 0 with a bad KAIR_NOW)', (...args) => {
    const dir = makeTempDir();
    const r = kair(dir, args, { env: { KAIR_NOW: 'yesterday' } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});

/** Runs kair with a hard deadline: a hang fails the test at `ms` instead of blocking the suite. */
function kairWithin(ws: string, args: string[], ms: number, input = '') {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args, '--json'], { cwd: ws, env: baseEnv(), input, encoding: 'utf8', timeout: ms, killSignal: 'SIGKILL' });
  return { code: r.status, signal: r.signal, json: JSON.parse(r.stdout || 'null') as Json, stdout: r.stdout, ms: Date.now() - t0 };
}

describe('--file and stdin', () => {
  let ws: string;
  let dir: string;
  beforeAll(() => {
    ws = makeWorkspace();
    dir = makeTempDir('kair-input-');
    spawnSync('mkfifo', [join(dir, 'fifo')]);
    bring(ws, 'c1', 'DRAFT');
  });

  it.each([
    ['a FIFO', () => join(dir, 'fifo'), /named pipe.*pipe it into `-`/],
    ['/dev/zero', () => '/dev/zero', /device/],
    ['a directory', () => dir, /directory/],
  ])('plan --file %s → USAGE_ERROR (exit 2) at once, without reading it', (_name, path, message) => {
    const r = kairWithin(ws, ['plan', 'c1', '--file', path()], 10_000);
    expect(r.code, r.stdout).toBe(2);
    expect(r.json.error.code).toBe('USAGE_ERROR');
    expect(r.json.error.message).toMatch(message);
    untouched(ws, 'c1');
  });

  it('sim register --file on a FIFO → USAGE_ERROR (exit 2) at once', () => {
    const r = kairWithin(ws, ['sim', 'register', '--file', join(dir, 'fifo')], 10_000);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('USAGE_ERROR');
  });

  const deep = (n: number) => `{"version":"kair.plan.v1","title":"deep","steps":[],"x":${'['.repeat(n)}${']'.repeat(n)}}`;
  const big = () => JSON.stringify({ version: 'kair.plan.v1', title: 'big', steps: [{ id: 'a', summary: 'x'.repeat(1024 * 1024) }] });

  it.each([
    ['nested 3,000 deep', () => deep(3000), /nested deeper than 64/],
    ['nested 65 deep', () => deep(64), /nested deeper than 64/],
    ['over 1 MiB', big, /larger than 1048576 bytes/],
    ['a secret file that is not JSON', () => 'root:x:0:0:root:/root:/bin/bash\n', /not valid JSON at line 1, column 1/],
    ['JSON broken after a secret', () => '{"title": "s3cr3t-value" oops}', /not valid JSON at line 1, column 26/],
  ])('a plan %s → PLAN_INVALID (exit 2), by --file and by stdin, contents never echoed', (_name, text, message) => {
    const body = text();
    const file = join(dir, 'plan.json');
    writeFileSync(file, body);
    for (const r of [kairWithin(ws, ['plan', 'c1', '--file', file], 20_000), kairWithin(ws, ['plan', 'c1', '-'], 20_000, body)]) {
      expect(r.code, r.stdout.slice(0, 500)).toBe(2);
      expect(r.json.error.code).toBe('PLAN_INVALID');
      expect(r.json.error.message).toMatch(message);
      expect(r.stdout).not.toContain('root:x');
      expect(r.stdout).not.toContain('s3cr3t');
      expect(r.stdout.length).toBeLessThan(2000);
    }
    untouched(ws, 'c1');
  });

  it('limits.max_input_bytes lowers the limit for plans and simulations', () => {
    const small = cloneWorkspace(ws);
    editConfig(small, (c) => (c.limits = { max_input_bytes: 200 }));
    const plan = readFileSync(fixture('mixed-lanes.json'), 'utf8');
    expect(plan.length).toBeGreaterThan(200);
    const r = kj(small, ['plan', 'c1', '--file', fixture('mixed-lanes.json')]);
    expect(r.code).toBe(2);
    expect(r.json.error.message).toMatch(/larger than 200 bytes/);
    const s = kj(small, ['sim', 'register', '--file', join(SIMULATIONS, 'send-invoice.json')]);
    expect(s.code).toBe(2);
    expect(s.json.error.code).toBe('SIMULATION_INVALID');
    untouched(small, 'c1');
  });

  it.each([
    ['a deep simulation', (f: string) => writeFileSync(f, `{"id":${'['.repeat(100)}${']'.repeat(100)}}`), /nested deeper than 64/],
    ['a simulation that is a secret file', (f: string) => writeFileSync(f, 'root:x:0:0:root\n'), /not valid JSON at line 1, column 1/],
  ])('sim register with %s → SIMULATION_INVALID (exit 2), contents never echoed', (_name, write, message) => {
    const f = join(dir, 'sim.json');
    write(f);
    const r = kj(ws, ['sim', 'register', '--file', f]);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('SIMULATION_INVALID');
    expect(r.json.error.message).toMatch(message);
    expect(r.stdout).not.toContain('root:x');
  });

  it.each([
    ['not JSON', () => 'root:x:0:0:root\n', /not valid JSON at line 1, column 1/],
    ['over 1 MiB', () => `{${' '.repeat(1024 * 1024)}}`, /larger than 1048576 bytes/],
    ['with a bad limit', () => null, /limits\.max_input_bytes/],
    ['that is a FIFO', () => 'fifo', /named pipe/],
  ])('a config %s → CONFIG_INVALID (exit 2), contents never echoed', (_name, text, message) => {
    const w = cloneWorkspace(ws);
    const t = text();
    if (t === null) editConfig(w, (c) => (c.limits = { max_input_bytes: 0 }));
    else if (t === 'fifo') {
      rmSync(kairPath(w, 'config.json'));
      spawnSync('mkfifo', [kairPath(w, 'config.json')]);
    } else writeFileSync(kairPath(w, 'config.json'), t);
    const r = kairWithin(w, ['status', 'c1'], 10_000);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('CONFIG_INVALID');
    expect(r.json.error.message).toMatch(message);
    expect(r.stdout).not.toContain('root:x');
  });

  it('init over a config that is a FIFO → CONFIG_INVALID (exit 2) at once, the FIFO left alone', () => {
    const w = cloneWorkspace(ws);
    rmSync(kairPath(w, 'config.json'));
    spawnSync('mkfifo', [kairPath(w, 'config.json')]);
    const r = kairWithin(w, ['init'], 10_000);
    expect(r.code, r.stdout).toBe(2);
    expect(r.json.error.code).toBe('CONFIG_INVALID');
    expect(statSync(kairPath(w, 'config.json')).isFIFO()).toBe(true);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('plan - on a stdin that never closes ends promptly on %s (exit %i), nothing written', async (signal, code) => {
    const child = spawn(process.execPath, [BIN, 'plan', 'c1', '-', '--json'], { cwd: ws, env: baseEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.write('{"version": "kair.plan.v1",');
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (c, s) => res({ code: c, signal: s })));
    await new Promise((res) => setTimeout(res, 1000));
    const t0 = Date.now();
    child.kill(signal);
    const deadline = setTimeout(() => child.kill('SIGKILL'), 5000);
    const r = await ended;
    clearTimeout(deadline);
    // Killed by the signal (a shell reports 128 + n) or exited with that status itself.
    expect(r.signal === signal || r.code === code, JSON.stringify(r)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
    untouched(ws, 'c1');
  });

  it('a valid plan on stdin still works', () => {
    const r = kairWithin(ws, ['plan', 'c1', '-'], 20_000, readFileSync(fixture('mixed-lanes.json'), 'utf8'));
    expect(r.code, r.stdout).toBe(0);
    expect(statSync(planFile(ws, 'c1')).isFile()).toBe(true);
    expect(history(ws, 'c1').map((e) => e.type)).toContain('plan');
  });
});

describe('messages quote a path as one short scalar', () => {
  it('a 200-character --file path is shortened to at most 80 characters in the message, kept whole in details', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'x', '--id', 'c1']);
    const long = join(ws, 'd'.repeat(190), 'plan.json');
    const r = kj(ws, ['plan', 'c1', '--file', long]);
    expect(r.code).toBe(2);
    expect(r.json.error.details.path).toBe(long);
    expect(r.json.error.message).not.toContain(long);
    const quoted = r.json.error.message.split(': cannot read it')[0].replace(/^--file /, '');
    expect(quoted.length).toBeLessThanOrEqual(80);
  });
});
