/**
 * `kair artifacts <id> --out DIR`: the files `kair artifacts <id>` lists, written under DIR at
 * their workspace-relative paths (DIR/.kair/contracts/<id>/…), read through the contract store's
 * reads (snapshot, history, dpc, artifact by path) so the same code serves PostgreSQL, where the
 * files are rows keyed by those paths.
 *
 * DIR is the user's; what is inside it may not be. Nothing under DIR is followed through a
 * symlink, an existing file is never overwritten (the same bytes are left as they are; other
 * bytes refuse the whole command before anything is written: WORKSPACE_NOT_EMPTY), and each
 * file appears whole or not at all: written to a temp file (O_EXCL|O_NOFOLLOW, fsynced), then
 * hard-linked to its name (link fails rather than replace anything), its folder fsynced. An
 * error midway removes what this command had put in place.
 */
import { closeSync, constants, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { sha256Hex } from '../domain/canonical.js';
import type { Contract } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { checkArtifactPath } from '../domain/transfer.js';
import type { ContractStore, StoredEvent } from '../store/port.js';
import { fsyncDir } from '../store/fs/atomic.js';
import { assertContract, loadContract } from '../store/fs/contracts.js';
import { readHistoryText } from '../store/fs/history.js';
import type { Workspace } from '../store/fs/workspace.js';
import { paths } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';

/** What --out reads: a subset of ContractStore (the local reader below stands in until the use cases move onto the port). */
export type ContractReader = Pick<ContractStore, 'snapshot' | 'history' | 'dpc' | 'artifact'> & { load(id: string): Promise<Contract> };

const readText = (file: string): string | null => {
  try {
    const st = lstatSync(file);
    return st.isFile() ? readFileSync(file, 'utf8') : null;
  } catch {
    return null;
  }
};

/** The local workspace's files behind the reads `--out` needs. */
export function localContractReader(ws: Workspace): ContractReader {
  return {
    load: async (id) => {
      assertContract(ws, id);
      return loadContract(ws, id).contract;
    },
    snapshot: async (id) => readText(paths.snapshot(ws, id)),
    history: async (id): Promise<StoredEvent[]> => {
      const r = readHistoryText(paths.history(ws, id));
      return r.events.map((event, i) => ({ event, line: r.text.slice(r.starts[i], (r.starts[i + 1] ?? r.text.length) - 1) }));
    },
    dpc: async (id) => readText(paths.dpc(ws, id)),
    artifact: async (path) => (path.startsWith('.kair/') ? readText(join(ws.root, path)) : null),
  };
}

export interface OutFile {
  kind: string;
  path: string;
  text: string;
}

/** The files `kair artifacts <id>` lists, with their text, in its order. */
export async function contractFiles(r: ContractReader, id: string): Promise<OutFile[]> {
  const c = await r.load(id);
  const base = `.kair/contracts/${id}`;
  const out: OutFile[] = [];
  const add = (kind: string, path: string, text: string | null) => {
    if (text === null) return;
    checkArtifactPath(path, id);
    out.push({ kind, path, text });
  };
  add('snapshot', `${base}/contract.json`, await r.snapshot(id));
  const lines = await r.history(id);
  add('history', `${base}/history.jsonl`, lines.map((l) => `${l.line}\n`).join(''));
  add('plan', `${base}/plan/plan_v1.json`, await r.artifact(`${base}/plan/plan_v1.json`));
  add('plan_md', `${base}/plan/PLAN.md`, await r.artifact(`${base}/plan/PLAN.md`));
  add('dpc', `${base}/dpc/dpc_v1.json`, await r.dpc(id));
  const runs = `${base}/artifacts/run`;
  add('run_request', `${runs}/run-request.json`, await r.artifact(`${runs}/run-request.json`));
  add('run_result', `${runs}/run-result.json`, await r.artifact(`${runs}/run-result.json`));
  for (const runId of c.runs) {
    add(`run:${runId}:request`, `${runs}/${runId}/run-request.json`, await r.artifact(`${runs}/${runId}/run-request.json`));
    add(`run:${runId}:result`, `${runs}/${runId}/run-result.json`, await r.artifact(`${runs}/${runId}/run-result.json`));
  }
  return out;
}

const conflict = (shown: string, why: string) =>
  kairError('WORKSPACE_NOT_EMPTY', `${shown} ${why}; nothing was written`, { path: shown, hint: 'choose an empty folder for --out (or remove that file); kair never overwrites or follows a link there' });

/** The folder given by the user: created when missing (its parent must exist), refused when it is not a folder. */
export function prepareOutDir(given: string, cwd: string, flag: string, create = true): string {
  if (given.trim() === '') throw kairError('USAGE_ERROR', `${flag} needs a folder`, { flag });
  if (given.length > 4096 || given.includes('\0')) throw kairError('USAGE_ERROR', `${flag} is not a usable path (${given.length} characters)`, { flag });
  const dir = resolve(cwd, given);
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENAMETOOLONG') throw kairError('USAGE_ERROR', `${flag}: the path is too long for this file system`, { flag });
    if (code !== 'ENOENT') throw kairError('USAGE_ERROR', `${flag} ${JSON.stringify(given.slice(0, 80))} cannot be read (${code ?? 'error'})`, { flag });
    try {
      // Checked first without creating anything (export reads the source before it writes).
      if (!create) {
        if (!statSync(dirname(dir)).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
        return dir;
      }
      mkdirSync(dir);
    } catch (e2) {
      const c2 = (e2 as { code?: string }).code;
      throw kairError('USAGE_ERROR', `${flag} ${JSON.stringify(given.slice(0, 80))} does not exist and cannot be created (${c2 === 'ENOENT' ? 'its parent folder is missing' : (c2 ?? 'error')})`, { flag, hint: 'create the parent folder first, or choose another path' });
    }
    fsyncDir(dirname(dir));
    return dir;
  }
  if (!st.isDirectory()) throw kairError('USAGE_ERROR', `${flag} ${JSON.stringify(given.slice(0, 80))} is not a folder`, { flag });
  return dir;
}

export interface PlacedFile {
  kind: string;
  path: string;
  sha256: string;
  written: boolean;
}

/**
 * Writes `files` (workspace-relative paths) under `dir`, all or nothing as far as an error goes
 * (a kill leaves at most temp files named `.<name>.kair-out-<pid>`, never a partial file under its name).
 */
export function placeFiles(dir: string, files: OutFile[], shownDir: string): PlacedFile[] {
  const plan: { f: OutFile; abs: string; write: boolean }[] = [];
  const shown = (p: string) => `${shownDir.replace(/\/+$/, '')}/${p}`;
  // Check everything first: a conflict found after some writes would leave a partial copy.
  for (const f of files) {
    const segs = f.path.split('/');
    let cur = dir;
    for (const s of segs.slice(0, -1)) {
      cur = join(cur, s);
      const st = lstatSync(cur, { throwIfNoEntry: false });
      if (!st) break;
      if (st.isSymbolicLink()) throw conflict(shown(f.path), `cannot be written: ${shown(segs.slice(0, segs.indexOf(s) + 1).join('/'))} is a symbolic link`);
      if (!st.isDirectory()) throw conflict(shown(f.path), `cannot be written: ${shown(segs.slice(0, segs.indexOf(s) + 1).join('/'))} is not a folder`);
    }
    const abs = join(dir, ...segs);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) {
      plan.push({ f, abs, write: true });
      continue;
    }
    if (!st.isFile()) throw conflict(shown(f.path), st.isSymbolicLink() ? 'exists as a symbolic link' : 'exists and is not a file');
    if (!readFileSync(abs).equals(Buffer.from(f.text, 'utf8'))) throw conflict(shown(f.path), 'exists with other content');
    plan.push({ f, abs, write: false });
  }
  const temps: string[] = [];
  const placed: string[] = [];
  const madeDirs: string[] = [];
  const touched = new Set<string>();
  try {
    for (const p of plan) {
      if (!p.write) continue;
      const parent = dirname(p.abs);
      ensureDir(dir, parent, madeDirs);
      const tmp = join(parent, `.${p.abs.slice(parent.length + 1)}.kair-out-${process.pid}`);
      const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      temps.push(tmp);
      try {
        writeSync(fd, Buffer.from(p.f.text, 'utf8'));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    let i = 0;
    for (const p of plan) {
      if (!p.write) continue;
      // link refuses an existing name (a file or link planted since the check) instead of replacing it.
      try {
        linkSync(temps[i]!, p.abs);
      } catch (e) {
        if ((e as { code?: string }).code === 'EEXIST') throw conflict(shown(p.f.path), 'appeared while kair was writing');
        throw e;
      }
      placed.push(p.abs);
      touched.add(dirname(p.abs));
      i++;
    }
  } catch (e) {
    for (const f of placed) unlinkQuiet(f);
    for (const t of temps) unlinkQuiet(t);
    for (const d of madeDirs.reverse()) {
      try {
        rmdirSync(d);
      } catch {
        // not empty (someone else's file): left
      }
    }
    throw e;
  }
  for (const t of temps) unlinkQuiet(t);
  for (const d of touched) fsyncDir(d);
  for (const d of madeDirs) fsyncDir(dirname(d));
  return plan.map((p) => ({ kind: p.f.kind, path: p.f.path, sha256: sha256Hex(p.f.text), written: p.write }));
}

/** Creates the folders from `root` down to `dir` one level at a time, refusing a link put in place meanwhile. */
function ensureDir(root: string, dir: string, made: string[]): void {
  const rest = dir.slice(root.length + 1).split('/').filter(Boolean);
  let cur = root;
  for (const s of rest) {
    cur = join(cur, s);
    try {
      mkdirSync(cur);
      made.push(cur);
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    }
    const st = lstatSync(cur);
    if (!st.isDirectory()) throw conflict(cur.slice(root.length + 1), 'is no longer a folder');
  }
}

function unlinkQuiet(f: string): void {
  try {
    unlinkSync(f);
  } catch {
    // already gone
  }
}

export async function artifactsOut(ctx: Ctx, id: string, out: string, reader?: ContractReader) {
  assertId(id);
  const r = reader ?? localContractReader(ctx.ws);
  prepareOutDir(out, ctx.cwd, '--out', false);
  const files = await contractFiles(r, id);
  const dir = prepareOutDir(out, ctx.cwd, '--out');
  // Files written into a workspace would become (part of) its contracts: --out makes a copy to read.
  if (lstatSync(join(dir, '.kair', 'config.json'), { throwIfNoEntry: false })) {
    throw kairError('WORKSPACE_NOT_EMPTY', `${out.replace(/\/+$/, '')} is a kair workspace; --out writes a copy to read, never into a workspace; nothing was written`, { path: out, hint: 'choose a folder that is not a workspace for --out' });
  }
  const placed = placeFiles(dir, files, out);
  return { contract_id: id, out, files: placed, written: placed.filter((p) => p.written).length, unchanged: placed.filter((p) => !p.written).length };
}
