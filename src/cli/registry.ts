/**
 * Every command, as data: name, arguments, options, a one-line summary and an example. The
 * parser, help, completion and the dispatcher all read this one table. Handlers import their
 * use case lazily so a command loads only what it needs.
 */
import type { Ctx } from '../app/context.js';
import { kairError } from '../domain/errors.js';
import { loadLazy } from './load-lazy.js';
import type { Paint } from './io.js';
import type { Parsed } from './parse.js';

export interface OptionDef {
  long: string;
  short?: string;
  aliases?: string[];
  key: string;
  value?: string;
  repeat?: boolean;
  description: string;
}

export interface ArgDef {
  name: string;
  required: boolean;
  variadic?: boolean;
}

export interface Output {
  json: Record<string, unknown>;
  text: (paint: Paint) => string;
  /** Exit status for a handled outcome that is not an error (defaults to 0). */
  exit?: number;
  /** What `-q` prints (an id, a run id, a plan sha); without it `-q` prints nothing. */
  primary?: string;
}

export interface CommandDef {
  name: string;
  args: ArgDef[];
  options: OptionDef[];
  summary: string;
  example: string;
  /** Runs without a workspace (init, version, completion). */
  noWorkspace?: boolean;
  hidden?: boolean;
  /** Match only when the command words are all there is (`grant list` vs `grant list local:read`). */
  exactWords?: boolean;
  handler: (p: Parsed, ctx: Ctx) => Promise<Output>;
}

export const GLOBAL_OPTIONS: OptionDef[] = [
  { long: '--json', key: 'json', description: 'print exactly one JSON document on stdout' },
  { long: '--actor', aliases: ['--by'], key: 'actor', value: 'name', description: 'who is acting (default: KAIR_ACTOR, git user.name, $USER)' },
  { long: '--dir', key: 'dir', value: 'path', description: 'workspace root (the folder containing .kair/)' },
  { long: '--no-color', key: 'noColor', description: 'disable colour' },
  { long: '--quiet', short: '-q', key: 'quiet', description: 'print only the primary value (an id, a run id, a plan sha) or nothing; errors still go to stderr' },
  { long: '--no-input', key: 'noInput', description: 'never prompt (also KAIR_NO_INPUT=1 or CI set); a needed answer fails naming its flag' },
  { long: '--lock-timeout', key: 'lockTimeout', value: 'ms', description: 'how long to wait for a busy contract (default 10000)' },
  { long: '--help', short: '-h', key: 'help', description: 'show help' },
  { long: '--version', short: '-V', key: 'version', description: 'print the version' },
];

const a = (name: string, required = true, variadic = false): ArgDef => ({ name, required, variadic });
const o = (long: string, key: string, description: string, value?: string, repeat = false): OptionDef => ({ long, key, description, value, repeat });

const H = async () => (await loadLazy()).handlers;
const AEC = async () => (await loadLazy()).aecHandlers;
const CMD = async () => (await loadLazy()).commandsHandlers;
const T = async () => (await loadLazy()).transferHandlers;

