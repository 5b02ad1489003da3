/**
 * The crash harness: kill a mutating command right after each of its file-system operations
 * under `.kair/` (counted by the fs-killer.cjs preload), and at seeded random instants (SQLite
 * writes are native and invisible to the preload), then check what a killed process must never
 * leave behind. One table (cases.ts) drives it; see docs/decisions/017-crash-harness.md.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import type { Json } from '../helpers/cli.js';
import { BIN, ROOT, baseEnv } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/temp.js';

export const KILLER = join(ROOT, 'test', 'crash', 'fs-killer.cjs');

/** What every kill point is checked against. */
export const INVARIANTS = ['killed', 'verify_after_kill', 'recovers', 'verify_after_recovery', 'no_lost_events', 'single_side_effect', 'no_orphans'] as const;
export type Invariant = (typeof INVARIANTS)[number];

export interface Outcome {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: Json;
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  /** Load the fs-killer preload (with its KAIR_CRASH_* variables in `env`). */
  preload?: boolean;
}

/** Runs `kair …args --json` in `ws`, asynchronously so that kill points can run side by side. */
export function kairJson(ws: string, args: string[], opts: SpawnOptions = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const argv = [...(opts.preload ? ['--require', KILLER] : []), BIN, ...args, '--json'];
    const child = spawn(process.execPath, argv, { cwd: ws, env: baseEnv({ KAIR_ACTOR: 'alice', ...opts.env }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      let json: Json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, signal, stdout, stderr, json });
    });
  });
}

export const describeOutcome = (o: Outcome) => `exit ${o.code}${o.signal ? ` (${o.signal})` : ''} ${o.json?.error ? `${o.json.error.code}: ${o.json.error.message}` : o.stdout.slice(0, 200)}${o.stderr ? ` stderr: ${o.stderr.slice(0, 200)}` : ''}`;

/** Context a case's recovery and checks get. */
export interface KillContext {
  ws: string;
  template: string;
  /** The outcome of the killed (or, for a late random instant, completed) command. */
  killed: Outcome;
}

/** A recovery's verdict: a message for each way it failed, none when it recovered. */
export type Problems = string[];

export interface CrashCase {
  /** Table key: the command as people name it (`run`, `resume`, `sim register`…). */
  name: string;
  /** Run in the default (CI) pass; the rest need KAIR_CRASH_FULL=1. */
  ci: boolean;
  /** Builds the pre-state in a fresh, initialised workspace. Runs once per case. */
  setup: (ws: string) => Promise<void>;
  /** The command to kill (without --json). */
  command: string[];
  /**
   * The next command(s) of the same kind, after the kill: they must succeed or recover. Returns
   * the problems found (empty when the workspace came back to a good end state) and the
   * contract documents the successful commands printed, which must not be lost.
   */
  recover: (ctx: KillContext) => Promise<{ problems: Problems; acknowledged: Json[] }>;
  /** Environment of the killed (and profiled) command, e.g. a tiny index compaction threshold. */
  env?: Record<string, string>;
  /** The exit code of the command when nothing kills it (default 0). */
  expectExit?: number;
  /** Writes only to SQLite (native, unseen by the preload): random instants are its coverage. */
  sqliteOnly?: boolean;
  /** Files under .kair/outbox/ that the case's side effect writes (at most one each). */
  outbox?: string[];
  /**
   * Send this signal at each kill point instead of SIGKILL: the command must then end promptly,
   * either handling it (exit 130, INTERRUPTED) or, outside a run's handlers, dying of it.
   */
  signal?: 'SIGINT';
}

export interface KillPoint {
  /** `op 12` (after the 12th counted operation) or `random 140ms`. */
  point: string;
  /** The operation at that point (`renameSync .kair/contracts/c1/contract.json.123 -> …`). */
  op: string | null;
  env: Record<string, string>;
}

export interface Violation {
  command: string;
  point: string;
  op: string | null;
  invariant: Invariant;
  detail: string;
}

export interface Profile {
  /** Every operation the preload saw: [name, path]. */
  ops: [string, string][];
  /** The operations that are kill points (the preload's count), with their place in `ops`. */
  killOps: string[];
  durationMs: number;
}

/** Operations that change only metadata or durability: a kill right after them leaves the files a kill before them leaves. */
const SAME_FILES_AS_BEFORE = new Set(['fsyncSync', 'fdatasyncSync', 'chmodSync', 'chownSync', 'fchmodSync', 'fchownSync', 'utimesSync', 'lutimesSync', 'futimesSync']);

export function isKillPoint(op: string): boolean {
  return !SAME_FILES_AS_BEFORE.has(op);
}

