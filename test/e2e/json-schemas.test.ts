/**
 * The published schemas (docs/schemas/, from src/domain/output-schemas.ts) against real output:
 * every `--json` document the built CLI prints today, and the files a run leaves on disk, are
 * parsed with the registered schema. The objects are strict where the shape is known, so a key
 * renamed, added or dropped in the code fails here, not in a user's CI.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import Database from 'better-sqlite3';
import { PUBLISHED_SCHEMAS } from '../../src/domain/schemas.js';
import { approveContract, setUpCatalog, simPlan } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import {
  BUNDLE,
  ROOT,
  bring,
  cloneWorkspace,
  configFile,
  contractDir,
  dpcFile,
  editConfig,
  fixture,
  history,
  historyFile,
  kj,
  makeTempDir,
  makeWorkspace,
  planFile,
  readJson,
  removeWorkspaces,
  snapshotFile,
} from '../helpers/cli.js';

afterAll(removeWorkspaces);

const checked = new Set<string>();

/** Parses `doc` with the schema published as docs/schemas/<name>.json; prints the issues on failure. */
function expectSchema(name: string, doc: unknown, what: string = name): void {
  const schema = PUBLISHED_SCHEMAS[name];
  if (!schema) throw new Error(`no published schema ${name}`);
  checked.add(name);
  const r = schema.safeParse(doc);
  expect(r.success, r.success ? '' : `${what} does not match docs/schemas/${name}.json:\n${z.prettifyError(r.error)}\n${JSON.stringify(doc, null, 2)}`).toBe(true);
}

