/**
 * `kair rollback`, like `kair run`: a confirmation prompt on a terminal (the same question and
 * rules as run's: accepted answers listed, Enter asks again, never with --json, --no-input or
 * CI), a `--dry-run` that pre-checks every gate of every step and writes nothing, and the fields
 * of each rollback = the step's fields overlaid with the outputs its command reported through
 * KAIR_OUTPUT (e.g. the id of the invoice it created, which the rollback voids).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PUBLISHED_SCHEMAS } from '../../src/domain/schemas.js';
import { ALICE, approveContract, asAlice, catalogWorkspace, ledgerRows, openLedger, registerSimulation, simPlan, tableRows, fingerprint } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { BIN, baseEnv, cloneWorkspace, editConfig, history, kair, kj, makeTempDir, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

function expectSchema(name: string, d: unknown): void {
  const r = PUBLISHED_SCHEMAS[name]!.safeParse(d);
  expect(r.success, r.success ? '' : `${JSON.stringify(r.error.issues)}\n${JSON.stringify(d)}`).toBe(true);
}

const lines = (file: string): string[] => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

/** A node one-liner appending its arguments, space-separated, as one line of `file`. */
const appendArgs = (file: string, ...args: string[]) => ['node', '-e', "require('fs').appendFileSync(process.argv[1], process.argv.slice(2).join(' ') + '\\n')", file, ...args];

/**
 * Contract `two` ran two steps (`a` bills acme, `b` bills beta); each step's rollback `unbill`
 * is a side-effecting command appending the customer to `log`: one line per rollback effect.
 */
function twoStepRun(log: string): string {
  const ws = catalogWorkspace();
  registerSimulation(ws, { id: 'unbill', title: 'Unbill a customer', examples: ['unbill customer'], required_fields: ['customer'], impact: 'impactful', rollback_simulation_id: 'void-invoice', access_action: 'bill:undo', executor: { kind: 'command', argv: appendArgs(log, '{customer}'), timeout_ms: 20_000 } }, { allow: 'alice' });
  registerSimulation(ws, { id: 'bill', title: 'Bill a customer', examples: ['bill customer'], required_fields: ['customer'], impact: 'impactful', rollback_simulation_id: 'unbill', access_action: 'invoice:send', executor: { kind: 'builtin', name: 'echo' } });
  approveContract(ws, 'two', simPlan([{ id: 'a', utterance: 'bill customer', fields: { customer: 'acme' } }, { id: 'b', utterance: 'bill customer', fields: { customer: 'beta' } }]), { requires: ['local:exec'], grant: ['local:exec'] });
  const r = kj(ws, ['run', 'two', '--confirm-all', 'yes'], asAlice);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return ws;
}

const rollbackRows = (ws: string) => ledgerRows(ws, "step_id LIKE 'rollback:%'");

