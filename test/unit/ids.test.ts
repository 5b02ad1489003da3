import { describe, it, expect } from 'vitest';
import { KairError } from '../../src/domain/errors.js';
import { CONTROL_PATTERN, ID_PATTERN, assertId, isValidId, slugify, uniqueSlug } from '../../src/domain/ids.js';

describe('id rule', () => {
  const valid = ['a', 'c1', '1', '0abc', 'a-b_c', 'a--b', 'a_', 'a-', 'send-invoice', 'a'.repeat(80), '9'.repeat(80)];
  it.each(valid)('%j is valid', (id) => {
    expect(isValidId(id)).toBe(true);
    expect(ID_PATTERN.test(id)).toBe(true);
    expect(assertId(id)).toBe(id);
  });

  const invalid = ['', 'A', 'aB', '../x', 'a/b', 'a\\b', '-a', '_a', '.a', 'a.b', 'a b', ' a', 'a\n', 'é', 'a'.repeat(81), 'c1:x'];
  it.each(invalid)('%j is invalid', (id) => {
    expect(isValidId(id)).toBe(false);
    expect(() => assertId(id)).toThrow(KairError);
  });

  it('assertId throws INVALID_ID naming the value', () => {
    try {
      assertId('../x', 'contract id');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(KairError);
      const k = e as KairError;
      expect(k.code).toBe('INVALID_ID');
      expect(k.message).toContain('"../x"');
      expect(k.details['contract id']).toBe('../x');
    }
  });

  it('control names are <namespace>:<permission> of [a-z0-9_-]', () => {
    for (const ok of ['local:read', 'my_ns-1:perm_2', '0:1']) expect(CONTROL_PATTERN.test(ok)).toBe(true);
    for (const bad of ['local', 'Local:read', 'a:b:c', ':x', 'x:', 'a b:c']) expect(CONTROL_PATTERN.test(bad)).toBe(false);
  });
});

describe('slugify', () => {
  const cases: Array<[string, string]> = [
    ['Add chat and invoicing', 'add-chat-and-invoicing'],
    ['  Add   chat!!  ', 'add-chat'],
    ['Fix bug #123 in api/v2', 'fix-bug-123-in-api-v2'],
    ['Café déjà vu', 'cafe-deja-vu'],
    ['Ünïcödé', 'unicode'],
    ['UPPER_case_words', 'upper-case-words'],
    ['../../etc/passwd', 'etc-passwd'],
    ['', 'contract'],
    ['!!!', 'contract'],
    ['日本語', 'contract'],
  ];
  it.each(cases)('%j → %j', (intent, slug) => {
    expect(slugify(intent)).toBe(slug);
  });

  it('stops at a word boundary within 48 characters', () => {
    const intent = 'one two three four five six seven eight nine ten eleven twelve';
    const slug = slugify(intent);
    expect(slug.length).toBeLessThanOrEqual(48);
    expect(slug).toBe('one-two-three-four-five-six-seven-eight-nine-ten');
    expect(slug.endsWith('-')).toBe(false);
  });

  const anything = [
    'Add chat and invoicing',
    'x'.repeat(200),
    'a '.repeat(100),
    '-leading dash',
    '__init__',
    '123 go',
    'Ωmega — “quoted” ‘text’',
    '\u0000\u0001 control',
  ];
  it.each(anything)('slugify(%j) always satisfies the id rule with room for a -N suffix', (intent) => {
    const slug = slugify(intent);
    expect(isValidId(slug)).toBe(true);
    expect(slug.length).toBeLessThanOrEqual(48);
    expect(isValidId(`${slug}-99999`)).toBe(true);
  });
});

describe('uniqueSlug', () => {
  const cases: Array<[string, string[], string]> = [
    ['add-chat', [], 'add-chat'],
    ['add-chat', ['other'], 'add-chat'],
    ['add-chat', ['add-chat'], 'add-chat-2'],
    ['add-chat', ['add-chat', 'add-chat-2'], 'add-chat-3'],
    ['add-chat', ['add-chat', 'add-chat-2', 'add-chat-4'], 'add-chat-3'],
    ['add-chat', ['add-chat-2'], 'add-chat'],
  ];
  it.each(cases)('%j with taken %j → %j', (base, taken, want) => {
    const set = new Set(taken);
    expect(uniqueSlug(base, (id) => set.has(id))).toBe(want);
  });

  it('counts up past many collisions', () => {
    const set = new Set(['c', ...Array.from({ length: 50 }, (_, i) => `c-${i + 2}`)]);
    expect(uniqueSlug('c', (id) => set.has(id))).toBe('c-52');
  });
});
