import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, it, expect } from 'vitest';
import { GENESIS_HASH, canonicalJson } from '../../src/domain/canonical.js';
import type { EventDraft, HistoryEvent } from '../../src/domain/contract.js';
import { appendEvents, checkChain, hashEvent, sealEvent } from '../../src/store/fs/chain.js';
import { readHistory, readHistoryTail, truncateTorn } from '../../src/store/fs/history.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'kair-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = () => path.join(tmpRoot, `history-${++fileNo}.jsonl`);

const AT = '2025-01-02T03:04:05.000Z';
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

function draft(i: number): EventDraft {
  return i === 1
    ? { type: 'propose', state: 'DRAFT', data: { id: 'c1', intent: 'do things é', requires: [] } }
    : { type: 'grant', state: 'DRAFT', data: { controls: [`local:read`], changed: [], granted: ['local:read'], n: i } };
}

function chain(n: number): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const e = sealEvent(draft(i), { seq: i, at: AT, actor: i % 2 ? 'alice' : 'bob', prev });
    out.push(e);
    prev = e.hash;
  }
  return out;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('sealEvent / hashEvent', () => {
  it('seals the §11 line shape {seq, at, type, actor, state, data, prev, hash}', () => {
    const e = sealEvent(draft(1), { seq: 1, at: AT, actor: 'alice', prev: GENESIS_HASH });
    expect(Object.keys(e).sort()).toEqual(['actor', 'at', 'data', 'hash', 'prev', 'seq', 'state', 'type']);
    expect(e).toMatchObject({ seq: 1, at: AT, type: 'propose', actor: 'alice', state: 'DRAFT', prev: GENESIS_HASH });
    expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hash = sha256(prev + canonical(event without hash))', () => {
    for (const e of chain(5)) {
      const { hash, ...rest } = e;
      expect(hash).toBe(sha256(e.prev + canonicalJson(rest)));
      expect(hashEvent(rest)).toBe(hash);
    }
  });

  it('the hash does not depend on key order of the data', () => {
    const a = sealEvent({ type: 'dpc', state: 'DRAFT', data: { x: 1, y: { b: 2, a: 1 } } }, { seq: 2, at: AT, actor: 'a', prev: GENESIS_HASH });
    const b = sealEvent({ type: 'dpc', state: 'DRAFT', data: { y: { a: 1, b: 2 }, x: 1 } }, { seq: 2, at: AT, actor: 'a', prev: GENESIS_HASH });
    expect(a.hash).toBe(b.hash);
  });

  it('the first prev is GENESIS and each prev is the previous hash', () => {
    const events = chain(5);
    expect(events[0].prev).toBe(GENESIS_HASH);
    for (let i = 1; i < events.length; i++) expect(events[i].prev).toBe(events[i - 1].hash);
  });
});

describe('checkChain', () => {
  it('a chain of 5 sealed events passes', () => {
    expect(checkChain(chain(5))).toEqual([]);
  });

  it('the empty chain passes', () => {
    expect(checkChain([])).toEqual([]);
  });

  const edits: Array<[string, (e: HistoryEvent) => void]> = [
    ['at', (e) => void (e.at = '2030-01-01T00:00:00.000Z')],
    ['type', (e) => void (e.type = 'revoke')],
    ['actor', (e) => void (e.actor = 'mallory')],
    ['state', (e) => void (e.state = 'APPROVED')],
    ['data (value)', (e) => void ((e.data as { n: number }).n = 999)],
    ['data (added key)', (e) => void (e.data.extra = true)],
    ['data (removed key)', (e) => void delete e.data.changed],
    ['prev', (e) => void (e.prev = GENESIS_HASH)],
  ];

  it.each(edits)('editing %s of event 3 → a problem at seq 3 and none elsewhere', (_field, edit) => {
    const events = chain(5);
    edit(events[2]);
    const problems = checkChain(events);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.map((p) => p.seq)).toContain(3);
    expect(problems.every((p) => p.seq === 3)).toBe(true);
  });

  it('editing seq of event 3 → problems reported for line 3 only', () => {
    const events = chain(5);
    events[2].seq = 33;
    const problems = checkChain(events);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.seq === 33)).toBe(true);
  });

  it('editing the hash of event 3 → problems at 3 (hash) and 4 (prev link)', () => {
    const events = chain(5);
    events[2].hash = 'f'.repeat(64);
    const seqs = checkChain(events).map((p) => p.seq);
    expect(seqs).toContain(3);
    expect(seqs).toContain(4);
    expect(seqs.every((s) => s === 3 || s === 4)).toBe(true);
  });

  it('re-hashing an edited event 3 still breaks the link at 4', () => {
    const events = chain(5);
    events[2].actor = 'mallory';
    const { hash: _old, ...rest } = events[2];
    events[2].hash = hashEvent(rest);
    expect(checkChain(events).map((p) => p.seq)).toEqual([4]);
  });

  it('swapping two events → problems', () => {
    const events = chain(5);
    [events[1], events[2]] = [events[2], events[1]];
    const problems = checkChain(events);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((p) => p.seq === 2 || p.seq === 3)).toBe(true);
  });

  it('a dropped event → problems', () => {
    const events = chain(5);
    events.splice(2, 1);
    expect(checkChain(events).length).toBeGreaterThan(0);
  });

  it('a chain that does not start at GENESIS → problem at seq 1', () => {
    const events = chain(3);
    const bad = sealEvent(draft(1), { seq: 1, at: AT, actor: 'alice', prev: 'a'.repeat(64) });
    expect(checkChain([bad, ...events.slice(1)]).map((p) => p.seq)).toContain(1);
  });
});

