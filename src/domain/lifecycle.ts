/**
 * Pure decisions: given a snapshot and a command, the events to record or a KairError.
 * The app layer does the I/O (reading the plan file, locking, appending).
 */
import type { Config } from './config.js';
import type { Contract, EventDraft, PauseInfo } from './contract.js';
import { missingControls, sortedSet, validApprovers } from './contract.js';
import { kairError } from './errors.js';
import { CONTROL_PATTERN } from './ids.js';
import type { LifecycleCommand, State } from './states.js';
import { allowedCommands, isAllowed, simpleTarget } from './states.js';

export function assertTransition(c: Contract, command: LifecycleCommand): void {
  if (isAllowed(command, c.state)) return;
  const allowed = allowedCommands(c.state);
  throw kairError(
    'INVALID_TRANSITION',
    `cannot ${command} ${c.id}: it is ${c.state}; allowed in ${c.state}: ${allowed.length ? allowed.join(', ') : 'none (terminal)'}`,
    { contract_id: c.id, state: c.state, command, allowed },
  );
}

export function assertControlsGranted(c: Contract): void {
  const missing = missingControls(c);
  if (missing.length > 0) {
    throw kairError('CONTROLS_MISSING', `${c.id} needs controls that are not granted: ${missing.join(', ')}`, {
      contract_id: c.id,
      missing,
      hint: `kair grant ${c.id} ${missing.join(' ')}`,
    });
  }
}

/** Control names: format always, registry for `require`/`--requires`. */
export function checkControls(names: string[], registry: string[] | null): string[] {
  const bad = names.filter((n) => !CONTROL_PATTERN.test(n));
  if (bad.length > 0) {
    throw kairError('INVALID_CONTROL', `invalid control name ${bad.map((b) => JSON.stringify(b)).join(', ')}: expected <namespace>:<permission> of [a-z0-9_-]`, { controls: bad });
  }
  if (registry) {
    const unknown = names.filter((n) => !registry.includes(n));
    if (unknown.length > 0) {
      throw kairError('CONTROL_UNKNOWN', `unknown control ${unknown.join(', ')}: not in controls.registry (see \`kair grant list\`)`, {
        controls: unknown,
        registry,
      });
    }
  }
  return sortedSet(names);
}

export function decidePropose(id: string, intent: string, requires: string[]): EventDraft {
  return { type: 'propose', state: 'DRAFT', data: { id, intent, requires } };
}

export function decidePlan(c: Contract, plan: { sha: string; title: string; steps: number }): EventDraft {
  assertTransition(c, 'plan');
  return {
    type: 'plan',
    state: 'PLANNED',
    data: { plan_sha256: plan.sha, title: plan.title, steps: plan.steps, voided_approvals: countValid(c) },
  };
}

const countValid = (c: Contract) => c.approvals.filter((a) => a.valid).length;

export function decideRequire(c: Contract, controls: string[]): EventDraft {
  assertTransition(c, 'require');
  return {
    type: 'require',
    state: simpleTarget('require', c.state),
    data: { controls, required: sortedSet([...c.controls.required, ...controls]), voided_approvals: countValid(c) },
  };
}

export function decideUnrequire(c: Contract, controls: string[]): EventDraft {
  assertTransition(c, 'unrequire');
  const removed = controls.filter((n) => c.controls.required.includes(n));
  return {
    type: 'unrequire',
    state: simpleTarget('unrequire', c.state),
    data: { controls, removed, required: c.controls.required.filter((n) => !controls.includes(n)), voided_approvals: countValid(c) },
  };
}

/** null: the contract is CLOSED already (exit 0, nothing recorded). */
export function decideClose(c: Contract, reason: string): EventDraft | null {
  if (c.state === 'CLOSED') return null;
  assertTransition(c, 'close');
  return { type: 'close', state: 'CLOSED', data: { reason, from_state: c.state, voided_approvals: countValid(c) } };
}