/** Registered like every test's temporary folder: removed when the test file ends, even when a kill point's own clean-up never ran. */
export function makeTemp(prefix: string): string {
  return makeTempDir(prefix);
}

/** A copy of the template workspace (cpSync of `.kair/` is far cheaper than replaying its setup). */
export function copyTemplate(template: string): string {
  const dir = makeTemp('kair-crash-');
  cpSync(join(template, '.kair'), join(dir, '.kair'), { recursive: true });
  return dir;
}

/** Every path under .kair/, relative to the workspace root, folders marked with a trailing /. */
export function listKair(ws: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        out.push(`${relative(ws, p)}/`);
        walk(p);
      } else out.push(relative(ws, p));
    }
  };
  if (existsSync(join(ws, '.kair'))) walk(join(ws, '.kair'));
  return out.sort();
}

/**
 * Temp and staging leftovers: write-file-atomic's `<name>.<digits>`, propose's `.tmp-<id>-…`
 * folder, anything named tmp, and whatever is inside a folder named `tmp` (the folder itself is
 * a place for temp files, not one). A lock a dead process left is not one: the next command that
 * takes that lock must recover it, which `recovers` checks (a stall ends in LOCK_BUSY).
 */
export function isOrphan(path: string): boolean {
  const parts = path.replace(/\/$/, '').split('/');
  const base = parts[parts.length - 1]!;
  if (base === 'kair.db-wal' || base === 'kair.db-shm' || base === 'kair.db-journal') return false;
  if (parts.slice(1, -1).some((p) => /^\.?tmp$/i.test(p))) return true;
  if (/^\.?tmp$/i.test(base)) return false;
  return /\.\d{4,}$/.test(base) || /(^|[.\-_])tmp([.\-_]|$)/i.test(base);
}

/** The complete history lines of every contract (text, so nothing is reinterpreted). */
export function historyLines(ws: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const root = join(ws, '.kair', 'contracts');
  if (!existsSync(root)) return out;
  for (const id of readdirSync(root)) {
    const f = join(root, id, 'history.jsonl');
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    out.set(id, text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean));
  }
  return out;
}

/** SQLite rows that an acknowledged command wrote and a later crash must not take away. */
const DURABLE_TABLES = ['agent_execution_ledger', 'simulations', 'access_policy', 'execution_envelopes', 'kimi_execution_runs'];

export function readRows(ws: string, sql: string, ...args: unknown[]): Json[] {
  const file = join(ws, '.kair', 'kair.db');
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...args) as Json[];
  } finally {
    db.close();
  }
}

export function durableRows(ws: string): Map<string, Json[]> {
  const out = new Map<string, Json[]>();
  const tables = new Set(readRows(ws, "SELECT name FROM sqlite_master WHERE type = 'table'").map((r) => r.name as string));
  for (const t of DURABLE_TABLES) if (tables.has(t)) out.set(t, readRows(ws, `SELECT * FROM ${t}`));
  return out;
}

/** Rows of `table` identified by `key`: envelopes and runs change status, ledger rows and catalog entries are kept. */
const ROW_KEY: Record<string, (r: Json) => string> = {
  agent_execution_ledger: (r) => JSON.stringify(r),
  simulations: (r) => String(r.id),
  access_policy: (r) => JSON.stringify([r.actor, r.action]),
  execution_envelopes: (r) => String(r.id),
  kimi_execution_runs: (r) => String(r.id),
};

/** SUCCEEDED ledger rows per idempotency key (`at most one side effect` = at most one). */
export function succeededPerKey(ws: string): Map<string, number> {
  const out = new Map<string, number>();
  const tables = new Set(readRows(ws, "SELECT name FROM sqlite_master WHERE type = 'table'").map((r) => r.name as string));
  if (!tables.has('agent_execution_ledger')) return out;
  for (const r of readRows(ws, "SELECT idempotency_key FROM agent_execution_ledger WHERE event = 'SUCCEEDED'")) {
    out.set(r.idempotency_key, (out.get(r.idempotency_key) ?? 0) + 1);
  }
  return out;
}

