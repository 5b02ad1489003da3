/**
 * The contract snapshot (kair.contract.v1) and the history events it is folded from.
 * Every event carries in `data` exactly what the fold needs, so a snapshot can always be
 * rebuilt from history alone, and `verify` can compare the two.
 */
import type { EventType, PauseReason, State } from './states.js';

export interface VersionEntry {
  version: number;
  plan_sha256: string | null;
  created_at: string;
  superseded_by?: number;
  reason?: string;
}

export interface Approval {
  actor: string;
  at: string;
  plan_sha256: string;
  valid: boolean;
}

export interface PauseInfo {
  requested_by: string;
  reason: PauseReason;
  step_id: string | null;
}

/** Who runs a run: enough to prove it dead (same host and boot, pid gone or reused). */
export interface RunnerIdentity {
  host: string;
  boot_id: string | null;
  pid_ns: string | null;
  pid: number;
  pid_start: number | null;
}

export interface RunningInfo {
  run_id: string;
  pid: number;
  since: string;
  /** Recorded by run.started/resume since runs name their process; older histories have only pid. */
  runner?: RunnerIdentity;
  /** The next plan step that has not finished in this run (null once all have). */
  step_id: string | null;
}

export interface Contract {
  id: string;
  intent: string;
  state: State;
  version: number;
  versions: VersionEntry[];
  plan_sha256: string | null;
  controls: { required: string[]; granted: string[] };
  approvals: Approval[];
  runs: string[];
  pause?: PauseInfo;
  running?: RunningInfo;
  created_at: string;
  updated_at: string;
  history_seq: number;
  history_head: string;
}

export interface HistoryEvent {
  seq: number;
  at: string;
  type: EventType;
  actor: string;
  state: State;
  data: Record<string, unknown>;
  prev: string;
  hash: string;
}

/** What a decision produces; the store stamps seq, at, actor, prev and hash. */
export interface EventDraft {
  type: EventType;
  state: State;
  data: Record<string, unknown>;
}

export function sortedSet(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

function voidApprovals(approvals: Approval[]): Approval[] {
  return approvals.map((a) => (a.valid ? { ...a, valid: false } : a));
}

/** Applies one event. Pure: returns a new snapshot, never mutates `c`. */
export function applyEvent(c: Contract | null, e: HistoryEvent): Contract {
  const d = e.data;
  if (e.type === 'propose') {
    return {
      id: d.id as string,
      intent: d.intent as string,
      state: e.state,
      version: 1,
      versions: [{ version: 1, plan_sha256: null, created_at: e.at }],
      plan_sha256: null,
      controls: { required: sortedSet((d.requires as string[]) ?? []), granted: [] },
      approvals: [],
      runs: [],
      created_at: e.at,
      updated_at: e.at,
      history_seq: e.seq,
      history_head: e.hash,
    };
  }
  if (!c) throw new Error(`history starts with ${e.type}, not propose`);
  // A checkpoint vouches for the state folded so far; it changes nothing but the head.
  if (e.type === 'checkpoint') return { ...c, history_seq: e.seq, history_head: e.hash };
  const n: Contract = {
    ...c,
    state: e.state,
    updated_at: e.at,
    history_seq: e.seq,
    history_head: e.hash,
  };
  switch (e.type) {
    case 'plan': {
      const sha = d.plan_sha256 as string;
      n.plan_sha256 = sha;
      n.versions = n.versions.map((v, i) => (i === n.versions.length - 1 ? { ...v, plan_sha256: sha } : v));
      n.approvals = voidApprovals(n.approvals);
      break;
    }
    case 'require':
    case 'unrequire':
      n.controls = { ...n.controls, required: d.required as string[] };
      n.approvals = voidApprovals(n.approvals);
      break;
    case 'close':
      n.approvals = voidApprovals(n.approvals);
      delete n.pause;
      break;
    case 'grant':
    case 'revoke':
      n.controls = { ...n.controls, granted: d.granted as string[] };
      break;
    case 'approve':
      // A repeat approval that only moves the state (a lowered minimum) adds no approval.
      if (d.repeat === true) break;
      n.approvals = [
        ...n.approvals,
        { actor: e.actor, at: e.at, plan_sha256: d.plan_sha256 as string, valid: true },
      ];
      break;
    case 'run.started':
    case 'resume': {
      const runId = d.run_id as string;
      if (!n.runs.includes(runId)) n.runs = [...n.runs, runId];
      n.running = { run_id: runId, pid: d.pid as number, since: e.at, step_id: (d.step_id as string | null) ?? null, ...(d.runner ? { runner: d.runner as RunnerIdentity } : {}) };
      delete n.pause;
      break;
    }
    case 'step.finished':
      if (n.running) n.running = { ...n.running, step_id: (d.next_step_id as string | null) ?? null };
      break;
    case 'run.finished':
      delete n.running;
      if (d.pause) n.pause = d.pause as PauseInfo;
      break;
    case 'pause':
      n.pause = d.pause as PauseInfo;
      break;
    case 'recovery':
      if (d.kind === 'crashed_run') {
        delete n.running;
        n.pause = d.pause as PauseInfo;
      }
      break;
    case 'rewind': {
      const next = d.version as number;
      n.versions = [
        ...n.versions.map((v) => (v.version === c.version ? { ...v, superseded_by: next } : v)),
        { version: next, plan_sha256: c.plan_sha256, created_at: e.at, reason: d.reason as string },
      ];
      n.version = next;
      n.approvals = voidApprovals(n.approvals);
      delete n.pause;
      break;
    }
    default:
      // request-approval, review, accept, dpc, gate.blocked, kimi.*: state/time only.
      break;
  }
  return n;
}

export function fold(events: Iterable<HistoryEvent>, from: Contract | null = null): Contract | null {
  let c = from;
  for (const e of events) c = applyEvent(c, e);
  return c;
}

export function missingControls(c: Contract): string[] {
  const granted = new Set(c.controls.granted);
  return c.controls.required.filter((r) => !granted.has(r));
}

/** Distinct actors with a valid approval bound to the current plan hash. */
export function validApprovers(c: Contract): string[] {
  return sortedSet(c.approvals.filter((a) => a.valid && a.plan_sha256 === c.plan_sha256).map((a) => a.actor));
}