export function decideGrant(c: Contract, kind: 'grant' | 'revoke', controls: string[]): EventDraft {
  assertTransition(c, kind);
  const granted = new Set(c.controls.granted);
  for (const name of controls) {
    if (kind === 'grant') granted.add(name);
    else granted.delete(name);
  }
  const changed = kind === 'grant' ? controls.filter((n) => !c.controls.granted.includes(n)) : controls.filter((n) => c.controls.granted.includes(n));
  return { type: kind, state: c.state, data: { changed, controls, granted: sortedSet(granted) } };
}

export function decideRequestApproval(c: Contract): EventDraft {
  assertTransition(c, 'request-approval');
  assertControlsGranted(c);
  return { type: 'request-approval', state: 'AWAITING_APPROVAL', data: { plan_sha256: c.plan_sha256 } };
}

/**
 * approve: state → signature required → controls → self-approval → stale. Returns null for a
 * repeat approval by the same actor (exit 0, nothing recorded), unless it adds a signature to an
 * approval that has none (`signing`; `signedApprovers` are the actors whose approval of the
 * current plan already carries one that counts).
 */
export function decideApprove(
  c: Contract,
  args: { actor: string; proposer: string; diskPlanSha: string | null; config: Config; signing?: boolean; signedApprovers?: string[]; expectSha?: string },
): EventDraft | null {
  const min = args.config.approvals.min;
  const approvers = validApprovers(c);
  const repeat = approvers.includes(args.actor);
  const addsSignature = args.signing === true && !(args.signedApprovers ?? []).includes(args.actor);
  // A repeat approval of the same plan by the same actor is a no-op even once the quorum moved
  // the contract to APPROVED (docs/decisions/003); one that adds a signature is recorded.
  const repeatApproved = c.state === 'APPROVED' && repeat;
  // `approvals.min` is read as configured now: an APPROVED contract that a raised minimum left
  // short takes more approvals instead of being stuck (docs/decisions/022).
  const belowMin = c.state === 'APPROVED' && approvers.length < min;
  if (!repeatApproved && !belowMin) assertTransition(c, 'approve');
  if (args.config.approvals.require_signed && !args.signing) {
    throw kairError('SIGNATURE_REQUIRED', `approvals of ${c.id} must be signed (approvals.require_signed); nothing was approved`, {
      contract_id: c.id,
      actor: args.actor,
      hint: `kair approve ${c.id} --sign [--key ~/.ssh/id_ed25519]`,
    });
  }
  if (repeatApproved) assertExpectedSha(c, args.expectSha);
  if (repeatApproved && !addsSignature) return null;
  assertControlsGranted(c);
  if (args.config.approvals.forbid_self && args.actor === args.proposer) {
    throw kairError('SELF_APPROVAL_FORBIDDEN', `${args.actor} proposed ${c.id} and may not approve it (approvals.forbid_self)`, {
      contract_id: c.id,
      actor: args.actor,
    });
  }
  assertExpectedSha(c, args.expectSha);
  assertPlanFresh(c, args.diskPlanSha);
  if (repeat && !addsSignature) {
    // A lowered minimum: the approvals already there suffice, and this repeat says so.
    if (c.state === 'AWAITING_APPROVAL' && approvers.length >= min) {
      return { type: 'approve', state: 'APPROVED', data: { plan_sha256: c.plan_sha256, approvers: approvers.length, min, repeat: true } };
    }
    return null;
  }
  const count = approvers.length + (repeat ? 0 : 1);
  // An APPROVED contract stays APPROVED while it collects the approvals a raised minimum wants.
  const state: State = count >= min || c.state === 'APPROVED' ? 'APPROVED' : 'AWAITING_APPROVAL';
  return { type: 'approve', state, data: { plan_sha256: c.plan_sha256, approvers: count, min } };
}

