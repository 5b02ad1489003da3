/**
 * SPEC §2, §3 and §14 interface rules: one JSON document with --json, exit codes, workspace
 * discovery, config validation, actor and clock, help, version, completion, colour, closed
 * stdout.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../helpers/cli.js';
import {
  BIN,
  ROOT,
  baseEnv,
  cloneWorkspace,
  configFile,
  editConfig,
  history,
  historyFile,
  kair,
  kj,
  makeTempDir,
  makeWorkspace,
  ok,
  readJson,
  removeWorkspaces,
} from '../helpers/cli.js';

afterAll(removeWorkspaces);

const ESC = '\u001b[';
const pkgVersion = readJson(join(ROOT, 'package.json')).version as string;

/** stdout is exactly one JSON document (and nothing else). */
function oneDoc(r: RunResult) {
  expect(r.json, `stdout is not one JSON document:\n${r.stdout}`).toBeDefined();
  expect(r.stdout.trim().startsWith('{')).toBe(true);
  return r.json;
}

function noStack(text: string) {
  expect(text).not.toMatch(/\n\s+at .+\(.*:\d+:\d+\)/);
  expect(text).not.toMatch(/^\s+at /m);
}

/** c1 (DRAFT) lives here; read-only tests share it. */
let ws: string;
beforeAll(() => {
  ws = makeWorkspace();
  ok(ws, ['propose', 'Interface checks', '--id', 'c1']);
});