/** `kair …args --json`: stdout must be exactly one JSON document, and the exit status `exit`. */
function doc(ws: string, args: string[], exit = 0): Json {
  const r = kj(ws, args);
  expect(r.code, `kair ${args.join(' ')} --json\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(exit);
  return JSON.parse(r.stdout);
}

function check(name: string, ws: string, args: string[], exit = 0): Json {
  const d = doc(ws, args, exit);
  expectSchema(name, d, `kair ${args.join(' ')} --json`);
  return d;
}

const runsDir = (ws: string, id: string) => join(contractDir(ws, id), 'artifacts', 'run');

/** The workspace of the lifecycle suite: c1 goes propose → … → run → review → accept → rewind. */
let W: string;

beforeAll(() => {
  W = makeWorkspace();
});

describe('init and the commands that need no workspace', () => {
  it('init, twice (created, then kept)', () => {
    const dir = makeTempDir();
    expect(check('output-init', dir, ['init']).created).toBe(true);
    expect(check('output-init', dir, ['init']).created).toBe(false);
  });

  it('version, --version, --help, <command> --help, completion', () => {
    check('output-version', W, ['version']);
    check('output-version-flag', W, ['--version']);
    expect(check('output-help', W, ['--help']).command).toBeNull();
    expect(check('output-help', W, ['status', '--help']).command).toBe('status');
    for (const shell of ['bash', 'zsh', 'fish']) check('output-completion', W, ['completion', shell]);
  });
});

describe('the lifecycle of c1, run included', () => {
  it('mutating lifecycle commands print {ok, contract} (+ plan_sha256 for plan, recorded for approve)', () => {
    const steps: string[][] = [
      ['propose', 'Add chat and notifications', '--id', 'c1', '--requires', 'local:read'],
      ['plan', 'c1', '--file', fixture('custom-kimi.json')],
      ['require', 'c1', 'local:write'],
      ['grant', 'c1', 'local:read', 'local:write', 'x:y'],
      ['revoke', 'c1', 'x:y'],
      ['request-approval', 'c1'],
      ['approve', 'c1'],
    ];
    for (const args of steps) check('output-lifecycle', W, args);
    expect(check('output-lifecycle', W, ['approve', 'c1']).recorded).toBe(false);
  });

  it('run --dry-run prints {ok, dry_run, contract_id, lanes, steps, kimi_estimate}', () => {
    const d = check('output-run', W, ['run', 'c1', '--dry-run']);
    expect(d.dry_run).toBe(true);
    expect(d.kimi_estimate).not.toBeNull();
  });

  it('run prints the run document (with the kimi object)', () => {
    const d = check('output-run', W, ['run', 'c1']);
    expect(d).toMatchObject({ ok: true, status: 'COMPLETED', kimi: { status: 'COMPLETED' } });
  });

  it('the run artifacts on disk: run-request.json and run-result.json, latest and archived', () => {
    for (const dir of [runsDir(W, 'c1'), join(runsDir(W, 'c1'), 'c1-run-1')]) {
      expectSchema('run-request', readJson(join(dir, 'run-request.json')), `${dir}/run-request.json`);
      expectSchema('run-result', readJson(join(dir, 'run-result.json')), `${dir}/run-result.json`);
    }
  });

  it('review, accept, rewind', () => {
    const review = check('output-review', W, ['review', 'c1']);
    expect(review.run.result).not.toBeNull();
    expect(review.last_run).toMatchObject({ status: 'COMPLETED', kimi: { cost_usd: 0.02 } });
    check('output-show', W, ['show', 'c1']);
    check('output-diff', W, ['diff', 'c1']);
    check('output-lifecycle', W, ['accept', 'c1']);
    check('output-lifecycle', W, ['rewind', 'c1', 'start over']);
  });

  it('dpc, shown and extended', () => {
    check('output-dpc', W, ['dpc', 'c1']);
    const d = check('output-dpc', W, ['dpc', 'c1', '--add-assumption', 'a', '--add-constraint', 'c', '--add-decision', 'd', '--add-question', 'q']);
    expect(d.dpc.open_questions).toHaveLength(1);
  });

  it('read commands: status, list, history, verify, artifacts, envelopes, grant list', () => {
    check('output-status', W, ['status', 'c1']);
    expect(check('output-list', W, ['list']).contracts).toHaveLength(1);
    check('output-list', W, ['list', '--state', 'DRAFT']);
    expect(check('output-history', W, ['history', 'c1']).events.length).toBeGreaterThan(10);
    expect(check('output-history', W, ['history', 'c1', '--limit', '2']).events).toHaveLength(2);
    check('output-verify', W, ['verify']);
    check('output-verify', W, ['verify', 'c1']);
    const h = check('output-head', W, ['head']);
    check('output-verify', W, ['verify', '--since-head', h.digest]);
    expect(check('output-artifacts', W, ['artifacts', 'c1']).artifacts.map((a: { kind: string }) => a.kind)).toContain('run:c1-run-1:result');
    expect(check('output-envelopes', W, ['envelopes']).envelopes).toHaveLength(1);
    check('output-envelopes', W, ['envelopes', '--contract', 'c1']);
    check('output-grant-list', W, ['grant', 'list']);
  });

  it('files on disk: config, contract.json, plan, DPC and every history line', () => {
    expectSchema('config', readJson(configFile(W)), 'config.json');
    expectSchema('contract', readJson(snapshotFile(W, 'c1')), 'contract.json');
    expectSchema('plan', readJson(planFile(W, 'c1')), 'plan_v1.json');
    expectSchema('dpc', readJson(dpcFile(W, 'c1')), 'dpc_v1.json');
    const events = history(W, 'c1');
    const types = ['propose', 'plan', 'require', 'grant', 'revoke', 'request-approval', 'approve', 'run.started', 'kimi.started', 'kimi.completed', 'step.finished', 'run.finished', 'dpc', 'review', 'accept', 'rewind'];
    expect([...new Set(events.map((e) => e.type))]).toEqual(expect.arrayContaining(types));
    for (const e of events) expectSchema('history-event', e, `history line ${e.seq} (${e.type})`);
  });
});

describe('run outcomes: a pause and its resume, a failed run', () => {
  it('--pause-at prints a PAUSED run document (exit 0); resume prints the same document for the run it continues', () => {
    bring(W, 'c2', 'APPROVED');
    const paused = check('output-run', W, ['run', 'c2', '--pause-at', 'review-delta']);
    expect(paused).toMatchObject({ ok: true, status: 'PAUSED' });
    const resumed = check('output-run', W, ['resume', 'c2']);
    expect(resumed).toMatchObject({ ok: true, status: 'COMPLETED', run_id: paused.run_id });
    expectSchema('contract', readJson(snapshotFile(W, 'c2')), 'contract.json of a resumed run');
  });

  it('a Kimi budget abort prints the run document with ok false and error (exit 5); its dry run the prediction with that error', () => {
    bring(W, 'c3', 'APPROVED', 'run-budget-low.json');
    const dry = check('output-run', W, ['run', 'c3', '--dry-run'], 5);
    expect(dry).toMatchObject({ ok: false, dry_run: true, error: { code: 'BUDGET_EXCEEDED' } });
    const d = check('output-run', W, ['run', 'c3'], 5);
    expect(d).toMatchObject({ ok: false, status: 'FAILED', kimi: { status: 'FAILED' }, error: { code: 'BUDGET_EXCEEDED' } });
    const result = readJson(join(runsDir(W, 'c3'), 'run-result.json'));
    expect(result.error.code).toBe('BUDGET_EXCEEDED');
    expectSchema('run-result', result, 'run-result.json of a failed run');
    for (const e of history(W, 'c3')) expectSchema('history-event', e, `c3 history line ${e.seq} (${e.type})`);
    // A FAILED contract: status and show carry the last run (reason, failed step) and the next commands.
    expect(check('output-status', W, ['status', 'c3']).last_run).toMatchObject({ status: 'FAILED', reason: { code: 'BUDGET_EXCEEDED' } });
    expect(check('output-show', W, ['show', 'c3']).last_run.status).toBe('FAILED');
  });
});

describe('config, access apply, unrequire, close, doctor', () => {
  it('each prints its published document', () => {
    expect(check('output-config-get', W, ['config', 'get', 'approvals.min'], 0).value).toBe(1);
    expect(check('output-config-set', W, ['config', 'set', 'kimi.max_cost_usd_per_contract', '90'], 0).value).toBe(90);
    expect(check('output-access-apply', W, ['access', 'apply', '--file', join(ROOT, 'fixtures', 'access', 'policy.json'), '--dry-run'], 0).dry_run).toBe(true);
    bring(W, 'cu', 'DRAFT');
    expect(check('output-unrequire', W, ['unrequire', 'cu', 'local:read'], 0).removed).toEqual([]);
    expect(check('output-close', W, ['close', 'cu', 'not needed'], 0).recorded).toBe(true);
    const doc = check('output-doctor', W, ['doctor'], 0);
    expect(doc.findings.length).toBeGreaterThan(5);
  });
});

describe('error documents: {ok: false, error: {code, message, details}}', () => {
  const cases: [string, string[], number, string][] = [
    ['an unknown contract', ['status', 'nope'], 4, 'CONTRACT_NOT_FOUND'],
    ['a bad id', ['propose', 'x', '--id', 'Bad'], 2, 'INVALID_ID'],
    ['an unknown flag', ['list', '--frob'], 2, 'USAGE_ERROR'],
    ['an invalid plan (details.problems)', ['plan', 'c1', '--file', fixture('invalid-many.json')], 2, 'PLAN_INVALID'],
    ['a refused transition', ['accept', 'c1'], 3, 'INVALID_TRANSITION'],
    ['an unknown simulation', ['sim', 'show', 'nope'], 4, 'SIMULATION_NOT_FOUND'],
  ];
  it.each(cases)('%s', (_name, args, exit, code) => {
    expect(check('output-error', W, args, exit).error.code).toBe(code);
  });

  it('no workspace', () => {
    expect(check('output-error', makeTempDir(), ['list'], 4).error.code).toBe('WORKSPACE_NOT_FOUND');
  });

  it('a refused run (nothing to execute) is a plain error document', () => {
    bring(W, 'c4', 'APPROVED', 'reuse-only.json');
    expect(check('output-error', W, ['run', 'c4'], 3).error.code).toBe('NO_EXECUTION_REQUIRED');
  });

  it('verify finding problems prints {ok: false, problems, warnings, error} (exit 7)', () => {
    const ws = cloneWorkspace(W);
    const file = historyFile(ws, 'c1');
    const lines = readFileSync(file, 'utf8').split('\n');
    const ev = JSON.parse(lines[1]!);
    ev.actor = 'mallory';
    lines[1] = JSON.stringify(ev);
    writeFileSync(file, lines.join('\n'));
    const d = check('output-verify', ws, ['verify'], 7);
    expect(d.error.code).toBe('INTEGRITY_FAILED');
  });
});

describe('unlock', () => {
  it('nothing to remove, a remote holder removed (with the contract), and its unlock history event', () => {
    const ws = makeWorkspace();
    bring(ws, 'u1', 'DRAFT');
    expect(check('output-unlock', ws, ['unlock', '--index', '--force'])).toEqual({ ok: true, lock: '_index', removed: null });
    const lock = join(ws, '.kair', 'locks', 'contract-u1.lock');
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'holder.json'), JSON.stringify({ host: 'elsewhere', boot_id: null, pid: 4242, pid_start: null, actor: 'bob', command: 'run', since: 't' }));
    expect(check('output-unlock', ws, ['unlock', 'u1', '--force']).contract.id).toBe('u1');
    expectSchema('history-event', history(ws, 'u1').at(-1), 'the unlock event');
  });
});

describe('AEC admin: sim, access, find', () => {
  const SIMS = join(ROOT, 'fixtures', 'simulations');
  let A: string;

  beforeAll(() => {
    A = makeWorkspace();
  });

  it('the simulation fixtures are valid definitions', () => {
    const files = readdirSync(SIMS).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expectSchema('simulation', readJson(join(SIMS, f)), `fixtures/simulations/${f}`);
  });

  it('sim register, list, show, activate, deprecate, disable', () => {
    for (const f of readdirSync(SIMS)) check('output-sim-show', A, ['sim', 'register', '--file', join(SIMS, f)]);
    expect(check('output-sim-list', A, ['sim', 'list']).simulations.length).toBe(readdirSync(SIMS).length);
    check('output-sim-show', A, ['sim', 'show', 'append-line']);
    const changes: [string, string][] = [['activate', 'send-invoice'], ['activate', 'ping'], ['deprecate', 'void-invoice'], ['disable', 'append-line']];
    for (const [verb, id] of changes) expect(check('output-sim-show', A, ['sim', verb, id]).simulation.id).toBe(id);
    expect(check('output-sim-log', A, ['sim', 'log', 'send-invoice']).entries.map((e: Json) => e.action)).toEqual(['register', 'activate']);
  });

  it('access rules of fixtures/access/policy.json, then access list', () => {
    const policy = readJson(join(ROOT, 'fixtures', 'access', 'policy.json')) as { rules: { actor: string; action: string; decision: string }[] };
    for (const r of policy.rules) check('output-access-rule', A, ['access', r.decision, r.actor, r.action]);
    expect(check('output-access-list', A, ['access', 'list']).rules).toHaveLength(policy.rules.length);
    expect(check('output-access-log', A, ['access', 'log']).entries).toHaveLength(policy.rules.length);
  });

  it('find: every packet type', () => {
    const packets: [string[], string][] = [
      [['find', 'send invoice', '--field', 'customer=acme', '--field', 'amount=120'], 'SimulationMatchPacket'],
      [['find', 'send invoice', '--field', 'customer=acme'], 'ClarifyPacket'],
      [['find', 'send invoice', '--field', 'customer=acme', '--attempt', '3'], 'RefusePacket'],
      [['find', 'void the invoice', '--field', 'customer=acme'], 'RefusePacket'],
      [['find', 'something unrelated', '--lang', 'fr'], 'MissingSimulationPacket'],
    ];
    for (const [args, type] of packets) expect(check('output-find', A, args).packet.type, args.join(' ')).toBe(type);
  });
});

describe('the AEC lane: run steps, ledger, intake, rebuild, replay, stats', () => {
  it('every AEC --json document and the run result of a dispatched, a paused and a missing step', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['send-invoice', 'void-invoice', 'ping']);
    for (const action of ['invoice:send', 'system:ping']) kj(ws, ['access', 'allow', 'tester', action]);
    approveContract(
      ws,
      'a1',
      simPlan([
        { id: 'ping-it', utterance: 'ping' },
        { id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } },
        { id: 'nowhere', utterance: 'launch the rocket' },
      ]),
    );
    expect(check('output-run', ws, ['run', 'a1'], 3).error.code).toBe('AEC_CONFIRM_REQUIRED');
    const resumed = check('output-run', ws, ['resume', 'a1', '--confirm', 'yes'], 3);
    expect(resumed.steps.map((x: Json) => x.reason_code)).toEqual(['AEC_DISPATCH_OK', 'AEC_DISPATCH_OK', 'SIM_FINDER_MISSING_SIMULATION']);
    expectSchema('run-result', readJson(join(runsDir(ws, 'a1'), 'a1-run-1', 'run-result.json')), 'run-result.json of an AEC run');
    expect(check('output-aec-ledger', ws, ['aec', 'ledger', 'a1']).rows.length).toBeGreaterThan(3);
    expect(check('output-intake-list', ws, ['intake', 'list']).intake).toHaveLength(1);
    expect(check('output-aec-rebuild', ws, ['aec', 'rebuild', '--check']).drift_count).toBe(0);
    check('output-aec-rebuild', ws, ['aec', 'rebuild']);
    expect(check('output-aec-replay', ws, ['aec', 'replay', 'a1-run-1']).decisions.length).toBeGreaterThan(0);
    expect(check('output-aec-stats', ws, ['aec', 'stats']).stats.dispatches).toBe(2);
    expect(check('output-aec-stats-check', ws, ['aec', 'stats', '--check']).breaches).toEqual([]);
    editConfig(ws, (c) => (c.slo = { dispatch_p95_ms: 0 }));
    expect(check('output-aec-stats-check', ws, ['aec', 'stats', '--check'], 3).error.code).toBe('SLO_BREACHED');
    expect(check('output-aec-waiver', ws, ['aec', 'waiver', 'add', '--until', '2026-02-01T00:00:00Z', '--reason', 'schema test']).waiver.id).toBe('waiver-1');
    expect(check('output-aec-stats-check', ws, ['aec', 'stats', '--check']).waiver.id).toBe('waiver-1');
    expect(check('output-aec-waiver-list', ws, ['aec', 'waiver', 'list']).waivers).toHaveLength(1);
    const db = new Database(join(ws, '.kair', 'kair.db'));
    db.prepare("UPDATE agent_execution_current SET status = 'FAILED' WHERE step_id = 'send'").run();
    db.close();
    expect(check('output-aec-rebuild', ws, ['aec', 'rebuild', '--check'], 7).drift[0].kind).toBe('different');
  });
});

describe('rollback', () => {
  it('the rollback document and its history events', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['send-invoice', 'void-invoice']);
    for (const action of ['invoice:send', 'invoice:void']) kj(ws, ['access', 'allow', 'tester', action]);
    approveContract(ws, 'r1', simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]));
    expect(doc(ws, ['run', 'r1', '--confirm', 'yes']).status).toBe('COMPLETED');
    expect(check('output-rollback', ws, ['rollback', 'r1-run-1']).steps).toHaveLength(1);
    for (const e of history(ws, 'r1').filter((x) => x.type.startsWith('rollback.'))) expectSchema('history-event', e, `the ${e.type} event`);
  });
});

describe('artifacts --out, export, import', () => {
  it('their documents', () => {
    const ws = makeWorkspace();
    doc(ws, ['propose', 'Ship it', '--id', 'c1']);
    const out = makeTempDir();
    expect(check('output-artifacts-out', ws, ['artifacts', 'c1', '--out', makeTempDir()]).written).toBeGreaterThan(0);
    expect(check('output-export', ws, ['export', '--to', out]).contracts).toBe(1);
    expect(check('output-import', makeWorkspace(), ['import', '--from', out]).contracts).toBe(1);
  });
});

describe('coverage and isolation', () => {
  it('every published schema was checked against real output above', () => {
    expect([...checked].sort()).toEqual(Object.keys(PUBLISHED_SCHEMAS).sort());
  });

  it('the CLI bundles never include the published schemas, and the read bundle has no zod', () => {
    const read = readFileSync(BUNDLE, 'utf8');
    const cmd = readFileSync(join(BUNDLE, '..', 'kair-cmd.cjs'), 'utf8');
    // esbuild marks each bundled module with a `// src/…` line; without them this test would prove nothing.
    expect(cmd).toContain('// src/domain/plan.ts');
    for (const text of [read, cmd]) {
      expect(text).not.toContain('// src/domain/output-schemas.ts');
      expect(text).not.toContain('// src/domain/schemas.ts');
    }
    expect(read).not.toContain('node_modules/zod/');
  });
});
