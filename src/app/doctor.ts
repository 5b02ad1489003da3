/**
 * `kair doctor`: what is wrong with this installation or workspace, each finding with how to fix
 * it. It reads and never writes; it runs on an invalid config and without a workspace (those
 * are findings, not errors).
 */
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { loadConfig } from '../store/fs/workspace.js';
import { findWorkspace, paths } from '../store/fs/workspace.js';
import { assertLocalBackend } from '../store/backend-guard.js';
import type { Workspace } from '../store/fs/workspace.js';
import { lockHolder } from '../store/fs/lock.js';
import { openDb } from '../store/sqlite/db.js';
import { catalogRepo } from '../lanes/aec/catalog.js';
import type { CatalogEntry } from '../domain/aec/finder.js';
import { openExecutionStore } from '../store/sqlite/executor.js';
import type { Ctx } from './context.js';
import { resolveActor } from './context.js';
import { verify } from './verify.js';

export type FindingStatus = 'pass' | 'warn' | 'fail';

export interface Finding {
  check: string;
  status: FindingStatus;
  message: string;
  /** What to do; empty when the check passed. */
  hint: string;
}

const MIN_NODE_MAJOR = 20;

export async function doctor(ctx: Ctx, o: { actorFlag: string | undefined; dirFlag: string | undefined }): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (check: string, status: FindingStatus, message: string, hint = '') => out.push({ check, status, message, hint });
  const guard = async (check: string, fn: () => void | Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      add(check, 'fail', `the check itself failed: ${(e as Error).message.split('\n')[0]}`, 'run it again with KAIR_DEBUG=1 and report it');
    }
  };

  const major = Number(process.versions.node.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) add('node', 'pass', `Node.js ${process.versions.node}`);
  else add('node', 'fail', `Node.js ${process.versions.node} is older than ${MIN_NODE_MAJOR}`, `install Node.js ${MIN_NODE_MAJOR} or later`);

  try {
    const db = openDb(':memory:');
    const v = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
    db.close();
    add('sqlite', 'pass', `the SQLite addon loads (SQLite ${v})`);
  } catch (e) {
    add('sqlite', 'fail', `the SQLite addon (better-sqlite3) does not load: ${(e as Error).message.split('\n')[0]}`, 'reinstall kair with the same Node.js version that runs it (npm rebuild better-sqlite3)');
  }

  await guard('actor', () => {
    const from = o.actorFlag !== undefined ? '--actor' : ctx.env.KAIR_ACTOR ? 'KAIR_ACTOR' : 'git user.name, $USER or the OS user';
    const actor = resolveActor(o.actorFlag, ctx.env, o.dirFlag ?? ctx.cwd);
    if (actor === 'unknown') add('actor', 'warn', 'no actor could be found: history records "unknown"', 'set KAIR_ACTOR, or git config user.name "Your Name"');
    else add('actor', 'pass', `acting as ${JSON.stringify(actor)} (from ${from})`);
  });

  await guard('path', () => {
    const dirs = (ctx.env.PATH ?? '').split(delimiter).filter(Boolean);
    const names = process.platform === 'win32' ? ['kair.cmd', 'kair.exe', 'kair'] : ['kair'];
    const found = dirs.flatMap((d) => names.map((n) => join(d, n))).find((f) => {
      try {
        accessSync(f, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (found) add('path', 'pass', `kair is on PATH (${found})`);
    else add('path', 'warn', 'kair is not on PATH', 'npm install -g kair (or npm link in its checkout), or add its bin/ folder to PATH');
  });

  let ws: Workspace;
  try {
    ws = findWorkspace({ dir: o.dirFlag, env: ctx.env, cwd: ctx.cwd });
    add('workspace', 'pass', `workspace ${ws.root}`);
  } catch (e) {
    add('workspace', 'warn', (e as Error).message, 'kair init (or --dir PATH to name one)');
    return out;
  }

  let configOk = false;
  try {
    loadConfig(ws);
    assertLocalBackend(ws);
    configOk = true;
    add('config', 'pass', '.kair/config.json is valid');
  } catch (e) {
    const problems = (e as { details?: { problems?: { path: string }[] } }).details?.problems;
    const first = problems?.[0]?.path;
    const hint = (e as { details?: { hint?: unknown } }).details?.hint;
    add('config', 'fail', (e as Error).message, first ? `kair config get ${first} shows it; kair config set ${first} <value> fixes it` : typeof hint === 'string' ? hint : 'fix .kair/config.json in an editor (it is not valid JSON)');
  }

  await guard('locks', () => {
    const dir = paths.locks(ws);
    const names = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.lock')).map((f) => f.slice(0, -'.lock'.length)) : [];
    const stale: string[] = [];
    const remote: string[] = [];
    for (const n of names) {
      const h = lockHolder(dir, n);
      if (h.verdict === 'dead') stale.push(n);
      else if (h.verdict === 'remote') remote.push(n);
    }
    if (stale.length) add('locks', 'warn', `${stale.length} lock(s) left by a stopped command: ${stale.join(', ')}`, 'the next command on each recovers it by itself; `kair unlock <id> --force` removes one now');
    if (remote.length) add('locks', 'warn', `${remote.length} lock(s) held from another host: ${remote.join(', ')}`, 'if that host is gone: kair unlock <id> --force');
    if (!stale.length && !remote.length) add('locks', 'pass', names.length ? `${names.length} lock(s), all held by live commands` : 'no locks held');
  });

  await guard('verify', async () => {
    if (!configOk) return void add('verify', 'warn', 'skipped: the config is invalid', 'fix the config, then run kair doctor again');
    const r = await verify(ctx);
    const temps = r.warnings.filter((w) => w.kind === 'temp_file').length;
    if (r.problems.length) add('verify', 'fail', `verify found ${r.problems.length} problem(s) in ${r.contracts} contract(s), e.g. ${r.problems[0]!.kind}: ${r.problems[0]!.message}`, 'kair verify lists them; see the INTEGRITY_FAILED page for each kind');
    else if (r.warnings.length) add('verify', 'warn', `verify: ${r.contracts} contract(s), ${r.events} event(s), 0 problems, ${r.warnings.length} warning(s)${temps ? ` (${temps} temp file(s))` : ''}`, 'the next command on each contract repairs its warnings; kair verify lists them');
    else add('verify', 'pass', `verify: ${r.contracts} contract(s), ${r.events} event(s), no problems`);
  });

  let entries: CatalogEntry[] | null = null;
  try {
    if (existsSync(paths.db(ws))) {
      const store = openExecutionStore(paths.db(ws));
      try {
        entries = await store.read((sql) => catalogRepo(sql).catalogEntries());
      } finally {
        store.close();
      }
    }
  } catch (e) {
    add('simulations', 'fail', `the check itself failed: ${(e as Error).message.split('\n')[0]}`, 'run it again with KAIR_DEBUG=1 and report it');
  }
  await guard('simulations', () => {
    if (!existsSync(paths.db(ws))) return void add('simulations', 'pass', 'no simulation catalog yet');
    if (entries === null) return;
    // Executors that change something declared with impact none skip the confirmation a
    // side-effecting step needs (registration refuses them now; older ones may remain).
    const bad = entries.filter((s) => s.impact === 'none' && ['write_file', 'command'].includes(executorName(s.executor))).map((s) => s.id);
    if (bad.length) add('simulations', 'warn', `${bad.length} side-effecting simulation(s) registered with impact none: ${bad.join(', ')}`, 'register a corrected definition under a new id with "impact": "side_effecting", then kair sim disable the old one');
    else add('simulations', 'pass', 'no side-effecting simulation is declared without impact');
  });
  return out;
}

function executorName(e: unknown): string {
  const x = e as { kind?: string; name?: string };
  return x.kind === 'builtin' ? (x.name ?? '') : (x.kind ?? '');
}