export const COMMANDS: CommandDef[] = [
  {
    name: 'init',
    args: [],
    options: [
      o('--backend', 'backend', 'where the workspace lives: local (this folder, the default) or postgres (a database shared by a team)', 'local|postgres'),
      o('--workspace-id', 'workspaceId', 'postgres: join this existing workspace instead of creating one', 'id'),
      o('--schema', 'schema', 'postgres: the schema of kair\'s tables (default kair)', 'name'),
      o('--url-env', 'urlEnv', 'postgres: the variable holding the database URL (default KAIR_DATABASE_URL; the URL is never written)', 'name'),
    ],
    summary: 'create a .kair/ workspace here (idempotent)',
    example: 'kair init',
    noWorkspace: true,
    handler: async (p, c) => (await H()).init(p, c),
  },
  {
    name: 'propose',
    args: [a('intent')],
    options: [o('--id', 'id', 'contract id (default: a slug of the intent)', 'id'), o('--requires', 'requires', 'required controls, comma-separated', 'ns:perm,...', true)],
    summary: 'propose a contract (DRAFT, version 1)',
    example: 'kair propose "Add chat and invoicing" --id chat --requires local:read,local:write',
    handler: async (p, c) => (await H()).propose(p, c),
  },
  {
    name: 'plan',
    args: [a('id'), a('source', false)],
    options: [
      o('--file', 'file', 'read the plan from a file', 'path'),
      o('--plan-json', 'planJson', 'the plan as inline JSON', 'json'),
      o('--generate', 'generate', 'ask the plan provider (planner.provider, default stub) for a plan from the intent, DPC and controls'),
      o('--refine', 'refine', 'ask the plan provider to revise the current plan as the feedback says', 'feedback'),
      o('--instructions', 'instructions', 'extra guidance for --generate/--refine', 'text'),
      o('--provider', 'provider', 'the plan provider for this call: stub or openai-compatible', 'name'),
      o('--debug', 'debug', 'with --generate/--refine: print the prompt payload, the DPC path and a DPC preview on stderr'),
    ],
    summary: 'set the plan (kair.plan.v1) from --file, --plan-json, - (stdin) or a plan provider (--generate/--refine); voids approvals',
    example: 'kair plan chat --file fixtures/plans/custom-kimi.json',
    handler: async (p, c) => (await H()).plan(p, c),
  },
  { name: 'require', args: [a('id'), a('control', true, true)], options: [], summary: 'add required controls (voids approvals)', example: 'kair require chat local:write', handler: async (p, c) => (await H()).require(p, c) },
  { name: 'grant list', args: [], options: [], summary: 'list the control registry', example: 'kair grant list', exactWords: true, handler: async (p, c) => (await H()).grantList(p, c) },
  { name: 'grant', args: [a('id'), a('control', true, true)], options: [], summary: 'grant controls to a contract', example: 'kair grant chat local:read local:write', handler: async (p, c) => (await H()).grant(p, c, 'grant') },
  { name: 'revoke', args: [a('id'), a('control', true, true)], options: [], summary: 'revoke controls (a kill switch: a run pauses before its next step)', example: 'kair revoke chat local:write', handler: async (p, c) => (await H()).grant(p, c, 'revoke') },
  { name: 'request-approval', args: [a('id')], options: [], summary: 'ask for approval (PLANNED → AWAITING_APPROVAL)', example: 'kair request-approval chat', handler: async (p, c) => (await H()).simple(p, c, 'request-approval') },
  {
    name: 'approve',
    args: [a('id')],
    options: [o('--sign', 'sign', 'sign the approval with an SSH key (ssh-keygen -Y sign)'), o('--key', 'key', "the SSH key to sign with (default: git's user.signingKey)", 'path'), o('--expect-sha', 'expectSha', 'refuse unless the current plan\'s sha256 starts with this (8+ hex digits, from `kair show`)', 'prefix')],
    summary: 'approve the exact current plan (bound to its sha256)',
    example: 'kair approve chat --actor alice',
    handler: async (p, c) => (await H()).approve(p, c),
  },
  {
    name: 'run',
    args: [a('id')],
    options: [
      o('--confirm', 'confirm', 'answer the first confirmation the run reaches', 'token'),
      o('--confirm-all', 'confirmAll', 'answer every confirmation of this invocation (CI)', 'token'),
      o('--lang', 'lang', 'language of --confirm (en, es, fr, de, pt, zh, ja)', 'lang'),
      o('--pause-at', 'pauseAt', 'pause before this step', 'step'),
      o('--dry-run', 'dryRun', 'check and show the routing; write and spend nothing'),
      o('--regenerate', 'regenerate', 'ask for a new Kimi envelope instead of reusing an earlier run\'s'),
      o('--allow-repeat', 'allowRepeat', 'dispatch steps an earlier version of the contract already ran'),
      o('--allow-noop', 'allowNoop', 'exit 0 when the plan needs no execution (NO_EXECUTION_REQUIRED)'),
    ],
    summary: 'run the approved plan through the Kimi and AEC lanes',
    example: 'kair run chat --json',
    handler: async (p, c) => (await H()).run(p, c),
  },
  { name: 'pause', args: [a('id')], options: [], summary: 'pause a running contract before its next step', example: 'kair pause chat', handler: async (p, c) => (await H()).simple(p, c, 'pause') },
  {
    name: 'resume',
    args: [a('id')],
    options: [o('--confirm', 'confirm', 'answer the pending confirmation', 'token'), o('--confirm-all', 'confirmAll', 'answer every confirmation of this invocation (CI)', 'token'), o('--lang', 'lang', 'language of --confirm (en, es, fr, de, pt, zh, ja)', 'lang'), o('--retry-in-doubt', 'retryInDoubt', 're-execute a step whose outcome is unknown'), o('--allow-repeat', 'allowRepeat', 'dispatch steps an earlier version of the contract already ran')],
    summary: 'continue a paused run from the ledger',
    example: 'kair resume chat --confirm yes',
    handler: async (p, c) => (await H()).resume(p, c),
  },
  { name: 'review', args: [a('id')], options: [], summary: 'show the run summary and artifact paths (records a review)', example: 'kair review chat', handler: async (p, c) => (await H()).review(p, c) },
  { name: 'accept', args: [a('id')], options: [], summary: 'accept a completed contract', example: 'kair accept chat', handler: async (p, c) => (await H()).simple(p, c, 'accept') },
  {
    name: 'rewind',
    args: [a('id'), a('reason')],
    options: [o('--rollback', 'rollback', 'roll back the latest run first; rewind only if every rollback succeeds'), o('--confirm', 'confirm', 'with --rollback: answers every confirmation of the rollback', 'token'), o('--lang', 'lang', 'language of --confirm', 'lang')],
    summary: 'supersede the current version (never deletes history)',
    example: 'kair rewind chat "wrong invoice template"',
    handler: async (p, c) => (await H()).rewind(p, c),
  },
  {
    name: 'rollback',
    args: [a('run_id')],
    options: [o('--confirm', 'confirm', 'answers every confirmation of this rollback', 'token'), o('--lang', 'lang', 'language of --confirm', 'lang'), o('--retry-in-doubt', 'retryInDoubt', 're-execute a rollback whose outcome is unknown'), o('--dry-run', 'dryRun', 'check every gate of every step and show what would be dispatched; write nothing')],
    summary: "undo a run's AEC effects: each succeeded step's rollback simulation, in reverse order, exactly once",
    example: 'kair rollback chat-run-1 --confirm yes',
    handler: async (p, c) => (await H()).rollback(p, c),
  },
  {
    name: 'unlock',
    args: [a('id', false)],
    options: [o('--index', 'index', "the index's lock instead of a contract's"), o('--propose', 'propose', "propose's lock (taken while a contract is created) instead of a contract's"), o('--force', 'force', 'required: you know the holder is gone (a live holder on this host is still refused)')],
    summary: "remove a contract's (or the index's, or propose's) lock whose holder is gone, e.g. one left by another host",
    example: 'kair unlock chat --force',
    handler: async (p, c) => (await H()).unlock(p, c),
  },
  { name: 'show', args: [a('id')], options: [], summary: 'what an approver approves: the plan (sha, steps, lanes), controls, approvals, last run, next command', example: 'kair show chat', handler: async (p, c) => (await import('./show-handlers.js')).show(p, c) },
  {
    name: 'diff',
    args: [a('id')],
    options: [o('--from', 'from', 'approved (default when approved), previous (default otherwise) or a plan sha (8+ hex digits)', 'sha|approved|previous'), o('--to', 'to', 'current (default) or a plan sha', 'sha|current')],
    summary: 'what changed between two plans of a contract, step by step',
    example: 'kair diff chat --from previous',
    handler: async (p, c) => (await import('./show-handlers.js')).diff(p, c),
  },
  { name: 'status', args: [a('id')], options: [], summary: 'show a contract', example: 'kair status chat --json', handler: async (p, c) => (await import('./read-handlers.js')).status(p, c) },
  { name: 'list', args: [], options: [o('--state', 'state', 'only contracts in this state', 'state'), o('--limit', 'limit', 'at most N contracts (JSON adds next_after, the cursor of the next page)', 'n'), o('--after', 'after', 'only contracts whose id sorts after ID (next_after of the previous page)', 'id')], summary: 'list contracts', example: 'kair list --state APPROVED', handler: async (p, c) => (await import('./read-handlers.js')).list(p, c) },
  { name: 'history', args: [a('id')], options: [o('--limit', 'limit', 'only the last N events', 'n')], summary: 'show the hash-chained history', example: 'kair history chat --limit 5', handler: async (p, c) => (await import('./read-handlers.js')).history(p, c) },
  {
    name: 'verify',
    args: [a('id', false)],
    options: [{ long: '--since-head', key: 'sinceHead', value: 'digest', description: 'also prove every chain still extends the head `kair head` printed then' }],
    summary: 'check every chain, snapshot, index and artifact hash',
    example: 'kair verify --since-head "$(cat kair-head.txt)"',
    handler: async (p, c) => (await H()).verify(p, c),
  },
  {
    name: 'export',
    args: [],
    options: [o('--to', 'to', 'the folder to write DIR/.kair/ in (created if missing; an existing DIR/.kair is refused)', 'dir')],
    summary: 'copy this workspace (local or PostgreSQL) into DIR/.kair/, a complete local workspace that verifies',
    example: 'kair export --to backup',
    handler: async (p, c) => (await T()).exportCmd(p, c),
  },
  {
    name: 'import',
    args: [],
    options: [o('--from', 'from', 'the folder holding the .kair/ to load (it must pass kair verify)', 'dir')],
    summary: 'load DIR/.kair/ into this fresh workspace (on PostgreSQL: into its empty tenant, in one transaction)',
    example: 'kair import --from backup',
    handler: async (p, c) => (await T()).importCmd(p, c),
  },
  { name: 'head', args: [], options: [], summary: 'print the workspace head digest (keep it elsewhere; verify --since-head checks it)', example: 'kair head > kair-head.txt', handler: async (p, c) => (await H()).head(p, c) },
  {
    name: 'dpc',
    args: [a('id')],
    options: [o('--add-assumption', 'addAssumption', 'add an assumption', 'text', true), o('--add-constraint', 'addConstraint', 'add a constraint', 'text', true), o('--add-decision', 'addDecision', 'add a decision', 'text', true), o('--add-question', 'addQuestion', 'add an open question', 'text', true)],
    summary: 'show or extend the decision state (DPC)',
    example: 'kair dpc chat --add-decision "Use the stub provider in CI"',
    handler: async (p, c) => (await H()).dpc(p, c),
  },
  {
    name: 'artifacts',
    args: [a('id')],
    options: [o('--out', 'out', 'write the listed files under DIR at their workspace paths (never overwrites or follows a link)', 'dir')],
    summary: 'list the files of a contract (--out DIR: write them out)',
    example: 'kair artifacts chat',
    handler: async (p, c) => (p.opts.out !== undefined ? (await T()).artifactsOut(p, c) : (await import('./read-handlers.js')).artifacts(p, c)),
  },
  { name: 'envelopes', args: [], options: [o('--contract', 'contract', 'only this contract', 'id')], summary: 'list Kimi execution envelopes', example: 'kair envelopes --contract chat --json', handler: async (p, c) => (await H()).envelopes(p, c) },
  { name: 'sim register', args: [], options: [o('--file', 'file', 'the simulation definition (JSON; schema: docs/schemas/simulation.json)', 'path')], summary: 'register a simulation in the AEC catalog (status Draft)', example: 'kair sim register --file fixtures/simulations/ping.json', handler: async (p, c) => (await AEC()).simRegister(p, c) },
  { name: 'sim list', args: [], options: [], summary: 'list the simulation catalog', example: 'kair sim list --json', exactWords: true, handler: async (p, c) => (await AEC()).simList(p, c) },
  { name: 'sim show', args: [a('id')], options: [], summary: 'show one simulation', example: 'kair sim show ping', handler: async (p, c) => (await AEC()).simShow(p, c) },
  { name: 'sim activate', args: [a('id')], options: [], summary: 'make a simulation usable (→ Active)', example: 'kair sim activate ping', handler: async (p, c) => (await AEC()).simStatus(p, c, 'activate') },
  { name: 'sim deprecate', args: [a('id')], options: [], summary: 'deprecate a simulation (→ Deprecated; the Finder refuses it)', example: 'kair sim deprecate ping', handler: async (p, c) => (await AEC()).simStatus(p, c, 'deprecate') },
  { name: 'sim disable', args: [a('id')], options: [], summary: 'disable a simulation (→ Disabled; the Finder refuses it)', example: 'kair sim disable ping', handler: async (p, c) => (await AEC()).simStatus(p, c, 'disable') },
  { name: 'access allow', args: [a('actor'), a('action')], options: [], summary: 'allow an actor an AEC action', example: 'kair access allow alice invoice:send', handler: async (p, c) => (await AEC()).accessSet(p, c, 'allow') },
  { name: 'access deny', args: [a('actor'), a('action')], options: [], summary: 'deny an actor an AEC action', example: 'kair access deny bob invoice:send', handler: async (p, c) => (await AEC()).accessSet(p, c, 'deny') },
  { name: 'access require-ap', args: [a('actor'), a('action')], options: [], summary: 'require an approval (AP) for an actor\'s AEC action', example: 'kair access require-ap carol invoice:void', handler: async (p, c) => (await AEC()).accessSet(p, c, 'require-ap') },
  { name: 'access list', args: [], options: [], summary: 'list the access policy (no rule → deny)', example: 'kair access list --json', exactWords: true, handler: async (p, c) => (await AEC()).accessList(p, c) },
  { name: 'access log', args: [], options: [], summary: 'every access-policy change: who, when, what (hash-chained)', example: 'kair access log --json', exactWords: true, handler: async (p, c) => (await AEC()).accessLog(p, c) },
  { name: 'sim log', args: [a('id')], options: [], summary: 'every change of one simulation: who, when, what (hash-chained)', example: 'kair sim log ping', handler: async (p, c) => (await AEC()).simLog(p, c) },
  { name: 'aec ledger', args: [a('contract')], options: [], summary: 'show the AEC execution ledger of a contract', example: 'kair aec ledger chat --json', handler: async (p, c) => (await AEC()).aecLedger(p, c) },
  { name: 'aec rebuild', args: [], options: [o('--check', 'check', 'only compare; exit 7 on drift')], summary: 'rebuild agent_execution_current from the ledger', example: 'kair aec rebuild --check', exactWords: true, handler: async (p, c) => (await AEC()).aecRebuild(p, c) },
  { name: 'aec replay', args: [a('run_id')], options: [], summary: 're-decide every AEC decision of a run from its persisted refs (exit 7 on mismatch)', example: 'kair aec replay chat-run-1', handler: async (p, c) => (await AEC()).aecReplay(p, c) },
  {
    name: 'aec stats',
    args: [],
    options: [o('--check', 'check', 'hold the figures to config slo; exit 3 (SLO_BREACHED) unless a waiver is active'), o('--window', 'window', 'only dispatches of the last N s|m|h|d (--check: default 24h)', 'duration')],
    summary: 'dispatch SLO figures from the ledger; --check gates on them',
    example: 'kair aec stats --check --window 24h',
    handler: async (p, c) => (await AEC()).aecStats(p, c),
  },
  {
    name: 'aec waiver add',
    args: [],
    options: [o('--until', 'until', 'when the waiver ends (RFC 3339, after now)', 'time'), o('--reason', 'reason', 'why the SLO may be breached until then', 'text')],
    summary: 'waive the SLO gate until a time (admins only; change-logged)',
    example: 'kair aec waiver add --until 2026-02-01T00:00:00Z --reason "provider incident"',
    handler: async (p, c) => (await AEC()).aecWaiverAdd(p, c),
  },
  { name: 'aec waiver list', args: [], options: [], summary: 'list SLO waivers and which is active', example: 'kair aec waiver list --json', handler: async (p, c) => (await AEC()).aecWaiverList(p, c) },
  { name: 'intake list', args: [], options: [], summary: 'list dev intake (steps no simulation matched)', example: 'kair intake list', exactWords: true, handler: async (p, c) => (await AEC()).intakeList(p, c) },
  { name: 'unrequire', args: [a('id'), a('control', true, true)], options: [], summary: 'remove required controls (voids approvals)', example: 'kair unrequire chat local:write', handler: async (p, c) => (await CMD()).unrequire(p, c) },
  { name: 'close', args: [a('id'), a('reason')], options: [], summary: 'abandon a contract (→ CLOSED; rewind reopens it as a new version)', example: 'kair close chat "superseded by the billing project"', handler: async (p, c) => (await CMD()).close(p, c) },
  { name: 'config get', args: [a('key')], options: [], summary: 'print one config value (dotted key; works on an invalid config)', example: 'kair config get approvals.min', handler: async (p, c) => (await CMD()).configGetCmd(p, c) },
  { name: 'config set', args: [a('key'), a('value')], options: [], summary: 'set one config value (JSON or a string), validated; policy keys are admin-only', example: 'kair config set approvals.min 2', handler: async (p, c) => (await CMD()).configSetCmd(p, c) },
  { name: 'access apply', args: [], options: [o('--file', 'file', 'the whole policy: {"rules": [{actor, action, decision}]}', 'path'), o('--dry-run', 'dryRun', 'print the difference; change nothing')], summary: 'replace the access policy with a file and print the difference (admin-only)', example: 'kair access apply --file fixtures/access/policy.json --dry-run', handler: async (p, c) => (await CMD()).accessApply(p, c) },
  { name: 'doctor', args: [], options: [], summary: 'check Node, SQLite, the workspace, the config, the actor and PATH; say how to fix each', example: 'kair doctor', noWorkspace: true, handler: async (p, c) => (await CMD()).doctor(p, c) },
  // A bare group word (`kair sim`, `kair access frob`) names the subcommands instead of failing as an unknown command.
  ...(['sim', 'access', 'aec', 'intake', 'config'] as const).map(
    (group): CommandDef => ({
      name: group,
      args: [a('subcommand', false, true)],
      options: [],
      summary: `${group} subcommands`,
      example: `kair ${group} list`,
      hidden: true,
      noWorkspace: true,
      handler: async (p) => {
        const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name.slice(group.length + 1));
        const given = p.args[0];
        if (given !== undefined && subs.includes(given)) {
          throw kairError('USAGE_ERROR', `\`kair ${group} ${given}\` takes no arguments, got ${JSON.stringify(p.args.slice(1).join(' '))}`, { command: `${group} ${given}`, argument: p.args[1] });
        }
        throw kairError('USAGE_ERROR', `${given === undefined ? `\`kair ${group}\` needs a subcommand` : `unknown subcommand \`kair ${group} ${given}\``}: one of ${subs.join(', ')}`, {
          command: group,
          ...(given === undefined ? {} : { subcommand: given }),
          subcommands: subs,
        });
      },
    }),
  ),
  {
    name: 'find',
    args: [a('utterance')],
    options: [o('--field', 'field', 'a required field, key=value (repeatable)', 'k=v', true), o('--lang', 'lang', 'language of the utterance (default en)', 'lang'), o('--attempt', 'attempt', 'clarify attempt, from 1', 'n')],
    summary: 'run the Simulation Finder only and print its packet (never dispatches or writes)',
    example: 'kair find "send invoice" --field customer=acme --field amount=120',
    handler: async (p, c) => (await AEC()).find(p, c),
  },
  { name: 'version', args: [], options: [], summary: 'print version information', example: 'kair version --json', noWorkspace: true, handler: async () => (await import('./read-handlers.js')).version() },
  { name: 'completion', args: [a('shell')], options: [], summary: 'print a completion script (bash, zsh, fish)', example: 'source <(kair completion bash)', noWorkspace: true, handler: async (p, c) => (await loadLazy()).completion(p, c) },
  { name: '__ids', args: [], options: [], summary: 'contract ids, one a line (for completion)', example: 'kair __ids', hidden: true, handler: async (p, c) => (await import('./read-handlers.js')).ids(p, c) },
];

