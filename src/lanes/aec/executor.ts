/**
 * The SimulationExecutor (seed 001 §2.2, §8; SPEC §9.1): the only module that runs a simulation's
 * executor and so the only one with side effects. It takes the dispatcher's bounded envelope,
 * re-checks access, ACTIVE and `local:exec` itself as the final gate, then runs the executor the
 * catalog (not the envelope) defines. scripts/check_agent_execution_core.sh keeps it that way.
 */
import { closeSync, constants, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { SimulationExecutor as ExecutorDef } from '../../domain/aec/simulation.js';
import { sha256Hex } from '../../domain/canonical.js';
import { redactSecrets } from '../../domain/dpc.js';
import { fsyncDir } from '../../store/fs/atomic.js';
import { makeScratchDir, removeScratchDir, sweepDeadWriters } from '../../store/fs/temp.js';
import type { Workspace } from '../../store/fs/workspace.js';
import { paths, rel } from '../../store/fs/workspace.js';
import type { ExecutionStore } from '../../store/port.js';
import { readOnly } from '../../store/port.js';
import type { Db } from '../../store/sqlite/db.js';
import type { AccessDecision } from './access.js';
import { accessRepo } from './access.js';
import type { SimulationView } from './catalog.js';
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
  /** INTERRUPTED: kair was told to stop (SIGINT/SIGTERM) while a command ran; its group was killed, its effect is unknown. */
  event: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'REJECTED' | 'INTERRUPTED';
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
  store: ExecutionStore;
  /** A raw local connection instead of `store` (in-process tests): the reads are synchronous, and so is the result of a builtin executor. */
  db?: never;
  ws: Workspace;
  run_id: string;
  /** Controls granted on the contract at dispatch time (`command` needs `local:exec`). */
  controls_granted: readonly string[];
  now: () => string;
  /** kair's own environment, which a `command` sees only through the allow-list (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Aborted when kair is interrupted: a running command's process group is killed at once. */
  signal?: AbortSignal;
}

const OUTPUT_LIMIT = 4096;
const clip = (s: string | undefined) => (s === undefined ? '' : s.length > OUTPUT_LIMIT ? `${s.slice(0, OUTPUT_LIMIT)}…` : s);

/** What running a simulation needs beyond the store. */
type RunDeps = Omit<ExecutorDeps, 'store' | 'db'>;

/** ExecutorDeps over a raw local connection: see ExecutorDeps.db. */
export type LocalExecutorDeps = RunDeps & { db: Db; store?: never };

/**
 * The executor's own reads (access, catalog) are one read transaction that ends before the
 * simulation runs: nothing is held while it runs. `command` runs asynchronously so that kair
 * stays able to react to SIGINT/SIGTERM while the command runs.
 */
export function executeSimulation(env: DispatchEnvelope, deps: ExecutorDeps): Promise<ExecutorResult>;
export function executeSimulation(env: DispatchEnvelope, deps: LocalExecutorDeps): ExecutorResult | Promise<ExecutorResult>;
export function executeSimulation(env: DispatchEnvelope, deps: ExecutorDeps | LocalExecutorDeps): ExecutorResult | Promise<ExecutorResult> {
  if (deps.db) {
    // Synchronous: a builtin executor's result is returned as it is.
    const facts = { access: accessRepo(deps.db).decide(env.user_id, env.access_action), sim: catalogRepo(deps.db).getSimulation(env.simulation_id) };
    return decideAndRun(env, deps, facts);
  }
  const store = deps.store!;
  return readOnly(store, async (sql) => ({ access: await accessRepo(sql).decide(env.user_id, env.access_action), sim: await catalogRepo(sql).getSimulation(env.simulation_id) })).then((facts) => decideAndRun(env, deps, facts));
}