describe('appendEvents / readHistory', () => {
  it('appends sealed, linked events that read back and verify', () => {
    const file = tmpFile();
    const first = appendEvents(file, { seq: 0, hash: GENESIS_HASH }, [draft(1), draft(2)], { at: AT, actor: 'alice' });
    expect(first.map((e) => e.seq)).toEqual([1, 2]);
    expect(first[0].prev).toBe(GENESIS_HASH);
    const last = first[first.length - 1];
    const second = appendEvents(file, { seq: last.seq, hash: last.hash }, [draft(3), draft(4), draft(5)], { at: AT, actor: 'bob' });
    expect(second.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(second[0].prev).toBe(last.hash);
    expect(second.every((e) => e.actor === 'bob' && e.at === AT)).toBe(true);

    const text = fs.readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(6);

    const read = readHistory(file);
    expect(read.tornBytes).toBe(0);
    expect(read.badLines).toEqual([]);
    expect(read.events).toEqual([...first, ...second]);
    expect(checkChain(read.events)).toEqual([]);
  });

  it('appending no drafts writes nothing', () => {
    const file = tmpFile();
    expect(appendEvents(file, { seq: 0, hash: GENESIS_HASH }, [], { at: AT, actor: 'a' })).toEqual([]);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a torn last line (no trailing newline) is reported in tornBytes (bytes) and not parsed', () => {
    const file = tmpFile();
    const events = appendEvents(file, { seq: 0, hash: GENESIS_HASH }, [1, 2, 3, 4, 5].map(draft), { at: AT, actor: 'a' });
    const torn = '{"seq":6,"at":"é✓';
    fs.appendFileSync(file, torn);
    const read = readHistory(file);
    expect(read.events).toEqual(events);
    expect(read.tornBytes).toBe(Buffer.byteLength(torn, 'utf8'));
    expect(read.tornBytes).toBeGreaterThan(torn.length);
    expect(read.badLines).toEqual([]);
    expect(checkChain(read.events)).toEqual([]);
  });

  it('truncateTorn(tornBytes) removes exactly the torn line', () => {
    const file = tmpFile();
    const events = appendEvents(file, { seq: 0, hash: GENESIS_HASH }, [1, 2, 3].map(draft), { at: AT, actor: 'a' });
    const intact = fs.readFileSync(file);
    fs.appendFileSync(file, '{"seq":4,"at":"é✓');
    truncateTorn(file, readHistory(file).tornBytes);
    expect(fs.readFileSync(file).equals(intact)).toBe(true);
    expect(readHistory(file)).toEqual({ events, tornBytes: 0, badLines: [] });
  });

  // Was a bug (fixed): src/store/fs/history.ts parseLines() decodes the file as UTF-8 *before* measuring the
  // torn tail (Buffer.byteLength of the decoded string). A write torn in the middle of a
  // multi-byte character leaves an incomplete UTF-8 sequence, which decodes to U+FFFD (3 bytes),
  // so tornBytes is too large: bytes [7b 22 c3] are reported as 5, [7b 22 e2 9c] as 5. The next
  // writer's truncateTorn(file, tornBytes) then also cuts the "}\n" of the last acknowledged
  // event, corrupting history (SPEC §11/§12: a torn line is dropped, acknowledged events never
  // lost). Fix: compute tornBytes on the raw Buffer (bytes after the last 0x0a).
  it.each([
    ['half of a 2-byte char', [0x7b, 0x22, 0xc3]],
    ['2/3 of a 3-byte char', [0x7b, 0x22, 0xe2, 0x9c]],
  ])('a torn line ending in %s is measured in raw bytes', (_n, bytes) => {
    const file = tmpFile();
    const events = appendEvents(file, { seq: 0, hash: GENESIS_HASH }, [1, 2, 3].map(draft), { at: AT, actor: 'a' });
    const intact = fs.readFileSync(file);
    fs.appendFileSync(file, Buffer.from(bytes));
    expect(readHistory(file).tornBytes).toBe(bytes.length);
    expect(readHistoryTail(file, 3).tornBytes).toBe(bytes.length);
    truncateTorn(file, readHistory(file).tornBytes);
    expect(fs.readFileSync(file).equals(intact)).toBe(true);
    expect(readHistory(file).events).toEqual(events);
  });

  it('a torn line that happens to be complete JSON is still torn (no newline = never acknowledged)', () => {
    const file = tmpFile();
    const events = chain(3);
    fs.writeFileSync(file, events.slice(0, 2).map((e) => JSON.stringify(e) + '\n').join('') + JSON.stringify(events[2]));
    const read = readHistory(file);
    expect(read.events).toEqual(events.slice(0, 2));
    expect(read.tornBytes).toBe(Buffer.byteLength(JSON.stringify(events[2])));
  });

  it('an unparsable complete line is reported in badLines (1-based)', () => {
    const file = tmpFile();
    const events = chain(3);
    fs.writeFileSync(file, [JSON.stringify(events[0]), '{not json', JSON.stringify(events[2])].join('\n') + '\n');
    const read = readHistory(file);
    expect(read.badLines).toEqual([2]);
    expect(read.events).toEqual([events[0], events[2]]);
    expect(read.tornBytes).toBe(0);
  });

  it('an empty file reads as no events', () => {
    const file = tmpFile();
    fs.writeFileSync(file, '');
    expect(readHistory(file)).toEqual({ events: [], tornBytes: 0, badLines: [] });
  });
});

describe('readHistoryTail', () => {
  const N = 2000;
  const file = tmpFile();
  const drafts: EventDraft[] = [draft(1)];
  for (let i = 2; i <= N; i++) {
    drafts.push({ type: 'dpc', state: 'DRAFT', data: { i, note: `event number ${i} ${'x'.repeat(i % 97)}` } });
  }
  const all = appendEvents(file, { seq: 0, hash: GENESIS_HASH }, drafts, { at: AT, actor: 'alice' });

  it('the 2,000-event file is a valid chain', () => {
    expect(all).toHaveLength(N);
    expect(fs.statSync(file).size).toBeGreaterThan(16 * 1024 * 4);
    expect(checkChain(readHistory(file).events)).toEqual([]);
  });

  it.each([1, 2, 3, 50, 500, 1000, 1500, 1900, 1990, 1999, 2000])('k = %i returns exactly events k..2000', (k) => {
    const read = readHistoryTail(file, k);
    expect(read.events.map((e) => e.seq)).toEqual(Array.from({ length: N - k + 1 }, (_, i) => k + i));
    expect(read.events).toEqual(all.slice(k - 1));
    expect(read.tornBytes).toBe(0);
    expect(read.badLines).toEqual([]);
  });

  it('k = 0 returns the whole file', () => {
    expect(readHistoryTail(file, 0).events).toEqual(all);
  });

  it('with a torn last line: same events, tornBytes reported', () => {
    const torn = tmpFile();
    fs.copyFileSync(file, torn);
    fs.appendFileSync(torn, '{"seq":2001,"at":"20');
    const read = readHistoryTail(torn, 1995);
    expect(read.events.map((e) => e.seq)).toEqual([1995, 1996, 1997, 1998, 1999, 2000]);
    expect(read.tornBytes).toBe(Buffer.byteLength('{"seq":2001,"at":"20'));
  });

  it('the tail events link to each other (the one at k is included to check the link)', () => {
    const read = readHistoryTail(file, 1234);
    for (let i = 1; i < read.events.length; i++) expect(read.events[i].prev).toBe(read.events[i - 1].hash);
    expect(read.events[0]).toEqual(clone(all[1233]));
  });
});