/** Checks run on every kill point, whatever the command. */
export async function checkKillPoint(
  c: CrashCase,
  template: string,
  kp: KillPoint,
  templateState: { history: Map<string, string[]>; rows: Map<string, Json[]> },
): Promise<{ violations: Violation[]; killed: boolean }> {
  const violations: Violation[] = [];
  const v = (invariant: Invariant, detail: string) => violations.push({ command: c.name, point: kp.point, op: kp.op, invariant, detail });
  const ws = copyTemplate(template);
  try {
    const killed = await kairJson(ws, c.command, { preload: true, env: { ...c.env, ...kp.env } });
    if (c.signal) {
      const handled = killed.code === 130 && killed.json?.error?.code === 'INTERRUPTED' && killed.json?.state === 'PAUSED';
      if (!handled && killed.signal !== c.signal) v('killed', `the command did not stop for ${c.signal} at ${kp.point}: ${describeOutcome(killed)}`);
    } else if (kp.point.startsWith('op ') && killed.signal !== 'SIGKILL') v('killed', `the command was not killed at ${kp.point}: ${describeOutcome(killed)}`);

    const afterKill = await kairJson(ws, ['verify']);
    if (afterKill.code !== 0) v('verify_after_kill', `verify ${describeOutcome(afterKill)} problems=${JSON.stringify(afterKill.json?.problems ?? []).slice(0, 600)}`);

    const { problems, acknowledged } = await c.recover({ ws, template, killed });
    for (const p of problems) v('recovers', p);

    const afterRecovery = await kairJson(ws, ['verify']);
    if (afterRecovery.code !== 0) v('verify_after_recovery', `verify ${describeOutcome(afterRecovery)} problems=${JSON.stringify(afterRecovery.json?.problems ?? []).slice(0, 600)}`);

    // Nothing acknowledged is lost: the template's history is a prefix of today's, every
    // contract a successful recovery printed is in history, and durable rows are still there.
    const now = historyLines(ws);
    for (const [id, lines] of templateState.history) {
      const after = now.get(id) ?? [];
      const lost = lines.findIndex((l, i) => after[i] !== l);
      if (lost >= 0) v('no_lost_events', `${id}: history line ${lost + 1} of the template is gone or changed`);
    }
    for (const doc of acknowledged) {
      const seq = doc?.history_seq as number | undefined;
      if (seq === undefined) continue;
      const line = now.get(doc.id)?.[seq - 1];
      if (!line || (JSON.parse(line) as { hash: string }).hash !== doc.history_head) v('no_lost_events', `${doc.id}: acknowledged event seq ${seq} is not in history`);
    }
    const rowsNow = durableRows(ws);
    for (const [table, rows] of templateState.rows) {
      const keys = new Set((rowsNow.get(table) ?? []).map(ROW_KEY[table]!));
      const missing = rows.filter((r) => !keys.has(ROW_KEY[table]!(r)));
      if (missing.length) v('no_lost_events', `${table}: ${missing.length} row(s) of the template are gone`);
    }

    // No side effect twice: one file per outbox path, one SUCCEEDED row per idempotency key.
    const files = listKair(ws);
    for (const want of c.outbox ?? []) {
      const copies = files.filter((f) => f.startsWith('.kair/outbox/') && !f.endsWith('/') && !isOrphan(f) && f.split('/').pop()!.startsWith(want));
      if (copies.length > 1) v('single_side_effect', `${copies.length} outbox files for ${want}: ${copies.join(', ')}`);
    }
    for (const [key, n] of succeededPerKey(ws)) if (n > 1) v('single_side_effect', `${n} SUCCEEDED ledger rows for idempotency key ${key}`);

    for (const orphan of files.filter(isOrphan)) v('no_orphans', `left after the next writer: ${orphan}`);
    return { violations, killed: killed.signal === 'SIGKILL' || (c.signal !== undefined && (killed.code === 130 || killed.signal === c.signal)) };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

/** Runs the command once, unkilled, in a copy of the template, to count its operations and time it. */
export async function profile(c: CrashCase, template: string): Promise<Profile> {
  const ws = copyTemplate(template);
  const countFile = join(ws, 'count.json');
  try {
    const r = await kairJson(ws, c.command, { preload: true, env: { ...c.env, KAIR_CRASH_COUNT_FILE: countFile } });
    if (r.code !== (c.expectExit ?? 0)) throw new Error(`${c.name}: the unkilled command failed: ${describeOutcome(r)}`);
    const counted = JSON.parse(readFileSync(countFile, 'utf8')) as { total: number; duration_ms: number; ops: [string, string][] };
    const killOps = counted.ops.filter(([op]) => isKillPoint(op)).map(([op, p]) => `${op} ${p}`);
    if (killOps.length !== counted.total) throw new Error(`${c.name}: the preload counted ${counted.total} kill points, the harness ${killOps.length}`);
    return { ops: counted.ops, killOps, durationMs: counted.duration_ms };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

/** mulberry32: a tiny seeded generator, so a random instant that fails can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn` over `items` with at most `width` at a time, keeping the results in order. */
export async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}
