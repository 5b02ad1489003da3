/**
 * The SimulationExecutor (seed 001 §2.2, §8; SPEC §9.1): the only module that runs a simulation's
 * executor and so the only one with side effects. It takes the dispatcher's bounded envelope,
 * re-checks access, ACTIVE and `local:exec` itself as the final gate, then runs the executor the
 * catalog (not the envelope) defines. scripts/check_agent_execution_core.sh keeps it that way.
 */
import { closeSync, constants, fsyncSync, lstatSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { SimulationExecutor as ExecutorDef } from '../../domain/aec/simulation.js';
import { sha256Hex } from '../../domain/canonical.js';
import { redactSecrets } from '../../domain/dpc.js';
import { fsyncDir } from '../../store/fs/atomic.js';
import { isPidAlive } from '../../store/fs/pid.js';
import { listDir } from '../../store/fs/temp.js';
import type { Workspace } from '../../store/fs/workspace.js';
import { paths, rel } from '../../store/fs/workspace.js';
import type { Db } from '../../store/sqlite/db.js';
import { accessRepo } from './access.js';
import { catalogRepo } from './catalog.js';
import type { AccessDecisionRow } from './ledger.js';

/** Seed 001 §2.2: what the Execution Core hands the SimulationExecutor. */
export interface DispatchEnvelope {
  correlation_id: string;
  tenant_id: string;
  user_id: string;
  step_id: string;
  simulation_id: string;
  required_fields: Record<string, string>;
  confirmation_proof_ref: string | null;
  access_action: string;
  idempotency_key: string;
  policy_snapshot_ref: string;
  artifact_fingerprint_bundle_ref: string;
  rollback_plan_ref: string | null;
}

export type ExecutorReason =
  | 'AEC_DISPATCH_OK'
  | 'AEC_EXECUTOR_FAILED'
  | 'AEC_STEP_TIMEOUT'
  | 'ACCESS_SCOPE_VIOLATION'
  | 'ACCESS_AP_REQUIRED'
  | 'SIMULATION_NOT_REGISTERED'
  | 'SIMULATION_NOT_ACTIVE'
  | 'CONTROLS_MISSING';

export interface ExecutorResult {
  event: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'REJECTED';
  reason_code: ExecutorReason;
  /** The deterministic simulation outcome payload. */
  outcome: Record<string, unknown>;
  message: string;
  /**
   * The executor's own access decision (its final hard gate), for the access-decision ledger.
   * The dispatcher commits it with the outcome row, so a dispatch costs two commits, not three.
   */
  access_decision: Omit<AccessDecisionRow, 'id'>;
  proof_refs: string[];
}

export interface ExecutorDeps {
  db: Db;
  ws: Workspace;
  run_id: string;
  /** Controls granted on the contract at dispatch time (`command` needs `local:exec`). */
  controls_granted: readonly string[];
  now: () => string;
  /** kair's own environment, which a `command` sees only through the allow-list (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

const OUTPUT_LIMIT = 4096;
const clip = (s: string | undefined) => (s === undefined ? '' : s.length > OUTPUT_LIMIT ? `${s.slice(0, OUTPUT_LIMIT)}…` : s);

export function executeSimulation(env: DispatchEnvelope, deps: ExecutorDeps): ExecutorResult {
  const access = accessRepo(deps.db).decide(env.user_id, env.access_action);
  const access_decision: ExecutorResult['access_decision'] = {
    tenant_id: env.tenant_id,
    correlation_id: env.correlation_id,
    run_id: deps.run_id,
    step_id: env.step_id,
    actor: env.user_id,
    action: env.access_action,
    decision: access.decision,
    rule: access.rule ?? null,
    policy_snapshot_version: access.policy_snapshot_version,
    checked_by: 'executor',
    created_at: deps.now(),
  };
  const rejected = (reason_code: ExecutorReason, message: string): ExecutorResult => ({
    event: 'REJECTED',
    reason_code,
    outcome: { rejected_by: 'SimulationExecutor', reason_code },
    message,
    access_decision,
    proof_refs: [],
  });
  if (access.decision === 'deny') return rejected('ACCESS_SCOPE_VIOLATION', `${env.user_id} may not ${env.access_action} (no allow rule)`);
  if (access.decision === 'require-ap') return rejected('ACCESS_AP_REQUIRED', `${env.user_id} needs an approval (AP) to ${env.access_action}`);

  const sim = catalogRepo(deps.db).getSimulation(env.simulation_id);
  if (!sim) return rejected('SIMULATION_NOT_REGISTERED', `simulation ${env.simulation_id} is not registered`);
  if (sim.status !== 'Active') return rejected('SIMULATION_NOT_ACTIVE', `simulation ${env.simulation_id} is ${sim.status}, not Active`);
  if (sim.executor.kind === 'command' && !deps.controls_granted.includes('local:exec')) {
    return rejected('CONTROLS_MISSING', `simulation ${env.simulation_id} runs a command and needs control local:exec`);
  }
  return { ...run(sim.executor, env, deps, sim.env_allow ?? []), access_decision };
}

type RunResult = Omit<ExecutorResult, 'access_decision'>;

const ok = (outcome: Record<string, unknown>, message: string, proof_refs: string[] = []): RunResult => ({ event: 'SUCCEEDED', reason_code: 'AEC_DISPATCH_OK', outcome, message, proof_refs });
const failed = (reason: string, message: string, extra: Record<string, unknown> = {}): RunResult => ({
  event: 'FAILED',
  reason_code: 'AEC_EXECUTOR_FAILED',
  outcome: { reason, ...extra },
  message,
  proof_refs: [],
});

function run(executor: ExecutorDef, env: DispatchEnvelope, deps: ExecutorDeps, envAllow: readonly string[]): RunResult {
  if (executor.kind === 'command') return runCommand(executor, env, deps, envAllow);
  switch (executor.name) {
    case 'noop':
      return ok({ executor: 'noop' }, `${env.simulation_id}: nothing to do`);
    case 'echo':
      return ok({ executor: 'echo', fields: env.required_fields }, `${env.simulation_id}: echoed ${Object.keys(env.required_fields).length} field(s)`);
    case 'fail':
      return failed('FAIL_EXECUTOR', `${env.simulation_id}: the fail executor always fails`, { executor: 'fail' });
    case 'write_file':
      return writeOutbox(env, deps.ws);
  }
}

const outside = (wanted: string, why: string): RunResult =>
  failed('PATH_OUTSIDE_OUTBOX', `write_file: ${JSON.stringify(wanted.slice(0, 80))} ${why}; nothing was written`, { executor: 'write_file', path: wanted });

type Kind = 'missing' | 'dir' | 'file' | 'link' | 'other';
function kindOf(p: string): Kind {
  try {
    const st = lstatSync(p);
    return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
}

/** A real folder at `p` (created when missing), or false when something else is there. */
function realDir(p: string, parents = false): boolean {
  let k = kindOf(p);
  if (k === 'missing') {
    try {
      mkdirSync(p, { recursive: parents });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    k = kindOf(p);
  }
  return k === 'dir';
}

/**
 * `write_file`: `fields.content` to `fields.path` under .kair/outbox/ only. The outbox and every
 * folder on the way must be real folders (never symlinks), and the file is written to a fresh
 * temp name opened with O_EXCL|O_NOFOLLOW, then renamed over the final name: rename replaces a
 * symlink planted there after the checks instead of writing through it, so nothing outside the
 * outbox can be written whatever races the checks.
 */
function writeOutbox(env: DispatchEnvelope, ws: Workspace): RunResult {
  const { path: wanted, content } = env.required_fields;
  if (wanted === undefined || content === undefined) {
    return failed('FIELD_MISSING', `write_file needs fields "path" and "content"`, { executor: 'write_file', missing: ['path', 'content'].filter((f) => env.required_fields[f] === undefined) });
  }
  const parts = wanted.split(/[\\/]/).filter((s) => s !== '' && s !== '.');
  if (wanted === '' || isAbsolute(wanted) || wanted.includes('\0') || parts.length === 0 || parts.includes('..')) {
    return outside(wanted, 'is not a path inside .kair/outbox/');
  }
  const outbox = paths.outbox(ws);
  // Its parents are kair's own (.kair/); from the outbox down, one level at a time.
  if (!realDir(outbox, true)) return outside(wanted, 'cannot be written: .kair/outbox is not a real folder (a symlink or a file)');
  let dir = outbox;
  for (const part of parts.slice(0, -1)) {
    dir = join(dir, part);
    if (!realDir(dir)) return outside(wanted, `leads through ${JSON.stringify(rel(ws, dir))}, which is not a real folder (a symlink or a file)`);
  }
  const target = join(dir, parts[parts.length - 1]!);
  const k = kindOf(target);
  if (k === 'link') return outside(wanted, 'is a symlink; write_file never follows one');
  if (k !== 'missing' && k !== 'file') return outside(wanted, 'is not a regular file');
  // The last check: the folder really resolves inside the outbox (a folder swapped for a link
  // after the walk above is caught here, before anything has a final name).
  const realOutbox = realpathSync(outbox);
  const realDirNow = realpathSync(dir);
  if (realDirNow !== realOutbox && !(realDirNow.startsWith(realOutbox + sep) && !relative(realOutbox, realDirNow).split(sep).includes('..'))) {
    return outside(wanted, 'leads outside .kair/outbox/ through a link');
  }
  sweepDeadTemps(dir);
  const tmp = join(dir, `.${parts[parts.length - 1]!.slice(0, 100)}.kair-tmp-${process.pid}-${Date.now().toString(36)}`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    const bytes = Buffer.from(content);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, target);
  fsyncDir(dir);
  const file = rel(ws, target);
  return ok({ executor: 'write_file', path: file, bytes: Buffer.byteLength(content), sha256: sha256Hex(content) }, `${env.simulation_id}: wrote ${file}`, [`file:${file}@${sha256Hex(content)}`]);
}

/**
 * Temp files of writers killed between their create and their rename (the pid is in the name):
 * removed by the next write into the same folder, so no orphan outlives the next writer.
 */
function sweepDeadTemps(dir: string): void {
  for (const name of listDir(dir)) {
    const m = /^\..*\.kair-tmp-(\d+)-[0-9a-z]+$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !isPidAlive(Number(m[1]))) rmSync(join(dir, name), { force: true });
  }
}

const PLACEHOLDER = /\{([A-Za-z0-9_.-]+)\}/g;

/** What a command always gets from kair's environment (plus the simulation's `env_allow`). */
export const BASE_ENV_ALLOW = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'] as const;

export function commandEnv(from: NodeJS.ProcessEnv, envAllow: readonly string[], kairVars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...BASE_ENV_ALLOW, ...envAllow]) {
    const v = from[name];
    if (v !== undefined) env[name] = v;
  }
  return { ...env, ...kairVars };
}

