import { describe, expect, it } from 'vitest';
import type { Contract } from '../../src/domain/contract.js';
import { nextSteps } from '../../src/domain/next-steps.js';

const SHA = 'ab12cd34ef56'.padEnd(64, '0');

function contract(over: Partial<Contract>): Contract {
  return {
    id: 'chat',
    intent: 'x',
    state: 'DRAFT',
    version: 1,
    versions: [],
    plan_sha256: SHA,
    controls: { required: [], granted: [] },
    approvals: [],
    runs: [],
    created_at: 't',
    updated_at: 't',
    history_seq: 1,
    history_head: SHA,
    ...over,
  };
}

const commands = (c: Contract, lastRun: Parameters<typeof nextSteps>[1]['lastRun'] = null, min = 1) => nextSteps(c, { min, lastRun }).map((n) => n.command);

describe('nextSteps: the exact command(s) for each state', () => {
  it.each([
    ['DRAFT', ['kair plan chat --file <plan.json>']],
    ['PLANNED', ['kair request-approval chat']],
    ['AWAITING_APPROVAL', ['kair approve chat --expect-sha ab12cd34ef56']],
    ['RUNNING', ['kair pause chat']],
    ['COMPLETED', ['kair review chat', 'kair accept chat']],
    ['ACCEPTED', ['kair rewind chat "<reason>"']],
    ['REWOUND', ['kair plan chat --file <plan.json>']],
  ] as const)('%s', (state, expected) => {
    expect(commands(contract({ state }))).toEqual(expected);
  });

  it('missing controls come first, as the grant that fixes them', () => {
    expect(commands(contract({ state: 'PLANNED', controls: { required: ['local:read', 'local:write'], granted: ['local:read'] } }))).toEqual(['kair grant chat local:write', 'kair request-approval chat']);
  });

  it('APPROVED runs; APPROVED below a raised approvals.min asks for another approval', () => {
    const approved = contract({ state: 'APPROVED', approvals: [{ actor: 'alice', at: 't', plan_sha256: SHA, valid: true }] });
    expect(commands(approved)).toEqual(['kair run chat']);
    expect(commands(approved, null, 2)).toEqual(['kair approve chat --expect-sha ab12cd34ef56']);
  });

  it('PAUSED: by its reason', () => {
    const paused = (reason: string) => contract({ state: 'PAUSED', pause: { requested_by: 'a', reason: reason as never, step_id: 'send' } });
    expect(commands(paused('USER_REQUESTED'))).toEqual(['kair resume chat']);
    expect(commands(paused('AEC_CONFIRM_REQUIRED'))).toEqual(['kair resume chat --confirm <answer>']);
    expect(commands(paused('AEC_IN_DOUBT'))).toEqual(['kair aec ledger chat', 'kair resume chat --retry-in-doubt']);
  });

  it('FAILED: the fix for its reason, then the retry and the rewind', () => {
    const failed = contract({ state: 'FAILED' });
    const run = (code: string) => ({ status: 'FAILED', reason: { code, message: 'm' }, failed_step: 'generate' });
    // A budget or runtime failure needs a new plan (and approval): a retry would fail the same way.
    expect(commands(failed, run('RUNTIME_EXCEEDED'))).toEqual(['kair plan chat --file <plan.json>', 'kair rewind chat "<reason>"']);
    expect(commands(failed, run('AEC_EXECUTOR_FAILED'))).toEqual(['kair aec ledger chat', 'kair run chat', 'kair rewind chat "<reason>"']);
    expect(commands(failed, run('SOMETHING_ELSE'))).toEqual(['kair run chat', 'kair rewind chat "<reason>"']);
    expect(commands(failed, null)).toEqual(['kair run chat', 'kair rewind chat "<reason>"']);
  });
});
