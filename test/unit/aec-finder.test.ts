import { describe, it, expect } from 'vitest';
import { canonicalHash, canonicalJson, sha256Hex } from '../../src/domain/canonical.js';
import {
  catalogSnapshotRef,
  find,
  normalizeTokens,
  scoreExample,
  type CatalogEntry,
  type FinderInput,
  type FinderPacket,
} from '../../src/domain/aec/finder.js';

// Jaccard scores are built from a shared vocabulary: an utterance of the first n words against
// an example of the first m words (m ≤ n) scores floor(10000 × m / n).
const words = (n: number, from = 0): string =>
  Array.from({ length: n }, (_, i) => `w${i + from}`).join(' ');

function sim(id: string, examples: string[], over: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    id,
    title: `Title ${id}`,
    examples,
    required_fields: [],
    impact: 'none',
    access_action: `act.${id}`,
    status: 'Active',
    executor: { kind: 'builtin', name: 'noop' },
    ...over,
  };
}

const run = (utterance: string, catalog: CatalogEntry[], extra: Partial<FinderInput> = {}): FinderPacket =>
  find({ utterance, fields: {}, ...extra }, catalog);

describe('normalizeTokens / scoreExample', () => {
  it.each([
    ['Hello, World!', ['hello', 'world']],
    ['ＳＥＮＤ　ｅｍａｉｌ', ['send', 'email']],
    ['  --a__b  ', ['a', 'b']],
    ['写 ファイル 123', ['写', 'ファイル', '123']],
    ['', []],
    ['!!!', []],
  ])('%j → %j', (text, tokens) => {
    expect(normalizeTokens(text)).toEqual(tokens);
  });

  it.each([
    [words(10), words(10), 10000],
    [words(10), words(7), 7000],
    [words(3), words(2), 6666],
    [words(2), words(2, 2), 0],
    ['a a b', 'b a', 10000],
    ['', '', 0],
    ['', 'x', 0],
  ])('score(%j, %j) = %i', (u, e, bp) => {
    expect(scoreExample(normalizeTokens(u), e)).toBe(bp);
  });
});

