/** Contract states and the §4 transition table, as data. */

export const STATES = [
  'DRAFT',
  'PLANNED',
  'AWAITING_APPROVAL',
  'APPROVED',
  'RUNNING',
  'PAUSED',
  'COMPLETED',
  'FAILED',
  'ACCEPTED',
  'REWOUND',
  // Terminal, like ACCEPTED, but for work that is abandoned rather than done; rewind reopens it.
  'CLOSED',
] as const;
export type State = (typeof STATES)[number];

export const LIFECYCLE_COMMANDS = [
  'plan',
  'require',
  'grant',
  'revoke',
  'request-approval',
  'approve',
  'run',
  'pause',
  'resume',
  'review',
  'accept',
  'rewind',
  'unrequire',
  'close',
] as const;
export type LifecycleCommand = (typeof LIFECYCLE_COMMANDS)[number];

// CLOSED, like ACCEPTED, allows nothing that changes the contract but rewind (and rollback).
const ALL_BUT_ACCEPTED = STATES.filter((s) => s !== 'ACCEPTED' && s !== 'CLOSED');

/** From which states each lifecycle command may run (`propose` creates, so it has none). */
export const ALLOWED_FROM: Record<LifecycleCommand, readonly State[]> = {
  plan: ['DRAFT', 'PLANNED', 'AWAITING_APPROVAL', 'APPROVED', 'FAILED', 'REWOUND'],
  require: ['DRAFT', 'PLANNED', 'AWAITING_APPROVAL', 'APPROVED'],
  grant: ALL_BUT_ACCEPTED,
  revoke: ALL_BUT_ACCEPTED,
  'request-approval': ['PLANNED'],
  approve: ['AWAITING_APPROVAL'],
  run: ['APPROVED', 'FAILED'],
  pause: ['RUNNING'],
  resume: ['PAUSED'],
  review: ['COMPLETED'],
  accept: ['COMPLETED'],
  rewind: ['PLANNED', 'AWAITING_APPROVAL', 'APPROVED', 'PAUSED', 'COMPLETED', 'FAILED', 'ACCEPTED', 'CLOSED'],
  unrequire: ['DRAFT', 'PLANNED', 'AWAITING_APPROVAL', 'APPROVED'],
  // CLOSED is listed so that closing twice is a quiet no-op rather than a refusal.
  close: STATES.filter((s) => s !== 'RUNNING' && s !== 'ACCEPTED'),
};

export function isAllowed(command: LifecycleCommand, state: State): boolean {
  return ALLOWED_FROM[command].includes(state);
}

/** The lifecycle commands valid in `state`, in table order (for INVALID_TRANSITION messages). */
export function allowedCommands(state: State): LifecycleCommand[] {
  return LIFECYCLE_COMMANDS.filter((c) => ALLOWED_FROM[c].includes(state));
}

/**
 * The state a command leads to when it succeeds, for commands whose target does not depend on
 * more than the source state. `approve` (quorum), `run`/`resume` (outcome) are decided elsewhere.
 */
export function simpleTarget(command: LifecycleCommand, from: State): State {
  switch (command) {
    case 'plan':
      return 'PLANNED';
    case 'require':
    case 'unrequire':
      return from === 'DRAFT' ? 'DRAFT' : 'PLANNED';
    case 'close':
      return 'CLOSED';
    case 'grant':
    case 'revoke':
    case 'review':
      return from;
    case 'request-approval':
      return 'AWAITING_APPROVAL';
    case 'approve':
      return 'APPROVED';
    case 'run':
    case 'resume':
      return 'RUNNING';
    case 'pause':
      return 'PAUSED';
    case 'accept':
      return 'ACCEPTED';
    case 'rewind':
      return 'REWOUND';
  }
}

export const PAUSE_REASONS = [
  'USER_REQUESTED',
  'PAUSE_AT',
  'CONTROL_REVOKED',
  'AEC_CONFIRM_REQUIRED',
  'AEC_CONFIRM_AMBIGUOUS_REJECTED',
  'AEC_IN_DOUBT',
  'CRASHED',
  'AEC_REPEAT_BLOCKED',
  'INTERRUPTED',
] as const;
export type PauseReason = (typeof PAUSE_REASONS)[number];

export const EVENT_TYPES = [
  'propose',
  'plan',
  'require',
  'grant',
  'revoke',
  'request-approval',
  'approve',
  'run.started',
  'step.finished',
  'run.finished',
  'kimi.started',
  'kimi.completed',
  'kimi.aborted',
  'pause',
  'resume',
  'review',
  'accept',
  'rewind',
  'dpc',
  'gate.blocked',
  'recovery',
  'checkpoint',
  'unlock',
  'rollback.started',
  'rollback.finished',
  'unrequire',
  'close',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
