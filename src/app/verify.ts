/** `kair verify [<id>]`: walks everything, repairs nothing. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from '../domain/canonical.js';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { fold } from '../domain/contract.js';
import { assertId } from '../domain/ids.js';
import { assertContract, indexEntry, listContractIds, readIndex, readJsonFile } from '../store/fs/contracts.js';
import { checkChain } from '../store/fs/chain.js';
import { readHistory } from '../store/fs/history.js';
import { paths } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';
import { diskPlanSha } from './lifecycle.js';
import { verifyDb } from './verify-db.js';

export interface Finding {
  contract_id?: string;
  kind: string;
  message: string;
}

export interface VerifyResult {
  problems: Finding[];
  warnings: Finding[];
  contracts: number;
  events: number;
}

export function verifyContract(ctx: Ctx, id: string, out: VerifyResult): Contract | null {
  const ws = ctx.ws;
  const problem = (kind: string, message: string) => out.problems.push({ contract_id: id, kind, message });
  const warning = (kind: string, message: string) => out.warnings.push({ contract_id: id, kind, message });
  const histFile = paths.history(ws, id);
  if (!existsSync(histFile)) {
    problem('history_missing', 'history.jsonl is missing');
    return null;
  }
  const read = readHistory(histFile);
  out.events += read.events.length;
  for (const line of read.badLines) problem('history_corrupt', `history line ${line} is not valid JSON`);
  if (read.tornBytes > 0) warning('torn_line', `history ends with a torn line of ${read.tornBytes} bytes (an unacknowledged write; the next command truncates it)`);
  for (const p of checkChain(read.events)) problem('chain', p.message);
  if (read.badLines.length || read.events.length === 0) return null;
  let folded: Contract | null;
  try {
    folded = fold(read.events);
  } catch (e) {
    problem('fold', `history cannot be folded: ${(e as Error).message}`);
    return null;
  }
  if (!folded) return null;
  const snap = readJsonFile<Contract>(paths.snapshot(ws, id));
  if (!snap) {
    warning('snapshot_missing', 'contract.json is missing or unreadable; it is rebuilt from history');
  } else if (canonicalJson(snap) !== canonicalJson(folded)) {
    const prefix = read.events.filter((e) => e.seq <= snap.history_seq);
    const atSnap = fold(prefix);
    if (snap.history_seq < folded.history_seq && atSnap && canonicalJson(atSnap) === canonicalJson(snap)) {
      warning('snapshot_behind', `contract.json is at event ${snap.history_seq} of ${folded.history_seq}; the next command rolls it forward`);
    } else {
      problem('snapshot_mismatch', 'contract.json differs from the fold of history.jsonl');
    }
  }
  checkArtifacts(ctx, read.events, problem);
  const planSha = diskPlanSha(ctx, id);
  if (folded.plan_sha256 && planSha !== folded.plan_sha256) {
    warning('plan_changed', 'plan/plan_v1.json differs from the recorded plan; `kair run` will refuse it as APPROVAL_STALE until it is re-planned');
  }
  return folded;
}

/** The latest hash recorded for each artifact path must match the file (a resumed run rewrites its result). */
function checkArtifacts(ctx: Ctx, events: HistoryEvent[], problem: (kind: string, message: string) => void) {
  const latest = new Map<string, { sha256: string; seq: number }>();
  for (const e of events) {
    const list = (e.data as { artifacts?: { path: string; sha256: string }[] }).artifacts;
    if (Array.isArray(list)) for (const a of list) latest.set(a.path, { sha256: a.sha256, seq: e.seq });
  }
  for (const [path, rec] of latest) {
    const file = join(ctx.ws.root, path);
    if (!existsSync(file)) {
      problem('artifact_missing', `${path} (recorded at event ${rec.seq}) is missing`);
      continue;
    }
    const sha = sha256Hex(readFileSync(file));
    if (sha !== rec.sha256) problem('artifact_hash', `${path} does not match the sha256 recorded at event ${rec.seq}`);
  }
}

/** Extra checks contributed by other stores (e.g. the SQLite ledger projection). */
export const extraVerifiers: ((ctx: Ctx, out: VerifyResult, id?: string) => void)[] = [];

export function verify(ctx: Ctx, id?: string): VerifyResult {
  if (id !== undefined) assertId(id);
  const ws = ctx.ws;
  void ctx.config;
  const out: VerifyResult = { problems: [], warnings: [], contracts: 0, events: 0 };
  const ids = id !== undefined ? [id] : listContractIds(ws);
  if (id !== undefined) assertContract(ws, id);
  const folded = new Map<string, Contract>();
  for (const cid of ids) {
    out.contracts++;
    const c = verifyContract(ctx, cid, out);
    if (c) folded.set(cid, c);
  }
  const index = readIndex(ws);
  if (!index) {
    out.warnings.push({ kind: 'index_missing', message: 'contracts/index.json is missing or unreadable; the next command rebuilds it' });
  } else {
    const byId = new Map(index.map((e) => [e.id, e]));
    for (const [cid, c] of folded) {
      const entry = byId.get(cid);
      if (!entry) out.warnings.push({ contract_id: cid, kind: 'index_missing_entry', message: `${cid} is not in the index` });
      else if (canonicalJson(entry) !== canonicalJson(indexEntry(c))) {
        out.warnings.push({ contract_id: cid, kind: 'index_lagging', message: `the index entry of ${cid} is out of date` });
      }
    }
    if (id === undefined) {
      for (const e of index) {
        if (!ids.includes(e.id)) out.warnings.push({ contract_id: e.id, kind: 'index_orphan', message: `the index lists ${e.id}, which does not exist` });
      }
    }
  }
  verifyDb(ctx, out, id);
  for (const v of extraVerifiers) v(ctx, out, id);
  return out;
}
