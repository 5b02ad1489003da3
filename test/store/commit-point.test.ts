/**
 * The commit point (issue 11): the compare-and-append fence, checkpoints every 64 events, and
 * writers that fold from history (the newest valid checkpoint), never from contract.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../src/domain/canonical.js';
import type { Contract } from '../../src/domain/contract.js';
import { fold } from '../../src/domain/contract.js';
import { newDpc } from '../../src/domain/dpc.js';
import { isKairError } from '../../src/domain/errors.js';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import { CHECKPOINT_EVERY, checkChain } from '../../src/store/fs/chain.js';
import { appendToHistory, createContract } from '../../src/store/fs/contract-writes.js';
import { readHistory } from '../../src/store/fs/history.js';
import { loadForWrite } from '../../src/store/fs/writer-load.js';
import type { Workspace } from '../../src/store/fs/workspace.js';
import { paths, workspaceAt } from '../../src/store/fs/workspace.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const meta = { at: '2026-01-30T12:00:00.000Z', actor: 'tester' };

function fresh(): { ws: Workspace; c: Contract } {
  const root = mkdtempSync(join(tmpdir(), 'kair-commit-'));
  dirs.push(root);
  mkdirSync(join(root, '.kair'));
  const ws = workspaceAt(root);
  const { contract } = createContract(ws, 'c1', decidePropose('c1', 'x', []), meta, newDpc('x', meta.at), null);
  return { ws, c: contract };
}

const grant = (c: Contract, name: string) => decideGrant(c, 'grant', [name]);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isKairError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('the fence', () => {
  it('a writer whose head is stale appends nothing: CONCURRENT_WRITE', () => {
    const { ws, c } = fresh();
    appendToHistory(ws, c, [grant(c, 'a:b')], meta);
    const before = readFileSync(paths.history(ws, 'c1'), 'utf8');
    expect(codeOf(() => appendToHistory(ws, c, [grant(c, 'c:d')], meta))).toBe('CONCURRENT_WRITE');
    expect(readFileSync(paths.history(ws, 'c1'), 'utf8')).toBe(before);
  });

  it('two writers at the same head (both believing they hold the lock): exactly one appends', async () => {
    const { ws, c } = fresh();
    // A live process (not us) holds the marker of the next seq, as if it were appending it now.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
    try {
      mkdirSync(paths.fence(ws, 'c1'), { recursive: true });
      writeFileSync(join(paths.fence(ws, 'c1'), String(c.history_seq + 1)), JSON.stringify({ pid: other.pid, host: (await import('node:os')).hostname() }));
      expect(codeOf(() => appendToHistory(ws, c, [grant(c, 'a:b')], meta))).toBe('CONCURRENT_WRITE');
      expect(readHistory(paths.history(ws, 'c1')).events).toHaveLength(c.history_seq);
    } finally {
      other.kill('SIGKILL');
    }
    await new Promise((r) => other.once('exit', r));
    // Its writer is dead and its event never landed: the marker is taken over.
    const r = appendToHistory(ws, c, [grant(c, 'a:b')], meta);
    expect(r.events.map((e) => e.seq)).toEqual([c.history_seq + 1]);
  });

  it('markers far behind the tail are pruned', () => {
    const f = fresh();
    const ws = f.ws;
    let c = f.c;
    for (let i = 0; i < 2 * CHECKPOINT_EVERY + 3; i++) c = appendToHistory(ws, c, [grant(c, `n:p${i}`)], meta).contract;
    const left = readdirSync(paths.fence(ws, 'c1')).map(Number);
    expect(Math.min(...left)).toBeGreaterThanOrEqual(CHECKPOINT_EVERY);
    expect(left.length).toBeLessThanOrEqual(2 * CHECKPOINT_EVERY);
  });
});

describe('checkpoints', () => {
  it('every 64th event is a checkpoint vouching for the state before it, with its state file', () => {
    const f = fresh();
    const ws = f.ws;
    let c = f.c;
    for (let i = 0; i < 140; i++) c = appendToHistory(ws, c, [grant(c, `n:p${i}`)], meta).contract;
    const events = readHistory(paths.history(ws, 'c1')).events;
    expect(checkChain(events)).toEqual([]);
    const cps = events.filter((e) => e.type === 'checkpoint');
    expect(cps.map((e) => e.seq)).toEqual([64, 128]);
    for (const cp of cps) {
      const through = fold(events.filter((e) => e.seq < cp.seq))!;
      expect(cp.data).toEqual({ through_seq: cp.seq - 1, state_sha256: sha256Hex(canonicalJson(through)) });
      expect(JSON.parse(readFileSync(join(paths.checkpoints(ws, 'c1'), `${cp.seq - 1}.json`), 'utf8'))).toEqual(through);
    }
    // A checkpoint changes nothing but the head.
    expect(fold(events)).toEqual(c);
    expect(c.controls.granted).toHaveLength(140);
  });

  it('a writer folds from the newest valid checkpoint; a forged checkpoint file is ignored', () => {
    const f = fresh();
    const ws = f.ws;
    let c = f.c;
    for (let i = 0; i < 70; i++) c = appendToHistory(ws, c, [grant(c, `n:p${i}`)], meta).contract;
    expect(loadForWrite(ws, 'c1').contract).toEqual(c);
    const file = join(paths.checkpoints(ws, 'c1'), '63.json');
    const forged = JSON.parse(readFileSync(file, 'utf8'));
    forged.state = 'APPROVED';
    writeFileSync(file, JSON.stringify(forged));
    expect(loadForWrite(ws, 'c1').contract).toEqual(c);
  });

  it('a writer refuses a broken link after the checkpoint (INTEGRITY_FAILED)', () => {
    const f = fresh();
    const ws = f.ws;
    let c = f.c;
    for (let i = 0; i < 70; i++) c = appendToHistory(ws, c, [grant(c, `n:p${i}`)], meta).contract;
    const file = paths.history(ws, 'c1');
    const lines = readFileSync(file, 'utf8').split('\n');
    const e = JSON.parse(lines[66]!);
    e.actor = 'mallory';
    lines[66] = JSON.stringify(e);
    writeFileSync(file, lines.join('\n'));
    expect(codeOf(() => loadForWrite(ws, 'c1'))).toBe('INTEGRITY_FAILED');
  });

  it('the snapshot is classified, never trusted', () => {
    const f = fresh();
    const ws = f.ws;
    let c = f.c;
    const first = c;
    writeFileSync(paths.snapshot(ws, 'c1'), JSON.stringify(first));
    for (let i = 0; i < 3; i++) c = appendToHistory(ws, c, [grant(c, `n:p${i}`)], meta).contract;
    expect(loadForWrite(ws, 'c1').snapshot).toBe('behind');
    writeFileSync(paths.snapshot(ws, 'c1'), JSON.stringify(c));
    expect(loadForWrite(ws, 'c1').snapshot).toBe('current');
    writeFileSync(paths.snapshot(ws, 'c1'), JSON.stringify({ ...c, state: 'APPROVED' }));
    const forged = loadForWrite(ws, 'c1');
    expect(forged.snapshot).toBe('foreign');
    expect(forged.contract.state).toBe('DRAFT');
    rmSync(paths.snapshot(ws, 'c1'));
    expect(loadForWrite(ws, 'c1').snapshot).toBe('missing');
  });
});