describe('rollback --dry-run', () => {
  it('pre-checks every gate of every step, prints what would be dispatched and exits like the real rollback, writing nothing', () => {
    const log = join(makeTempDir('kair-rb-'), 'unbill.log');
    const ws = twoStepRun(log);
    const twin = cloneWorkspace(ws);

    // Unanswered confirmations: exit 3 like the real rollback, every step evaluated.
    let before = fingerprint(ws);
    const dry = kj(ws, ['rollback', 'two-run-1', '--dry-run'], asAlice);
    expect(fingerprint(ws)).toEqual(before);
    expect(dry.code, dry.stdout + dry.stderr).toBe(3);
    expectSchema('output-rollback', dry.json);
    expect(dry.json).toMatchObject({ dry_run: true, contract_id: 'two', run_id: 'two-run-1', error: { code: 'AEC_CONFIRM_REQUIRED', details: { dry_run: true, step_id: 'b', hint: 'kair rollback two-run-1 --confirm yes' } } });
    expect(dry.json.steps.map((s: Json) => [s.step_id, s.rollback_simulation_id, s.status, s.reason_code, s.after_confirmation, s.fields])).toEqual([
      ['b', 'unbill', 'needs_confirmation', 'AEC_CONFIRM_REQUIRED', 'AEC_DISPATCH_OK', { customer: 'beta' }],
      ['a', 'unbill', 'needs_confirmation', 'AEC_CONFIRM_REQUIRED', 'AEC_DISPATCH_OK', { customer: 'acme' }],
    ]);
    const real = kj(twin, ['rollback', 'two-run-1'], asAlice);
    expect([real.code, real.json.error.code]).toEqual([dry.code, dry.json.error.code]);

    // With the answer: exit 0, the plan of both dispatches, still nothing written or run.
    before = fingerprint(ws);
    const yes = kj(ws, ['rollback', 'two-run-1', '--dry-run', '--confirm', 'yes'], asAlice);
    expect(fingerprint(ws)).toEqual(before);
    expect(yes.code, yes.stdout + yes.stderr).toBe(0);
    expectSchema('output-rollback', yes.json);
    expect(yes.json.steps.map((s: Json) => [s.step_id, s.status, s.reason_code])).toEqual([
      ['b', 'ok', 'AEC_DISPATCH_OK'],
      ['a', 'ok', 'AEC_DISPATCH_OK'],
    ]);
    expect(lines(log)).toEqual([]);
    expect(rollbackRows(ws)).toEqual([]);
    // The keys it prints are the keys the real rollback uses.
    const done = kj(ws, ['rollback', 'two-run-1', '--confirm', 'yes'], asAlice);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.json.steps.map((s: Json) => s.idempotency_key)).toEqual(yes.json.steps.map((s: Json) => s.idempotency_key));
    expect(lines(log)).toEqual(['beta', 'acme']);

    // After the rollback: a dry run predicts replays.
    before = fingerprint(ws);
    const again = kj(ws, ['rollback', 'two-run-1', '--dry-run'], asAlice);
    expect(fingerprint(ws)).toEqual(before);
    expect(again.code).toBe(0);
    expect(again.json.steps.map((s: Json) => s.status)).toEqual(['replay', 'replay']);

    // Text: every step on stdout, the first stop on stderr with what to do next.
    const text = kair(twin, ['rollback', 'two-run-1', '--dry-run'], asAlice);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/b\s+unbill\s+needs_confirmation\s+AEC_CONFIRM_REQUIRED \(then AEC_DISPATCH_OK\)\s+customer=beta/);
    expect(text.stderr).toContain('hint: kair rollback two-run-1 --confirm yes');
  });

  it('refusals are predicted with their exit code and without the gate.blocked event the real refusal records', () => {
    const log = join(makeTempDir('kair-rb-'), 'unbill.log');
    const ws = twoStepRun(log);
    const events = history(ws, 'two').length;

    // A step whose rollback is refused by access: the other step is still evaluated.
    ok3(ws, ['rollback', 'two-run-1', '--dry-run', '--confirm', 'yes', '--actor', 'bob'], (d) => {
      expect(d.json.error.code).toBe('ACCESS_SCOPE_VIOLATION');
      expect(d.json.steps.map((s: Json) => [s.step_id, s.status, s.reason_code])).toEqual([
        ['b', 'refused', 'ACCESS_SCOPE_VIOLATION'],
        ['a', 'refused', 'ACCESS_SCOPE_VIOLATION'],
      ]);
    });
    editConfig(ws, (c) => {
      c.run = { allowed_actors: ['alice'] };
    });
    ok3(ws, ['rollback', 'two-run-1', '--dry-run', '--confirm', 'yes', '--actor', 'mallory'], (d) => expect(d.json.error.code).toBe('NOT_OWNER'));
    expect(history(ws, 'two')).toHaveLength(events);

    const maybe = kj(ws, ['rollback', 'two-run-1', '--dry-run', '--confirm', 'maybe'], asAlice);
    expect([maybe.code, maybe.json.error.code, maybe.json.error.details.flag]).toEqual([2, 'USAGE_ERROR', '--confirm']);

    // A succeeded step without a rollback simulation: ROLLBACK_UNAVAILABLE, the others still shown.
    const ws2 = catalogWorkspace();
    approveContract(ws2, 'chat', simPlan([{ id: 'send-invoice', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }, { id: 'ping', utterance: 'ping' }]));
    expect(kj(ws2, ['run', 'chat', '--confirm', 'yes'], asAlice).code).toBe(0);
    const before = fingerprint(ws2);
    const d = kj(ws2, ['rollback', 'chat-run-1', '--dry-run'], asAlice);
    expect(fingerprint(ws2)).toEqual(before);
    expect([d.code, d.json.error.code]).toEqual([3, 'ROLLBACK_UNAVAILABLE']);
    expectSchema('output-rollback', d.json);
    expect(d.json.steps.map((s: Json) => [s.step_id, s.rollback_simulation_id, s.status, s.reason_code])).toEqual([
      ['ping', '', 'refused', 'ROLLBACK_UNAVAILABLE'],
      ['send-invoice', 'void-invoice', 'ok', 'AEC_DISPATCH_OK'],
    ]);
  });
});

