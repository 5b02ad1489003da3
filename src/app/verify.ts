/** `kair verify [<id>]`: walks everything, repairs nothing. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalHash, canonicalJson, sha256Hex } from '../domain/canonical.js';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { applyEvent } from '../domain/contract.js';
import { assertId } from '../domain/ids.js';
import { assertContract, indexEntry, listContractIds, readJsonFile, readTextFile } from '../store/fs/contracts.js';
import { indexFiles, plainEntry, readIndexMerged } from '../store/fs/index-read.js';
import { compactBytes } from '../store/fs/contract-writes.js';
import { INDEX_LOCK, lockHolder } from '../store/fs/lock.js';
import { checkChain } from '../store/fs/chain.js';
import type { HistoryText } from '../store/fs/history.js';
import { readHistoryText } from '../store/fs/history.js';
import { fastRead } from './verify-fast.js';
import { isTempName, listDir } from '../store/fs/temp.js';
import { checkpointSeqs } from '../store/fs/writer-load.js';
import { paths, rel } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';
import { checkSinceHead } from './head.js';
import { dpcFileStatus } from './lifecycle.js';
import type { HistoryRefs } from './verify-db.js';
import { scanHistoryRead, verifyDb } from './verify-db.js';
import { verifyApprovalSignatures } from './signatures.js';

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

type Report = (kind: string, message: string) => void;

/**
 * The states the fold passes through at the seqs in `wanted` (what a checkpoint vouches for or a
 * derived file may lag behind) and at the tail; keeping every state of a long history costs more
 * than the fold itself. A seq that occurs twice (a tampered chain) keeps its last state, as a map
 * of every state would.
 */
function foldStates(events: HistoryEvent[], wanted: ReadonlySet<number>): Map<number, Contract> {
  const states = new Map<number, Contract>();
  let c: Contract | null = null;
  const last = events.length - 1;
  for (let i = 0; i <= last; i++) {
    const e = events[i]!;
    c = applyEvent(c, e);
    if (i === last || wanted.has(e.seq)) states.set(e.seq, c);
  }
  return states;
}

/** The seqs whose folded state a check compares with: each checkpoint's through_seq and the snapshot's. */
function statesWanted(events: HistoryEvent[], snap: Contract | null): Set<number> {
  const wanted = new Set<number>();
  for (const e of events) if (e.type === 'checkpoint') wanted.add((e.data as { through_seq?: number } | null)?.through_seq ?? -1);
  if (snap) wanted.add(snap.history_seq);
  return wanted;
}

export function verifyContract(ctx: Ctx, id: string, out: VerifyResult, scanned?: Map<string, HistoryRefs>): Contract | null {
  const ws = ctx.ws;
  const problem: Report = (kind, message) => out.problems.push({ contract_id: id, kind, message });
  const warning: Report = (kind, message) => out.warnings.push({ contract_id: id, kind, message });
  const histFile = paths.history(ws, id);
  if (!existsSync(histFile)) {
    problem('contract_missing', 'history.jsonl is missing');
    return null;
  }
  const snapFirst = readJsonFile<Contract>(paths.snapshot(ws, id));
  // A history with nothing wrong in it is checked in one pass that keeps little (and on more cores
  // when long); anything else goes the exact way below, which says what is wrong.
  const fast = fastRead(histFile, (seq) => join(paths.checkpoints(ws, id), `${seq}.json`), typeof snapFirst?.history_seq === 'number' ? snapFirst.history_seq : null);
  if (fast) return checkFolded(ctx, id, out, fast.kept, fast.count, snapFirst, fast.states, fast.count, (k) => fast.checkpoints.get(k + 1), scanned);
  const read = readHistoryText(histFile);
  scanned?.set(id, scanHistoryRead(read));
  out.events += read.events.length;
  for (const line of read.badLines) problem('chain_broken', `history line ${line} is not valid JSON`);
  if (read.tornBytes > 0) warning('torn_line', `history ends with a torn line of ${read.tornBytes} bytes (an unacknowledged write; the next command truncates it)`);
  for (const p of checkChain(read.events)) problem('chain_broken', p.message);
  if (read.badLines.length || read.events.length === 0) return null;
  const snap = snapFirst;
  let states: Map<number, Contract>;
  try {
    states = foldStates(read.events, statesWanted(read.events, snap));
  } catch (e) {
    problem('chain_broken', `history cannot be folded: ${(e as Error).message}`);
    return null;
  }
  const tail = read.events[read.events.length - 1]!.seq;
  return checkFolded(ctx, id, out, read, 0, snap, states, tail, (k) => read.events[k], undefined);
}

