/**
 * The index as a checkpoint plus an append-only log (decision 028): `list --limit/--after`, and
 * `list`/`verify` after hand edits and truncations of index.json and index.log.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOW, cloneWorkspace, indexCompactingFile, kair, indexFile, indexLogFile, kj, makeWorkspace, ok, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const ids = (r: { contracts: { id: string }[] }) => r.contracts.map((c) => c.id);
const compact = { env: { KAIR_INDEX_COMPACT_BYTES: '1' } };

/** What each contract's history says, as list prints it. */
function rebuilt(ws: string, names: string[]) {
  return names.map((id) => {
    const c = ok(ws, ['status', id]).contract;
    return { id, intent: c.intent, state: c.state, version: c.version, updated_at: c.updated_at };
  });
}

let T: string; // c1..c5 proposed out of order, some granted; index.json compacted, later lines in index.log
beforeAll(() => {
  T = makeWorkspace();
  for (const id of ['c3', 'c1', 'c5']) ok(T, ['propose', `intent ${id}`, '--id', id]);
  ok(T, ['grant', 'c1', 'a:b'], compact); // folds the log into index.json
  for (const id of ['c2', 'c4']) ok(T, ['propose', `intent ${id}`, '--id', id]);
  ok(T, ['grant', 'c3', 'a:b']);
});

