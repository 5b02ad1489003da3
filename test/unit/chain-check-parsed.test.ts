// verify re-derives each line's hashed text from the parsed event without re-sorting what is in
// order already: a line in any other form must be judged exactly as before.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson } from '../../src/domain/canonical.js';
import type { Contract, HistoryEvent } from '../../src/domain/contract.js';
import { decideGrant } from '../../src/domain/lifecycle.js';
import { checkChain, checkLinks, sealEvent } from '../../src/store/fs/chain.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const AT = '2026-01-01T00:00:00.000Z';

function chain(): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= 4; seq++) {
    const data = seq === 1 ? { id: 'c1', intent: 'é ✓', requires: [] } : { controls: ['a:b'], changed: ['a:b'], granted: seq % 2 ? [] : ['a:b'], nested: { z: 1, a: [{ y: 2, b: 3 }] } };
    const e = sealEvent({ type: seq === 1 ? 'propose' : 'grant', state: 'DRAFT', data }, { seq, at: AT, actor: 'alice', prev });
    out.push(e);
    prev = e.hash;
  }
  return out;
}
/** What verify sees: each line as written, read back. */
const reparse = (lines: string[]) => lines.map((l) => JSON.parse(l) as HistoryEvent);
const written = () => chain().map((e) => JSON.stringify(e));

describe('chain checks of parsed lines', () => {
  it('kair writes a grant line as canonical JSON with the hash member appended last', () => {
    const data = decideGrant({ id: 'c1', state: 'DRAFT', controls: { required: [], granted: [] } } as unknown as Contract, 'grant', ['a:b']).data;
    const e = sealEvent({ type: 'grant', state: 'DRAFT', data }, { seq: 2, at: AT, actor: 'alice', prev: GENESIS_HASH });
    const { hash, ...rest } = e;
    expect(JSON.stringify(e)).toBe(canonicalJson(rest).slice(0, -1) + `,"hash":"${hash}"}`);
  });

  it('lines as kair writes them, and the same events with keys sorted, whitespace and escapes, all pass', () => {
    const lines = written();
    expect(checkChain(reparse(lines))).toEqual([]);
    const sorted = chain().map((e) => {
      const { hash, ...rest } = e;
      return canonicalJson(rest).replace(/^\{/, `{"hash": ${JSON.stringify(hash)}, `).replace('"actor"', '"\\u0061ctor"');
    });
    expect(checkChain(reparse(sorted))).toEqual([]);
    expect(checkLinks(reparse(sorted).slice(1), { seq: 1, hash: chain()[0]!.hash })).toBeNull();
  });

  it('a line whose hash was computed over its own non-canonical text is caught', () => {
    const events = chain();
    const e = events[1]!;
    const { hash: _h, ...rest } = e;
    // Same content as kair would hash, but hashed as written (unsorted keys) instead of canonically.
    const forged = { ...rest, hash: sha256(e.prev + JSON.stringify(rest)) };
    expect(JSON.stringify(rest)).not.toBe(canonicalJson(rest));
    const lines = written();
    lines[1] = JSON.stringify(forged);
    const problems = checkChain(reparse(lines));
    expect(problems.map((p) => p.message)).toContain('event 2: hash does not match its content');
    expect(checkLinks(reparse(lines).slice(1), { seq: 1, hash: events[0]!.hash })).toBe('history event 2 does not match its hash');
  });

  it('a value changed inside an already-sorted subtree is caught', () => {
    const lines = written();
    lines[2] = lines[2]!.replace('"y":2', '"y":3');
    expect(checkChain(reparse(lines)).map((p) => p.message)).toContain('event 3: hash does not match its content');
  });
});
