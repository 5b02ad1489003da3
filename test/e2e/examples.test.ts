/**
 * Every example a user is shown runs. Examples come from the built CLI's help (the root help,
 * every command's and group's `--help`, and `kair help <command>`) and from README.md's
 * ```sh / ```bash / ```console blocks that call `kair`. Each runs in a fresh copy of a
 * workspace prepared by its set-up (EXAMPLES), with `kair` on PATH as the built CLI, the
 * repository's fixtures/ beside it and HOME inside the temporary folder, and must exit 0 unless
 * the example says otherwise (a `# … exit N …` comment on its line in README).
 *
 * An example that is not in EXAMPLES runs on the `init` workspace. An example that cannot run
 * here is listed in NOT_RUNNABLE with the reason; an entry in either table that no longer
 * matches an example fails the test, so the tables cannot rot.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/registry.js';
import { BIN, ROOT, baseEnv, kairOnPath, makeTempDir } from '../helpers/cli.js';

let binDir: string;
beforeAll(() => {
  binDir = kairOnPath('kair-examples-bin-');
});

const envFor = (dir: string, extra: Record<string, string> = {}) =>
  baseEnv({ PATH: `${binDir}:${process.env.PATH ?? ''}`, HOME: dir, KAIR_ACTOR: 'alice', CI: undefined, KAIR_NO_INPUT: undefined, ...extra });

function bash(dir: string, script: string, extra: Record<string, string> = {}, flags: string[] = []) {
  const r = spawnSync('bash', [...flags, '-c', script], { cwd: dir, env: envFor(dir, extra), input: '', encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

// ---- set-ups: bash lines run once each in a folder holding fixtures/; each example gets a copy

const INIT = 'kair init -q';
const SIMS = [
  INIT,
  ...['send-invoice', 'void-invoice', 'ping'].map((s) => `kair sim register -q --file fixtures/simulations/${s}.json && kair sim activate -q ${s}`),
  'kair access apply -q --file fixtures/access/policy.json',
].join('\n');
/** chat: proposed by tester (so alice, the examples' actor, may approve), custom-kimi plan (Kimi + manual: completes). */
const CHAT_DRAFT = `${SIMS}\nkair propose -q "Add chat and invoicing" --id chat --requires local:read,local:write --actor tester`;
const CHAT_PLANNED = `${CHAT_DRAFT}\nkair plan -q chat --file fixtures/plans/custom-kimi.json\nkair grant -q chat local:read local:write`;
const CHAT_AWAITING = `${CHAT_PLANNED}\nkair request-approval -q chat`;
const CHAT_APPROVED = `${CHAT_AWAITING}\nkair approve -q chat`;
const CHAT_COMPLETED = `${CHAT_APPROVED}\nkair run -q chat`;
/** chat with mixed-lanes: the impactful send-invoice step pauses for a confirmation. */
const AEC_PAUSED = `${CHAT_DRAFT}\nkair plan -q chat --file fixtures/plans/mixed-lanes.json\nkair grant -q chat local:read local:write\nkair request-approval -q chat\nkair approve -q chat\nkair run -q chat || test $? -eq 3`;
const AEC_COMPLETED = `${AEC_PAUSED}\nkair resume -q chat --confirm yes`;

interface Example {
  /** bash run before the example (after the folder gets fixtures/); default INIT. */
  setup?: string;
  /** Expected exit status of the example (default 0, or the README line's `exit N`). */
  exit?: number;
  /** Extra environment. */
  env?: Record<string, string>;
  /** README blocks: run the block as one bash script instead of line by line. */
  script?: boolean;
}

