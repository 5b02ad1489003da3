/**
 * Export/import helpers: a workspace with something of everything (both lanes' rows, an AEC
 * ledger, a change log, run artifacts, plans by sha, a DPC, and a contract past a checkpoint),
 * and comparisons of files and rows.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { decideGrant, decidePropose } from '../../src/domain/lifecycle.js';
import { newDpc } from '../../src/domain/dpc.js';
import { EXEC_TABLES, KEY_ORDERED } from '../../src/domain/transfer.js';
import { appendToHistory, createContract } from '../../src/store/fs/contract-writes.js';
import { workspaceAt } from '../../src/store/fs/workspace.js';
import { approveContract, asAlice, catalogWorkspace, simPlan } from './aec.js';
import type { Json } from './cli.js';
import { NOW, fixture, kair, ok } from './cli.js';

/** A workspace with a completed mixed-lanes run (Kimi + AEC), an AEC-only run, and `long` (72 events: a checkpoint at 64). */
export function richWorkspace(): string {
  const ws = catalogWorkspace();
  ok(ws, ['propose', 'Mixed', '--id', 'mixed', '--requires', 'local:read'], asAlice);
  ok(ws, ['plan', 'mixed', '--file', fixture('mixed-lanes.json')], asAlice);
  ok(ws, ['grant', 'mixed', 'local:read'], asAlice);
  ok(ws, ['request-approval', 'mixed'], asAlice);
  ok(ws, ['approve', 'mixed'], asAlice);
  const r = kair(ws, ['run', 'mixed', '--confirm', 'yes', '--json'], asAlice);
  if (r.code !== 0) throw new Error(`run mixed: ${r.stdout}${r.stderr}`);
  approveContract(ws, 'ping1', simPlan([{ id: 's1', utterance: 'ping' }]));
  ok(ws, ['run', 'ping1'], asAlice);
  // A step no simulation matches (a dev intake row) and an SLO waiver: every table has rows.
  approveContract(ws, 'miss1', simPlan([{ id: 's1', utterance: 'launch the rocket' }]));
  const miss = kair(ws, ['run', 'miss1', '--json'], asAlice);
  if (miss.code !== 3) throw new Error(`run miss1: ${miss.stdout}${miss.stderr}`);
  ok(ws, ['aec', 'waiver', 'add', '--until', '2026-02-01T00:00:00Z', '--reason', 'export test'], asAlice);
  const w = workspaceAt(ws);
  let c = createContract(w, 'long', decidePropose('long', 'Long history', []), { at: NOW, actor: 'tester' }, newDpc('Long history', NOW), null).contract;
  for (let i = 0; i < 70; i++) c = appendToHistory(w, c, [decideGrant(c, 'grant', [`ns:p${i}`])], { at: NOW, actor: 'tester' }).contract;
  return ws;
}

/** sha256 of every file under `<root>/.kair` (kair.db and its WAL excluded: rows are compared instead), keyed by path. */
export function fileHashes(root: string, skip: (rel: string) => boolean = () => false): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const n of readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(dir, n);
      if (lstatSync(p).isDirectory()) walk(p, r);
      else if (!/^kair\.db(-wal|-shm)?$/.test(r) && !skip(r)) out[r] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(join(root, '.kair'), '');
  return out;
}

/** Every execution table's rows, in insertion order (the AEC projection by key: its rowids move). */
export function localRows(root: string): Record<string, Json[]> {
  const db = new Database(join(root, '.kair', 'kair.db'), { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries(EXEC_TABLES.map((t) => [t, db.prepare(`SELECT * FROM ${t} ORDER BY ${KEY_ORDERED[t] ?? 'rowid'}`).all()]));
  } finally {
    db.close();
  }
}

/** What history hashes and records, per contract: exact history, checkpoints, plans by sha, DPC and artifacts (not the derived snapshot, index or latest copies' temp files). */
export const recordedFiles = (root: string) => fileHashes(root, (r) => !/^contracts\/[^/]+\/(history\.jsonl|checkpoints\/|plan\/|dpc\/|artifacts\/)/.test(r));