function decideAndRun(env: DispatchEnvelope, deps: RunDeps, { access, sim }: { access: AccessDecision; sim: SimulationView | undefined }): ExecutorResult | Promise<ExecutorResult> {
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

  if (!sim) return rejected('SIMULATION_NOT_REGISTERED', `simulation ${env.simulation_id} is not registered`);
  if (sim.status !== 'Active') return rejected('SIMULATION_NOT_ACTIVE', `simulation ${env.simulation_id} is ${sim.status}, not Active`);
  if (sim.executor.kind === 'command' && !deps.controls_granted.includes('local:exec')) {
    return rejected('CONTROLS_MISSING', `simulation ${env.simulation_id} runs a command and needs control local:exec`);
  }
  const r = run(sim.executor, env, deps, sim.env_allow ?? []);
  return r instanceof Promise ? r.then((x) => ({ ...x, access_decision })) : { ...r, access_decision };
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

function run(executor: ExecutorDef, env: DispatchEnvelope, deps: RunDeps, envAllow: readonly string[]): RunResult | Promise<RunResult> {
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
  sweepDeadWriters(dir, /^\..*\.kair-tmp-(\d+)-[0-9a-z]+$/);
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
 * The supervisor (run by `node -e`) between kair and a command. It starts the command in its own
 * process group and owns it, awake whatever kair is doing (a synchronous write, a lock wait): at the timeout, on SIGINT/SIGTERM/SIGHUP, and when the command exits
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
// Before the spawn: a signal from here on is handled after this synchronous start, when the group
// exists; one that comes earlier kills the supervisor before it has started anything.
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => { result = result || { exit_code: null, signal: s, interrupted: true }; killGroup(); });
try { child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit'] }); } catch (e) { result = { error: e.code || String(e.message) }; finish(); }
pgid = child.pid;
if (pgid) writeSync(3, JSON.stringify({ pgid }) + '\\n');
child.on('error', (e) => { result = { error: e.code || String(e.message) }; finish(); });
const timer = setTimeout(() => { timedOut = true; killGroup(); }, Number(timeoutMs));
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
function runCommand(executor: Extract<ExecutorDef, { kind: 'command' }>, env: DispatchEnvelope, deps: RunDeps, envAllow: readonly string[]): RunResult | Promise<RunResult> {
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
  let outputs: ReturnType<typeof outputsFile>;
  try {
    outputs = outputsFile();
  } catch (e) {
    return failed('SPAWN_FAILED', `could not prepare KAIR_OUTPUT for ${argv[0]}: ${(e as NodeJS.ErrnoException).code ?? 'error'}; nothing was run`, { executor: 'command', argv, error: (e as NodeJS.ErrnoException).code ?? 'error' });
  }
  const childEnv = commandEnv(deps.env ?? process.env, envAllow, {
    KAIR_CORRELATION_ID: env.correlation_id,
    KAIR_STEP_ID: env.step_id,
    KAIR_SIMULATION_ID: env.simulation_id,
    KAIR_IDEMPOTENCY_KEY: env.idempotency_key,
    KAIR_OUTPUT: outputs.file,
  });
  return superviseCommand(argv, executor.timeout_ms, childEnv, deps)
    .then((r) => commandResult(argv, executor.timeout_ms, r, env, outputs.file))
    .finally(outputs.remove);
}

/**
 * Where a command reports values a rollback may need (e.g. the id of the invoice it created):
 * `name=value` lines appended to the file named by KAIR_OUTPUT, as GitHub Actions' GITHUB_OUTPUT.
 * A file, not marked lines on stdout: a command that prints something it was given (a customer
 * name, a remote error) could otherwise forge an output. The file lives in a private temp folder
 * (0700), created empty before the command starts and removed after it ends.
 */
function outputsFile(): { file: string; remove: () => void } {
  const dir = makeScratchDir('kair-out-');
  const file = join(dir, 'outputs');
  closeSync(openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
  return { file, remove: () => removeScratchDir(dir) };
}

export const OUTPUTS_MAX_BYTES = 64 * 1024;
const OUTPUTS_MAX = 64;
const OUTPUT_VALUE_MAX = 1024;
const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * The outputs a command reported, or why none are recorded. Never a reason to fail the step: the
 * command has acted, and a FAILED step invites a retry that would act again. Read without
 * following a link and without blocking (a FIFO put in its place is refused, not waited on).
 */
export function readOutputs(file: string): { outputs?: Record<string, string>; outputs_error?: string } {
  let text: string;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? {} : { outputs_error: `KAIR_OUTPUT could not be read (${code ?? 'error'})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { outputs_error: 'KAIR_OUTPUT is not a regular file' };
    if (st.size === 0) return {};
    if (st.size > OUTPUTS_MAX_BYTES) return { outputs_error: `KAIR_OUTPUT holds more than ${OUTPUTS_MAX_BYTES} bytes` };
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, off));
  } catch (e) {
    return { outputs_error: e instanceof TypeError ? 'KAIR_OUTPUT is not UTF-8 text' : `KAIR_OUTPUT could not be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  } finally {
    closeSync(fd);
  }
  return parseOutputs(text);
}

/** `name=value` lines (blank lines skipped); any malformed, duplicate or oversized entry voids them all. */
export function parseOutputs(text: string): { outputs?: Record<string, string>; outputs_error?: string } {
  const outputs: Record<string, string> = {};
  let n = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    const bad = (why: string) => ({ outputs_error: `KAIR_OUTPUT line ${i + 1}: ${why}; no output was recorded` });
    if (eq < 0) return bad('expected name=value');
    // Names are field names: a `{name}` placeholder must be able to use them; never an object's own machinery.
    if (!OUTPUT_NAME.test(name) || name === '__proto__' || name === 'constructor' || name === 'prototype') return bad(`${JSON.stringify(name.slice(0, 80))} is not an output name ([A-Za-z_][A-Za-z0-9_.-]*, at most 64 characters)`);
    if (Object.hasOwn(outputs, name)) return bad(`${name} is given twice`);
    const value = line.slice(eq + 1);
    if (value.length > OUTPUT_VALUE_MAX) return bad(`the value of ${name} is longer than ${OUTPUT_VALUE_MAX} characters`);
    // eslint-disable-next-line no-control-regex -- C0, DEL and C1 controls are what is refused
    if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) return bad(`the value of ${name} has control characters`);
    if (++n > OUTPUTS_MAX) return bad(`more than ${OUTPUTS_MAX} outputs`);
    // Recorded in the ledger like stdout: a secret is redacted, never stored.
    outputs[name] = redactSecrets(value);
  }
  return n === 0 ? {} : { outputs };
}

interface Supervised {
  stdout: string;
  stderr: string;
  /** The supervisor's report lines on fd 3. */
  report: string;
  /** Why kair ended the supervisor itself, if it did. */
  error?: 'ETIMEDOUT' | 'ENOBUFS' | 'SPAWN' | 'INTERRUPTED';
  /** kair was interrupted while the supervisor ran. */
  aborted: boolean;
  message?: string;
  status: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs the supervisor asynchronously (spawn, not spawnSync), so that the event loop stays free
 * and kair's SIGINT/SIGTERM handler can run during a long command. On `deps.signal` the
 * supervisor gets SIGTERM: it kills the command's process group (SIGKILL after the grace) and
 * reports `interrupted`. The backstops (timeout + grace + 10 s, and the grace + 5 s after an
 * interrupt) SIGKILL the supervisor and the command's group if the supervisor does not end.
 */
function superviseCommand(argv: string[], timeoutMs: number, childEnv: Record<string, string>, deps: RunDeps): Promise<Supervised> {
  // Loaded here, not at the top: node:child_process brings net and dgram, ~3 ms of every run's start.
  const { spawn } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    const rep: Buffer[] = [];
    let bytes = 0;
    let error: Supervised['error'];
    let message: string | undefined;
    const child = spawn(process.execPath, ['-e', SUPERVISOR, String(timeoutMs), String(KILL_GRACE_MS), ...argv], {
      cwd: deps.ws.root,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      shell: false,
      env: childEnv,
    });
    const pgidOf = (): number | undefined => {
      const first = Buffer.concat(rep).toString('utf8').split('\n')[0];
      try {
        return (JSON.parse(first ?? '') as { pgid?: number }).pgid;
      } catch {
        return undefined;
      }
    };
    // The supervisor is killed without its cleanup: kair kills the command's group itself.
    const killAll = (why: NonNullable<Supervised['error']>) => {
      error ??= why;
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
      const pgid = pgidOf();
      if (pgid !== undefined) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    const take = (into: Buffer[]) => (d: Buffer) => {
      bytes += d.length;
      if (bytes > OUTPUT_MAX_BYTES) killAll('ENOBUFS');
      else into.push(d);
    };
    child.stdout!.on('data', take(out));
    child.stderr!.on('data', take(errs));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => rep.push(d));
    const backstop = setTimeout(() => killAll('ETIMEDOUT'), timeoutMs + KILL_GRACE_MS + 10_000);
    let afterInterrupt: NodeJS.Timeout | undefined;
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      try {
        child.kill('SIGTERM');
      } catch {
        // already gone
      }
      afterInterrupt = setTimeout(() => killAll('INTERRUPTED'), KILL_GRACE_MS + 5000);
    };
    if (deps.signal?.aborted) onAbort();
    else deps.signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const settle = (status: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(backstop);
      clearTimeout(afterInterrupt);
      deps.signal?.removeEventListener('abort', onAbort);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(errs).toString('utf8'),
        report: Buffer.concat(rep).toString('utf8'),
        ...(error === undefined ? {} : { error }),
        ...(message === undefined ? {} : { message }),
        aborted,
        status,
        signal,
      });
    };
    child.on('error', (e) => {
      error ??= 'SPAWN';
      message = e.message;
      // A supervisor that never started has no `close` to wait for.
      if (child.pid === undefined) settle(null, null);
    });
    // A process that left the group (setsid) may hold the output pipes after the supervisor is
    // gone: its output is not the command's, and kair does not wait for it.
    let drain: NodeJS.Timeout | undefined;
    child.on('exit', (status, signal) => {
      drain = setTimeout(() => {
        for (const s of [child.stdout, child.stderr, child.stdio[3]]) (s as NodeJS.ReadableStream & { destroy(): void } | null)?.destroy();
        settle(status, signal);
      }, 2000);
    });
    child.on('close', (status, signal) => {
      clearTimeout(drain);
      settle(status, signal);
    });
  });
}