/** Keyed by the example's text (help) or the first line of its block (README). */
const EXAMPLES: Record<string, Example> = {
  // help
  'kair propose "Add chat" --id chat && kair plan chat --file plan.json && kair request-approval chat && kair approve chat && kair run chat --json': {
    setup: `${INIT}\ncp fixtures/plans/custom-kimi.json plan.json`,
  },
  'kair require chat local:write': { setup: CHAT_DRAFT },
  'kair grant chat local:read local:write': { setup: CHAT_DRAFT },
  'kair revoke chat local:write': { setup: CHAT_PLANNED },
  'kair unrequire chat local:write': { setup: CHAT_DRAFT },
  'kair plan chat --file fixtures/plans/custom-kimi.json': { setup: CHAT_DRAFT },
  'kair request-approval chat': { setup: CHAT_PLANNED },
  'kair approve chat --actor alice': { setup: CHAT_AWAITING },
  'kair run chat --json': { setup: CHAT_APPROVED },
  'kair resume chat --confirm yes': { setup: AEC_PAUSED },
  'kair review chat': { setup: CHAT_COMPLETED },
  'kair accept chat': { setup: CHAT_COMPLETED },
  'kair rewind chat "wrong invoice template"': { setup: CHAT_COMPLETED },
  'kair rollback chat-run-1 --confirm yes': { setup: AEC_COMPLETED },
  'kair unlock chat --force': { setup: CHAT_DRAFT },
  'kair show chat': { setup: CHAT_AWAITING },
  'kair diff chat --from previous': { setup: `${CHAT_PLANNED}\nkair plan -q chat --file fixtures/plans/mixed-lanes.json` },
  'kair status chat --json': { setup: CHAT_DRAFT },
  'kair list --state APPROVED': { setup: CHAT_APPROVED },
  'kair history chat --limit 5': { setup: CHAT_COMPLETED },
  'kair verify --since-head "$(cat kair-head.txt)"': { setup: `${CHAT_DRAFT}\nkair head > kair-head.txt` },
  'kair dpc chat --add-decision "Use the stub provider in CI"': { setup: CHAT_DRAFT },
  'kair artifacts chat': { setup: CHAT_COMPLETED },
  'kair export --to backup': { setup: CHAT_COMPLETED },
  'kair import --from backup': { setup: `${INIT}\nmkdir src && cd src && kair init -q && kair propose -q "Add chat" --id chat\nkair export -q --to backup --dir src` },
  'kair envelopes --contract chat --json': { setup: CHAT_COMPLETED },
  'kair sim show ping': { setup: SIMS },
  'kair sim activate ping': { setup: `${INIT}\nkair sim register -q --file fixtures/simulations/ping.json` },
  'kair sim deprecate ping': { setup: SIMS },
  'kair sim disable ping': { setup: SIMS },
  'kair sim log ping': { setup: SIMS },
  'kair aec ledger chat --json': { setup: AEC_COMPLETED },
  'kair aec replay chat-run-1': { setup: AEC_COMPLETED },
  'kair find "send invoice" --field customer=acme --field amount=120': { setup: SIMS },
  'kair close chat "superseded by the billing project"': { setup: CHAT_APPROVED },
  // README
  'kair init                                                  # creates .kair/ (idempotent)': { setup: '' },
  '$ kair run chat --json': { setup: CHAT_APPROVED },
  'code=0; kair run "$ID" --json --confirm-all yes --allow-noop > run.json || code=$?': { setup: CHAT_APPROVED, env: { ID: 'chat' }, script: true },
  '# .kair/config.json: {"workspace_id": "…", "run": {"allowed_actors": ["@proposer", "@approvers"]}, "policy": {"admins": ["root"]}}': {
    setup: `${INIT}\nkair config set -q run.allowed_actors '["@proposer","@approvers"]'\nkair propose -q "Invoice run" --id invoice --actor carol\nkair plan -q invoice --file fixtures/plans/custom-kimi.json --actor carol\nkair request-approval -q invoice --actor carol\nkair approve -q invoice --actor bob`,
  },
  'echo "alice $(cat ~/.ssh/id_ed25519.pub)" >> .kair/allowed_signers': {
    setup: `${CHAT_AWAITING}\nmkdir -p ~/.ssh && ssh-keygen -q -t ed25519 -N '' -C alice -f ~/.ssh/id_ed25519`,
  },
  // dc887f1f is the sha of fixtures/plans/mixed-lanes.json, the plan before the current one
  'kair show chat                  # intent, state, plan sha256, one step a line (id, lane, what it does), controls, approvals, next command': {
    setup: `${CHAT_DRAFT}\nkair plan -q chat --file fixtures/plans/mixed-lanes.json\nkair plan -q chat --file fixtures/plans/custom-kimi.json\nkair grant -q chat local:read local:write\nkair request-approval -q chat`,
  },
  'kair propose "Build a chat widget. Send the invoice customer=acme amount=120" --id gen': { setup: INIT },
  'kair rollback chat-run-1 --dry-run         # what would be dispatched, nothing written': { setup: AEC_COMPLETED },
  '$ kair request-approval chat --json; echo "exit $?"': {
    setup: `${INIT}\nkair propose -q "Add chat" --id chat --requires local:read\nkair plan -q chat --file fixtures/plans/custom-kimi.json`,
  },
  'kair export --to backup                          # backup/.kair: a complete local workspace': { setup: CHAT_COMPLETED, script: true },
  'set -e': { setup: `${INIT}\ncp fixtures/plans/custom-kimi.json plan.json`, script: true },
};

