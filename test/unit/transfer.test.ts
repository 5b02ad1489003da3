/** The pure parts of export/import: which tables move, which artifact keys are safe, chain order, the key-ordered snapshot. */
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH } from '../../src/domain/canonical.js';
import { EXEC_TABLES, checkArtifactPath, foldDump, keyOrdered } from '../../src/domain/transfer.js';
import { localColumns } from '../../src/app/transfer.js';
import { chainOrder } from '../../src/store/pg/transfer.js';
import { openDb } from '../../src/store/sqlite/db.js';
import { sealEvent } from '../../src/store/fs/chain.js';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import { applyEvent } from '../../src/domain/contract.js';
import type { Contract, HistoryEvent } from '../../src/domain/contract.js';

describe('EXEC_TABLES', () => {
  it('is every table of kair.db but its own bookkeeping: a table a migration adds must be moved too', () => {
    const db = openDb(':memory:');
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
      expect([...EXEC_TABLES].sort()).toEqual(tables.filter((t) => t !== 'migrations'));
    } finally {
      db.close();
    }
    expect(localColumns().agent_execution_ledger).toContain('row_hash');
  });
});

describe('checkArtifactPath', () => {
  it.each(['.kair/contracts/c1/artifacts/run/c1-run-1/run-result.1.json', '.kair/contracts/c1/plan/PLAN.md', `.kair/contracts/c1/dpc/prompt-${'a'.repeat(64)}.json`])('accepts %s', (p) => {
    expect(() => checkArtifactPath(p, 'c1')).not.toThrow();
  });
  it.each([
    '.kair/contracts/c1/../c2/x.json',
    '.kair/contracts/c1/a/../../../../etc/passwd',
    '.kair/contracts/c2/x.json',
    '/etc/passwd',
    '.kair/contracts/c1/',
    '.kair/contracts/c1//x',
    '.kair/contracts/c1/a\\b',
    '.kair/contracts/c1/a\nb',
    '.kair/contracts/c1/.hidden',
    '.kair/contracts/c1/a..b',
  ])('refuses %j (INTEGRITY_FAILED)', (p) => {
    expect(() => checkArtifactPath(p, 'c1')).toThrow(expect.objectContaining({ code: 'INTEGRITY_FAILED' }));
  });
});

describe('chainOrder', () => {
  it('puts rows of one chain in link order whatever order they were read in; rows that do not link go last', () => {
    const a = { ref: 'b', prev_hash: GENESIS_HASH, row_hash: 'h1' };
    const b = { ref: 'a', prev_hash: 'h1', row_hash: 'h2' };
    const c = { ref: 'c', prev_hash: 'h2', row_hash: 'h3' };
    const stray = { ref: 'd', prev_hash: 'zz', row_hash: 'h9' };
    expect(chainOrder([stray, c, b, a])).toEqual([a, b, c, stray]);
  });
});

describe('foldDump', () => {
  it('folds from the first line, writes the snapshot key-ordered, refuses a broken link', () => {
    const at = '2026-01-30T12:00:00.000Z';
    const lines: string[] = [];
    let c: Contract | null = null;
    let prev = GENESIS_HASH;
    for (const d of [decidePropose('c1', 'Ship', []), null]) {
      const draft = d ?? decideGrant(c!, 'grant', ['local:read']);
      const e: HistoryEvent = sealEvent(draft, { seq: lines.length + 1, at, actor: 't', prev });
      lines.push(JSON.stringify(e));
      prev = e.hash;
      c = applyEvent(c, e);
    }
    const f = foldDump({ id: 'c1', lines, checkpoints: [], plans: [], dpc: null, artifacts: [] });
    expect(f.contract).toEqual(c);
    expect(f.snapshotText).toBe(JSON.stringify(keyOrdered(c), null, 2) + '\n');
    expect(Object.keys(JSON.parse(f.snapshotText))).toEqual(Object.keys(JSON.parse(f.snapshotText)).sort());
    expect(() => foldDump({ id: 'c1', lines: [lines[1]!], checkpoints: [], plans: [], dpc: null, artifacts: [] })).toThrow(expect.objectContaining({ code: 'INTEGRITY_FAILED' }));
    expect(() => foldDump({ id: 'c2', lines, checkpoints: [], plans: [], dpc: null, artifacts: [] })).toThrow(/proposes/);
  });
});
