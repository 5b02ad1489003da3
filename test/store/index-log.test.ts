import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appendIndexEntries, appendPendingEntry, compactLocked, writeIndex } from '../../src/store/fs/contract-writes.js';
import type { IndexEntry } from '../../src/store/fs/index-read.js';
import { folderExists, indexFiles, readIndexMerged, readIndexPage } from '../../src/store/fs/index-read.js';
import type { Contract } from '../../src/domain/contract.js';
import { paths, workspaceAt } from '../../src/store/fs/workspace.js';

// In memory where there is such a folder: 2,000 sequences of fsynced checkpoint writes on a disk took a minute.
const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kair-index-log-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The whole-file index this design replaces: every writer put its entry in place by id and rewrote the file. */
function upsertById(index: IndexEntry[], e: IndexEntry): IndexEntry[] {
  const out = index.filter((x) => x.id !== e.id);
  out.push(e);
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

function newWorkspace(name: string) {
  const dir = join(root, name);
  mkdirSync(join(dir, '.kair', 'contracts'), { recursive: true });
  mkdirSync(join(dir, '.kair', 'locks'), { recursive: true });
  return workspaceAt(dir);
}

/** What `list --limit` shows: the page reader, or (checkpoint not pageable) the merged index. */
function page(ws: ReturnType<typeof workspaceAt>, after: string | undefined, limit: number) {
  const exists = (id: string) => folderExists(ws, id);
  const p = readIndexPage(ws, { after, limit, exists });
  if (p) return p;
  const rows = readIndexMerged(ws).entries.filter((e) => exists(e.id) && (after === undefined || e.id > after));
  return { entries: rows.slice(0, limit).map(({ pending: _p, ...e }) => e), next: rows.length > limit ? rows[limit - 1]!.id : null };
}

describe('the index log against the whole-file index it replaces', () => {
  it('2,000 generated sequences of writes, compactions and crash points list the same entries', () => {
    let seed = 20261203;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const states = ['DRAFT', 'PLANNED', 'AWAITING_APPROVAL', 'APPROVED', 'REWOUND', 'CLOSED'];
    const kinds = ['propose', 'grant', 'approve', 'rewind', 'close'] as const;
    const stats = { writes: 0, crashed_writes: 0, compactions: 0, crashed_compactions: 0, orphan_pending: 0 };
    for (let s = 0; s < 2000; s++) {
      const ws = newWorkspace(`s${s}`);
      // An index written before decision 028 (one line) or an empty new-format one.
      if (rand(4) === 0) writeFileSync(paths.index(ws), '[]\n');
      else writeIndex(ws, []);
      let whole: IndexEntry[] = [];
      const live = new Map<string, IndexEntry>();
      let clock = 0;
      const steps = 4 + rand(12);
      for (let k = 0; k < steps; k++) {
        const op = rand(10);
        if (op < 2) {
          // a compaction, killed after step 1 (log set aside) or 2 (checkpoint rewritten) or whole
          const stop = 1 + rand(3);
          mkdirSync(paths.staging(ws), { recursive: true });
          if (rand(5) === 0) writeFileSync(join(paths.staging(ws), `index.json.${rand(1e6)}`), '[{"half'); // a killed write's temp
          compactLocked(ws, stop);
          stats.compactions++;
          if (stop < 3) stats.crashed_compactions++;
          continue;
        }
        const id = `c${rand(8)}`;
        const kind = live.has(id) ? kinds[1 + rand(4)]! : 'propose';
        const prev = live.get(id);
        const e: IndexEntry = {
          id,
          intent: `intent of ${id} ${kind === 'propose' ? s : prev!.intent}`,
          state: kind === 'propose' ? 'DRAFT' : kind === 'close' ? 'CLOSED' : kind === 'rewind' ? 'REWOUND' : states[rand(4)]!,
          updated_at: new Date(Date.UTC(2026, 0, 1) + ++clock * 1000).toISOString(),
          version: kind === 'propose' ? 1 : prev!.version + (kind === 'rewind' ? 1 : 0),
        };
        // a kill before the index write (0), after it (1), or none (2); a propose may also die
        // between its pending entry and its folder's rename
        const crash = rand(3);
        stats.writes++;
        if (kind === 'propose') {
          if (crash === 0) continue;
          appendPendingEntry(ws, { ...e } as unknown as Contract);
          if (crash === 1 && rand(2) === 0) {
            stats.orphan_pending++;
            continue; // the folder never renamed into place: the contract does not exist
          }
          mkdirSync(paths.contract(ws, id), { recursive: true });
          writeFileSync(paths.history(ws, id), '{}\n');
        } else {
          if (crash === 0) {
            stats.crashed_writes++;
            live.set(id, e); // history has it; the index lags, as the whole file did
            continue;
          }
          appendIndexEntries(ws, [e]);
        }
        live.set(id, e);
        whole = upsertById(whole, e);
      }
      // Every listed entry is what the whole-file index holds; nothing without its folder.
      const merged = readIndexMerged(ws).entries.filter((x) => folderExists(ws, x.id)).map(({ pending: _p, ...x }) => x);
      expect(merged, `sequence ${s}`).toEqual(whole);
      expect(readIndexMerged(ws).entries.filter((x) => !folderExists(ws, x.id) && !x.pending), `sequence ${s}: contract_missing`).toEqual([]);
      for (const after of [undefined, ...whole.map((x) => x.id), 'c3x']) {
        const limit = 1 + rand(3);
        const rest = whole.filter((x) => after === undefined || x.id > after);
        expect(page(ws, after, limit), `sequence ${s} after ${after} limit ${limit}`).toEqual({ entries: rest.slice(0, limit), next: rest.length > limit ? rest[limit - 1]!.id : null });
      }
      // A final whole compaction leaves one checkpoint and no log, and still the same entries.
      compactLocked(ws);
      expect(existsSync(indexFiles.log(ws)) || existsSync(indexFiles.compacting(ws))).toBe(false);
      expect(readIndexMerged(ws).entries.map(({ pending: _p, ...x }) => x)).toEqual(whole);
      rmSync(ws.root, { recursive: true, force: true });
    }
    expect(stats.crashed_compactions).toBeGreaterThan(100);
    expect(stats.orphan_pending).toBeGreaterThan(100);
  }, 120_000);
});