describe('rollback --dry-run, the order of refusals', () => {
  it('the first stop is the one the real rollback meets: a missing field of a later step before an access refusal of an earlier one', () => {
    const ws = catalogWorkspace();
    registerSimulation(ws, { id: 'void-by-id', title: 'Void by id', examples: ['void by id'], required_fields: ['invoice_id', 'customer'], impact: 'none', access_action: 'invoice:void', executor: { kind: 'builtin', name: 'echo' } });
    registerSimulation(ws, { id: 'make', title: 'Make an invoice', examples: ['make an invoice'], required_fields: ['customer'], impact: 'impactful', rollback_simulation_id: 'void-by-id', access_action: 'invoice:send', executor: { kind: 'builtin', name: 'echo' } });
    approveContract(ws, 'ord', simPlan([{ id: 'x', utterance: 'make an invoice', fields: { customer: 'acme' } }, { id: 'y', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]));
    expect(kj(ws, ['run', 'ord', '--confirm-all', 'yes'], asAlice).code).toBe(0);
    const twin = cloneWorkspace(ws);
    // Rolled back in the order y, x: bob may not void (y), and x's rollback needs invoice_id.
    const before = fingerprint(ws);
    const d = kj(ws, ['rollback', 'ord-run-1', '--dry-run', '--confirm', 'yes', '--actor', 'bob']);
    expect(fingerprint(ws)).toEqual(before);
    expect(d.json.steps.map((s: Json) => [s.step_id, s.status, s.reason_code])).toEqual([
      ['y', 'refused', 'ACCESS_SCOPE_VIOLATION'],
      ['x', 'refused', 'ROLLBACK_UNAVAILABLE'],
    ]);
    const real = kj(twin, ['rollback', 'ord-run-1', '--confirm', 'yes', '--actor', 'bob']);
    expect([real.code, real.json.error.code]).toEqual([3, 'ROLLBACK_UNAVAILABLE']);
    expect([d.code, d.json.error.code, d.json.error.details.steps]).toEqual([3, 'ROLLBACK_UNAVAILABLE', real.json.error.details.steps]);
  });
});

function ok3(ws: string, args: string[], check: (d: { code: number; json: Json }) => void): void {
  const before = fingerprint(ws);
  const d = kj(ws, args);
  expect(fingerprint(ws)).toEqual(before);
  expect(d.code, d.stdout + d.stderr).toBe(3);
  // A refusal before any step is looked at (the actor) is a plain error document.
  expectSchema(d.json.steps ? 'output-rollback' : 'output-error', d.json);
  check(d);
}

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs kair under a pseudo-terminal (util-linux `script`); `input` is typed at it. */
function onTty(ws: string, args: string[], input = '', env: Record<string, string | undefined> = {}): { code: number; screen: string } {
  const cmd = [process.execPath, BIN, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: ws, env: baseEnv({ ...ALICE, CI: undefined, KAIR_NO_INPUT: undefined, ...env }), input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, screen: r.stdout };
}

const QUESTION = /Step rollback:(a|b) runs "Unbill a customer" \(unbill, impactful\) with customer=(acme|beta)\. Confirm\? \[yes \| confirm \| i confirm \/ no \| cancel\]/g;

describe.skipIf(!hasScript)('rollback on a terminal', () => {
  it('asks each question before anything is dispatched, listing the answers; Enter asks again; the answers are recorded as prompts', () => {
    const log = join(makeTempDir('kair-rb-'), 'unbill.log');
    const ws = twoStepRun(log);
    const r = onTty(ws, ['rollback', 'two-run-1'], '\nyes\n\nyes\n');
    expect(r.code, r.screen).toBe(0);
    expect([...r.screen.matchAll(QUESTION)].map((m) => `${m[1]} ${m[2]}`)).toEqual(['b beta', 'b beta', 'a acme', 'a acme']);
    expect(lines(log)).toEqual(['beta', 'acme']);
    const answers = tableRows(ws, 'agent_execution_confirmation_ledger', "step_id LIKE 'rollback:%'");
    expect(answers.map((c) => [c.step_id, c.result, c.source])).toEqual([
      ['rollback:b', 'affirmative', 'prompt'],
      ['rollback:a', 'affirmative', 'prompt'],
    ]);
  });

  it('"no" to the first question refuses the whole rollback at once: no second question, nothing dispatched', () => {
    const log = join(makeTempDir('kair-rb-'), 'unbill.log');
    const ws = twoStepRun(log);
    const r = onTty(ws, ['rollback', 'two-run-1'], 'no\nyes\n');
    expect(r.code, r.screen).toBe(3);
    expect([...r.screen.matchAll(QUESTION)]).toHaveLength(1);
    expect(r.screen).toContain('AEC_CONFIRM_DECLINED');
    expect(lines(log)).toEqual([]);
    expect(rollbackRows(ws)).toEqual([]);
    expect(history(ws, 'two').at(-1)).toMatchObject({ type: 'gate.blocked', data: { command: 'rollback', code: 'AEC_CONFIRM_DECLINED' } });
  });

  it('never asks with --json, --no-input, KAIR_NO_INPUT=1 or CI=true, nor with --confirm; nor when the rollback would be refused anyway', () => {
    const log = join(makeTempDir('kair-rb-'), 'unbill.log');
    const ws = twoStepRun(log);
    for (const [flags, env] of [[['--json'], {}], [['--no-input'], {}], [[], { KAIR_NO_INPUT: '1' }], [[], { CI: 'true' }]] as [string[], Record<string, string>][]) {
      const r = onTty(ws, ['rollback', 'two-run-1', ...flags], 'yes\nyes\n', env);
      expect(r.screen, flags.join(' ')).not.toContain('Confirm?');
      expect(r.code).toBe(3);
      expect(r.screen).toContain('AEC_CONFIRM_REQUIRED');
    }
    // bob has no rule for bill:undo: refused whatever he answers, so no question is worth asking.
    const bob = onTty(ws, ['rollback', 'two-run-1', '--actor', 'bob'], 'yes\nyes\n');
    expect(bob.screen).not.toContain('Confirm?');
    expect(bob.code).toBe(3);
    expect(lines(log)).toEqual([]);
    const answered = onTty(ws, ['rollback', 'two-run-1', '--confirm', 'yes'], '');
    expect(answered.code, answered.screen).toBe(0);
    expect(answered.screen).not.toContain('Confirm?');
    expect(lines(log)).toEqual(['beta', 'acme']);
  });
});

/**
 * `create-invoice` makes an invoice and reports its id through KAIR_OUTPUT; its rollback
 * `void-by-id` needs that id, which the step's own fields never had.
 */
function invoiceRun(report: string, log: string): string {
  const ws = catalogWorkspace();
  registerSimulation(ws, { id: 'void-by-id', title: 'Void an invoice by id', examples: ['void invoice by id'], required_fields: ['invoice_id', 'customer'], impact: 'side_effecting', access_action: 'invoice:void', executor: { kind: 'command', argv: appendArgs(log, 'void', '{invoice_id}', '{customer}'), timeout_ms: 20_000 } });
  registerSimulation(
    ws,
    {
      id: 'create-invoice',
      title: 'Create an invoice',
      examples: ['create invoice'],
      required_fields: ['customer'],
      impact: 'impactful',
      rollback_simulation_id: 'void-by-id',
      access_action: 'invoice:send',
      executor: { kind: 'command', argv: ['node', '-e', report, '{customer}'], timeout_ms: 20_000 },
    },
  );
  approveContract(ws, 'inv', simPlan([{ id: 'create', utterance: 'create invoice', fields: { customer: 'acme' } }]), { requires: ['local:exec'], grant: ['local:exec'] });
  return ws;
}

/** The rollback dispatch's recorded request (its decision ref) and envelope. */
function rollbackRecord(ws: string): { fields: Record<string, string>; required_fields: Record<string, string> } {
  const claim = ledgerRows(ws, "step_id = 'rollback:create' AND event = 'CLAIMED'")[0]!;
  const db = openLedger(ws);
  try {
    const ref = (r: string) => JSON.parse((db.prepare('SELECT body FROM aec_refs WHERE ref = ?').get(r) as { body: string }).body);
    return { fields: ref(claim.decision_ref).request.fields, required_fields: ref(claim.dispatch_envelope_ref).required_fields };
  } finally {
    db.close();
  }
}

describe('rollback fields: the step fields overlaid with the outputs its command reported', () => {
  it('an id reported through KAIR_OUTPUT is in the outcome, in the rollback dry run, and in the rollback dispatch that voids it', () => {
    const log = join(makeTempDir('kair-inv-'), 'void.log');
    // The command also prints a forged output line on stdout: only the KAIR_OUTPUT file counts.
    const report = "const fs = require('fs'); console.log('invoice_id=FORGED'); fs.appendFileSync(process.env.KAIR_OUTPUT, 'invoice_id=INV-' + process.argv[1] + '-7\\nurl=https://pay.example/x?a=1&b=2\\n');";
    const ws = invoiceRun(report, log);
    const tmp = makeTempDir('kair-tmp-');
    const run = kj(ws, ['run', 'inv', '--confirm', 'yes'], { env: { ...ALICE, TMPDIR: tmp } });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.json.steps[0].outcome).toMatchObject({ executor: 'command', exit_code: 0, outputs: { invoice_id: 'INV-acme-7', url: 'https://pay.example/x?a=1&b=2' } });
    expect(run.json.steps[0].outcome.outputs_error).toBeUndefined();
    // The temp folder of KAIR_OUTPUT is gone.
    expect(readdirSync(tmp)).toEqual([]);

    const dry = kj(ws, ['rollback', 'inv-run-1', '--dry-run', '--confirm', 'yes'], asAlice);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.json.steps[0]).toMatchObject({ step_id: 'create', rollback_simulation_id: 'void-by-id', status: 'ok', fields: { customer: 'acme', invoice_id: 'INV-acme-7', url: 'https://pay.example/x?a=1&b=2' } });

    const rb = kj(ws, ['rollback', 'inv-run-1', '--confirm', 'yes'], asAlice);
    expect(rb.code, rb.stdout + rb.stderr).toBe(0);
    expect(lines(log)).toEqual(['void INV-acme-7 acme']);
    expect(rollbackRecord(ws)).toMatchObject({
      fields: { customer: 'acme', invoice_id: 'INV-acme-7', url: 'https://pay.example/x?a=1&b=2' },
      required_fields: { invoice_id: 'INV-acme-7', customer: 'acme' },
    });
    expect(kj(ws, ['aec', 'replay', 'inv-run-1']).code).toBe(0);
    expect(kj(ws, ['verify']).json.problems).toEqual([]);
  });

  it('a malformed or hostile KAIR_OUTPUT never fails the step that acted; its rollback then lacks the id (ROLLBACK_UNAVAILABLE), nothing dispatched', () => {
    // Every rule is unit-tested (test/unit/executor-outputs.test.ts); here two through the CLI.
    const cases: [string, string, RegExp][] = [
      ['duplicate', "require('fs').appendFileSync(process.env.KAIR_OUTPUT, 'invoice_id=A\\ninvoice_id=B\\n')", /invoice_id is given twice/],
      // A FIFO in place of the file: refused at once, never waited on.
      ['fifo', "const p = process.env.KAIR_OUTPUT; require('fs').rmSync(p); require('child_process').execFileSync('mkfifo', [p])", /not a regular file/],
    ];
    for (const [name, report, why] of cases) {
      const log = join(makeTempDir('kair-inv-'), 'void.log');
      const ws = invoiceRun(report, log);
      const run = kj(ws, ['run', 'inv', '--confirm', 'yes'], asAlice);
      expect(run.code, `${name}: ${run.stdout}${run.stderr}`).toBe(0);
      expect(run.json.steps[0].status, name).toBe('COMPLETED');
      expect(run.json.steps[0].outcome.outputs, name).toBeUndefined();
      expect(run.json.steps[0].outcome.outputs_error, name).toMatch(why);
      const rb = kj(ws, ['rollback', 'inv-run-1', '--confirm', 'yes'], asAlice);
      expect([rb.code, rb.json.error.code], name).toEqual([3, 'ROLLBACK_UNAVAILABLE']);
      expect(rb.json.error.details.steps[0].missing_fields, name).toEqual(['invoice_id']);
      expect(lines(log)).toEqual([]);
    }
  });
});
