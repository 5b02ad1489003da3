import { describe, it, expect } from 'vitest';
import {
  CONFIRM_LEXICON,
  CONFIRM_LEXICON_VERSION,
  parseConfirmation,
  type ConfirmResult,
} from '../../src/domain/aec/confirm.js';

const REASON: Record<ConfirmResult, string | null> = {
  affirmative: null,
  negative: 'AEC_CONFIRM_DECLINED',
  ambiguous: 'AEC_CONFIRM_AMBIGUOUS_REJECTED',
};

// SPEC §9.4 table, restated so that an edit of the lexicon data is caught here.
const TABLE: Array<[string, string[], string[], string[]]> = [
  ['en', ['yes', 'confirm', 'i confirm'], ['no', 'cancel'], ['ok', 'okay', 'fine', 'sure', 'maybe', 'maybe later', 'yep']],
  ['es', ['sí', 'si', 'confirmo'], ['no', 'cancelar'], ['vale', 'bueno', 'quizás']],
  ['fr', ['oui', 'je confirme'], ['non', 'annuler'], ["d'accord", 'ok', 'peut-être']],
  ['de', ['ja', 'bestätigen', 'ich bestätige'], ['nein', 'abbrechen'], ['ok', 'vielleicht']],
  ['pt', ['sim', 'confirmo'], ['não', 'cancelar'], ['ok', 'talvez']],
  ['zh', ['是', '确认'], ['否', '取消'], ['好的', '可以', '也许']],
  ['ja', ['はい', '確認'], ['いいえ', 'キャンセル'], ['了解', 'たぶん']],
];

describe('kair.confirm.v1 lexicon data', () => {
  it('version tag', () => {
    expect(CONFIRM_LEXICON_VERSION).toBe('kair.confirm.v1');
  });

  it('matches the SPEC table exactly', () => {
    expect(Object.keys(CONFIRM_LEXICON).sort()).toEqual(TABLE.map(([l]) => l).sort());
    for (const [lang, affirmative, negative, ambiguous_examples] of TABLE) {
      expect(CONFIRM_LEXICON[lang as keyof typeof CONFIRM_LEXICON]).toEqual({ affirmative, negative, ambiguous_examples });
    }
  });
});

const rows: Array<[string, string, ConfirmResult]> = TABLE.flatMap(([lang, aff, neg, amb]) => [
  ...aff.map((t): [string, string, ConfirmResult] => [lang, t, 'affirmative']),
  ...neg.map((t): [string, string, ConfirmResult] => [lang, t, 'negative']),
  ...amb.map((t): [string, string, ConfirmResult] => [lang, t, 'ambiguous']),
]);

describe('parseConfirmation: every lexicon entry', () => {
  it.each(rows)('[%s] %j → %s', (lang, token, result) => {
    const p = parseConfirmation(token, lang);
    expect(p.result).toBe(result);
    expect(p.reason_code).toBe(REASON[result]);
    expect(p.proof_ref).toBe(`confirm_parse:kair.confirm.v1:${lang}:${token}:${result}`);
  });
});

/** ASCII letters and punctuation to their full-width forms (U+FF01..U+FF5E); NFKC maps them back. */
const fullWidth = (t: string) => t.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
const mixedCase = (t: string) => [...t].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c.toLowerCase())).join('');

describe('parseConfirmation: every lexicon entry, upper-case, mixed-case, full-width and with trailing ! or 。', () => {
  const variants = rows.flatMap(([lang, token, result]) =>
    [token.toUpperCase(), mixedCase(token), fullWidth(token), fullWidth(token.toUpperCase()), `${token}!`, `${token}。`, `  ${token}  `].map(
      (v): [string, string, string, ConfirmResult] => [lang, token, v, result],
    ),
  );
  it.each(variants)('[%s] %j as %j → %s', (lang, _token, variant, result) => {
    expect(parseConfirmation(variant, lang).result).toBe(result);
  });
});

describe('parseConfirmation: normalisation', () => {
  it.each<[string, string, ConfirmResult]>([
    ['ＹＥＳ', 'en', 'affirmative'],
    ['ｙｅｓ', 'en', 'affirmative'],
    ['ＹＥＳ！', 'en', 'affirmative'],
    ['YeS', 'en', 'affirmative'],
    ['I CONFIRM', 'en', 'affirmative'],
    ['Oui', 'fr', 'affirmative'],
    ['NON', 'fr', 'negative'],
    ['SÍ', 'es', 'affirmative'],
    ['NÃO', 'pt', 'negative'],
    ['Bestätigen', 'de', 'affirmative'],
    ['yes.', 'en', 'affirmative'],
    ['yes!', 'en', 'affirmative'],
    ['yes!!!', 'en', 'affirmative'],
    ['yes.!。！', 'en', 'affirmative'],
    ['no.', 'en', 'negative'],
    ['是。', 'zh', 'affirmative'],
    ['否！', 'zh', 'negative'],
    ['はい！', 'ja', 'affirmative'],
    ['はい。', 'ja', 'affirmative'],
    ['  yes  ', 'en', 'affirmative'],
    ['\tyes\n', 'en', 'affirmative'],
    [' yes. ', 'en', 'affirmative'],
    ['yes', ' EN ', 'affirmative'],
    ['yes please', 'en', 'ambiguous'],
    ['no thanks', 'en', 'ambiguous'],
    ['yes?', 'en', 'ambiguous'],
    ['.yes', 'en', 'ambiguous'],
    ['i  confirm', 'en', 'ambiguous'],
    ['', 'en', 'ambiguous'],
    ['   ', 'en', 'ambiguous'],
    ['!', 'en', 'ambiguous'],
    ['yes', 'xx', 'ambiguous'],
    ['yes', '', 'ambiguous'],
    ['yes', 'constructor', 'ambiguous'],
    ['oui', 'en', 'ambiguous'],
    ['ja', 'en', 'ambiguous'],
  ])('%j [%j] → %s', (token, lang, result) => {
    const p = parseConfirmation(token, lang);
    expect(p.result).toBe(result);
    expect(p.reason_code).toBe(REASON[result]);
  });

  it('reports the normalised token and lang, keeps the original token in the proof', () => {
    expect(parseConfirmation(' ＹＥＳ！ ', ' EN ')).toEqual({
      result: 'affirmative',
      lang: 'en',
      token: ' ＹＥＳ！ ',
      normalized: 'yes',
      reason_code: null,
      proof_ref: 'confirm_parse:kair.confirm.v1:en: ＹＥＳ！ :affirmative',
    });
  });

  it.each([
    ['yes', 'en', 'confirm_parse:kair.confirm.v1:en:yes:affirmative'],
    ['No.', 'en', 'confirm_parse:kair.confirm.v1:en:No.:negative'],
    ['ok', 'fr', 'confirm_parse:kair.confirm.v1:fr:ok:ambiguous'],
    ['yes', 'xx', 'confirm_parse:kair.confirm.v1:xx:yes:ambiguous'],
    ['はい！', 'ja', 'confirm_parse:kair.confirm.v1:ja:はい！:affirmative'],
  ])('proof_ref for %j [%s]', (token, lang, ref) => {
    expect(parseConfirmation(token, lang).proof_ref).toBe(ref);
  });
});
