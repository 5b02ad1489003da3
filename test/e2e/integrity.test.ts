/**
 * SPEC §11 and §14 "Integrity": `kair verify` on clean and tampered workspaces, torn lines,
 * missing and lagging snapshots, a missing index. Each tamper gets its own copy of a small
 * template workspace.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bringAll,
  cloneWorkspace,
  contractDir,
  history,
  historyFile,
  indexFile,
  readIndex,
  writeIndexWhole,
  kair,
  kj,
  makeWorkspace,
  ok,
  okAsync,
  readJson,
  removeWorkspaces,
  snapshotFile,
} from '../helpers/cli.js';

afterAll(removeWorkspaces);

/** c1: propose + plan + request + approve + 3 grants (9+ events); c2: DRAFT. */
let T: string;
beforeAll(async () => {
  T = makeWorkspace();
  await bringAll(T, { c1: 'APPROVED', c2: 'DRAFT' });
  for (const c of ['a:one', 'b:two', 'c:three']) await okAsync(T, ['grant', 'c1', c]);
});

const kinds = (list: { kind: string }[]) => list.map((x) => x.kind);

describe('verify', () => {
  it('a clean workspace → exit 0 {ok: true, problems: [], warnings: []}', () => {
    const r = kj(T, ['verify']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, problems: [], warnings: [] });
    const one = kj(T, ['verify', 'c1']);
    expect(one.code).toBe(0);
    expect(one.json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('verify never writes', () => {
    const ws = cloneWorkspace(T);
    const before = readFileSync(historyFile(ws, 'c1'), 'utf8') + readFileSync(snapshotFile(ws, 'c1'), 'utf8');
    kj(ws, ['verify']);
    expect(readFileSync(historyFile(ws, 'c1'), 'utf8') + readFileSync(snapshotFile(ws, 'c1'), 'utf8')).toBe(before);
  });

  it('an edited field in a middle history line → exit 7 INTEGRITY_FAILED with a chain problem', () => {
    const ws = cloneWorkspace(T);
    const file = historyFile(ws, 'c1');
    const lines = readFileSync(file, 'utf8').split('\n');
    const mid = Math.floor((lines.length - 1) / 2);
    const ev = JSON.parse(lines[mid]!);
    ev.actor = 'mallory';
    lines[mid] = JSON.stringify(ev);
    writeFileSync(file, lines.join('\n'));
    const r = kj(ws, ['verify']);
    expect(r.code).toBe(7);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('INTEGRITY_FAILED');
    expect(r.json.problems).toContainEqual(expect.objectContaining({ contract_id: 'c1', kind: 'chain_broken' }));
    expect(r.json.problems.every((p: { contract_id?: string }) => p.contract_id !== 'c2')).toBe(true);
    // verify of the other contract alone is still clean
    expect(kj(ws, ['verify', 'c2']).code).toBe(0);
    // human output: the problem is printed, exit 7
    const h = kair(ws, ['verify']);
    expect(h.code).toBe(7);
    expect(h.stdout + h.stderr).toContain('chain');
  });

  it('an edited state in contract.json → exit 7 snapshot_mismatch', () => {
    const ws = cloneWorkspace(T);
    const snap = readJson(snapshotFile(ws, 'c1'));
    snap.state = 'ACCEPTED';
    writeFileSync(snapshotFile(ws, 'c1'), JSON.stringify(snap, null, 2));
    const r = kj(ws, ['verify']);
    expect(r.code).toBe(7);
    expect(r.json.error.code).toBe('INTEGRITY_FAILED');
    expect(kinds(r.json.problems)).toContain('snapshot_mismatch');
  });

  it('a history shorter than its snapshot (lost last event) fails the load with exit 7', () => {
    const ws = cloneWorkspace(T);
    const file = historyFile(ws, 'c1');
    const text = readFileSync(file, 'utf8');
    const cut = text.slice(0, text.lastIndexOf('\n', text.length - 2) + 1);
    writeFileSync(file, cut);
    const s = kj(ws, ['status', 'c1']);
    expect(s.code).toBe(7);
    expect(s.json.error.code).toBe('INTEGRITY_FAILED');
    const g = kj(ws, ['grant', 'c1', 'x:y']);
    expect(g.code).toBe(7);
    expect(readFileSync(file, 'utf8')).toBe(cut);
    expect(kj(ws, ['verify']).code).toBe(7);
  });
});

describe('torn last line', () => {
  let ws: string;
  beforeAll(() => {
    ws = cloneWorkspace(T);
  });

  it('verify → exit 0 with a torn_line warning; status still works', () => {
    const file = historyFile(ws, 'c1');
    const n = history(ws, 'c1').length;
    writeFileSync(file, readFileSync(file, 'utf8') + `{"seq":${n + 1},"at":"2026-01-30T12:00:00.000Z","type":"gra`);
    const r = kj(ws, ['verify']);
    expect(r.code).toBe(0);
    expect(r.json.ok).toBe(true);
    expect(r.json.problems).toEqual([]);
    expect(r.json.warnings).toContainEqual(expect.objectContaining({ contract_id: 'c1', kind: 'torn_line' }));
    const s = kj(ws, ['status', 'c1']);
    expect(s.code).toBe(0);
    expect(s.json.contract.history_seq).toBe(n);
    // read-only commands leave the torn bytes for the next writer
    expect(readFileSync(file, 'utf8').endsWith('"type":"gra')).toBe(true);
  });

  it('the next mutating command truncates it and records a recovery event; verify is clean after', () => {
    const n = history(ws, 'c1').length;
    const c = ok(ws, ['grant', 'c1', 'd:four']).contract;
    expect(c.controls.granted).toContain('d:four');
    const text = readFileSync(historyFile(ws, 'c1'), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('"type":"gra"');
    const h = history(ws, 'c1');
    expect(h).toHaveLength(n + 2);
    expect(h[n]).toMatchObject({ seq: n + 1, type: 'recovery', data: expect.objectContaining({ kind: 'torn_line' }) });
    expect(h[n + 1]).toMatchObject({ seq: n + 2, type: 'grant' });
    const r = kj(ws, ['verify']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });
});

describe('derived files: snapshot and index', () => {
  it('a deleted contract.json: status rebuilds it in memory, verify warns, the next writer restores it', () => {
    const ws = cloneWorkspace(T);
    const saved = readJson(snapshotFile(ws, 'c1'));
    rmSync(snapshotFile(ws, 'c1'));
    const s = kj(ws, ['status', 'c1']);
    expect(s.code).toBe(0);
    expect(s.json.contract).toEqual(saved);
    expect(existsSync(snapshotFile(ws, 'c1'))).toBe(false); // read-only: no write
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.problems).toEqual([]);
    expect(v.json.warnings.filter((w: { contract_id?: string }) => w.contract_id === 'c1').length).toBeGreaterThan(0);
    ok(ws, ['grant', 'c1', 'e:five']);
    expect(readJson(snapshotFile(ws, 'c1')).controls.granted).toContain('e:five');
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('a snapshot behind its history: status rolls forward in memory, verify warns snapshot_behind', () => {
    const ws = cloneWorkspace(T);
    const old = readFileSync(snapshotFile(ws, 'c1'), 'utf8');
    const newer = ok(ws, ['grant', 'c1', 'z:late']).contract;
    writeFileSync(snapshotFile(ws, 'c1'), old);
    const s = kj(ws, ['status', 'c1']);
    expect(s.code).toBe(0);
    expect(s.json.contract.controls.granted).toContain('z:late');
    expect(s.json.contract.history_seq).toBe(newer.history_seq);
    expect(s.json.contract).toEqual(newer);
    expect(readFileSync(snapshotFile(ws, 'c1'), 'utf8')).toBe(old); // read-only: not repaired
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.problems).toEqual([]);
    expect(v.json.warnings).toContainEqual(expect.objectContaining({ contract_id: 'c1', kind: 'snapshot_behind' }));
    // the next writer rolls it forward for good
    ok(ws, ['grant', 'c1', 'z:later']);
    expect(readJson(snapshotFile(ws, 'c1')).controls.granted).toEqual(expect.arrayContaining(['z:late', 'z:later']));
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('a deleted index.json: list still lists every contract, verify warns, the next writer rebuilds it', () => {
    const ws = cloneWorkspace(T);
    rmSync(indexFile(ws));
    const l = kj(ws, ['list']);
    expect(l.code).toBe(0);
    expect(l.json.contracts.map((c: { id: string }) => c.id)).toEqual(['c1', 'c2']);
    expect(l.json.contracts.find((c: { id: string }) => c.id === 'c1')).toMatchObject({ state: 'APPROVED', version: 1 });
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.problems).toEqual([]);
    expect(v.json.warnings.length).toBeGreaterThan(0);
    expect(v.json.warnings.some((w: { kind: string }) => /index/.test(w.kind))).toBe(true);
    ok(ws, ['grant', 'c2', 'q:r']);
    expect(readIndex(ws).map((e: { id: string }) => e.id)).toEqual(['c1', 'c2']);
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('list follows the contract folders, not the index: a folder removed by hand leaves the list, one the index lacks joins it', () => {
    const ws = cloneWorkspace(T);
    rmSync(contractDir(ws, 'c1'), { recursive: true });
    expect(ok(ws, ['list']).contracts.map((c: { id: string }) => c.id)).toEqual(['c2']);
    writeIndexWhole(ws, []);
    expect(ok(ws, ['list']).contracts).toEqual([expect.objectContaining({ id: 'c2', state: 'DRAFT' })]);
  });

  it('a lagging index entry is a warning and is repaired by the next command on that contract', () => {
    const ws = cloneWorkspace(T);
    const index = readIndex(ws);
    index.find((e: { id: string }) => e.id === 'c2').state = 'ACCEPTED';
    writeIndexWhole(ws, index);
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.warnings).toContainEqual(expect.objectContaining({ contract_id: 'c2' }));
    ok(ws, ['grant', 'c2', 'q:r']);
    expect(readIndex(ws).find((e: { id: string }) => e.id === 'c2').state).toBe('DRAFT');
  });
});