/** More output than this ends the command (only the first 4 KiB are kept anyway). */
const OUTPUT_MAX_BYTES = 16 * 1024 * 1024;

/** Grace between SIGTERM and SIGKILL of a command's process group. */
export const KILL_GRACE_MS = 2000;

/**
 * The supervisor (run by `node -e`) between kair and a command. kair's run loop is synchronous and
 * spawnSync can only signal its direct child, so the supervisor starts the command in its own
 * process group and owns it: at the timeout, on SIGINT/SIGTERM/SIGHUP, and when the command exits
 * leaving processes behind, it sends SIGTERM to the whole group, then SIGKILL after the grace.
 * It reports `{exit_code, signal, timed_out, error}` on fd 3; the command's stdout and stderr are
 * the supervisor's own.
 */
const SUPERVISOR = `
const { spawn } = require('node:child_process');
const { writeSync } = require('node:fs');
const [timeoutMs, graceMs, cmd, ...args] = process.argv.slice(1);
let timedOut = false, result = null, child, pgid;
const alive = () => { try { process.kill(-pgid, 0); return true; } catch { return false; } };
const finish = () => { try { writeSync(3, JSON.stringify({ ...result, timed_out: timedOut })); } catch {} process.exit(0); };
let killing = false;
const killGroup = () => {
  if (killing) return; killing = true;
  try { process.kill(-pgid, 'SIGTERM'); } catch {}
  const until = Date.now() + Number(graceMs);
  const poll = setInterval(() => {
    if (alive() && Date.now() < until) return;
    clearInterval(poll);
    try { process.kill(-pgid, 'SIGKILL'); } catch {}
    if (result) finish();
  }, 25);
};
try { child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'] }); } catch (e) { result = { error: e.code || String(e.message) }; finish(); }
pgid = child.pid;
if (pgid) writeSync(3, JSON.stringify({ pgid }) + '\\n');
child.on('error', (e) => { result = { error: e.code || String(e.message) }; finish(); });
const timer = setTimeout(() => { timedOut = true; killGroup(); }, Number(timeoutMs));
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => { result = result || { exit_code: null, signal: s, interrupted: true }; killGroup(); });
// kair killed (kill -TERM, a crash): the supervisor is re-parented; nothing kair started survives it.
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) { result = result || { exit_code: null, signal: 'SIGTERM', interrupted: true }; killGroup(); } }, 100).unref();
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  result = result || { exit_code: code, signal };
  if (killing) return;
  if (alive()) killGroup(); else finish();
});
`;

