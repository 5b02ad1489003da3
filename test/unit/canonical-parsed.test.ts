import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonOfParsed, inCanonicalOrder } from '../../src/domain/canonical.js';

/** A small deterministic PRNG, so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Keys that sort differently by code unit than by any other rule: integer-like keys (which V8
// enumerates first, in numeric order), case, astral characters (surrogates sort below U+E000),
// the empty key and __proto__.
const KEYS = ['a', 'b', 'B', '_', '10', '9', '0', '', 'é', '\uffff', '\ud83d\ude00', '__proto__', 'seq', 'prev', 'hash', 'data'];
const STRINGS = ['', 'x', 'a"b\\c', '\n\t\u0001', '\u2028', 'é✓', '\ud83d\ude00', '\ud800', '</script>'];
const NUMBERS = ['0', '-0', '1', '-1.5', '1e21', '1E-7', '0.1', '123456789012345678901234567890', '5e-324', '1.0'];

/** Random JSON text, with whitespace and escapes that canonical JSON never uses. */
function randomJson(r: () => number, depth: number): string {
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  const ws = () => (r() < 0.1 ? pick([' ', '\n', '\t ']) : '');
  const str = (s: string) => (r() < 0.1 ? JSON.stringify(s).replace(/[a-z]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) : JSON.stringify(s));
  const x = r();
  if (depth <= 0 || x < 0.3) return pick([() => str(pick(STRINGS)), () => pick(NUMBERS), () => pick(['true', 'false', 'null'])])();
  if (x < 0.55) return ws() + '[' + Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth - 1)).join(',' + ws()) + ']';
  const n = Math.floor(r() * 5);
  const members = Array.from({ length: n }, () => ws() + str(pick(KEYS)) + ws() + ':' + randomJson(r, depth - 1));
  if (r() < 0.5) members.sort(); // often already in order, so the native path is taken too
  return '{' + members.join(',') + ws() + '}';
}

describe('canonicalJsonOfParsed: the same text as canonicalJson for every parsed value', () => {
  it('2,000 generated JSON texts (keys in and out of order, escapes, whitespace, duplicate keys)', () => {
    let native = 0;
    for (let seed = 1; seed <= 2000; seed++) {
      const value: unknown = JSON.parse(randomJson(rng(seed), 4));
      if (inCanonicalOrder(value)) native++;
      expect(canonicalJsonOfParsed(value), `seed ${seed}`).toBe(canonicalJson(value));
    }
    expect(native).toBeGreaterThan(100); // both paths were exercised
  });

  it('history events as written (keys not sorted) and as canonical text', () => {
    const e = { seq: 2, at: '2026-01-01T00:00:00.000Z', type: 'grant', actor: 'bench', state: 'DRAFT', data: { controls: ['a:b'], changed: ['a:b'], granted: ['a:b'] }, prev: '0'.repeat(64) };
    for (const text of [JSON.stringify(e), canonicalJson(e)]) expect(canonicalJsonOfParsed(JSON.parse(text))).toBe(canonicalJson(e));
  });

  it('integer-like keys (enumerated numerically) are still sorted by code unit', () => {
    const v = JSON.parse('{"10":1,"9":2,"a":{"2":0,"10":1}}');
    expect(inCanonicalOrder(v)).toBe(false);
    expect(canonicalJsonOfParsed(v)).toBe('{"10":1,"9":2,"a":{"10":1,"2":0}}');
  });

  it('a number JSON.parse turns into Infinity is refused exactly as canonicalJson refuses it', () => {
    const v = JSON.parse('{"a":{"b":[1e999]}}');
    expect(() => canonicalJson(v)).toThrow(TypeError);
    expect(() => canonicalJsonOfParsed(v)).toThrow(TypeError);
  });
});
