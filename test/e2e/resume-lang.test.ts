/**
 * `--lang` at `resume`. With `--confirm`, the pair is an answer: an unknown language is recorded
 * on the confirmation ledger as an ambiguous answer (the acceptance test AT-AGENT-10 requires
 * it), and the refusal names the unknown language and the known ones. Without `--confirm` there
 * is nothing to record, so an unknown `--lang` is USAGE_ERROR (exit 2, nothing written), as at
 * `run` and `find`.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneWorkspace, historyFile, kair, kj, makeWorkspace, removeWorkspaces } from '../helpers/cli.js';
import { approveContract, asAlice, setUpCatalog, simPlan, tableRows } from '../helpers/aec.js';

afterAll(removeWorkspaces);

let paused: string;
beforeAll(() => {
  paused = makeWorkspace();
  setUpCatalog(paused, ['send-invoice', 'void-invoice']);
  approveContract(paused, 'inv', simPlan([{ id: 'send', utterance: 'send invoice', fields: { customer: 'acme', amount: '10' }, lang: 'en' }]));
  expect(kj(paused, ['run', 'inv'], asAlice).json.error.code).toBe('AEC_CONFIRM_REQUIRED');
});

describe('resume --lang', () => {
  it('without --confirm (alone or with --confirm-all) an unknown --lang is USAGE_ERROR naming the flag; nothing is written', () => {
    const ws = cloneWorkspace(paused);
    const before = readFileSync(historyFile(ws, 'inv'), 'utf8');
    for (const extra of [[], ['--confirm-all', 'yes']]) {
      const r = kj(ws, ['resume', 'inv', '--lang', 'xx', ...extra], asAlice);
      expect(r.code, r.stdout).toBe(2);
      expect(r.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--lang', languages: ['en', 'es', 'fr', 'de', 'pt', 'zh', 'ja'] } });
    }
    expect(readFileSync(historyFile(ws, 'inv'), 'utf8')).toBe(before);
    expect(tableRows(ws, 'agent_execution_confirmation_ledger')).toEqual([]);
  });

  it('with --confirm the answer is recorded as ambiguous and the refusal names the unknown language, in text and --json', () => {
    const ws = cloneWorkspace(paused);
    const r = kj(ws, ['resume', 'inv', '--confirm', 'yes', '--lang', 'xx'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json.state).toBe('PAUSED');
    expect(r.json.error.code).toBe('AEC_CONFIRM_AMBIGUOUS_REJECTED');
    expect(r.json.error.message).toContain('--lang "xx" is not a language of the confirmation lexicon');
    expect(r.json.error.details).toMatchObject({ flag: '--lang', lang: 'xx' });
    expect(r.json.error.details.hint).toContain('kair resume inv --confirm yes --lang en');
    expect(tableRows(ws, 'agent_execution_confirmation_ledger').map((x) => [x.token, x.lang, x.result])).toEqual([['yes', 'xx', 'ambiguous']]);

    const t = kair(ws, ['resume', 'inv', '--confirm', 'yes', '--lang', 'xx'], asAlice);
    expect(t.code).toBe(3);
    expect(t.stderr).toMatch(/is not a language of the confirmation lexicon \(one of en, es, fr, de, pt, zh, ja\)/);
    expect(t.stderr).toMatch(/^hint: answer again in a language of the lexicon/m);
    // A known language still works afterwards.
    expect(kj(ws, ['resume', 'inv', '--confirm', 'yes', '--lang', 'EN'], asAlice).code).toBe(0);
  });

  it('an ambiguous answer in a known language is not blamed on --lang', () => {
    const ws = cloneWorkspace(paused);
    const r = kj(ws, ['resume', 'inv', '--confirm', 'ok', '--lang', 'en'], asAlice);
    expect(r.json.error.code).toBe('AEC_CONFIRM_AMBIGUOUS_REJECTED');
    expect(r.json.error.message).not.toContain('--lang');
  });
});