/**
 * Everything after the chain and the fold. `read.events` may be only the events a check can look
 * at (the fast path, with `count` the whole history's; 0 when it is all of them), `eventAt(k)` is
 * what stands at line k + 1.
 */
function checkFolded(
  ctx: Ctx,
  id: string,
  out: VerifyResult,
  read: HistoryText,
  count: number,
  snap: Contract | null,
  states: Map<number, Contract>,
  tail: number,
  eventAt: (k: number) => HistoryEvent | undefined,
  scanned: Map<string, HistoryRefs> | undefined,
): Contract {
  const problem: Report = (kind, message) => out.problems.push({ contract_id: id, kind, message });
  const warning: Report = (kind, message) => out.warnings.push({ contract_id: id, kind, message });
  if (count) {
    scanned?.set(id, scanHistoryRead(read));
    out.events += count;
  }
  const folded = states.get(tail)!;
  checkCheckpoints(ctx, id, read.events, count > 0 ? null : states, tail, eventAt, problem);
  if (!snap) {
    warning('snapshot_behind', 'contract.json is missing or unreadable; the next command rebuilds it from history');
  } else if (canonicalJson(snap) !== canonicalJson(folded)) {
    const atSnap = states.get(snap.history_seq);
    if (snap.history_seq > tail) {
      problem('history_truncated', `contract.json records event ${snap.history_seq} but history ends at ${tail}`);
      problem('snapshot_mismatch', 'contract.json differs from the fold of history.jsonl');
    } else if (snap.history_seq < tail && atSnap && canonicalJson(atSnap) === canonicalJson(snap)) {
      warning('snapshot_behind', `contract.json is at event ${snap.history_seq} of ${tail}; the next command rolls it forward`);
    } else {
      problem('snapshot_mismatch', 'contract.json differs from the fold of history.jsonl');
    }
  }
  checkArtifacts(ctx, id, read.events, problem, warning);
  checkPlan(ctx, id, read.events, folded, problem, warning);
  checkDpc(ctx, id, read.events, problem, warning);
  for (const s of verifyApprovalSignatures(ctx, id, read.events)) {
    if (s.signed && !s.verified) problem('signature_invalid', `the signature of ${JSON.stringify(s.actor.slice(0, 80))}'s approval (event ${s.seq}) does not verify: ${s.reason}`);
  }
  checkPrompts(ctx, read.events, problem);
  return folded;
}