describe('--json: exactly one JSON document on stdout, success and failure', () => {
  it('success', () => {
    const r = kj(ws, ['status', 'c1']);
    expect(r.code).toBe(0);
    const doc = oneDoc(r);
    expect(doc.ok).toBe(true);
    expect(doc.contract.id).toBe('c1');
    expect(r.stderr).toBe('');
  });

  it('unknown command → exit 2 USAGE_ERROR with "did you mean"', () => {
    const r = kj(ws, ['stauts', 'c1']);
    expect(r.code).toBe(2);
    const doc = oneDoc(r);
    expect(doc).toMatchObject({ ok: false, error: { code: 'USAGE_ERROR' } });
    expect(doc.error.message).toMatch(/did you mean/i);
    expect(doc.error.message).toContain('status');
    expect(typeof doc.error.details).toBe('object');
  });

  it('unknown flag → exit 2 naming the flag', () => {
    const r = kj(ws, ['status', 'c1', '--bogus-flag']);
    expect(r.code).toBe(2);
    const doc = oneDoc(r);
    expect(doc.error.code).toBe('USAGE_ERROR');
    expect(doc.error.message).toContain('--bogus-flag');
  });

  it('missing argument → exit 2', () => {
    const r = kj(ws, ['status']);
    expect(r.code).toBe(2);
    expect(oneDoc(r).error.code).toBe('USAGE_ERROR');
    const g = kj(ws, ['grant', 'c1']);
    expect(g.code).toBe(2);
    expect(oneDoc(g).error.code).toBe('USAGE_ERROR');
  });

  it('a global option missing its value → exit 2', () => {
    const r = kair(ws, ['--json', 'status', 'c1', '--actor']);
    expect(r.code).toBe(2);
    expect(oneDoc(r).error.code).toBe('USAGE_ERROR');
  });

  it('--lock-timeout must be a whole number → exit 2', () => {
    const r = kj(ws, ['grant', 'c1', 'local:read', '--lock-timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(oneDoc(r).error.code).toBe('USAGE_ERROR');
    expect(history(ws, 'c1')).toHaveLength(1);
  });

  // Was a bug (fixed): SPEC §3 "With --json, stdout carries exactly one JSON document, for success and for
  // every handled failure", but `kair --json` with no command prints the human help text.
  it('`kair --json` without a command still prints one JSON document', () => {
    const r = kair(ws, ['--json']);
    oneDoc(r);
  });

  it('without --json a handled error goes to stderr as one line, stdout stays empty, no stack', () => {
    const r = kair(ws, ['status', 'nosuch']);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('CONTRACT_NOT_FOUND');
    noStack(r.stderr);
  });
});

describe('workspace and contract lookup', () => {
  it('outside any workspace → exit 4 WORKSPACE_NOT_FOUND that says to run kair init', () => {
    const dir = makeTempDir();
    const r = kj(dir, ['status', 'nosuch']);
    expect(r.code).toBe(4);
    expect(oneDoc(r).error.code).toBe('WORKSPACE_NOT_FOUND');
    expect(r.json.error.message).toContain('kair init');
  });

  it('arguments are checked before the workspace: a bad id outside a workspace is exit 2', () => {
    const dir = makeTempDir();
    const r = kj(dir, ['status', 'Bad']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('INVALID_ID');
  });

  it('inside a workspace, an unknown contract → exit 4 CONTRACT_NOT_FOUND', () => {
    const r = kj(ws, ['status', 'nosuch']);
    expect(r.code).toBe(4);
    expect(oneDoc(r).error.code).toBe('CONTRACT_NOT_FOUND');
  });

  it.each(['../x', 'A', 'a/b', '-x', 'a'.repeat(81)])('bad id %j → exit 2 INVALID_ID', (id) => {
    const r = kair(ws, ['--json', 'status', '--', id]);
    expect(r.code).toBe(2);
    expect(oneDoc(r).error.code).toBe('INVALID_ID');
  });

  it('a bad id is refused by mutating commands too, and nothing is written', () => {
    const r = kj(ws, ['propose', 'x', '--id', '../escape']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('INVALID_ID');
    const g = kj(ws, ['grant', 'A', 'local:read']);
    expect(g.code).toBe(2);
    expect(g.json.error.code).toBe('INVALID_ID');
  });

  it('--dir and KAIR_DIR select the workspace; --dir wins over KAIR_DIR', () => {
    const elsewhere = makeWorkspace(); // has no c1
    expect(kj(elsewhere, ['status', 'c1']).code).toBe(4);
    const viaDir = kj(elsewhere, ['status', 'c1', '--dir', ws]);
    expect(viaDir.code).toBe(0);
    expect(viaDir.json.contract.id).toBe('c1');
    const relDir = kj(elsewhere, ['status', 'c1', '--dir', relative(elsewhere, ws)]);
    expect(relDir.code).toBe(0);
    const viaEnv = kj(elsewhere, ['status', 'c1'], { env: { KAIR_DIR: ws } });
    expect(viaEnv.code).toBe(0);
    const both = kj(ws, ['status', 'c1', '--dir', elsewhere], { env: { KAIR_DIR: ws } });
    expect(both.code).toBe(4);
    expect(both.json.error.code).toBe('CONTRACT_NOT_FOUND');
  });

  it('--dir / KAIR_DIR pointing to a folder without .kair → exit 4 (no walking up)', () => {
    const bare = makeTempDir();
    const r = kj(ws, ['status', 'c1', '--dir', bare]);
    expect(r.code).toBe(4);
    expect(r.json.error.code).toBe('WORKSPACE_NOT_FOUND');
    const sub = join(ws, 'sub-for-dir');
    mkdirSync(sub, { recursive: true });
    const s = kj(ws, ['status', 'c1', '--dir', sub]);
    expect(s.code).toBe(4);
    expect(s.json.error.code).toBe('WORKSPACE_NOT_FOUND');
    const e = kj(ws, ['status', 'c1'], { env: { KAIR_DIR: bare } });
    expect(e.code).toBe(4);
  });

  it('walks up from a subfolder to find the workspace', () => {
    const deep = join(ws, 'src', 'deep', 'er');
    mkdirSync(deep, { recursive: true });
    const r = kj(ws, ['status', 'c1'], { cwd: deep });
    expect(r.code).toBe(0);
    expect(r.json.contract.id).toBe('c1');
  });
});

describe('config validation', () => {
  let bad: string;
  beforeAll(() => {
    bad = cloneWorkspace(ws);
  });

  it('an unknown key → exit 2 CONFIG_INVALID naming the key and the file, for status and list', () => {
    editConfig(bad, (c) => (c.surprise = true));
    for (const args of [['status', 'c1'], ['list']]) {
      const r = kj(bad, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneDoc(r).error.code).toBe('CONFIG_INVALID');
      expect(r.json.error.message).toContain('surprise');
      expect(JSON.stringify(r.json.error)).toContain('.kair/config.json');
    }
  });

  it('approvals.min 0 → exit 2 CONFIG_INVALID naming approvals.min; mutating commands write nothing', () => {
    editConfig(bad, (c) => {
      delete c.surprise;
      c.approvals.min = 0;
    });
    const r = kj(bad, ['list']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('CONFIG_INVALID');
    expect(JSON.stringify(r.json.error)).toContain('approvals.min');
    const before = readFileSync(historyFile(bad, 'c1'), 'utf8');
    const g = kj(bad, ['grant', 'c1', 'local:read']);
    expect(g.code).toBe(2);
    expect(g.json.error.code).toBe('CONFIG_INVALID');
    expect(readFileSync(historyFile(bad, 'c1'), 'utf8')).toBe(before);
  });

  it('version, init and completion still work with an invalid config (init keeps it)', () => {
    const cfg = readFileSync(configFile(bad), 'utf8');
    expect(kj(bad, ['version']).code).toBe(0);
    expect(kair(bad, ['completion', 'bash']).code).toBe(0);
    const i = kj(bad, ['init']);
    expect(i.code).toBe(0);
    expect(readFileSync(configFile(bad), 'utf8')).toBe(cfg);
  });

  it('a config that is not JSON → exit 2 CONFIG_INVALID', () => {
    writeFileSync(configFile(bad), '{ not json');
    const r = kj(bad, ['status', 'c1']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('CONFIG_INVALID');
  });
});

describe('init', () => {
  it('writes exactly the config keys of §14 and keeps workspace_id on a second init', () => {
    const dir = makeTempDir();
    const first = kj(dir, ['init']);
    expect(first.code).toBe(0);
    const cfg = readJson(configFile(dir));
    expect(Object.keys(cfg).sort()).toEqual(['approvals', 'controls', 'kimi', 'workspace_id']);
    expect(typeof cfg.workspace_id).toBe('string');
    expect(cfg.workspace_id.length).toBeGreaterThan(0);
    expect(cfg).toEqual({
      workspace_id: cfg.workspace_id,
      controls: {
        registry: ['cloudflare:read', 'cloudflare:write', 'github:read', 'github:write', 'schwab:read', 'local:read', 'local:write', 'local:exec', 'network:read', 'network:write'],
      },
      approvals: { min: 1, forbid_self: false },
      kimi: {
        provider: 'stub',
        defaults: { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600, allowedScopes: ['custom_logic', 'integration_glue'] },
        max_cost_usd_per_contract: 100,
      },
    });
    const text = readFileSync(configFile(dir), 'utf8');
    const second = kj(dir, ['init']);
    expect(second.code).toBe(0);
    expect(readFileSync(configFile(dir), 'utf8')).toBe(text);
    expect(readJson(configFile(dir)).workspace_id).toBe(cfg.workspace_id);
  });

  it('--dir creates the workspace in that folder', () => {
    const dir = makeTempDir();
    const target = join(dir, 'proj');
    mkdirSync(target);
    const r = kj(dir, ['init', '--dir', target]);
    expect(r.code).toBe(0);
    expect(readJson(configFile(target)).workspace_id).toBeTruthy();
  });

  // Was a bug (fixed): SPEC §2 "Paths written into any artifact or --json output are relative to the workspace
  // root ... never absolute", but `kair init --json` prints `"root": "/tmp/…"` (absolute).
  it('init --json prints no absolute paths', () => {
    const dir = makeTempDir();
    const r = kj(dir, ['init']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(dir);
  });
});

describe('actor and clock', () => {
  let aw: string;
  let home: string;
  beforeAll(() => {
    aw = cloneWorkspace(ws);
    home = makeTempDir(); // no git config anywhere: the git user.name step finds nothing
  });
  const isolated = (extra: Record<string, string | undefined>) => ({ HOME: home, XDG_CONFIG_HOME: home, ...extra });
  const lastActor = () => history(aw, 'c1').at(-1)!.actor;

  it('--actor > --by > KAIR_ACTOR > $USER, recorded in history', () => {
    ok(aw, ['grant', 'c1', 'a:one', '--actor', 'alice'], { env: isolated({ KAIR_ACTOR: 'kenv', USER: 'uenv' }) });
    expect(lastActor()).toBe('alice');
    ok(aw, ['grant', 'c1', 'a:two', '--by', 'bob'], { env: isolated({ KAIR_ACTOR: 'kenv', USER: 'uenv' }) });
    expect(lastActor()).toBe('bob');
    ok(aw, ['grant', 'c1', 'a:three'], { env: isolated({ KAIR_ACTOR: 'kenv', USER: 'uenv' }) });
    expect(lastActor()).toBe('kenv');
    ok(aw, ['grant', 'c1', 'a:four'], { env: isolated({ KAIR_ACTOR: undefined, USER: 'uenv' }) });
    expect(lastActor()).toBe('uenv');
  });

  it('git user.name of the workspace comes after KAIR_ACTOR and before $USER', () => {
    mkdirSync(join(aw, '.git'), { recursive: true });
    writeFileSync(join(aw, '.git', 'config'), '[core]\n\tbare = false\n[user]\n\tname = Grace Hopper\n\temail = g@example.com\n');
    ok(aw, ['grant', 'c1', 'a:five'], { env: isolated({ KAIR_ACTOR: undefined, USER: 'uenv' }) });
    expect(lastActor()).toBe('Grace Hopper');
    ok(aw, ['grant', 'c1', 'a:six'], { env: isolated({ KAIR_ACTOR: 'kenv', USER: 'uenv' }) });
    expect(lastActor()).toBe('kenv');
  });

  it('KAIR_NOW fixes the clock of events and snapshots', () => {
    const at = '2031-07-04T09:08:07.000Z';
    const c = ok(aw, ['grant', 'c1', 'a:seven'], { env: { KAIR_NOW: at } }).contract;
    expect(history(aw, 'c1').at(-1)!.at).toBe(at);
    expect(c.updated_at).toBe(at);
    const p = ok(aw, ['propose', 'Clocked', '--id', 'clocked'], { env: { KAIR_NOW: at } }).contract;
    expect(p.created_at).toBe(at);
    expect(p.versions[0].created_at).toBe(at);
  });
});

describe('help, version, completion', () => {
  it('--help exits 0, lists the commands and mentions an example', () => {
    const r = kair(ws, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('propose');
    expect(r.stdout).toContain('request-approval');
  });

  // Was a bug (fixed): SPEC §3/brief: top-level `kair --help` should mention an example (and it is meant to
  // carry the exit-status table and "Run `kair <command> --help` for … an example"), but
  // help.ts adds that text with commander's addHelpText and then calls helpInformation(), which
  // leaves it out: the top-level help has no example and no exit-status summary.
  it('--help mentions an example and the exit statuses', () => {
    const r = kair(ws, ['--help']);
    expect(r.stdout).toMatch(/example/i);
    expect(r.stdout).toMatch(/exit status/i);
  });

  it.each([
    ['sim', ['sim', '--help'], ['sim register', 'sim activate', 'sim log']],
    ['access', ['help', 'access'], ['access allow', 'access list', 'access log']],
    ['aec', ['aec', '-h'], ['aec ledger', 'aec rebuild', 'aec replay', 'aec stats']],
    ['intake', ['intake', '--help'], ['intake list']],
  ])('a command group\'s help (%s) lists its subcommands with examples, exit 0', (_name, args, subs) => {
    const r = kair(ws, args);
    expect(r.code, r.stderr).toBe(0);
    for (const sub of subs) expect(r.stdout).toContain(sub);
    expect(r.stdout).toContain(`$ kair ${subs[0]}`);
    expect(r.stderr).toBe('');
  });

  it('kair plan --help exits 0, shows its options and an example', () => {
    const r = kair(ws, ['plan', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--plan-json');
    expect(r.stdout).toContain('--file');
    expect(r.stdout).toMatch(/Example/);
    expect(r.stdout).toContain('kair plan ');
    expect(r.stderr).toBe('');
  });

  // Was a bug (fixed): `kair plan --help` prints "Usage: kair kair plan [options] <id> [source]" (the program
  // name twice: commander's sub-command usage already starts with "kair", and help.ts prefixes it
  // again).
  it('kair plan --help has a correct usage line', () => {
    const r = kair(ws, ['plan', '--help']);
    expect(r.stdout).toMatch(/^Usage: kair plan /m);
  });

  // Was a bug (fixed): `kair --help` lists a `help [command]` command (commander's implicit one), but
  // `kair help` / `kair help plan` exit 2 USAGE_ERROR "unknown command help".
  it('every command listed by --help exists: `kair help plan` works', () => {
    const listed = kair(ws, ['--help']).stdout;
    expect(listed).toMatch(/^\s+help \[command\]/m);
    const r = kair(ws, ['help', 'plan']);
    expect(r.code).toBe(0);
  });

  it('-V / --version print the package version', () => {
    for (const flag of ['-V', '--version']) {
      const r = kair(ws, [flag]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(pkgVersion);
    }
  });

  it('kair version --json has version, node, schema_versions (outside a workspace too)', () => {
    const r = kj(makeTempDir(), ['version']);
    expect(r.code).toBe(0);
    const doc = oneDoc(r);
    expect(doc.ok).toBe(true);
    expect(doc.version).toBe(pkgVersion);
    expect(doc.node).toBe(process.versions.node);
    expect(doc.schema_versions).toBeTypeOf('object');
    expect(Object.values(doc.schema_versions)).toContain('kair.plan.v1');
  });

  it('kair completion bash registers _kair and knows the commands; zsh and fish work; other shells are exit 2', () => {
    const dir = makeTempDir();
    const bash = kair(dir, ['completion', 'bash']);
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain('complete -F _kair kair');
    expect(bash.stdout).toContain('propose');
    expect(bash.stdout).toContain('request-approval');
    const check = spawnSync('bash', ['-n'], { input: bash.stdout, encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    for (const shell of ['zsh', 'fish']) {
      const r = kair(dir, ['completion', shell]);
      expect(r.code, shell).toBe(0);
      expect(r.stdout).toContain('propose');
    }
    const bad = kj(dir, ['completion', 'tcsh']);
    expect(bad.code).toBe(2);
  });
});

describe('colour', () => {
  it('FORCE_COLOR=1 colours `kair list` even off a TTY', () => {
    const r = kair(ws, ['list'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('c1');
    expect(r.stdout).toContain(ESC);
  });

  it('no colour off a TTY by default, nor with NO_COLOR', () => {
    const plain = kair(ws, ['list'], { env: { NO_COLOR: undefined } });
    expect(plain.stdout).toContain('c1');
    expect(plain.stdout).not.toContain(ESC);
    const no = kair(ws, ['list'], { env: { NO_COLOR: '1' } });
    expect(no.stdout).not.toContain(ESC);
  });

  it('--no-color beats FORCE_COLOR', () => {
    const r = kair(ws, ['list', '--no-color'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('c1');
    expect(r.stdout).not.toContain(ESC);
  });

  it('--json output never carries colour', () => {
    const r = kj(ws, ['list'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(r.stdout).not.toContain(ESC);
    expect(oneDoc(r).contracts.map((c: { id: string }) => c.id)).toContain('c1');
  });
});

describe('a closed stdout', () => {
  let big: string;
  beforeAll(() => {
    big = cloneWorkspace(ws);
    // One event whose rendering is far larger than a pipe buffer (64 KiB).
    const controls = Array.from({ length: 8000 }, (_, i) => `ns:p${String(i).padStart(5, '0')}`);
    ok(big, ['grant', 'c1', ...controls]);
  });

  it.each([
    ['history c1', ['history', 'c1']],
    ['history c1 --json', ['history', 'c1', '--json']],
    ['status c1 --json', ['status', 'c1', '--json']],
  ])('`kair %s | head -c 1` ends quietly with exit 0 and no stack trace', (_name, args) => {
    const errFile = join(big, 'stderr.txt');
    const quoted = [BIN, ...args].map((a) => `'${a}'`).join(' ');
    const script = `'${process.execPath}' ${quoted} 2>'${errFile}' | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`;
    const r = spawnSync('bash', ['-c', script], { cwd: big, env: baseEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('0');
    const stderr = readFileSync(errFile, 'utf8');
    noStack(stderr);
    expect(stderr).not.toMatch(/EPIPE|INTERNAL_ERROR|Error/);
  });
});