describe('find: rules in order, first match wins', () => {
  type Case = {
    name: string;
    utterance: string;
    catalog: CatalogEntry[];
    fields?: Record<string, string>;
    attempt?: number;
    type: FinderPacket['type'];
    reason: FinderPacket['reason_code'];
    simulation_id?: string;
    score_bp?: number;
  };
  const cases: Case[] = [
    { name: 'empty catalog', utterance: words(3), catalog: [], type: 'MissingSimulationPacket', reason: 'SIM_FINDER_MISSING_SIMULATION', score_bp: 0 },
    { name: 'top below 7000', utterance: words(3), catalog: [sim('a', [words(2)])], type: 'MissingSimulationPacket', reason: 'SIM_FINDER_MISSING_SIMULATION', score_bp: 6666 },
    { name: 'missing beats Draft status', utterance: words(3), catalog: [sim('a', [words(2)], { status: 'Draft' })], type: 'MissingSimulationPacket', reason: 'SIM_FINDER_MISSING_SIMULATION' },
    { name: 'exactly 7000 is low confidence', utterance: words(10), catalog: [sim('a', [words(7)])], type: 'ClarifyPacket', reason: 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE', simulation_id: 'a', score_bp: 7000 },
    { name: '8888 is low confidence', utterance: words(9), catalog: [sim('a', [words(8)])], type: 'ClarifyPacket', reason: 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE', score_bp: 8888 },
    { name: 'exactly 9000 matches', utterance: words(10), catalog: [sim('a', [words(9)])], type: 'SimulationMatchPacket', reason: 'SIM_FINDER_MATCH_OK', simulation_id: 'a', score_bp: 9000 },
    { name: 'max over examples', utterance: words(4), catalog: [sim('a', [words(1), words(4), words(2)])], type: 'SimulationMatchPacket', reason: 'SIM_FINDER_MATCH_OK', score_bp: 10000 },
    { name: 'Draft → inactive', utterance: words(4), catalog: [sim('a', [words(4)], { status: 'Draft' })], type: 'RefusePacket', reason: 'SIM_FINDER_SIMULATION_INACTIVE', simulation_id: 'a', score_bp: 10000 },
    { name: 'Deprecated → policy blocked', utterance: words(4), catalog: [sim('a', [words(4)], { status: 'Deprecated' })], type: 'RefusePacket', reason: 'SIM_FINDER_REFUSE_POLICY_BLOCKED', simulation_id: 'a' },
    { name: 'Disabled → policy blocked', utterance: words(4), catalog: [sim('a', [words(4)], { status: 'Disabled' })], type: 'RefusePacket', reason: 'SIM_FINDER_REFUSE_POLICY_BLOCKED', simulation_id: 'a' },
    {
      name: 'Deprecated top-1 is blocked even when ambiguous',
      utterance: words(4),
      catalog: [sim('a', [words(4)], { status: 'Deprecated' }), sim('b', [words(4)])],
      type: 'RefusePacket',
      reason: 'SIM_FINDER_REFUSE_POLICY_BLOCKED',
      simulation_id: 'a',
    },
    {
      name: 'Disabled top-1 is blocked even when ambiguous',
      utterance: words(4),
      catalog: [sim('a', [words(4)], { status: 'Disabled' }), sim('b', [words(4)])],
      type: 'RefusePacket',
      reason: 'SIM_FINDER_REFUSE_POLICY_BLOCKED',
      simulation_id: 'a',
    },
    {
      name: 'Draft top-1 is inactive even when ambiguous',
      utterance: words(4),
      catalog: [sim('a', [words(4)], { status: 'Draft' }), sim('b', [words(4)])],
      type: 'RefusePacket',
      reason: 'SIM_FINDER_SIMULATION_INACTIVE',
      simulation_id: 'a',
    },
    {
      name: 'second exactly top − 800 (non-Active) → ambiguous',
      utterance: words(25),
      catalog: [sim('a', [words(25)]), sim('b', [words(23)], { status: 'Draft' })],
      type: 'ClarifyPacket',
      reason: 'SIM_FINDER_CLARIFY_AMBIGUOUS',
      score_bp: 10000,
    },
    {
      name: 'second Disabled within margin → ambiguous',
      utterance: words(25),
      catalog: [sim('a', [words(25)]), sim('b', [words(24)], { status: 'Disabled' })],
      type: 'ClarifyPacket',
      reason: 'SIM_FINDER_CLARIFY_AMBIGUOUS',
    },
    {
      name: 'second below top − 800 → match',
      utterance: words(25),
      catalog: [sim('a', [words(25)]), sim('b', [words(22)])],
      type: 'SimulationMatchPacket',
      reason: 'SIM_FINDER_MATCH_OK',
      simulation_id: 'a',
    },
    {
      name: 'ambiguous beats low confidence',
      utterance: words(20),
      catalog: [sim('a', [words(16)]), sim('b', [words(15)])],
      type: 'ClarifyPacket',
      reason: 'SIM_FINDER_CLARIFY_AMBIGUOUS',
      score_bp: 8000,
    },
    {
      name: 'low confidence beats missing field',
      utterance: words(10),
      catalog: [sim('a', [words(8)], { required_fields: ['path'] })],
      type: 'ClarifyPacket',
      reason: 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE',
    },
    {
      name: 'missing field',
      utterance: words(4),
      catalog: [sim('a', [words(4)], { required_fields: ['path'] })],
      type: 'ClarifyPacket',
      reason: 'SIM_FINDER_CLARIFY_MISSING_FIELD',
      simulation_id: 'a',
    },
    {
      name: 'all fields present → match',
      utterance: words(4),
      catalog: [sim('a', [words(4)], { required_fields: ['path'] })],
      fields: { path: 'x', extra: 'y' },
      type: 'SimulationMatchPacket',
      reason: 'SIM_FINDER_MATCH_OK',
    },
    {
      name: 'attempt 2 still clarifies',
      utterance: words(10),
      catalog: [sim('a', [words(7)])],
      attempt: 2,
      type: 'ClarifyPacket',
      reason: 'SIM_FINDER_CLARIFY_LOW_CONFIDENCE',
    },
    {
      name: 'attempt 3 turns low confidence into refuse',
      utterance: words(10),
      catalog: [sim('a', [words(7)])],
      attempt: 3,
      type: 'RefusePacket',
      reason: 'SIM_FINDER_REFUSE_AMBIGUOUS',
      simulation_id: 'a',
      score_bp: 7000,
    },
    {
      name: 'attempt 3 turns ambiguous into refuse',
      utterance: words(4),
      catalog: [sim('a', [words(4)]), sim('b', [words(4)])],
      attempt: 3,
      type: 'RefusePacket',
      reason: 'SIM_FINDER_REFUSE_AMBIGUOUS',
    },
    {
      name: 'attempt 4 turns missing field into refuse',
      utterance: words(4),
      catalog: [sim('a', [words(4)], { required_fields: ['path'] })],
      attempt: 4,
      type: 'RefusePacket',
      reason: 'SIM_FINDER_REFUSE_AMBIGUOUS',
    },
    { name: 'attempt 3 leaves a match alone', utterance: words(4), catalog: [sim('a', [words(4)])], attempt: 3, type: 'SimulationMatchPacket', reason: 'SIM_FINDER_MATCH_OK' },
    { name: 'attempt 3 leaves missing alone', utterance: words(4), catalog: [sim('a', [words(1)])], attempt: 3, type: 'MissingSimulationPacket', reason: 'SIM_FINDER_MISSING_SIMULATION' },
    {
      name: 'attempt 3 leaves policy refusals alone',
      utterance: words(4),
      catalog: [sim('a', [words(4)], { status: 'Draft' })],
      attempt: 3,
      type: 'RefusePacket',
      reason: 'SIM_FINDER_SIMULATION_INACTIVE',
    },
    {
      name: 'tie broken by id: Draft "a" beats Active "b"',
      utterance: words(4),
      catalog: [sim('b', [words(4)]), sim('a', [words(4)], { status: 'Draft' })],
      type: 'RefusePacket',
      reason: 'SIM_FINDER_SIMULATION_INACTIVE',
      simulation_id: 'a',
    },
  ];

  it.each(cases)('$name', (c) => {
    const p = find({ utterance: c.utterance, fields: c.fields ?? {}, attempt: c.attempt }, c.catalog);
    expect(p.type).toBe(c.type);
    expect(p.reason_code).toBe(c.reason);
    expect(p.attempt).toBe(c.attempt ?? 1);
    if (c.simulation_id !== undefined) expect('simulation_id' in p && p.simulation_id).toBe(c.simulation_id);
    if (c.score_bp !== undefined) expect('score_bp' in p && p.score_bp).toBe(c.score_bp);
  });
});

describe('find: packet contents', () => {
  it('ambiguous clarify asks one question naming both, best first', () => {
    const p = run(words(4), [sim('b', [words(4)]), sim('a', [words(4)])]);
    expect(p).toMatchObject({
      type: 'ClarifyPacket',
      question: 'Did you mean "Title a" (a) or "Title b" (b)?',
    });
    expect(p).not.toHaveProperty('simulation_id');
  });

  it('low confidence question names the top-1', () => {
    const p = run(words(10), [sim('a', [words(7)])]);
    expect(p).toMatchObject({ type: 'ClarifyPacket', question: 'Did you mean "Title a" (a)?', simulation_id: 'a' });
  });

  it.each([
    [{}, 'path'],
    [{ content: 'x' }, 'path'],
    [{ path: '', content: '' }, 'path'],
    [{ path: 'p' }, 'content'],
    [{ path: 'p', content: '' }, 'content'],
  ])('missing field with %j asks for %s only', (fields, missing) => {
    const p = find({ utterance: words(4), fields }, [sim('a', [words(4)], { required_fields: ['path', 'content'] })]);
    expect(p).toMatchObject({
      type: 'ClarifyPacket',
      reason_code: 'SIM_FINDER_CLARIFY_MISSING_FIELD',
      missing_field: missing,
      question: `What is the ${missing} for "Title a"?`,
    });
  });

  it('escalated refuse keeps the would-be question as message', () => {
    const q = run(words(10), [sim('a', [words(7)])], { attempt: 2 });
    const r = run(words(10), [sim('a', [words(7)])], { attempt: 3 });
    expect(q.type === 'ClarifyPacket' && r.type === 'RefusePacket').toBe(true);
    if (q.type !== 'ClarifyPacket' || r.type !== 'RefusePacket') return;
    expect(r.message).toBe(q.question);
    expect(r.escalated_from).toBe('SIM_FINDER_CLARIFY_LOW_CONFIDENCE');
  });

  it('match consumes the top-1 as-is, with the fields as given', () => {
    const top = sim('write', [words(4)], { required_fields: ['path'], impact: 'impactful', rollback_simulation_id: 'undo' });
    const fields = { path: 'a.txt', content: 'hi' };
    const p = find({ utterance: words(4), fields }, [sim('other', [words(1)]), top]);
    expect(p.type).toBe('SimulationMatchPacket');
    if (p.type !== 'SimulationMatchPacket') return;
    expect(p.simulation).toEqual(top);
    expect(p.simulation_id).toBe('write');
    expect(p.required_fields).toEqual(fields);
  });

  it('candidates: top three by score desc then id asc', () => {
    const cat = [
      sim('d', [words(1)]),
      sim('c', [words(4)], { status: 'Disabled' }),
      sim('b', [words(2)]),
      sim('a', [words(2)]),
    ];
    expect(run(words(4), cat).candidates).toEqual([
      { simulation_id: 'c', score_bp: 10000, status: 'Disabled' },
      { simulation_id: 'a', score_bp: 5000, status: 'Active' },
      { simulation_id: 'b', score_bp: 5000, status: 'Active' },
    ]);
  });

  it('packet_hash is the canonical hash of the rest of the packet', () => {
    const { packet_hash, ...rest } = run(words(4), [sim('a', [words(4)])]);
    expect(packet_hash).toBe(canonicalHash(rest));
  });

  it('lang defaults to en and is normalised', () => {
    expect(run(words(4), []).lang).toBe('en');
    expect(run(words(4), [], { lang: ' FR ' }).lang).toBe('fr');
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects attempt %s', (attempt) => {
    expect(() => run(words(4), [], { attempt })).toThrow(/attempt/);
  });
});

describe('find: determinism and fingerprints', () => {
  const catalog = [
    sim('a', [words(4)], { required_fields: ['path'] }),
    sim('b', [words(3)]),
    sim('c', ['something else entirely'], { status: 'Draft' }),
  ];
  const input: FinderInput = { utterance: words(4), fields: { path: 'x', content: 'y' } };

  it('same input → deep-equal and byte-identical packets', () => {
    const p1 = find(input, catalog);
    const p2 = find(structuredClone(input), structuredClone(catalog));
    expect(p2).toEqual(p1);
    expect(canonicalJson(p2)).toBe(canonicalJson(p1));
    expect(JSON.stringify(p2)).toBe(JSON.stringify(p1));
  });

  it('catalog order does not matter', () => {
    expect(find(input, [...catalog].reverse())).toEqual(find(input, catalog));
  });

  it('fingerprint is sha256 of the canonical whole fields object', () => {
    const p = find(input, catalog);
    if (p.type !== 'SimulationMatchPacket') throw new Error(`expected match, got ${p.type}`);
    expect(p.required_fields_fingerprint).toBe(sha256Hex(canonicalJson(input.fields)));
    expect(p.required_fields_fingerprint).toBe(sha256Hex('{"content":"y","path":"x"}'));
    const reordered = find({ ...input, fields: { content: 'y', path: 'x' } }, catalog);
    expect(reordered).toEqual(p);
  });

  it.each<Record<string, string>>([
    { path: 'x2', content: 'y' },
    { path: 'x', content: 'y2' },
    { path: 'x', content: 'y', extra: '' },
    { path: 'x' },
  ])('fingerprint changes when fields become %j', (fields) => {
    const a = find(input, catalog);
    const b = find({ ...input, fields }, catalog);
    if (a.type !== 'SimulationMatchPacket' || b.type !== 'SimulationMatchPacket') throw new Error('expected matches');
    expect(b.required_fields_fingerprint).not.toBe(a.required_fields_fingerprint);
  });

  it('catalog_snapshot_ref names the whole catalog, in any order', () => {
    const ref = catalogSnapshotRef(catalog);
    expect(ref).toMatch(/^catalog:[0-9a-f]{64}$/);
    expect(find(input, catalog).catalog_snapshot_ref).toBe(ref);
    expect(catalogSnapshotRef([...catalog].reverse())).toBe(ref);
    // Everything the Finder's packet carries is in the snapshot, so a replay can re-run the Finder on it.
    const a0 = catalog[0] as CatalogEntry;
    for (const change of [
      { status: 'Deprecated' as const },
      { examples: ['other'] },
      { required_fields: [] },
      { impact: 'irreversible' as const },
      { access_action: 'other' },
      { rollback_simulation_id: 'undo' },
      { title: 'x' },
      { executor: { kind: 'builtin', name: 'fail' } },
    ]) {
      expect(catalogSnapshotRef([{ ...a0, ...change }, ...catalog.slice(1)])).not.toBe(ref);
    }
  });
});
