import { describe, expect, it } from 'vitest';
import type { IndexEntry } from '../../src/store/fs/contracts.js';
import { upsertById } from '../../src/store/fs/contract-writes.js';

const entry = (id: string, state = 'DRAFT'): IndexEntry => ({ id, intent: `intent ${id}`, state, updated_at: '2026-01-01T00:00:00.000Z', version: 1 });
const ids = (index: IndexEntry[]) => index.map((e) => `${e.id}:${e.state}`);

// What the index update did before it placed entries by binary search: a map by id, a sort.
function reference(index: IndexEntry[], entries: IndexEntry[]): IndexEntry[] {
  const byId = new Map(index.map((e) => [e.id, e]));
  for (const e of entries) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

describe('upsertById (the index update)', () => {
  it.each([
    ['into an empty index', [], [entry('b')], ['b:DRAFT']],
    ['before the first', [entry('b'), entry('d')], [entry('a')], ['a:DRAFT', 'b:DRAFT', 'd:DRAFT']],
    ['between two', [entry('b'), entry('d')], [entry('c')], ['b:DRAFT', 'c:DRAFT', 'd:DRAFT']],
    ['after the last', [entry('b'), entry('d')], [entry('e')], ['b:DRAFT', 'd:DRAFT', 'e:DRAFT']],
    ['replacing one in place', [entry('b'), entry('d')], [entry('d', 'RUNNING')], ['b:DRAFT', 'd:RUNNING']],
    ['several, the same id twice (the last wins)', [entry('c')], [entry('d'), entry('a'), entry('d', 'PAUSED')], ['a:DRAFT', 'c:DRAFT', 'd:PAUSED']],
    ['into an unsorted index with a duplicate (edited by hand): rebuilt whole', [entry('d'), entry('b'), entry('d', 'FAILED')], [entry('c')], ['b:DRAFT', 'c:DRAFT', 'd:FAILED']],
  ] as const)('%s', (_name, index, entries, expected) => {
    const before = JSON.stringify(index);
    expect(ids(upsertById([...index], [...entries]))).toEqual(expected);
    expect(JSON.stringify(index)).toBe(before); // the input is left as it was
  });

  it('agrees with a map and a sort on 2,000 generated cases', () => {
    let seed = 7;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const states = ['DRAFT', 'PLANNED', 'RUNNING'];
    for (let i = 0; i < 2000; i++) {
      const index = reference([], Array.from({ length: next(40) }, () => entry(`c${next(60)}`, states[next(3)])));
      const entries = Array.from({ length: 1 + next(3) }, () => entry(`c${next(60)}`, states[next(3)]));
      expect(upsertById(index, entries)).toEqual(reference(index, entries));
    }
  });
});
