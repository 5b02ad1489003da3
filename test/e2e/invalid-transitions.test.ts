/**
 * SPEC §4 "Any other (command, state) pair is exit 3 INVALID_TRANSITION naming the current state
 * and the allowed commands, and is recorded as a gate.blocked history event", for every state
 * reachable without a run. The table below is written from the SPEC, not imported from src.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, history, historyFile, kairAsync, kj, makeStandardWorkspace, ok, removeWorkspaces, snapshot, snapshotFile } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const STATES = ['DRAFT', 'PLANNED', 'AWAITING_APPROVAL', 'APPROVED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'ACCEPTED', 'REWOUND', 'CLOSED'] as const;
type State = (typeof STATES)[number];
// CLOSED allows only reads, rewind (and close again, a no-op).
const ALL_BUT_ACCEPTED = STATES.filter((s) => s !== 'ACCEPTED' && s !== 'CLOSED');

/** §4: the states each lifecycle command may run from. */
const ALLOWED_FROM: Record<string, readonly State[]> = {
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
  close: STATES.filter((s) => s !== 'RUNNING' && s !== 'ACCEPTED'),
};

/** Well-formed arguments for each command, so only the state can refuse it. */
const ARGS: Record<string, (id: string) => string[]> = {
  plan: (id) => ['plan', id, '--file', fixture('custom-kimi.json')],
  require: (id) => ['require', id, 'local:read'],
  grant: (id) => ['grant', id, 'local:read'],
  revoke: (id) => ['revoke', id, 'local:read'],
  'request-approval': (id) => ['request-approval', id],
  // Another actor than the one who approved `approved`: a repeat approve by the same actor is an
  // idempotent no-op even in APPROVED (docs/decisions/003, tested in lifecycle.test.ts).
  approve: (id) => ['approve', id, '--actor', 'second-approver'],
  run: (id) => ['run', id],
  pause: (id) => ['pause', id],
  resume: (id) => ['resume', id],
  review: (id) => ['review', id],
  accept: (id) => ['accept', id],
  rewind: (id) => ['rewind', id, 'a good reason'],
  unrequire: (id) => ['unrequire', id, 'local:read'],
  close: (id) => ['close', id, 'a good reason'],
};

/** Contracts of the standard workspace, by state. */
const CONTRACT: Partial<Record<State, string>> = {
  DRAFT: 'draft',
  PLANNED: 'planned',
  AWAITING_APPROVAL: 'awaiting',
  APPROVED: 'approved',
  REWOUND: 'rewound',
  CLOSED: 'closed',
};

const cases: [State, string][] = [];
for (const state of Object.keys(CONTRACT) as State[]) {
  for (const command of Object.keys(ALLOWED_FROM)) {
    if (!ALLOWED_FROM[command]!.includes(state)) cases.push([state, command]);
  }
}

/** Runs `fn` after every earlier call for the same key has finished. */
const queues = new Map<string, Promise<unknown>>();
function oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  queues.set(key, next.catch(() => undefined));
  return next;
}

let ws: string;
beforeAll(async () => {
  ws = await makeStandardWorkspace();
  ok(ws, ['propose', 'Intent of closed', '--id', 'closed']);
  ok(ws, ['close', 'closed', 'abandoned']);
});

describe('INVALID_TRANSITION for every refused (state, command) pair', () => {
  it('covers the expected pairs', () => {
    expect(cases.length).toBe(48);
  });

  // Pairs run concurrently across contracts (each spawn costs 100+ ms) but one at a time per
  // contract, so each test sees exactly the event its own command appended.
  it.concurrent.for(cases)('%s: %s → exit 3, one gate.blocked event, state unchanged', async ([state, command], { expect }) => {
    const id = CONTRACT[state]!;
    await oneAtATime(id, async () => {
      const before = history(ws, id);
      const snapBefore = snapshot(ws, id);
      const r = await kairAsync(ws, [...ARGS[command]!(id), '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.json.ok).toBe(false);
      expect(r.json.error.code).toBe('INVALID_TRANSITION');
      expect(r.json.error.details.state).toBe(state);
      expect(r.json.error.message).toContain(state);
      // the message and details name what is allowed now
      const allowed = Object.keys(ALLOWED_FROM).filter((c) => ALLOWED_FROM[c]!.includes(state));
      for (const c of allowed) expect(r.json.error.message).toContain(c);
      expect([...r.json.error.details.allowed].sort()).toEqual([...allowed].sort());

      const after = history(ws, id);
      expect(after).toHaveLength(before.length + 1);
      expect(after.slice(0, before.length)).toEqual(before);
      const ev = after.at(-1)!;
      expect(ev.type).toBe('gate.blocked');
      expect(ev.state).toBe(state);
      expect(ev.data).toMatchObject({ command, code: 'INVALID_TRANSITION' });
      expect(ev.prev).toBe(before.at(-1)!.hash);

      const snap = snapshot(ws, id);
      expect(snap.state).toBe(state);
      expect(snap.history_seq).toBe(ev.seq);
      expect(snap.history_head).toBe(ev.hash);
      const { history_seq: _a, history_head: _b, updated_at: _c, ...rest } = snap;
      const { history_seq: _d, history_head: _e, updated_at: _f, ...restBefore } = snapBefore;
      expect(rest).toEqual(restBefore);
    });
  });
});

describe('bad input in an allowed state appends nothing', () => {
  const unchanged = (id: string, fn: () => void) => {
    const h = readFileSync(historyFile(ws, id), 'utf8');
    const s = readFileSync(snapshotFile(ws, id), 'utf8');
    fn();
    expect(readFileSync(historyFile(ws, id), 'utf8')).toBe(h);
    expect(readFileSync(snapshotFile(ws, id), 'utf8')).toBe(s);
  };

  it('grant with a bad control name → exit 2 INVALID_CONTROL', () => {
    unchanged('draft', () => {
      const r = kj(ws, ['grant', 'draft', 'Not A Control']);
      expect(r.code).toBe(2);
      expect(r.json.error.code).toBe('INVALID_CONTROL');
    });
  });

  it('require with a control outside the registry → exit 2 CONTROL_UNKNOWN', () => {
    unchanged('planned', () => {
      const r = kj(ws, ['require', 'planned', 'nosuch:perm']);
      expect(r.code).toBe(2);
      expect(r.json.error.code).toBe('CONTROL_UNKNOWN');
    });
  });

  it('arguments are checked before the state: require with a bad name in REWOUND → exit 2, not 3', () => {
    unchanged('rewound', () => {
      const r = kj(ws, ['require', 'rewound', 'BAD']);
      expect(r.code).toBe(2);
      expect(r.json.error.code).toBe('INVALID_CONTROL');
    });
  });

  it('a refused command on a missing contract → exit 4, nothing created', () => {
    const r = kj(ws, ['approve', 'ghost']);
    expect(r.code).toBe(4);
    expect(r.json.error.code).toBe('CONTRACT_NOT_FOUND');
  });
});
