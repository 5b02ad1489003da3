import { describe, it, expect } from 'vitest';
import {
  LIFECYCLE_COMMANDS,
  STATES,
  allowedCommands,
  isAllowed,
  simpleTarget,
  type LifecycleCommand,
  type State,
} from '../../src/domain/states.js';

/*
 * SPEC §4 transition table, restated by hand (NOT derived from ALLOWED_FROM) so that an edit of
 * the data in src/domain/states.ts is caught here.
 *
 * Columns, in STATES order:
 *   DR = DRAFT, PL = PLANNED, AA = AWAITING_APPROVAL, AP = APPROVED, RU = RUNNING,
 *   PA = PAUSED, CO = COMPLETED, FA = FAILED, AC = ACCEPTED, RW = REWOUND, CL = CLOSED
 *   'x' = allowed, '.' = INVALID_TRANSITION
 */
const COLUMNS: State[] = [
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
  'CLOSED',
];

//                                        DR PL AA AP RU PA CO FA AC RW CL
const TABLE: Record<LifecycleCommand, string> = {
  plan: /*                            */ 'x  x  x  x  .  .  .  x  .  x  .',
  require: /*                         */ 'x  x  x  x  .  .  .  .  .  .  .',
  grant: /*                           */ 'x  x  x  x  x  x  x  x  .  x  .',
  revoke: /*                          */ 'x  x  x  x  x  x  x  x  .  x  .',
  'request-approval': /*              */ '.  x  .  .  .  .  .  .  .  .  .',
  approve: /*                         */ '.  .  x  .  .  .  .  .  .  .  .',
  run: /*                             */ '.  .  .  x  .  .  .  x  .  .  .',
  pause: /*                           */ '.  .  .  .  x  .  .  .  .  .  .',
  resume: /*                          */ '.  .  .  .  .  x  .  .  .  .  .',
  review: /*                          */ '.  .  .  .  .  .  x  .  .  .  .',
  accept: /*                          */ '.  .  .  .  .  .  x  .  .  .  .',
  // "PLANNED..ACCEPTED except RUNNING"
  rewind: /*                          */ '.  x  x  x  .  x  x  x  x  .  x',
  unrequire: /*                       */ 'x  x  x  x  .  .  .  .  .  .  .',
  // every state but RUNNING and ACCEPTED; CLOSED → CLOSED is a quiet no-op
  close: /*                           */ 'x  x  x  x  .  x  x  x  .  x  x',
};

function expected(command: LifecycleCommand, state: State): boolean {
  const cells = TABLE[command].split(/\s+/);
  expect(cells).toHaveLength(COLUMNS.length);
  return cells[COLUMNS.indexOf(state)] === 'x';
}

describe('states: vocabulary', () => {
  it('STATES are exactly the SPEC §4 states plus CLOSED, in order', () => {
    expect([...STATES]).toEqual(COLUMNS);
  });

  it('LIFECYCLE_COMMANDS are exactly the §4 commands that act on an existing contract', () => {
    expect([...LIFECYCLE_COMMANDS].sort()).toEqual(Object.keys(TABLE).sort());
  });
});

describe('states: isAllowed for every (command, state) pair', () => {
  const pairs: Array<[LifecycleCommand, State]> = [];
  for (const c of LIFECYCLE_COMMANDS) for (const s of STATES) pairs.push([c, s]);

  it('covers all 14 × 11 pairs', () => {
    expect(pairs).toHaveLength(154);
  });

  it.each(pairs)('%s in %s', (command, state) => {
    expect(isAllowed(command, state)).toBe(expected(command, state));
  });
});

describe('states: allowedCommands', () => {
  const cases: Array<[State, LifecycleCommand[]]> = [
    ['DRAFT', ['plan', 'require', 'grant', 'revoke', 'unrequire', 'close']],
    ['PLANNED', ['plan', 'require', 'grant', 'revoke', 'request-approval', 'rewind', 'unrequire', 'close']],
    ['AWAITING_APPROVAL', ['plan', 'require', 'grant', 'revoke', 'approve', 'rewind', 'unrequire', 'close']],
    ['APPROVED', ['plan', 'require', 'grant', 'revoke', 'run', 'rewind', 'unrequire', 'close']],
    ['RUNNING', ['grant', 'revoke', 'pause']],
    ['PAUSED', ['grant', 'revoke', 'resume', 'rewind', 'close']],
    ['COMPLETED', ['grant', 'revoke', 'review', 'accept', 'rewind', 'close']],
    ['FAILED', ['plan', 'grant', 'revoke', 'run', 'rewind', 'close']],
    ['ACCEPTED', ['rewind']],
    ['REWOUND', ['plan', 'grant', 'revoke', 'close']],
    ['CLOSED', ['rewind', 'close']],
  ];

  it('has one case per state', () => {
    expect(cases.map(([s]) => s)).toEqual(COLUMNS);
  });

  it.each(cases)('%s → %j (table order)', (state, cmds) => {
    expect(allowedCommands(state)).toEqual(cmds);
  });

  it.each(COLUMNS)('agrees with the hand-written table for %s', (state) => {
    const fromTable = LIFECYCLE_COMMANDS.filter((c) => expected(c, state));
    expect(allowedCommands(state)).toEqual(fromTable);
  });

  it('ACCEPTED is terminal except for rewind', () => {
    expect(allowedCommands('ACCEPTED')).toEqual(['rewind']);
  });
});

describe('states: simpleTarget', () => {
  it.each(STATES.filter((s) => expected('require', s)))('require from %s', (from) => {
    expect(simpleTarget('require', from)).toBe(from === 'DRAFT' ? 'DRAFT' : 'PLANNED');
  });

  it.each(STATES.filter((s) => expected('plan', s)))('plan from %s → PLANNED', (from) => {
    expect(simpleTarget('plan', from)).toBe('PLANNED');
  });

  const keeps: LifecycleCommand[] = ['grant', 'revoke', 'review'];
  for (const command of keeps) {
    it.each(STATES.filter((s) => expected(command, s)))(`${command} from %s keeps the state`, (from) => {
      expect(simpleTarget(command, from)).toBe(from);
    });
  }

  const fixed: Array<[LifecycleCommand, State]> = [
    ['request-approval', 'AWAITING_APPROVAL'],
    ['pause', 'PAUSED'],
    ['accept', 'ACCEPTED'],
    ['rewind', 'REWOUND'],
  ];
  for (const [command, to] of fixed) {
    it.each(STATES.filter((s) => expected(command, s)))(`${command} from %s → ${to}`, (from) => {
      expect(simpleTarget(command, from)).toBe(to);
    });
  }

  it('run and resume start RUNNING', () => {
    expect(simpleTarget('run', 'APPROVED')).toBe('RUNNING');
    expect(simpleTarget('run', 'FAILED')).toBe('RUNNING');
    expect(simpleTarget('resume', 'PAUSED')).toBe('RUNNING');
  });
});
