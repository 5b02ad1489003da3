/**
 * Completion scripts, loaded in the real shells: bash (the function called with COMP_WORDS and
 * COMP_CWORD set, as bash's completion does), fish (`complete -C`, fish's own completion
 * engine) and zsh (the function called with `words`/`CURRENT` set and compadd/_describe/_files
 * recording their candidates, since compsys's matching needs a terminal). A shell that is not
 * installed is skipped with the reason. `kair` is put on PATH as the built CLI.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, baseEnv, kair, makeTempDir, makeWorkspace, ok, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const has = (shell: string) => spawnSync(shell, ['-c', 'exit 0']).status === 0;
let ws: string;
let env: NodeJS.ProcessEnv;
const scripts: Record<string, string> = {};

beforeAll(() => {
  ws = makeWorkspace();
  ok(ws, ['propose', 'chat', '--id', 'chat']);
  ok(ws, ['propose', 'billing', '--id', 'billing']);
  writeFileSync(join(ws, 'plan-a.json'), '{}');
  const bin = makeTempDir('kair-bin-');
  symlinkSync(BIN, join(bin, 'kair'));
  chmodSync(BIN, 0o755);
  env = baseEnv({ PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: bin });
  const dir = makeTempDir('kair-completion-');
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = kair(dir, ['completion', shell]);
    expect(r.code, r.stderr).toBe(0);
    scripts[shell] = join(dir, `kair.${shell}`);
    writeFileSync(scripts[shell]!, r.stdout);
  }
});

function run(shell: string, args: string[], script: string): string[] {
  const r = spawnSync(shell, args, { cwd: ws, env, encoding: 'utf8', input: '' });
  expect(r.status, `${shell}: ${r.stderr}`).toBe(0);
  void script;
  return r.stdout.split(/\s+/).filter(Boolean);
}

/** The line typed so far, as words; the last one is the word being completed ('' after a space). */
const CASES: { line: string[]; want: string[]; not?: string[]; why: string }[] = [
  { why: 'grant list', line: ['grant', 'l'], want: ['list'] },
  { why: 'a group\'s subcommands (intake)', line: ['intake', ''], want: ['list'] },
  { why: 'a group\'s subcommands (config)', line: ['config', ''], want: ['get', 'set'] },
  { why: 'a group\'s subcommands (access)', line: ['access', ''], want: ['allow', 'apply', 'log'] },
  { why: 'a group\'s subcommands (sim, aec)', line: ['aec', ''], want: ['ledger', 'rebuild', 'replay', 'stats'] },
  { why: 'states after --state', line: ['list', '--state', ''], want: ['APPROVED', 'CLOSED', 'DRAFT'] },
  { why: 'global options before the command', line: ['--dir', '.', 'st'], want: ['status'] },
  { why: 'controls, not ids, after grant <id>', line: ['grant', 'chat', ''], want: ['local:read', 'network:write'], not: ['billing'] },
  { why: 'controls after unrequire <id>', line: ['unrequire', 'chat', 'local:r'], want: ['local:read'], not: ['chat'] },
  { why: 'contract ids where an id goes', line: ['status', ''], want: ['billing', 'chat'] },
  { why: 'contract ids after grant', line: ['grant', ''], want: ['list', 'chat'] },
  { why: 'file names after --file', line: ['plan', 'chat', '--file', 'plan-'], want: ['plan-a.json'] },
];

describe.skipIf(!has('bash'))('bash completion (bash is installed)', () => {
  it.each(CASES)('$why: kair $line', ({ line, want, not }) => {
    const got = run('bash', ['-c', 'source "$0"; COMP_WORDS=(kair "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _kair; printf "%s\\n" "${COMPREPLY[@]}"', scripts.bash!, ...line], 'bash');
    for (const w of want) expect(got).toContain(w);
    for (const w of not ?? []) expect(got).not.toContain(w);
  });

  it('registers itself with complete -F', () => {
    expect(run('bash', ['-c', 'source "$0"; complete -p kair', scripts.bash!], 'bash').join(' ')).toContain('-F _kair');
  });
});

describe.skipIf(!has('fish'))('fish completion (fish is installed)', () => {
  it.each(CASES)('$why: kair $line', ({ line, want, not }) => {
    const typed = ['kair', ...line].map((w) => w.replace(/'/g, "\\'")).join(' ');
    const got = run('fish', ['-c', `source $argv[1]; complete -C '${typed}'`, scripts.fish!], 'fish');
    for (const w of want) expect(got).toContain(w);
    for (const w of not ?? []) expect(got).not.toContain(w);
  });
});

describe.skipIf(!has('zsh'))('zsh completion, native compsys (zsh is installed)', () => {
  const harness = [
    'compadd() { while [[ $1 == -* && $1 != -- ]]; do shift; done; [[ $1 == -- ]] && shift; print -rl -- "$@"; }',
    '_describe() { local a=${@[-1]}; print -rl -- ${${(P)a}%%:*}; }',
    '_files() { print -rl -- *(N); }',
    'compdef() { :; }',
    'source $1; shift',
    'words=(kair "$@"); CURRENT=${#words}',
    '_kair',
  ].join('\n');

  it('is not the bash script through bashcompinit', () => {
    const r = kair(ws, ['completion', 'zsh']);
    expect(r.stdout).not.toContain('bashcompinit');
    expect(r.stdout.startsWith('#compdef kair')).toBe(true);
  });

  it.each(CASES)('$why: kair $line', ({ line, want, not }) => {
    const cur = line[line.length - 1]!;
    // compsys filters by the prefix itself; the harness shows every candidate, so filter here.
    const got = run('zsh', ['-fc', harness, 'zsh', scripts.zsh!, ...line], 'zsh').filter((w) => w.startsWith(cur));
    for (const w of want) expect(got).toContain(w);
    for (const w of not ?? []) expect(got).not.toContain(w);
  });
});