/** Each checkpoint event must vouch for the fold through its seq, and each checkpoint file for its event. */
function checkCheckpoints(ctx: Ctx, id: string, events: HistoryEvent[], states: Map<number, Contract> | null, tail: number, eventAt: (k: number) => HistoryEvent | undefined, problem: Report): void {
  // The checkpoint events whose state_sha256 is the fold's: a file hashing to it is that fold's
  // canonical text. (`states` null: the fast path has checked each against the fold already.)
  const vouched = new Set<HistoryEvent>();
  for (const e of events) {
    if (e.type !== 'checkpoint') continue;
    if (!states) {
      vouched.add(e);
      continue;
    }
    const d = e.data as { through_seq?: number; state_sha256?: string };
    const at = states.get(d.through_seq ?? -1);
    if (d.through_seq !== e.seq - 1 || !at || sha256Hex(canonicalJson(at)) !== d.state_sha256) {
      problem('chain_broken', `checkpoint event ${e.seq} does not match the state folded through event ${e.seq - 1}`);
    } else {
      vouched.add(e);
    }
  }
  for (const k of checkpointSeqs(ctx.ws, id)) {
    if (k >= tail) {
      problem('history_truncated', `checkpoints/${k}.json covers event ${k} but history ends at ${tail}`);
      continue;
    }
    const cp = eventAt(k);
    if (cp?.type !== 'checkpoint') continue;
    const expected = (cp.data as { state_sha256?: string }).state_sha256;
    const text = readTextFile(join(paths.checkpoints(ctx.ws, id), `${k}.json`));
    // Text that hashes to the fold's canonical JSON is that JSON, which re-canonicalises to
    // itself: the parse below would find it equal, so it is skipped (1,600 files per 100,000 events).
    // A writer ends the file with a newline, which JSON.parse ignores and the sha does not cover.
    if (text !== null && vouched.has(cp) && sha256Hex(text.endsWith('\n') ? text.slice(0, -1) : text) === expected) continue;
    let state: unknown;
    try {
      state = text === null ? null : JSON.parse(text);
    } catch {
      state = null;
    }
    if (state === null || sha256Hex(canonicalJson(state)) !== expected) {
      problem('snapshot_mismatch', `checkpoints/${k}.json differs from the state its checkpoint event recorded`);
    }
  }
}

/**
 * Artifacts that history records are immutable: each must hash to its record. The derived
 * copies (a run's run-result.json pointer, the latest copies) must equal the newest recorded
 * artifact of their kind, or lag behind it (an earlier recorded one: a warning); a run folder
 * holding results that no `run.started` names means history lost events (truncated).
 */
function checkArtifacts(ctx: Ctx, id: string, events: HistoryEvent[], problem: Report, warning: Report): void {
  const recorded = new Map<string, { sha256: string; seq: number }>();
  const started = new Set<string>();
  const byName = new Map<string, Set<string>>();
  const newest = new Map<string, string>();
  for (const e of events) {
    if (e.type === 'run.started') started.add(e.data.run_id as string);
    const list = (e.data as { artifacts?: { path: string; sha256: string }[] }).artifacts;
    if (!Array.isArray(list)) continue;
    for (const a of list) {
      recorded.set(a.path, { sha256: a.sha256, seq: e.seq });
      // The derived copies it may stand behind: the latest copy of its kind, and a result's run pointer.
      const [runId, name] = a.path.split('/').slice(-2) as [string, string];
      for (const key of name.startsWith('run-result') ? ['run-result.json', `${runId}/run-result.json`] : ['run-request.json']) {
        byName.set(key, (byName.get(key) ?? new Set()).add(a.sha256));
        newest.set(key, a.sha256);
      }
    }
  }
  for (const [path, rec] of recorded) {
    const file = join(ctx.ws.root, path);
    if (!existsSync(file)) {
      problem('artifact_mismatch', `${path} (recorded at event ${rec.seq}) is missing`);
    } else if (sha256Hex(readFileSync(file)) !== rec.sha256) {
      problem('artifact_mismatch', `${path} does not match the sha256 recorded at event ${rec.seq}`);
    }
  }
  const runs = paths.runs(ctx.ws, id);
  const copy = (key: string) => {
    const file = join(runs, key);
    if (!existsSync(file) || recorded.has(rel(ctx.ws, file))) return;
    const sha = sha256Hex(readFileSync(file));
    if (sha === newest.get(key)) return;
    if (byName.get(key)?.has(sha)) warning('artifact_behind', `${rel(ctx.ws, file)} is an earlier run's copy; the next run rewrites it`);
    else problem('artifact_mismatch', `${rel(ctx.ws, file)} matches no artifact history recorded`);
  };
  copy('run-request.json');
  copy('run-result.json');
  for (const runId of listDir(runs).filter((f) => statSync(join(runs, f), { throwIfNoEntry: false })?.isDirectory())) {
    copy(`${runId}/run-result.json`);
    const results = listDir(join(runs, runId)).filter((f) => /^run-result(\.\d+)?\.json$/.test(f));
    if (!started.has(runId) && results.length) problem('history_truncated', `artifacts/run/${runId} holds run results but history has no run.started for ${runId}`);
  }
}