/** Examples shown to users that this test cannot run, with the reason. */
const NOT_RUNNABLE: Record<string, string> = {
  'kair pause chat': 'needs a run in progress in another process (a contract that is not RUNNING refuses pause with exit 3)',
  "export KAIR_DATABASE_URL='postgres://kair:PASSWORD@db.example:5432/kair?sslmode=verify-full'": 'needs a PostgreSQL server (test/e2e/init-postgres.test.ts runs both commands against a real one)',
};

// ---- collecting the examples

function helpOf(words: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...words], { env: baseEnv(), encoding: 'utf8', input: '' });
  expect(r.status, `kair ${words.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const exampleLines = (help: string) => [...help.matchAll(/^\s+\$ (.*\bkair\b.*)$/gm)].map((m) => m[1]!.trim());

interface ReadmeBlock {
  first: string;
  lines: string[];
  /** Console blocks show `$ command` then its output; only the commands run. */
  console: boolean;
  text: string;
}

function readmeBlocks(readme: string): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  for (const m of readme.matchAll(/^```(sh|bash|console|shell)\n([\s\S]*?)^```$/gm)) {
    const text = m[2]!;
    const raw = text.split('\n').filter((l) => l.trim() !== '');
    const isConsole = raw.some((l) => l.startsWith('$ '));
    const lines = isConsole ? raw.filter((l) => l.startsWith('$ ')).map((l) => l.slice(2)) : raw;
    if (!lines.some((l) => /(^|[\s;&|(`$])kair\s/.test(l.replace(/#.*$/, '')))) continue;
    blocks.push({ first: raw[0]!, lines, console: isConsole, text });
  }
  return blocks;
}

/** `# … exit 3 …` on a README line: the status the line documents. */
const documentedExit = (line: string) => {
  const m = /#.*?\bexits? (\d+)\b/.exec(line);
  return m ? Number(m[1]) : 0;
};