function commandResult(argv: string[], timeoutMs: number, r: Supervised, env: DispatchEnvelope, outputsFile: string): RunResult {
  type Report = { pgid?: number; exit_code?: number | null; signal?: string | null; timed_out?: boolean; error?: string; interrupted?: boolean };
  const lines = r.report.split('\n').filter(Boolean);
  const parse = (line: string | undefined): Report => {
    try {
      return JSON.parse(line ?? '{}') as Report;
    } catch {
      return {};
    }
  };
  // First line: the command's process group, as soon as it exists; last line: the outcome.
  const last = parse(lines[lines.length - 1]);
  const report: Report = last.pgid === undefined ? last : {};
  const base = { executor: 'command', argv };
  // A command that ended on its own just before the interrupt keeps its real outcome.
  if (report.interrupted || r.error === 'INTERRUPTED' || (r.aborted && report.exit_code === undefined)) {
    // kair was interrupted: the command was killed part-way, so its effect is unknown (in doubt).
    return { event: 'INTERRUPTED', reason_code: 'AEC_EXECUTOR_FAILED', outcome: { ...base, reason: 'INTERRUPTED' }, message: `${argv[0]} was stopped by an interrupt; its process group was killed`, proof_refs: [] };
  }
  if (report.timed_out || r.error === 'ETIMEDOUT') {
    return { event: 'TIMED_OUT', reason_code: 'AEC_STEP_TIMEOUT', outcome: { ...base, reason: 'TIMEOUT', timeout_ms: timeoutMs }, message: `${argv[0]} did not finish within ${timeoutMs} ms; its process group was killed`, proof_refs: [] };
  }
  if (r.error === 'ENOBUFS') {
    return failed('OUTPUT_TOO_LARGE', `${argv[0]} wrote more than ${OUTPUT_MAX_BYTES} bytes of output; its process group was killed`, base);
  }
  if (report.error !== undefined) return failed('SPAWN_FAILED', `could not run ${argv[0]}: ${report.error}`, { ...base, error: report.error });
  if (r.error || report.exit_code === undefined) return failed('SPAWN_FAILED', `could not run ${argv[0]}: ${r.message ?? `the supervisor ended without a report (status ${r.status ?? r.signal})`}`, { ...base, error: r.message ?? 'NO_REPORT' });
  // Redacted before the outcome exists: it goes to the ledger, history, run-result and refs.
  const out = { ...base, exit_code: report.exit_code, signal: report.signal ?? null, stdout: clip(redactSecrets(r.stdout)), stderr: clip(redactSecrets(r.stderr)) };
  if (report.exit_code !== 0) return failed('NONZERO_EXIT', `${argv[0]} exited ${report.exit_code ?? report.signal}`, out);
  return ok({ ...out, ...readOutputs(outputsFile) }, `${env.simulation_id}: ${argv[0]} exited 0`);
}