/** plan_v1.json must be the plan of the latest `plan` event (an earlier kept plan is only behind). */
function checkPlan(ctx: Ctx, id: string, events: HistoryEvent[], c: Contract, problem: Report, warning: Report): void {
  if (!c.plan_sha256) return;
  const shas = new Set(events.filter((e) => e.type === 'plan').map((e) => e.data.plan_sha256 as string));
  const onDisk = readJsonFile<unknown>(paths.plan(ctx.ws, id));
  const sha = onDisk === null ? null : canonicalHash(onDisk);
  const kept = readJsonFile<unknown>(paths.planBySha(ctx.ws, id, c.plan_sha256));
  const keptOk = kept !== null && canonicalHash(kept) === c.plan_sha256;
  if (kept !== null && !keptOk) problem('plan_mismatch', `plan/${c.plan_sha256}.json does not hash to its name`);
  if (sha === c.plan_sha256) return;
  if (sha !== null && shas.has(sha) && keptOk) {
    warning('plan_behind', 'plan/plan_v1.json is not the current plan yet (a command was stopped after recording it); the next command rewrites it');
  } else {
    problem('plan_mismatch', sha === null ? 'plan/plan_v1.json is missing or unreadable' : 'plan/plan_v1.json differs from the plan history recorded; `kair run` refuses it as APPROVAL_STALE');
  }
}

/** dpc_v1.json must be the DPC history folds to (an earlier state is only behind). */
function checkDpc(ctx: Ctx, id: string, events: HistoryEvent[], problem: Report, warning: Report): void {
  const found = dpcFileStatus(events, readTextFile(paths.dpc(ctx.ws, id)));
  if (found?.file === 'missing') problem('dpc_mismatch', 'dpc/dpc_v1.json is missing');
  else if (found?.file === 'foreign') problem('dpc_mismatch', 'dpc/dpc_v1.json differs from every state its history recorded');
  else if (found?.file === 'behind') warning('dpc_behind', 'dpc/dpc_v1.json is an earlier state of the DPC; the next command that changes it rewrites it');
}

/** Each prompt a `plan --generate/--refine` recorded is kept, unchanged, where its event says (written before the event). */
function checkPrompts(ctx: Ctx, events: HistoryEvent[], problem: Report): void {
  for (const e of events) {
    const p = e.type === 'plan' ? (e.data.planner as { prompt_sha256?: unknown; prompt_ref?: unknown } | undefined) : undefined;
    if (typeof p?.prompt_ref !== 'string' || typeof p.prompt_sha256 !== 'string') continue;
    const inPlace = /^\.kair\/contracts\/[a-z0-9][a-z0-9_-]*\/dpc\/prompt-[0-9a-f]{64}\.json$/.test(p.prompt_ref);
    const kept = inPlace ? readJsonFile<unknown>(join(ctx.ws.root, p.prompt_ref)) : null;
    if (kept === null || canonicalHash(kept) !== p.prompt_sha256) problem('dpc_mismatch', `${p.prompt_ref} (the prompt of event ${e.seq}) is missing or differs from its sha256`);
  }
}

/** Temp and staging files a killed writer left (the next writer holding the lock removes them). */
function findTemps(ctx: Ctx, out: VerifyResult): void {
  const walk = (dir: string, depth: number) => {
    for (const name of listDir(dir)) {
      const p = join(dir, name);
      if (isTempName(name) || (dir === paths.contracts(ctx.ws) && name.startsWith('.tmp-'))) {
        out.warnings.push({ kind: 'temp_file', message: `${rel(ctx.ws, p)} is a temp file left by a stopped command; the next command removes it` });
      } else if (depth < 6 && name !== 'outbox' && name !== 'locks') {
        let isDir: boolean;
        try {
          isDir = statSync(p).isDirectory();
        } catch {
          isDir = false;
        }
        if (isDir) walk(p, depth + 1);
      }
    }
  };
  walk(ctx.ws.kairDir, 0);
}
/**
 * Writers fold index.log into index.json without waiting for the `_index` lock, so a lock held
 * from another host (never recovered automatically) stops every fold while the entries keep
 * landing in the log: readers still merge them, and nothing at write time is wrong enough to
 * warn about, but the log grows. Said here once the fold is overdue.
 */
