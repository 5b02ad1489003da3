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

export const COMMANDS: CommandDef[] = [
  { name: 'init', args: [], options: [], summary: 'create a .kair/ workspace here (idempotent)', example: 'kair init', noWorkspace: true, handler: async (p, c) => (await H()).init(p, c) },
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
    options: [o('--file', 'file', 'read the plan from a file', 'path'), o('--plan-json', 'planJson', 'the plan as inline JSON', 'json')],
    summary: 'set the plan (kair.plan.v1) from --file, --plan-json or - (stdin); voids approvals',
    example: 'kair plan chat --file fixtures/plans/custom-kimi.json',
    handler: async (p, c) => (await H()).plan(p, c),
  },
  { name: 'require', args: [a('id'), a('control', true, true)], options: [], summary: 'add required controls (voids approvals)', example: 'kair require chat local:write', handler: async (p, c) => (await H()).require(p, c) },
  { name: 'grant list', args: [], options: [], summary: 'list the control registry', example: 'kair grant list', exactWords: true, handler: async (p, c) => (await H()).grantList(p, c) },
  { name: 'grant', args: [a('id'), a('control', true, true)], options: [], summary: 'grant controls to a contract', example: 'kair grant chat local:read local:write', handler: async (p, c) => (await H()).grant(p, c, 'grant') },
  { name: 'revoke', args: [a('id'), a('control', true, true)], options: [], summary: 'revoke controls (a kill switch: a run pauses before its next step)', example: 'kair revoke chat local:write', handler: async (p, c) => (await H()).grant(p, c, 'revoke') },
  { name: 'request-approval', args: [a('id')], options: [], summary: 'ask for approval (PLANNED → AWAITING_APPROVAL)', example: 'kair request-approval chat', handler: async (p, c) => (await H()).simple(p, c, 'request-approval') },
  { name: 'approve', args: [a('id')], options: [], summary: 'approve the exact current plan (bound to its sha256)', example: 'kair approve chat --actor alice', handler: async (p, c) => (await H()).approve(p, c) },
  {
    name: 'run',
    args: [a('id')],
    options: [
      o('--confirm', 'confirm', 'answer the first confirmation the run reaches', 'token'),
      o('--confirm-all', 'confirmAll', 'answer every confirmation of this invocation (CI)', 'token'),
      o('--lang', 'lang', 'language of --confirm (en, es, fr, de, pt, zh, ja)', 'lang'),
      o('--pause-at', 'pauseAt', 'pause before this step', 'step'),
      o('--dry-run', 'dryRun', 'check and show the routing; write and spend nothing'),
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
    options: [o('--confirm', 'confirm', 'answer the pending confirmation', 'token'), o('--confirm-all', 'confirmAll', 'answer every confirmation of this invocation (CI)', 'token'), o('--lang', 'lang', 'language of --confirm (en, es, fr, de, pt, zh, ja)', 'lang'), o('--retry-in-doubt', 'retryInDoubt', 're-execute a step whose outcome is unknown')],
    summary: 'continue a paused run from the ledger',
    example: 'kair resume chat --confirm yes',
    handler: async (p, c) => (await H()).resume(p, c),
  },
  { name: 'review', args: [a('id')], options: [], summary: 'show the run summary and artifact paths (records a review)', example: 'kair review chat', handler: async (p, c) => (await H()).review(p, c) },
  { name: 'accept', args: [a('id')], options: [], summary: 'accept a completed contract', example: 'kair accept chat', handler: async (p, c) => (await H()).simple(p, c, 'accept') },
  { name: 'rewind', args: [a('id'), a('reason')], options: [], summary: 'supersede the current version (never deletes history)', example: 'kair rewind chat "wrong invoice template"', handler: async (p, c) => (await H()).rewind(p, c) },
  {
    name: 'unlock',
    args: [a('id', false)],
    options: [o('--index', 'index', "the index's lock instead of a contract's"), o('--force', 'force', 'required: you know the holder is gone (a live holder on this host is still refused)')],
    summary: "remove a contract's (or the index's) lock whose holder is gone, e.g. one left by another host",
    example: 'kair unlock chat --force',
    handler: async (p, c) => (await H()).unlock(p, c),
  },
  { name: 'status', args: [a('id')], options: [], summary: 'show a contract', example: 'kair status chat --json', handler: async (p, c) => (await import('./read-handlers.js')).status(p, c) },
  { name: 'list', args: [], options: [o('--state', 'state', 'only contracts in this state', 'state')], summary: 'list contracts', example: 'kair list --state APPROVED', handler: async (p, c) => (await import('./read-handlers.js')).list(p, c) },
  { name: 'history', args: [a('id')], options: [o('--limit', 'limit', 'only the last N events', 'n')], summary: 'show the hash-chained history', example: 'kair history chat --limit 5', handler: async (p, c) => (await import('./read-handlers.js')).history(p, c) },
  {
    name: 'verify',
    args: [a('id', false)],
    options: [{ long: '--since-head', key: 'sinceHead', value: 'digest', description: 'also prove every chain still extends the head `kair head` printed then' }],
    summary: 'check every chain, snapshot, index and artifact hash',
    example: 'kair verify --since-head "$(cat kair-head.txt)"',
    handler: async (p, c) => (await H()).verify(p, c),
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
  { name: 'artifacts', args: [a('id')], options: [], summary: 'list the files of a contract', example: 'kair artifacts chat', handler: async (p, c) => (await import('./read-handlers.js')).artifacts(p, c) },
  { name: 'envelopes', args: [], options: [o('--contract', 'contract', 'only this contract', 'id')], summary: 'list Kimi execution envelopes', example: 'kair envelopes --contract chat --json', handler: async (p, c) => (await H()).envelopes(p, c) },
  { name: 'sim register', args: [], options: [o('--file', 'file', 'the simulation definition (JSON, §9.1)', 'path')], summary: 'register a simulation in the AEC catalog (status Draft)', example: 'kair sim register --file fixtures/simulations/ping.json', handler: async (p, c) => (await AEC()).simRegister(p, c) },
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
  { name: 'aec stats', args: [], options: [], summary: 'dispatch SLO figures from the ledger', example: 'kair aec stats --json', exactWords: true, handler: async (p, c) => (await AEC()).aecStats(p, c) },
  { name: 'intake list', args: [], options: [], summary: 'list dev intake (steps no simulation matched)', example: 'kair intake list', exactWords: true, handler: async (p, c) => (await AEC()).intakeList(p, c) },
  // A bare group word (`kair sim`, `kair access frob`) names the subcommands instead of failing as an unknown command.
  ...(['sim', 'access', 'aec', 'intake'] as const).map(
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
  { name: 'completion', args: [a('shell')], options: [], summary: 'print a completion script (bash, zsh, fish)', example: 'kair completion bash > /etc/bash_completion.d/kair', noWorkspace: true, handler: async (p, c) => (await loadLazy()).completion(p, c) },
  { name: '__ids', args: [], options: [], summary: 'contract ids, one a line (for completion)', example: 'kair __ids', hidden: true, handler: async (p, c) => (await import('./read-handlers.js')).ids(p, c) },
];