/** `command`: argv without a shell, `{field}` replaced inside each element, its process group killed at `timeout_ms`. */
function runCommand(executor: Extract<ExecutorDef, { kind: 'command' }>, env: DispatchEnvelope, deps: ExecutorDeps, envAllow: readonly string[]): RunResult {
  const unknown = new Set<string>();
  const argv = executor.argv.map((a) =>
    a.replace(PLACEHOLDER, (m, name: string) => {
      if (Object.hasOwn(env.required_fields, name)) return env.required_fields[name]!;
      unknown.add(name);
      return m;
    }),
  );
  if (unknown.size > 0) {
    return failed('FIELD_MISSING', `the command names field(s) the step does not give: ${[...unknown].join(', ')}; nothing was run`, { executor: 'command', missing: [...unknown] });
  }
  // Loaded here, not at the top: node:child_process brings net and dgram, ~3 ms of every run's start.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const childEnv = commandEnv(deps.env ?? process.env, envAllow, {
    KAIR_CORRELATION_ID: env.correlation_id,
    KAIR_STEP_ID: env.step_id,
    KAIR_SIMULATION_ID: env.simulation_id,
    KAIR_IDEMPOTENCY_KEY: env.idempotency_key,
  });
  const r = spawnSync(process.execPath, ['-e', SUPERVISOR, String(executor.timeout_ms), String(KILL_GRACE_MS), ...argv], {
    cwd: deps.ws.root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    // A backstop only: the supervisor ends itself within the grace after the timeout.
    timeout: executor.timeout_ms + KILL_GRACE_MS + 10_000,
    killSignal: 'SIGKILL',
    shell: false,
    maxBuffer: OUTPUT_MAX_BYTES,
    env: childEnv,
  });
  type Report = { pgid?: number; exit_code?: number | null; signal?: string | null; timed_out?: boolean; error?: string; interrupted?: boolean };
  const lines = ((r.output?.[3] as string | null) ?? '').split('\n').filter(Boolean);
  const parse = (line: string | undefined): Report => {
    try {
      return JSON.parse(line ?? '{}') as Report;
    } catch {
      return {};
    }
  };
  // First line: the command's process group, as soon as it exists; last line: the outcome.
  const pgid = parse(lines[0]).pgid;
  const last = parse(lines[lines.length - 1]);
  const report: Report = last.pgid === undefined ? last : {};
  // The supervisor itself was killed (the backstop timeout, or output over maxBuffer): its group
  // cleanup never ran, so kair kills the command's group itself.
  if (r.error && pgid !== undefined && report.exit_code === undefined) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const base = { executor: 'command', argv };
  if (report.timed_out || (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') {
    return { event: 'TIMED_OUT', reason_code: 'AEC_STEP_TIMEOUT', outcome: { ...base, reason: 'TIMEOUT', timeout_ms: executor.timeout_ms }, message: `${argv[0]} did not finish within ${executor.timeout_ms} ms; its process group was killed`, proof_refs: [] };
  }
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOBUFS') {
    return failed('OUTPUT_TOO_LARGE', `${argv[0]} wrote more than ${OUTPUT_MAX_BYTES} bytes of output; its process group was killed`, base);
  }
  if (report.error !== undefined) return failed('SPAWN_FAILED', `could not run ${argv[0]}: ${report.error}`, { ...base, error: report.error });
  if (r.error || report.exit_code === undefined) return failed('SPAWN_FAILED', `could not run ${argv[0]}: ${r.error?.message ?? `the supervisor ended without a report (status ${r.status ?? r.signal})`}`, { ...base, error: r.error?.message ?? 'NO_REPORT' });
  // Redacted before the outcome exists: it goes to the ledger, history, run-result and refs.
  const out = { ...base, exit_code: report.exit_code, signal: report.signal ?? null, stdout: clip(redactSecrets(r.stdout ?? '')), stderr: clip(redactSecrets(r.stderr ?? '')) };
  if (report.exit_code !== 0) return failed('NONZERO_EXIT', `${argv[0]} exited ${report.exit_code ?? report.signal}`, out);
  return ok(out, `${env.simulation_id}: ${argv[0]} exited 0`);
}