function overdueFold(ctx: Ctx, out: VerifyResult): void {
  const size = statSync(indexFiles.log(ctx.ws), { throwIfNoEntry: false })?.size ?? 0;
  if (size <= compactBytes()) return;
  const lock = lockHolder(paths.locks(ctx.ws), INDEX_LOCK);
  if (lock.verdict !== 'remote' || !lock.holder) return;
  const h = lock.holder;
  out.warnings.push({ kind: 'index_behind', message: `contracts/index.log holds ${size} bytes not folded into index.json: the index lock is held from host ${h.host} (pid ${h.pid}, command ${h.command}, since ${h.since}); if that host is gone, \`kair unlock --index --force\` lets the next writer fold it` });
}

/** Extra checks contributed by other stores (e.g. the SQLite ledger projection). */
export const extraVerifiers: ((ctx: Ctx, out: VerifyResult, id?: string) => void)[] = [];

export async function verify(ctx: Ctx, id?: string, opts: { sinceHead?: string } = {}): Promise<VerifyResult> {
  if (id !== undefined) assertId(id);
  const ws = ctx.ws;
  void ctx.config;
  const out: VerifyResult = { problems: [], warnings: [], contracts: 0, events: 0 };
  const ids = id !== undefined ? [id] : listContractIds(ws);
  if (id !== undefined) assertContract(ws, id);
  const folded = new Map<string, Contract>();
  const scanned = new Map<string, HistoryRefs>();
  for (const cid of ids) {
    out.contracts++;
    const c = verifyContract(ctx, cid, out, scanned);
    if (c) folded.set(cid, c);
  }
  const merged = readIndexMerged(ws);
  if (!merged.checkpoint) {
    out.warnings.push({ kind: 'index_behind', message: 'contracts/index.json is missing or unreadable; the next command rebuilds it' });
  }
  overdueFold(ctx, out);
  if (merged.badLines > 0) {
    out.warnings.push({ kind: 'index_behind', message: `${merged.badLines} line(s) of the index (contracts/index.json, index.log) are not index entries; they are ignored and the next compaction drops them` });
  }
  {
    const byId = new Map(merged.entries.map((e) => [e.id, e]));
    for (const [cid, c] of folded) {
      const entry = byId.get(cid);
      if (!entry) {
        if (merged.checkpoint) out.warnings.push({ contract_id: cid, kind: 'index_behind', message: `${cid} is not in the index yet; the next command adds it` });
      } else if (canonicalJson(plainEntry(entry)) !== canonicalJson(indexEntry(c))) {
        out.warnings.push({ contract_id: cid, kind: 'index_behind', message: `the index entry of ${cid} is out of date; the next command on it rewrites it` });
      }
    }
    const known = new Set(listContractIds(ws));
    for (const e of merged.entries) {
      if ((id !== undefined && e.id !== id) || known.has(e.id)) continue;
      // A pending entry is a propose's that never renamed its folder into place: an orphan.
      if (e.pending) out.warnings.push({ contract_id: e.id, kind: 'index_behind', message: `the index holds the entry of a propose of ${e.id} that did not finish; the next compaction drops it` });
      else out.problems.push({ contract_id: e.id, kind: 'contract_missing', message: `the index lists ${e.id}, but its folder is missing` });
    }
  }
  if (id === undefined) findTemps(ctx, out);
  await verifyDb(ctx, out, id, scanned);
  for (const v of extraVerifiers) v(ctx, out, id);
  if (opts.sinceHead !== undefined) await checkSinceHead(ctx, opts.sinceHead, out);
  return out;
}
