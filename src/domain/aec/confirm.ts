/** Confirmation lexicon `kair.confirm.v1` (SPEC §9.4): whole-utterance match, fail closed. */

export const CONFIRM_LEXICON_VERSION = 'kair.confirm.v1';

export type ConfirmLexiconEntry = {
  readonly affirmative: readonly string[];
  readonly negative: readonly string[];
  /** Documentation/test data only: anything not affirmative or negative is ambiguous. */
  readonly ambiguous_examples: readonly string[];
};

export const CONFIRM_LEXICON = {
  en: {
    affirmative: ['yes', 'confirm', 'i confirm'],
    negative: ['no', 'cancel'],
    ambiguous_examples: ['ok', 'okay', 'fine', 'sure', 'maybe', 'maybe later', 'yep'],
  },
  es: {
    affirmative: ['sí', 'si', 'confirmo'],
    negative: ['no', 'cancelar'],
    ambiguous_examples: ['vale', 'bueno', 'quizás'],
  },
  fr: {
    affirmative: ['oui', 'je confirme'],
    negative: ['non', 'annuler'],
    ambiguous_examples: ["d'accord", 'ok', 'peut-être'],
  },
  de: {
    affirmative: ['ja', 'bestätigen', 'ich bestätige'],
    negative: ['nein', 'abbrechen'],
    ambiguous_examples: ['ok', 'vielleicht'],
  },
  pt: {
    affirmative: ['sim', 'confirmo'],
    negative: ['não', 'cancelar'],
    ambiguous_examples: ['ok', 'talvez'],
  },
  zh: {
    affirmative: ['是', '确认'],
    negative: ['否', '取消'],
    ambiguous_examples: ['好的', '可以', '也许'],
  },
  ja: {
    affirmative: ['はい', '確認'],
    negative: ['いいえ', 'キャンセル'],
    ambiguous_examples: ['了解', 'たぶん'],
  },
} as const satisfies Record<string, ConfirmLexiconEntry>;

export type ConfirmLang = keyof typeof CONFIRM_LEXICON;
export type ConfirmResult = 'affirmative' | 'negative' | 'ambiguous';

export type ConfirmationParse = {
  result: ConfirmResult;
  /** Normalised language tag (lowercase, trimmed). */
  lang: string;
  /** The token exactly as given. */
  token: string;
  normalized: string;
  /** null when affirmative: confirmation passed, the dispatch outcome is decided later. */
  reason_code: null | 'AEC_CONFIRM_DECLINED' | 'AEC_CONFIRM_AMBIGUOUS_REJECTED';
  proof_ref: string;
};

export function normalizeConfirmation(text: string): string {
  // NFKC first so full-width `！` is already `!` when trailing punctuation is stripped.
  return text.normalize('NFKC').toLowerCase().trim().replace(/[.!\u3002\uFF01]+$/u, '').trim();
}

export function normalizeLang(lang: string): string {
  return lang.trim().toLowerCase();
}

const NORMALIZED = Object.fromEntries(
  Object.entries(CONFIRM_LEXICON).map(([lang, e]) => [
    lang,
    { affirmative: new Set(e.affirmative.map(normalizeConfirmation)), negative: new Set(e.negative.map(normalizeConfirmation)) },
  ]),
) as Record<ConfirmLang, { affirmative: Set<string>; negative: Set<string> }>;

export function isConfirmLang(lang: string): lang is ConfirmLang {
  return Object.hasOwn(CONFIRM_LEXICON, lang);
}

export function confirmProofRef(lang: string, token: string, result: ConfirmResult): string {
  return `confirm_parse:${CONFIRM_LEXICON_VERSION}:${lang}:${token}:${result}`;
}

export function parseConfirmation(token: string, lang: string): ConfirmationParse {
  const l = normalizeLang(lang);
  const normalized = normalizeConfirmation(token);
  const lex = isConfirmLang(l) ? NORMALIZED[l] : undefined;
  const result: ConfirmResult =
    lex === undefined || normalized === ''
      ? 'ambiguous'
      : lex.affirmative.has(normalized)
        ? 'affirmative'
        : lex.negative.has(normalized)
          ? 'negative'
          : 'ambiguous';
  const reason_code =
    result === 'affirmative' ? null : result === 'negative' ? 'AEC_CONFIRM_DECLINED' : 'AEC_CONFIRM_AMBIGUOUS_REJECTED';
  return { result, lang: l, token, normalized, reason_code, proof_ref: confirmProofRef(l, token, result) };
}
