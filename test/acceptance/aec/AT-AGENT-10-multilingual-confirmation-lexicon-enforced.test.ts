/**
 * Seed 001 §13 AT-AGENT-10, §7 (versioned per-language lexicon; only canonical affirmatives;
 * ambiguous acknowledgements rejected; the parse proof persisted with token and language); SPEC
 * §9.4 (NFKC, lowercase, trim, strip trailing `.!。！`, whole-utterance match in `--lang`, default
 * the step's `lang`, default `en`; unknown languages → ambiguous; negative → AEC_CONFIRM_DECLINED;
 * ambiguous → AEC_CONFIRM_AMBIGUOUS_REJECTED, PAUSED; a token answers only the first confirmation).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIRM_LEXICON, parseConfirmation } from '../../../src/domain/aec/confirm.js';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, kj, makeWorkspace, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, ledgerRows, setUpCatalog, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

const LANGS = ['en', 'es', 'fr', 'de', 'pt', 'zh', 'ja'] as const;
const invoice = (lang: string) => ({ id: `send-${lang}`, utterance: 'send invoice', fields: { customer: `cust-${lang}`, amount: '10' }, lang });

let base: string;

beforeAll(() => {
  base = makeWorkspace();
  setUpCatalog(base, ['send-invoice', 'void-invoice']);
});

type Expect = { code: 0 | 3; error?: string; paused_at?: string; completed?: string };

/** `kair resume lex --confirm TOKEN [--lang L]` and what it must do. */
function answer(ws: string, token: string, lang: string | null, e: Expect): Json {
  const r = kj(ws, ['resume', 'lex', '--confirm', token, ...(lang === null ? [] : ['--lang', lang])], asAlice);
  expect(r.code, `${token} [${lang}]: ${r.stdout}${r.stderr}`).toBe(e.code);
  if (e.error) expect(r.json.error.code, `${token} [${lang}]`).toBe(e.error);
  if (e.completed) expect(r.json.steps.find((s: Json) => s.id === e.completed)).toMatchObject({ status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK' });
  if (e.paused_at) {
    expect(r.json.state).toBe('PAUSED');
    expect(r.json.steps.find((s: Json) => s.status === 'PAUSED')?.id).toBe(e.paused_at);
  }
  return r.json;
}

describe('AT-AGENT-10-multilingual-confirmation-lexicon-enforced', () => {
  it('an affirmative of every language row dispatches (full-width, mixed case, trailing punctuation); ambiguous answers, unknown and wrong languages are rejected', () => {
    const ws = cloneWorkspace(base);
    // One impactful step per language; the fr step relies on its own `lang` (no --lang given).
    approveContract(ws, 'lex', simPlan(LANGS.map(invoice)));
    const first = kj(ws, ['run', 'lex'], asAlice);
    expect(first.code).toBe(3);
    expect(first.json.error.code).toBe('AEC_CONFIRM_REQUIRED');

    const AMB = { code: 3, error: 'AEC_CONFIRM_AMBIGUOUS_REJECTED' } as const;
    const next = (done: string, paused: string | null): Expect =>
      paused === null ? { code: 0, completed: `send-${done}` } : { code: 3, error: 'AEC_CONFIRM_REQUIRED', completed: `send-${done}`, paused_at: `send-${paused}` };

    const script: Array<[string, string | null, Expect, string]> = [
      // en: ambiguous acknowledgements, an unknown language, another language's affirmative.
      ['ok', 'en', { ...AMB, paused_at: 'send-en' }, 'ambiguous'],
      ['Maybe later.', 'en', { ...AMB, paused_at: 'send-en' }, 'ambiguous'],
      ['yes', 'xx', { ...AMB, paused_at: 'send-en' }, 'ambiguous'],
      ['oui', 'en', { ...AMB, paused_at: 'send-en' }, 'ambiguous'],
      ['ＹＥＳ', 'en', next('en', 'es'), 'affirmative'],
      ['vale', 'es', { ...AMB, paused_at: 'send-es' }, 'ambiguous'],
      ['Sí', 'es', next('es', 'fr'), 'affirmative'],
      ['Je Confirme.', null, next('fr', 'de'), 'affirmative'],
      ['JA!', 'DE', next('de', 'pt'), 'affirmative'],
      ['  Sim ', 'pt', next('pt', 'zh'), 'affirmative'],
      ['确认。', 'zh', next('zh', 'ja'), 'affirmative'],
      ['はい！', 'ja', next('ja', null), 'affirmative'],
    ];
    for (const [token, lang, e] of script) answer(ws, token, lang, e);

    expect(ok(ws, ['status', 'lex']).contract.state).toBe('COMPLETED');
    expect(ledgerRows(ws, "contract_id = 'lex' AND event = 'SUCCEEDED'").map((x) => x.step_id)).toEqual(LANGS.map((l) => `send-${l}`));

    // Every answer is on the confirmation ledger with its language, the token as given, and the proof.
    const rows = tableRows(ws, 'agent_execution_confirmation_ledger', "correlation_id = 'lex:v1'").sort((a, b) => a.id - b.id);
    const expected = script.map(([token, lang, , result]) => {
      const l = (lang ?? 'fr').toLowerCase();
      return { token, lang: l, result, proof_ref: `confirm_parse:kair.confirm.v1:${l}:${token}:${result}`, lexicon: 'kair.confirm.v1', source: 'flag' };
    });
    expect(rows.map((x) => ({ token: x.token, lang: x.lang, result: x.result, proof_ref: x.proof_ref, lexicon: x.lexicon, source: x.source }))).toEqual(expected);
    // Each claim links the affirmative that allowed it.
    for (const claim of ledgerRows(ws, "contract_id = 'lex' AND event = 'CLAIMED'")) {
      const c = rows.find((x) => x.id === claim.confirmation_id);
      expect(c?.result).toBe('affirmative');
      expect(claim.confirmation_proof_ref).toBe(c?.proof_ref);
    }
  });

  it('a negative in the step language declines (AEC_CONFIRM_DECLINED, FAILED), with no --lang needed', () => {
    const ws = cloneWorkspace(base);
    approveContract(ws, 'lex', simPlan([invoice('ja')]));
    expect(kj(ws, ['run', 'lex'], asAlice).code).toBe(3);
    const j = answer(ws, 'いいえ', null, { code: 3, error: 'AEC_CONFIRM_DECLINED' });
    expect(j).toMatchObject({ state: 'FAILED', status: 'FAILED' });
    expect(j.steps[0]).toMatchObject({ status: 'REFUSED', reason_code: 'AEC_CONFIRM_DECLINED' });
    expect(tableRows(ws, 'agent_execution_confirmation_ledger').map((x) => x.proof_ref)).toEqual(['confirm_parse:kair.confirm.v1:ja:いいえ:negative']);
    expect(ledgerRows(ws, "event = 'CLAIMED'")).toEqual([]);
  });

  it('the lexicon table: every affirmative and negative of SPEC §9.4 parses as such, every listed ambiguous example is rejected', () => {
    const table: Record<string, { affirmative: string[]; negative: string[]; ambiguous: string[] }> = {
      en: { affirmative: ['yes', 'confirm', 'i confirm'], negative: ['no', 'cancel'], ambiguous: ['ok', 'okay', 'fine', 'sure', 'maybe', 'maybe later', 'yep'] },
      es: { affirmative: ['sí', 'si', 'confirmo'], negative: ['no', 'cancelar'], ambiguous: ['vale', 'bueno', 'quizás'] },
      fr: { affirmative: ['oui', 'je confirme'], negative: ['non', 'annuler'], ambiguous: ["d'accord", 'ok', 'peut-être'] },
      de: { affirmative: ['ja', 'bestätigen', 'ich bestätige'], negative: ['nein', 'abbrechen'], ambiguous: ['ok', 'vielleicht'] },
      pt: { affirmative: ['sim', 'confirmo'], negative: ['não', 'cancelar'], ambiguous: ['ok', 'talvez'] },
      zh: { affirmative: ['是', '确认'], negative: ['否', '取消'], ambiguous: ['好的', '可以', '也许'] },
      ja: { affirmative: ['はい', '確認'], negative: ['いいえ', 'キャンセル'], ambiguous: ['了解', 'たぶん'] },
    };
    expect(Object.keys(CONFIRM_LEXICON).sort()).toEqual(Object.keys(table).sort());
    for (const [lang, row] of Object.entries(table)) {
      for (const t of row.affirmative) {
        expect(parseConfirmation(t, lang).result, `${lang} ${t}`).toBe('affirmative');
        expect(parseConfirmation(`${t.toUpperCase()}!`, lang).result, `${lang} ${t}!`).toBe('affirmative');
      }
      for (const t of row.negative) expect(parseConfirmation(t, lang), `${lang} ${t}`).toMatchObject({ result: 'negative', reason_code: 'AEC_CONFIRM_DECLINED' });
      for (const t of row.ambiguous) expect(parseConfirmation(t, lang), `${lang} ${t}`).toMatchObject({ result: 'ambiguous', reason_code: 'AEC_CONFIRM_AMBIGUOUS_REJECTED' });
      // Another language's affirmative is not this language's, and an unknown language accepts nothing.
      expect(parseConfirmation(row.affirmative[0]!, 'xx').result).toBe('ambiguous');
    }
    // Whole-utterance match only: an affirmative inside a longer answer is not one.
    expect(parseConfirmation('yes but later', 'en').result).toBe('ambiguous');
    expect(parseConfirmation('', 'en').result).toBe('ambiguous');
  });
});