/**
 * `approve --expect-sha PREFIX`: the approver names the plan they read (`kair show`), so a plan
 * changed between their reading and their approval is refused instead of approved unseen.
 */
export function assertExpectedSha(c: Contract, prefix: string | undefined): void {
  if (prefix === undefined || (c.plan_sha256 !== null && c.plan_sha256.startsWith(prefix))) return;
  throw kairError(
    'APPROVAL_STALE',
    `the current plan of ${c.id} is ${c.plan_sha256 ? `${c.plan_sha256.slice(0, 12)}…` : 'missing'}, not the ${prefix} given to --expect-sha: it changed since it was read; nothing was approved`,
    {
      contract_id: c.id,
      expected_sha256_prefix: prefix,
      current_sha256: c.plan_sha256,
      hint: `see what changed with \`kair diff ${c.id} --from ${prefix}\`, read it with \`kair show ${c.id}\`, then approve that sha`,
    },
  );
}

export function assertPlanFresh(c: Contract, diskPlanSha: string | null): void {
  if (c.plan_sha256 === null || diskPlanSha !== c.plan_sha256) {
    throw kairError(
      'APPROVAL_STALE',
      diskPlanSha === null
        ? `the plan file of ${c.id} is missing or unreadable; re-plan it with \`kair plan ${c.id} --file F\``
        : `the plan on disk for ${c.id} differs from the plan it was approved for (sha256 ${c.plan_sha256?.slice(0, 12)}… vs ${diskPlanSha.slice(0, 12)}…); re-plan and re-approve`,
      { contract_id: c.id, approved_sha256: c.plan_sha256, disk_sha256: diskPlanSha },
    );
  }
}

/** run/resume gates after the state check: approvals → on-disk plan hash → controls. */
export function assertRunnable(c: Contract, diskPlanSha: string | null, config: Config, signed?: { approvers: string[]; rejected: { actor: string; reason: string }[] }): void {
  // Under approvals.require_signed the caller passes the approvers whose signature verifies.
  const approvers = signed ? signed.approvers : validApprovers(c);
  if (approvers.length < config.approvals.min) {
    throw kairError(
      'APPROVAL_REQUIRED',
      `${c.id} has ${approvers.length} valid ${signed ? 'signed approval(s) that verify' : 'approval(s)'} for its current plan; ${config.approvals.min} required`,
      {
        contract_id: c.id,
        approvers,
        min: config.approvals.min,
        ...(signed ? { require_signed: true, rejected: signed.rejected, hint: `approve with a key listed in the allowed signers file: kair approve ${c.id} --sign` } : {}),
      },
    );
  }
  assertPlanFresh(c, diskPlanSha);
  assertControlsGranted(c);
}

export function decidePause(c: Contract, actor: string): EventDraft {
  assertTransition(c, 'pause');
  const pause: PauseInfo = { requested_by: actor, reason: 'USER_REQUESTED', step_id: c.running?.step_id ?? null };
  return { type: 'pause', state: 'PAUSED', data: { pause, run_id: c.running?.run_id ?? null } };
}

export function decideReview(c: Contract): EventDraft {
  assertTransition(c, 'review');
  return { type: 'review', state: c.state, data: { run_id: c.runs[c.runs.length - 1] ?? null } };
}

export function decideAccept(c: Contract): EventDraft {
  assertTransition(c, 'accept');
  return { type: 'accept', state: 'ACCEPTED', data: { run_id: c.runs[c.runs.length - 1] ?? null } };
}

export function decideRewind(c: Contract, reason: string): EventDraft {
  assertTransition(c, 'rewind');
  return {
    type: 'rewind',
    state: 'REWOUND',
    data: { reason, from_state: c.state, superseded: c.version, version: c.version + 1, voided_approvals: countValid(c) },
  };
}

export function gateBlocked(c: Contract, command: string, code: string, message: string): EventDraft {
  return { type: 'gate.blocked', state: c.state, data: { command, code, message } };
}
