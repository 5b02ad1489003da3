/**
 * verify skips re-parsing a checkpoint file whose bytes hash to the fold its event vouches for;
 * every other file is judged as before: a reformatted file with the same state passes, an edited
 * one is snapshot_mismatch, and a long history's every line still counts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import { newDpc } from '../../src/domain/dpc.js';
import type { Contract } from '../../src/domain/contract.js';
import { commitEvents, createContract, writeIndex } from '../../src/store/fs/contract-writes.js';
import { indexEntry } from '../../src/store/fs/contracts.js';
import { paths, workspaceAt } from '../../src/store/fs/workspace.js';
import { cloneWorkspace, kj, makeWorkspace, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

let T: string;
beforeAll(() => {
  // 200 grant/revoke events written by kair's own store functions: checkpoints at 64, 128, 192.
  T = makeWorkspace();
  const ws = workspaceAt(T);
  const meta = { at: '2026-01-30T12:00:00.000Z', actor: 'tester' };
  let c: Contract = createContract(ws, 'c1', decidePropose('c1', 'long', []), meta, newDpc('long', meta.at), null).contract;
  for (let i = 0; i < 4; i++) {
    const drafts = [];
    let k = c;
    for (let j = 0; j < 50; j++) {
      const d = decideGrant(k, k.controls.granted.length ? 'revoke' : 'grant', ['local:read']);
      drafts.push(d);
      k = { ...k, controls: { ...k.controls, granted: d.data.granted as string[] } };
    }
    c = commitEvents(ws, c, drafts, meta).contract;
  }
  writeIndex(ws, [indexEntry(c)]);
});

const cpFile = (ws: string, k: number) => join(paths.checkpoints(workspaceAt(ws), 'c1'), `${k}.json`);

describe('verify and checkpoint files', () => {
  it('a long history written by kair verifies clean, every event counted', () => {
    const v = kj(T, ['verify', '--json']);
    expect(v.code, v.stdout).toBe(0);
    expect(v.json).toMatchObject({ ok: true, problems: [], warnings: [], events: 204 });
  });

  it('a checkpoint file rewritten with the same state in another layout still passes', () => {
    const ws = cloneWorkspace(T);
    writeFileSync(cpFile(ws, 127), JSON.stringify(JSON.parse(readFileSync(cpFile(ws, 127), 'utf8')), null, 2));
    const v = kj(ws, ['verify', '--json']);
    expect(v.code, v.stdout).toBe(0);
  });

  it('an edited checkpoint file is snapshot_mismatch naming it', () => {
    const ws = cloneWorkspace(T);
    writeFileSync(cpFile(ws, 63), readFileSync(cpFile(ws, 63), 'utf8').replace('"DRAFT"', '"APPROVED"'));
    const v = kj(ws, ['verify', '--json']);
    expect(v.code).toBe(7);
    expect(v.json.problems).toEqual([{ contract_id: 'c1', kind: 'snapshot_mismatch', message: 'checkpoints/63.json differs from the state its checkpoint event recorded' }]);
  });
});
