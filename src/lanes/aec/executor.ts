/**
 * The SimulationExecutor (seed 001 §2.2, §8; SPEC §9.1): the only module that runs a simulation's
 * executor and so the only one with side effects. It takes the dispatcher's bounded envelope,
 * re-checks access, ACTIVE and `local:exec` itself as the final gate, then runs the executor the
 * catalog (not the envelope) defines. scripts/check_agent_execution_core.sh keeps it that way.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { SimulationExecutor as ExecutorDef } from '../../domain/aec/simulation.js';
import { sha256Hex } from '../../domain/canonical.js';
import { writeFileAtomicSync } from '../../store/fs/atomic.js';
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
  return { ...run(sim.executor, env, deps), access_decision };
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

function run(executor: ExecutorDef, env: DispatchEnvelope, deps: ExecutorDeps): RunResult {
  if (executor.kind === 'command') return runCommand(executor, env, deps);
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

/** `write_file`: `fields.content` to `fields.path` under .kair/outbox/ only, checked before anything is written. */
function writeOutbox(env: DispatchEnvelope, ws: Workspace): RunResult {
  const { path: wanted, content } = env.required_fields;
  if (wanted === undefined || content === undefined) {
    return failed('FIELD_MISSING', `write_file needs fields "path" and "content"`, { executor: 'write_file', missing: ['path', 'content'].filter((f) => env.required_fields[f] === undefined) });
  }
  const outbox = paths.outbox(ws);
  const target = resolve(outbox, wanted);
  const inside = (root: string, p: string) => p.startsWith(root + sep) && !relative(root, p).split(sep).includes('..');
  if (wanted === '' || isAbsolute(wanted) || !inside(outbox, target)) {
    return failed('PATH_OUTSIDE_OUTBOX', `write_file: ${JSON.stringify(wanted)} is not a path inside .kair/outbox/; nothing was written`, { executor: 'write_file', path: wanted });
  }
  mkdirSync(join(target, '..'), { recursive: true });
  // A symlink inside the outbox must not lead out of it.
  if (!inside(realpathSync(outbox), join(realpathSync(join(target, '..')), 'x'))) {
    return failed('PATH_OUTSIDE_OUTBOX', `write_file: ${JSON.stringify(wanted)} leads outside .kair/outbox/ through a link; nothing was written`, { executor: 'write_file', path: wanted });
  }
  writeFileAtomicSync(target, content);
  const file = rel(ws, target);
  return ok({ executor: 'write_file', path: file, bytes: Buffer.byteLength(content), sha256: sha256Hex(content) }, `${env.simulation_id}: wrote ${file}`, [`file:${file}@${sha256Hex(content)}`]);
}

const PLACEHOLDER = /\{([A-Za-z0-9_.-]+)\}/g;

/** `command`: argv without a shell, `{field}` replaced inside each element, killed at `timeout_ms`. */
function runCommand(executor: Extract<ExecutorDef, { kind: 'command' }>, env: DispatchEnvelope, deps: ExecutorDeps): RunResult {
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
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd: deps.ws.root,
    encoding: 'utf8',
    timeout: executor.timeout_ms,
    killSignal: 'SIGKILL',
    shell: false,
    maxBuffer: 16 * 1024 * 1024,
    env: {
      ...process.env,
      KAIR_CORRELATION_ID: env.correlation_id,
      KAIR_STEP_ID: env.step_id,
      KAIR_SIMULATION_ID: env.simulation_id,
      KAIR_IDEMPOTENCY_KEY: env.idempotency_key,
    },
  });
  const base = { executor: 'command', argv };
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ETIMEDOUT') {
    return { event: 'TIMED_OUT', reason_code: 'AEC_STEP_TIMEOUT', outcome: { ...base, reason: 'TIMEOUT', timeout_ms: executor.timeout_ms }, message: `${argv[0]} did not finish within ${executor.timeout_ms} ms and was killed`, proof_refs: [] };
  }
  if (r.error) return failed('SPAWN_FAILED', `could not run ${argv[0]}: ${r.error.message}`, { ...base, error: code ?? r.error.message });
  const out = { ...base, exit_code: r.status, signal: r.signal, stdout: clip(r.stdout), stderr: clip(r.stderr) };
  if (r.status !== 0) return failed('NONZERO_EXIT', `${argv[0]} exited ${r.status ?? r.signal}`, out);
  return ok(out, `${env.simulation_id}: ${argv[0]} exited 0`);
}
