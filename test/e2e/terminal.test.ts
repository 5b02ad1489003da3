/**
 * Terminal behaviour that needs a real TTY (SPEC §3, issue 6): a progress line on stderr during a
 * multi-step run only on a terminal, and the confirmation prompt of an impactful step. The TTY
 * comes from util-linux `script`, which runs the command under a pseudo-terminal.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ALICE, approveContract, ledgerRows, setUpCatalog, simPlan } from '../helpers/aec.js';
import { BIN, baseEnv, kair, makeWorkspace, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs kair under a pseudo-terminal; `input` is typed at it. Returns everything the terminal showed. */
function onTty(ws: string, args: string[], input = '', env: Record<string, string | undefined> = {}): { code: number; screen: string } {
  const cmd = [process.execPath, BIN, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: ws, env: baseEnv({ ...ALICE, CI: undefined, KAIR_NO_INPUT: undefined, ...env }), input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, screen: r.stdout };
}

describe.skipIf(!hasScript)('on a terminal', () => {
  it('a multi-step run shows a progress line on stderr, cleared at the end; off a TTY there is none', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['ping']);
    const plan = simPlan([{ id: 'first', manual: true }, { id: 'ping-it', utterance: 'ping' }, { id: 'last', manual: true }]);
    approveContract(ws, 'p', plan);
    approveContract(ws, 'q', plan);
    const tty = onTty(ws, ['run', 'p']);
    expect(tty.code, tty.screen).toBe(0);
    expect(tty.screen).toContain('p-run-1 [1/3] first (manual)…');
    expect(tty.screen).toContain('p-run-1 [2/3] ping-it (aec)…');
    expect(tty.screen).toContain('p-run-1 [3/3] last (manual)…');
    expect(tty.screen).toContain('\r\x1b[K');

    const piped = kair(ws, ['run', 'q'], { env: ALICE });
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).not.toContain('[1/3]');
  });

  it('--quiet shows no progress line', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['ping']);
    approveContract(ws, 'p', simPlan([{ id: 'a', manual: true }, { id: 'b', utterance: 'ping' }]));
    const tty = onTty(ws, ['run', 'p', '-q']);
    expect(tty.code, tty.screen).toBe(0);
    expect(tty.screen).not.toContain('[1/2]');
  });

  it('an impactful step asks on the terminal; the answer is parsed with the lexicon and recorded as a prompt', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['send-invoice', 'void-invoice']);
    const plan = simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]);
    approveContract(ws, 'yes', plan);
    const r = onTty(ws, ['run', 'yes'], 'yes\n');
    expect(r.screen).toMatch(/Step send runs "Send an invoice" \(send-invoice, impactful\) with customer=acme, amount=120\. Confirm\? \[yes \| confirm \| i confirm \/ no \| cancel\]/);
    expect(r.code, r.screen).toBe(0);
    const confirmations = ledgerRows(ws, "event = 'CLAIMED'");
    expect(confirmations).toHaveLength(1);
    expect(confirmations[0].confirmation_proof_ref).toBe('confirm_parse:kair.confirm.v1:en:yes:affirmative');

    approveContract(ws, 'maybe', plan);
    const ambiguous = onTty(ws, ['run', 'maybe'], 'okay\n');
    expect(ambiguous.code, ambiguous.screen).toBe(3);
    expect(ambiguous.screen).toContain('AEC_CONFIRM_AMBIGUOUS_REJECTED');
  });

  it('Enter alone asks again (it is no answer) until a real answer comes', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['send-invoice', 'void-invoice']);
    approveContract(ws, 'c', simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]));
    const r = onTty(ws, ['run', 'c'], '\n\nyes\n');
    expect(r.code, r.screen).toBe(0);
    expect(r.screen.match(/Confirm\?/g)).toHaveLength(3);
    expect(ledgerRows(ws, "event = 'CLAIMED'")[0].confirmation_proof_ref).toBe('confirm_parse:kair.confirm.v1:en:yes:affirmative');
  });

  it('never prompts with --json, --no-input, KAIR_NO_INPUT=1 or CI=true; CI=false/0/empty still prompt', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['send-invoice', 'void-invoice']);
    const plan = simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]);
    const cases: [string, string[], Record<string, string>][] = [
      ['json', ['--json'], {}],
      ['noinput', ['--no-input'], {}],
      ['envnoinput', [], { KAIR_NO_INPUT: '1' }],
      ['citrue', [], { CI: 'true' }],
      ['ci1', [], { CI: '1' }],
    ];
    for (const [id, flags, env] of cases) {
      approveContract(ws, id, plan);
      const r = onTty(ws, ['run', id, ...flags], 'yes\n', env);
      expect(r.screen, id).not.toContain('Confirm?');
      expect(r.code, id).toBe(3);
      expect(r.screen, id).toContain('AEC_CONFIRM_REQUIRED');
    }
    for (const ci of ['false', '0', '']) {
      const id = `ci-off-${ci || 'empty'}`;
      approveContract(ws, id, plan);
      const r = onTty(ws, ['run', id], 'yes\n', { CI: ci });
      expect(r.screen, id).toContain('Confirm?');
      expect(r.code, id).toBe(0);
    }
  });
});

describe('off a terminal', () => {
  it('never prompts: an impactful step without --confirm pauses with AEC_CONFIRM_REQUIRED naming the flag', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['send-invoice', 'void-invoice']);
    approveContract(ws, 'c', simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '120' } }]));
    const r = kair(ws, ['run', 'c', '--json'], { env: ALICE, input: 'yes\n' });
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('AEC_CONFIRM_REQUIRED');
    expect(r.json.error.message).toContain('--confirm');
    expect(r.stderr).toBe('');
  });
});