describe('list --limit / --after', () => {
  it('pages through checkpoint and log entries in id order; next_after is the cursor, null on the last page', () => {
    const ws = cloneWorkspace(T);
    expect(existsSync(indexLogFile(ws))).toBe(true);
    expect(readFileSync(indexFile(ws), 'utf8').startsWith('[\n')).toBe(true);
    const all = ok(ws, ['list']);
    expect(ids(all)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    expect(all).not.toHaveProperty('next_after');
    expect(all.contracts).toEqual(rebuilt(ws, ['c1', 'c2', 'c3', 'c4', 'c5']));
    const p1 = ok(ws, ['list', '--limit', '2']);
    expect(p1).toMatchObject({ ok: true, next_after: 'c2' });
    expect(p1.contracts).toEqual(all.contracts.slice(0, 2));
    const p2 = ok(ws, ['list', '--limit', '2', '--after', 'c2']);
    expect(p2.contracts).toEqual(all.contracts.slice(2, 4));
    expect(p2.next_after).toBe('c4');
    const p3 = ok(ws, ['list', '--limit', '2', '--after', 'c4']);
    expect(p3).toEqual({ ok: true, contracts: all.contracts.slice(4), next_after: null });
    expect(ok(ws, ['list', '--limit', '5']).next_after).toBeNull();
    // an id that is not a contract is still a cursor: the page starts after it
    expect(ids(ok(ws, ['list', '--limit', '9', '--after', 'c2a']))).toEqual(['c3', 'c4', 'c5']);
    expect(ids(ok(ws, ['list', '--limit', '9', '--state', 'draft', '--after', 'c1']))).toEqual(['c2', 'c3', 'c4', 'c5']);
  });

  it('text output adds the command for the next page', () => {
    const r = kair(T, ['list', '--limit', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('(more: kair list --limit 2 --after c2)');
    expect(kair(T, ['list']).stdout).not.toContain('more:');
  });

  it.each([
    [['--limit', '0'], '--limit'],
    [['--limit', 'ten'], '--limit'],
    [['--after', '../x'], '--after'],
    [['--after', 'A'], '--after'],
  ])('list %j is a usage error naming the flag (exit 2), nothing written', (args, flag) => {
    const ws = cloneWorkspace(T);
    const before = readFileSync(indexLogFile(ws), 'utf8');
    const r = kj(ws, ['list', ...args]);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('USAGE_ERROR');
    expect(r.json.error.message).toContain(flag);
    expect(readFileSync(indexLogFile(ws), 'utf8')).toBe(before);
  });
});

describe('hand edits and truncations', () => {
  it('a torn last record of index.log: that entry falls back to an earlier one (a warning), and the next writer of that contract rewrites it', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['close', 'c3', 'not needed']);
    const log = indexLogFile(ws);
    truncateSync(log, readFileSync(log).length - 20); // cuts c3's CLOSED record
    expect(ok(ws, ['list']).contracts.find((c: { id: string }) => c.id === 'c3').state).toBe('DRAFT');
    const l = ok(ws, ['list', '--limit', '10']);
    expect(ids(l)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    const v = kj(ws, ['verify']);
    expect(v.code, JSON.stringify(v.json)).toBe(0);
    expect(v.json.warnings).toContainEqual(expect.objectContaining({ contract_id: 'c3', kind: 'index_behind' }));
    // a writer's record after the torn one is not glued to it
    ok(ws, ['rewind', 'c3', 'reopened']);
    expect(ok(ws, ['list', '--limit', '10']).contracts).toEqual(rebuilt(ws, ['c1', 'c2', 'c3', 'c4', 'c5']));
    expect(kj(ws, ['verify']).json.warnings.filter((w: { contract_id?: string }) => w.contract_id === 'c3')).toEqual([]);
  });

  it('garbage lines in index.log and index.json are skipped with a warning; a compaction drops them', () => {
    const ws = cloneWorkspace(T);
    appendFileSync(indexLogFile(ws), 'not json\n{"id":"../x","intent":1}\n');
    const cp = readFileSync(indexFile(ws), 'utf8').split('\n');
    cp.splice(2, 0, '{"half": ,');
    writeFileSync(indexFile(ws), cp.join('\n'));
    expect(ok(ws, ['list', '--limit', '10']).contracts).toEqual(rebuilt(ws, ['c1', 'c2', 'c3', 'c4', 'c5']));
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.warnings).toContainEqual(expect.objectContaining({ kind: 'index_behind', message: expect.stringMatching(/^3 line/) }));
    ok(ws, ['grant', 'c2', 'q:r'], compact);
    expect(existsSync(indexLogFile(ws))).toBe(false);
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('an entry whose folder is missing is contract_missing in verify (exit 7) and never listed', () => {
    const ws = cloneWorkspace(T);
    appendFileSync(indexLogFile(ws), '\n{"id":"ghost","intent":"x","state":"DRAFT","updated_at":"2026-01-01T00:00:00.000Z","version":1}\n');
    expect(ids(ok(ws, ['list', '--limit', '10']))).not.toContain('ghost');
    expect(ids(ok(ws, ['list']))).not.toContain('ghost');
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(7);
    expect(v.json.problems).toEqual([expect.objectContaining({ contract_id: 'ghost', kind: 'contract_missing' })]);
  });

  it('a pending entry without its folder (a propose killed before its rename) is a warning, not listed, dropped by the next compaction', () => {
    const ws = cloneWorkspace(T);
    appendFileSync(indexLogFile(ws), '\n{"id":"c0","intent":"x","state":"DRAFT","updated_at":"2026-01-01T00:00:00.000Z","version":1,"pending":true}\n');
    expect(ids(ok(ws, ['list', '--limit', '2']))).toEqual(['c1', 'c2']);
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.warnings).toContainEqual(expect.objectContaining({ contract_id: 'c0', kind: 'index_behind' }));
    ok(ws, ['grant', 'c2', 'q:r'], compact);
    expect(readFileSync(indexFile(ws), 'utf8')).not.toContain('"c0"');
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('an unsorted index.json (edited by hand, or the one-line format of older versions) still pages in id order', () => {
    for (const form of ['new', 'old'] as const) {
      const ws = cloneWorkspace(T);
      ok(ws, ['grant', 'c5', 'q:r'], compact);
      const entries = JSON.parse(readFileSync(indexFile(ws), 'utf8')).reverse();
      writeFileSync(indexFile(ws), form === 'old' ? JSON.stringify(entries) : `[\n${entries.map((e: unknown) => JSON.stringify(e)).join(',\n')}\n]\n`);
      const want = rebuilt(ws, ['c1', 'c2', 'c3', 'c4', 'c5']);
      expect(ok(ws, ['list', '--limit', '2', '--after', 'c1']).contracts, form).toEqual(want.slice(1, 3));
      expect(ok(ws, ['list']).contracts, form).toEqual(want);
      // the next compaction writes it sorted again
      ok(ws, ['grant', 'c4', 'q:s'], compact);
      expect(JSON.parse(readFileSync(indexFile(ws), 'utf8')).map((e: { id: string }) => e.id)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    }
  });

  it('a compaction killed after setting the log aside: readers merge index.compacting.log, the next compaction folds both logs', () => {
    const ws = cloneWorkspace(T);
    const want = rebuilt(ws, ['c1', 'c2', 'c3', 'c4', 'c5']);
    writeFileSync(indexCompactingFile(ws), readFileSync(indexLogFile(ws)));
    writeFileSync(indexLogFile(ws), '');
    expect(ok(ws, ['list', '--limit', '10']).contracts).toEqual(want);
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });
    ok(ws, ['grant', 'c1', 'q:r'], compact);
    expect(existsSync(indexCompactingFile(ws)) || existsSync(indexLogFile(ws))).toBe(false);
    expect(ok(ws, ['list', '--limit', '10']).contracts).toEqual(rebuilt(ws, ['c1', 'c2', 'c3', 'c4', 'c5']));
  });
});

describe('what init writes, and folds another host holds up', () => {
  it("a fresh workspace's index.json is the checkpoint format, so list --limit pages it from the first command on", () => {
    const ws = makeWorkspace();
    expect(readFileSync(indexFile(ws), 'utf8')).toBe('[\n]\n');
    expect(ok(ws, ['list'])).toEqual({ ok: true, contracts: [] });
    expect(ok(ws, ['list', '--limit', '5'])).toEqual({ ok: true, contracts: [], next_after: null });
    for (const id of ['c2', 'c1']) ok(ws, ['propose', `intent ${id}`, '--id', id]);
    expect(readFileSync(indexFile(ws), 'utf8')).toBe('[\n]\n'); // not folded: the entries are in index.log
    expect(ids(ok(ws, ['list', '--limit', '5']))).toEqual(['c1', 'c2']);
    // Tell the paths apart: with its log line gone, c1 is in the whole list (which reads the
    // contract folders) but not in a page (which reads only the index, decision 028). An index
    // that cannot be paged (the old one-line `[]`) would be read whole and list c1 here too.
    writeFileSync(indexLogFile(ws), readFileSync(indexLogFile(ws), 'utf8').split('\n').filter((l) => !l.includes('"id":"c1"')).join('\n'));
    expect(ids(ok(ws, ['list', '--limit', '5']))).toEqual(['c2']);
    expect(ids(ok(ws, ['list']))).toEqual(['c1', 'c2']);
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [{ contract_id: 'c1', kind: 'index_behind' }] });
  });

  it("a fold held up by another host's index lock: writes stay silent and listed; verify says why once the log is overdue", () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'Remote', '--id', 'c1']);
    const lock = join(ws, '.kair', 'locks', '_index.lock');
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'holder.json'), JSON.stringify({ host: 'build-7.elsewhere', boot_id: 'another-machine', pid_ns: null, pid: 48213, pid_start: 777, actor: 'mallory', command: 'grant', since: NOW }));
    const small = { env: { KAIR_INDEX_COMPACT_BYTES: '100000' } };
    const g = kair(ws, ['grant', 'c1', 'a:b'], compact);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stderr).not.toMatch(/index|LOCK_BUSY/); // was: "the index entry of c1 was not updated (LOCK_BUSY: ...)"
    const r = kair(ws, ['list', '--limit', '5', '--json'], compact);
    expect(r.stderr).toBe('');
    expect(r.json.contracts).toMatchObject([{ id: 'c1', version: 1 }]);
    expect(ok(ws, ['status', 'c1']).contract.controls.granted).toEqual(['a:b']);
    expect(readFileSync(indexFile(ws), 'utf8')).toBe('[\n]\n'); // nothing folded
    // a command that records nothing tries the fold too (what a killed writer left): it was LOCK_BUSY, exit 6
    ok(ws, ['propose', 'Other', '--id', 'c2']);
    ok(ws, ['close', 'c2', 'done']);
    const again = kair(ws, ['close', 'c2', 'done']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/index|LOCK_BUSY/);
    // not overdue: nothing to say
    expect(kj(ws, ['verify'], small).json).toMatchObject({ ok: true, warnings: [] });
    const v = kj(ws, ['verify'], compact).json;
    expect(v).toMatchObject({ ok: true, problems: [], warnings: [{ kind: 'index_behind' }] });
    for (const part of ['index.log', 'build-7.elsewhere', '48213', 'kair unlock --index --force']) expect(v.warnings[0].message).toContain(part);
    // once the lock is gone, the next writer folds the log
    ok(ws, ['unlock', '--index', '--force']);
    ok(ws, ['grant', 'c1', 'c:d'], compact);
    expect(ids({ contracts: JSON.parse(readFileSync(indexFile(ws), 'utf8')) })).toEqual(['c1', 'c2']);
    expect(kj(ws, ['verify'], compact).json).toMatchObject({ ok: true, warnings: [] });
  });
});