/** An example that writes to an absolute path (`> /etc/…`) or needs root must not run here (it did once). */
const escapes = (cmd: string) => /(^|[\s;&|])(>>?|tee)\s*\/|(^|[\s;&|])sudo\s/.test(cmd.replace(/#.*$/, ''));

const templates = new Map<string, string>();
/**
 * A folder holding fixtures/ and whatever `setup` made. Each line prefix of a set-up is built
 * once and copied, so set-ups that share their first lines (most do) share their cost.
 */
function template(setup: string): string {
  let tpl = templates.get(setup);
  if (tpl) return tpl;
  const cut = setup.lastIndexOf('\n');
  tpl = makeTempDir('kair-examples-tpl-');
  if (setup === '') cpSync(join(ROOT, 'fixtures'), join(tpl, 'fixtures'), { recursive: true });
  else {
    cpSync(template(cut < 0 ? '' : setup.slice(0, cut)), tpl, { recursive: true });
    const line = setup.slice(cut + 1);
    const r = bash(tpl, line, {}, ['-e']);
    if (r.code !== 0) throw new Error(`set-up line failed (exit ${r.code}): ${line}\n${r.stdout}${r.stderr}`);
  }
  templates.set(setup, tpl);
  return tpl;
}

function workspaceFor(setup: string): string {
  const dir = makeTempDir('kair-examples-');
  cpSync(template(setup), dir, { recursive: true });
  return dir;
}

const HELP_TARGETS: string[][] = [
  [],
  ...COMMANDS.filter((c) => !c.hidden).map((c) => c.name.split(' ')),
  ...COMMANDS.filter((c) => c.hidden && !c.name.startsWith('__')).map((c) => [c.name]),
];

describe('every example runs', () => {
  const seen = new Set<string>();

  // Each of these spawns the CLI some hundred times: slower than the default 60 s on a loaded machine.
  it('help: every command, subcommand and group has help (exit 0), `kair help X` = `kair X --help`, and every example in it runs', { timeout: 240_000 }, () => {
    const examples = new Set<string>();
    for (const words of HELP_TARGETS) {
      const help = helpOf(words.length ? [...words, '--help'] : ['--help']);
      if (words.length) expect(helpOf(['help', ...words]), `kair help ${words.join(' ')}`).toBe(help);
      const found = exampleLines(help);
      expect(found.length, `kair ${words.join(' ')} --help shows no example`).toBeGreaterThan(0);
      for (const e of found) examples.add(e);
    }
    const failures: string[] = [];
    for (const e of examples) {
      seen.add(e);
      if (NOT_RUNNABLE[e]) continue;
      if (escapes(e)) {
        failures.push(`${e}\n  writes outside its folder: change the example or list it in NOT_RUNNABLE`);
        continue;
      }
      const spec = EXAMPLES[e] ?? {};
      const dir = workspaceFor(spec.setup ?? INIT);
      const r = bash(dir, e, spec.env);
      const want = spec.exit ?? 0;
      if (r.code !== want) failures.push(`${e}\n  exit ${r.code}, expected ${want} (add its set-up to EXAMPLES in this file if it needs one)\n  ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join('\n  ')}`);
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
  });

  it('README: every sh/bash/console block that calls kair runs, each line with the exit status it documents', { timeout: 240_000 }, () => {
    const blocks = readmeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThan(5);
    const failures: string[] = [];
    for (const b of blocks) {
      seen.add(b.first);
      if (NOT_RUNNABLE[b.first]) continue;
      if (b.lines.some(escapes)) {
        failures.push(`block "${b.first}" writes outside its folder: change it or list it in NOT_RUNNABLE`);
        continue;
      }
      const spec = EXAMPLES[b.first] ?? {};
      const dir = workspaceFor(spec.setup ?? INIT);
      if (spec.script) {
        const r = bash(dir, b.lines.join('\n'), spec.env);
        if (r.code !== (spec.exit ?? 0)) failures.push(`block "${b.first}": exit ${r.code}\n  ${(r.stderr || r.stdout).trim()}`);
        continue;
      }
      for (const line of b.lines) {
        if (line.trimStart().startsWith('#')) continue;
        const r = bash(dir, line, spec.env);
        const want = spec.exit ?? documentedExit(line);
        // A console block that shows `exit N` after `echo "exit $?"` documents the status too.
        const shown = b.console && line.includes('echo "exit $?"') ? /^exit \d+$/m.exec(b.text)?.[0] : undefined;
        if (shown !== undefined && !r.stdout.split('\n').includes(shown)) {
          failures.push(`${line}\n  printed no "${shown}" line, as the README shows\n  ${r.stdout.trim()}`);
          break;
        }
        if (r.code !== want) {
          failures.push(`${line}\n  exit ${r.code}, expected ${want} (block "${b.first}")\n  ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join('\n  ')}`);
          break;
        }
      }
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
  });

  it('every entry of EXAMPLES and NOT_RUNNABLE names an example that still exists', () => {
    const stale = [...Object.keys(EXAMPLES), ...Object.keys(NOT_RUNNABLE)].filter((k) => !seen.has(k));
    expect(stale).toEqual([]);
  });
});

