import { describe, it, expect } from 'vitest';
import { GENESIS_HASH } from '../../src/domain/canonical.js';
import { defaultConfig, type Config } from '../../src/domain/config.js';
import { applyEvent, fold, missingControls, validApprovers, type Contract, type EventDraft, type HistoryEvent } from '../../src/domain/contract.js';
import {
  assertRunnable,
  checkControls,
  decideAccept,
  decideApprove,
  decideGrant,
  decidePause,
  decidePlan,
  decidePropose,
  decideRequestApproval,
  decideRequire,
  decideReview,
  decideRewind,
} from '../../src/domain/lifecycle.js';
import { checkChain, sealEvent } from '../../src/store/fs/chain.js';
import { caught } from '../helpers/errors.js';

const SHA1 = '1'.repeat(64);
const SHA2 = '2'.repeat(64);
const SHA3 = '3'.repeat(64);

/** A history being built: every draft is sealed and folded, like the store does. */
class Book {
  events: HistoryEvent[] = [];
  c: Contract | null = null;
  private clock = 0;

  get contract(): Contract {
    if (!this.c) throw new Error('no contract yet');
    return this.c;
  }

  record(draft: EventDraft, actor = 'alice'): HistoryEvent {
    const last = this.events[this.events.length - 1];
    const at = new Date(Date.UTC(2025, 0, 1, 0, 0, this.clock++)).toISOString();
    const e = sealEvent(draft, { seq: this.events.length + 1, at, actor, prev: last ? last.hash : GENESIS_HASH });
    this.events.push(e);
    this.c = applyEvent(this.c, e);
    return e;
  }
}


function config(over: Partial<Config['approvals']> = {}): Config {
  const c = defaultConfig('ws');
  c.approvals = { ...c.approvals, ...over };
  return c;
}

const plan = (sha: string) => ({ sha, title: 'T', steps: 2 });

/** propose (by alice) → plan → grant all required → request-approval: AWAITING_APPROVAL. */
function awaiting(requires: string[] = ['local:write'], sha = SHA1): Book {
  const b = new Book();
  b.record(decidePropose('c1', 'do it', requires), 'alice');
  b.record(decidePlan(b.contract, plan(sha)));
  if (requires.length) b.record(decideGrant(b.contract, 'grant', requires));
  b.record(decideRequestApproval(b.contract));
  return b;
}

function approved(cfg = config(), requires: string[] = ['local:write']): Book {
  const b = awaiting(requires);
  const d = decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA1, config: cfg });
  if (!d) throw new Error('approve recorded nothing');
  b.record(d, 'bob');
  return b;
}

describe('fold: the whole lifecycle', () => {
  it('propose → plan → … → accept → rewind → plan: snapshot fields after every step', () => {
    const b = new Book();
    const cfg = config();

    // propose: requires are stored as a sorted set
    b.record(decidePropose('c1', 'Add chat', ['local:write', 'github:read', 'local:write']));
    expect(b.contract).toMatchObject({
      id: 'c1',
      intent: 'Add chat',
      state: 'DRAFT',
      version: 1,
      versions: [{ version: 1, plan_sha256: null }],
      plan_sha256: null,
      controls: { required: ['github:read', 'local:write'], granted: [] },
      approvals: [],
      runs: [],
      history_seq: 1,
    });
    expect(b.contract.created_at).toBe(b.events[0].at);

    // require in DRAFT stays DRAFT
    b.record(decideRequire(b.contract, ['cloudflare:read']));
    expect(b.contract.state).toBe('DRAFT');
    expect(b.contract.controls.required).toEqual(['cloudflare:read', 'github:read', 'local:write']);

    // plan
    b.record(decidePlan(b.contract, plan(SHA1)));
    expect(b.contract.state).toBe('PLANNED');
    expect(b.contract.plan_sha256).toBe(SHA1);
    expect(b.contract.versions).toEqual([{ version: 1, plan_sha256: SHA1, created_at: b.events[0].at }]);

    // request-approval blocked until the controls are granted
    const missing = caught(() => decideRequestApproval(b.contract));
    expect(missing.code).toBe('CONTROLS_MISSING');
    expect(missing.details.missing).toEqual(['cloudflare:read', 'github:read', 'local:write']);

    // grant (unsorted, with an unrequired extra) → sorted set, same state
    b.record(decideGrant(b.contract, 'grant', ['local:write', 'network:read', 'cloudflare:read']));
    expect(b.contract.state).toBe('PLANNED');
    expect(b.contract.controls.granted).toEqual(['cloudflare:read', 'local:write', 'network:read']);
    expect(caught(() => decideRequestApproval(b.contract)).details.missing).toEqual(['github:read']);
    b.record(decideGrant(b.contract, 'grant', ['github:read', 'local:write']));
    expect(b.contract.controls.granted).toEqual(['cloudflare:read', 'github:read', 'local:write', 'network:read']);
    expect(missingControls(b.contract)).toEqual([]);

    // request-approval → approve → APPROVED
    b.record(decideRequestApproval(b.contract));
    expect(b.contract.state).toBe('AWAITING_APPROVAL');
    const ap1 = decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA1, config: cfg });
    expect(ap1).not.toBeNull();
    const ev = b.record(ap1!, 'bob');
    expect(b.contract.state).toBe('APPROVED');
    expect(b.contract.approvals).toEqual([{ actor: 'bob', at: ev.at, plan_sha256: SHA1, valid: true }]);
    expect(validApprovers(b.contract)).toEqual(['bob']);
    expect(() => assertRunnable(b.contract, SHA1, cfg)).not.toThrow();

    // re-plan voids every approval
    b.record(decidePlan(b.contract, plan(SHA2)));
    expect(b.events[b.events.length - 1].data.voided_approvals).toBe(1);
    expect(b.contract.state).toBe('PLANNED');
    expect(b.contract.plan_sha256).toBe(SHA2);
    expect(b.contract.versions).toHaveLength(1);
    expect(b.contract.versions[0].plan_sha256).toBe(SHA2);
    expect(b.contract.approvals.map((a) => a.valid)).toEqual([false]);
    expect(validApprovers(b.contract)).toEqual([]);

    // approve again, then require from APPROVED → PLANNED and voids
    b.record(decideRequestApproval(b.contract));
    b.record(decideApprove(b.contract, { actor: 'carol', proposer: 'alice', diskPlanSha: SHA2, config: cfg })!, 'carol');
    expect(b.contract.state).toBe('APPROVED');
    expect(b.contract.approvals.map((a) => [a.actor, a.plan_sha256, a.valid])).toEqual([
      ['bob', SHA1, false],
      ['carol', SHA2, true],
    ]);
    b.record(decideRequire(b.contract, ['network:write']));
    expect(b.contract.state).toBe('PLANNED');
    expect(b.contract.controls.required).toEqual(['cloudflare:read', 'github:read', 'local:write', 'network:write']);
    expect(b.contract.approvals.every((a) => !a.valid)).toBe(true);

    // grant, approve, and drive a run by hand-made runner events
    b.record(decideGrant(b.contract, 'grant', ['network:write']));
    b.record(decideRequestApproval(b.contract));
    b.record(decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA2, config: cfg })!, 'bob');
    expect(b.contract.state).toBe('APPROVED');
    expect(validApprovers(b.contract)).toEqual(['bob']);

    b.record({ type: 'run.started', state: 'RUNNING', data: { run_id: 'c1-run-1', pid: 4242, step_id: 'generate' } });
    expect(b.contract.state).toBe('RUNNING');
    expect(b.contract.runs).toEqual(['c1-run-1']);
    expect(b.contract.running).toMatchObject({ run_id: 'c1-run-1', pid: 4242, step_id: 'generate' });

    const pause = decidePause(b.contract, 'dave');
    expect(pause.data.pause).toEqual({ requested_by: 'dave', reason: 'USER_REQUESTED', step_id: 'generate' });
    b.record(pause, 'dave');
    expect(b.contract.state).toBe('PAUSED');
    expect(b.contract.pause).toEqual({ requested_by: 'dave', reason: 'USER_REQUESTED', step_id: 'generate' });

    b.record({ type: 'resume', state: 'RUNNING', data: { run_id: 'c1-run-1', pid: 4243, step_id: 'generate' } });
    expect(b.contract.pause).toBeUndefined();
    expect(b.contract.runs).toEqual(['c1-run-1']);
    b.record({ type: 'step.finished', state: 'RUNNING', data: { step_id: 'generate', next_step_id: 'send' } });
    expect(b.contract.running?.step_id).toBe('send');
    b.record({ type: 'run.finished', state: 'COMPLETED', data: { run_id: 'c1-run-1', artifacts: [] } });
    expect(b.contract.state).toBe('COMPLETED');
    expect(b.contract.running).toBeUndefined();

    // review keeps COMPLETED; accept
    const review = decideReview(b.contract);
    expect(review.state).toBe('COMPLETED');
    expect(review.data.run_id).toBe('c1-run-1');
    b.record(review);
    b.record(decideAccept(b.contract));
    expect(b.contract.state).toBe('ACCEPTED');

    // ACCEPTED: only rewind
    const g = caught(() => decideGrant(b.contract, 'grant', ['local:read']));
    expect(g.code).toBe('INVALID_TRANSITION');
    expect(g.details.state).toBe('ACCEPTED');
    expect(g.details.allowed).toEqual(['rewind']);

    // rewind: version 2 supersedes 1, approvals voided, nothing deleted
    const before = b.contract;
    const rw = decideRewind(b.contract, 'wrong customer');
    expect(rw.data).toMatchObject({ reason: 'wrong customer', from_state: 'ACCEPTED', superseded: 1, version: 2, voided_approvals: 1 });
    const rwEv = b.record(rw);
    const c = b.contract;
    expect(c.state).toBe('REWOUND');
    expect(c.version).toBe(2);
    expect(c.versions).toHaveLength(2);
    expect(c.versions[0]).toMatchObject({ version: 1, plan_sha256: SHA2, superseded_by: 2 });
    expect(c.versions[1]).toMatchObject({ version: 2, plan_sha256: SHA2, created_at: rwEv.at });
    expect(c.versions[1].superseded_by).toBeUndefined();
    expect(c.versions.some((v) => v.reason === 'wrong customer')).toBe(true);
    expect(c.approvals).toHaveLength(before.approvals.length);
    expect(c.approvals.every((a) => !a.valid)).toBe(true);
    expect(c.runs).toEqual(['c1-run-1']);
    expect(c.controls).toEqual(before.controls);
    expect(c.plan_sha256).toBe(SHA2);
    expect(caught(() => assertRunnable(c, SHA2, cfg)).code).toBe('APPROVAL_REQUIRED');

    // plan after rewind fills version 2 only
    b.record(decidePlan(b.contract, plan(SHA3)));
    expect(b.contract.state).toBe('PLANNED');
    expect(b.contract.versions[0].plan_sha256).toBe(SHA2);
    expect(b.contract.versions[1].plan_sha256).toBe(SHA3);
    expect(b.contract.plan_sha256).toBe(SHA3);

    // history_seq / history_head, chain, and fold(history) == incremental snapshot
    const last = b.events[b.events.length - 1];
    expect(b.contract.history_seq).toBe(last.seq);
    expect(b.contract.history_seq).toBe(b.events.length);
    expect(b.contract.history_head).toBe(last.hash);
    expect(b.contract.updated_at).toBe(last.at);
    expect(b.contract.created_at).toBe(b.events[0].at);
    expect(checkChain(b.events)).toEqual([]);
    expect(fold(b.events)).toEqual(b.contract);
    // roll forward from a lagging snapshot
    const mid = fold(b.events.slice(0, 10));
    expect(fold(b.events.slice(10), mid)).toEqual(b.contract);
  });

  it('applyEvent is pure (does not mutate the previous snapshot)', () => {
    const b = approved();
    const snap = JSON.parse(JSON.stringify(b.contract)) as Contract;
    const prev = b.contract;
    b.record(decidePlan(b.contract, plan(SHA2)));
    expect(prev).toEqual(snap);
  });

  it('a history that does not start with propose cannot be folded', () => {
    const e = sealEvent({ type: 'grant', state: 'DRAFT', data: { granted: [] } }, { seq: 1, at: 'x', actor: 'a', prev: GENESIS_HASH });
    expect(() => applyEvent(null, e)).toThrow();
  });

  it('grant/revoke: sorted sets, revoke removes, one event even when nothing changes', () => {
    const b = new Book();
    b.record(decidePropose('c1', 'x', []));
    const g1 = decideGrant(b.contract, 'grant', ['local:write', 'github:read']);
    expect(g1.data).toMatchObject({ changed: ['local:write', 'github:read'], granted: ['github:read', 'local:write'] });
    b.record(g1);
    const g2 = decideGrant(b.contract, 'grant', ['github:read']);
    expect(g2.data.changed).toEqual([]);
    expect(g2.data.granted).toEqual(['github:read', 'local:write']);
    expect(g2.state).toBe('DRAFT');
    b.record(g2);
    const r1 = decideGrant(b.contract, 'revoke', ['local:write', 'network:read']);
    expect(r1.type).toBe('revoke');
    expect(r1.data.changed).toEqual(['local:write']);
    b.record(r1);
    expect(b.contract.controls.granted).toEqual(['github:read']);
    expect(b.events).toHaveLength(4);
  });

  it('rewind from PAUSED clears pause; rewind twice is not allowed', () => {
    const b = approved();
    b.record({ type: 'run.started', state: 'RUNNING', data: { run_id: 'c1-run-1', pid: 1, step_id: 'a' } });
    b.record(decidePause(b.contract, 'alice'));
    b.record({ type: 'run.finished', state: 'PAUSED', data: { run_id: 'c1-run-1' } });
    expect(b.contract.pause?.reason).toBe('USER_REQUESTED');
    b.record(decideRewind(b.contract, 'stop'));
    expect(b.contract.state).toBe('REWOUND');
    expect(b.contract.pause).toBeUndefined();
    const e = caught(() => decideRewind(b.contract, 'again'));
    expect(e.code).toBe('INVALID_TRANSITION');
    expect(e.details.allowed).toEqual(['plan', 'grant', 'revoke', 'close']);
  });

  it('two rewinds make versions 1→2→3', () => {
    const b = approved();
    b.record(decideRewind(b.contract, 'r1'));
    b.record(decidePlan(b.contract, plan(SHA2)));
    b.record(decideRewind(b.contract, 'r2'));
    expect(b.contract.version).toBe(3);
    expect(b.contract.versions.map((v) => [v.version, v.superseded_by])).toEqual([
      [1, 2],
      [2, 3],
      [3, undefined],
    ]);
    expect(b.contract.versions.map((v) => v.plan_sha256)).toEqual([SHA1, SHA2, SHA2]);
  });
});

describe('gates', () => {
  const invalid: Array<[string, (c: Contract) => unknown, string]> = [
    ['approve in DRAFT', (c) => decideApprove(c, { actor: 'b', proposer: 'a', diskPlanSha: null, config: config() }), 'approve'],
    ['request-approval in DRAFT', (c) => decideRequestApproval(c), 'request-approval'],
    ['accept in DRAFT', (c) => decideAccept(c), 'accept'],
    ['review in DRAFT', (c) => decideReview(c), 'review'],
    ['pause in DRAFT', (c) => decidePause(c, 'a'), 'pause'],
    ['rewind in DRAFT', (c) => decideRewind(c, 'r'), 'rewind'],
  ];

  it.each(invalid)('INVALID_TRANSITION: %s (details.state, details.allowed)', (_n, fn, command) => {
    const b = new Book();
    b.record(decidePropose('c1', 'x', []));
    const e = caught(() => fn(b.contract));
    expect(e.code).toBe('INVALID_TRANSITION');
    expect(e.details.state).toBe('DRAFT');
    expect(e.details.command).toBe(command);
    expect(e.details.allowed).toEqual(['plan', 'require', 'grant', 'revoke', 'unrequire', 'close']);
    expect(e.message).toContain('DRAFT');
  });

  it('INVALID_TRANSITION: plan while RUNNING lists grant, revoke, pause', () => {
    const b = approved();
    b.record({ type: 'run.started', state: 'RUNNING', data: { run_id: 'c1-run-1', pid: 1, step_id: 'a' } });
    const e = caught(() => decidePlan(b.contract, plan(SHA2)));
    expect(e.code).toBe('INVALID_TRANSITION');
    expect(e.details).toMatchObject({ state: 'RUNNING', allowed: ['grant', 'revoke', 'pause'] });
    expect(caught(() => decideRewind(b.contract, 'x')).code).toBe('INVALID_TRANSITION');
    expect(caught(() => decideRequire(b.contract, ['local:read'])).code).toBe('INVALID_TRANSITION');
  });

  it('CONTROLS_MISSING on request-approval lists the missing ones, sorted', () => {
    const b = new Book();
    b.record(decidePropose('c1', 'x', ['network:write', 'cloudflare:read', 'local:exec']));
    b.record(decidePlan(b.contract, plan(SHA1)));
    b.record(decideGrant(b.contract, 'grant', ['local:exec']));
    const e = caught(() => decideRequestApproval(b.contract));
    expect(e.code).toBe('CONTROLS_MISSING');
    expect(e.details.missing).toEqual(['cloudflare:read', 'network:write']);
  });

  it('SELF_APPROVAL_FORBIDDEN when forbid_self and actor === proposer', () => {
    const b = awaiting();
    const e = caught(() => decideApprove(b.contract, { actor: 'alice', proposer: 'alice', diskPlanSha: SHA1, config: config({ forbid_self: true }) }));
    expect(e.code).toBe('SELF_APPROVAL_FORBIDDEN');
    // another actor may
    expect(decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA1, config: config({ forbid_self: true }) })?.state).toBe('APPROVED');
  });

  it('self-approval is allowed when forbid_self is false (default)', () => {
    const b = awaiting();
    const d = decideApprove(b.contract, { actor: 'alice', proposer: 'alice', diskPlanSha: SHA1, config: config() });
    expect(d?.state).toBe('APPROVED');
    expect(d?.data.plan_sha256).toBe(SHA1);
  });

  it.each([
    ['differs', SHA2],
    ['is null (missing/unparsable)', null],
  ])('APPROVAL_STALE on approve when the disk sha %s', (_n, disk) => {
    const b = awaiting();
    const e = caught(() => decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: disk, config: config() }));
    expect(e.code).toBe('APPROVAL_STALE');
    expect(e.details.disk_sha256).toBe(disk);
  });

  it('approve checks state → controls → self-approval → stale', () => {
    const b = awaiting(['local:write']);
    b.record(decideGrant(b.contract, 'revoke', ['local:write']));
    expect(b.contract.state).toBe('AWAITING_APPROVAL');
    const cfg = config({ forbid_self: true });
    const args = { actor: 'alice', proposer: 'alice', diskPlanSha: SHA2, config: cfg };
    expect(caught(() => decideApprove(b.contract, args)).code).toBe('CONTROLS_MISSING');
    b.record(decideGrant(b.contract, 'grant', ['local:write']));
    expect(caught(() => decideApprove(b.contract, args)).code).toBe('SELF_APPROVAL_FORBIDDEN');
    expect(caught(() => decideApprove(b.contract, { ...args, actor: 'bob' })).code).toBe('APPROVAL_STALE');
    expect(decideApprove(b.contract, { ...args, actor: 'bob', diskPlanSha: SHA1 })).not.toBeNull();
  });

  it('approvals.min 2: first approve keeps AWAITING_APPROVAL, same actor again → null, second distinct actor → APPROVED', () => {
    const cfg = config({ min: 2 });
    const b = awaiting();
    const first = decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA1, config: cfg });
    expect(first?.state).toBe('AWAITING_APPROVAL');
    b.record(first!, 'bob');
    expect(b.contract.state).toBe('AWAITING_APPROVAL');
    expect(b.contract.approvals).toHaveLength(1);

    const again = decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA1, config: cfg });
    expect(again).toBeNull();

    const second = decideApprove(b.contract, { actor: 'carol', proposer: 'alice', diskPlanSha: SHA1, config: cfg });
    expect(second?.state).toBe('APPROVED');
    b.record(second!, 'carol');
    expect(b.contract.state).toBe('APPROVED');
    expect(validApprovers(b.contract)).toEqual(['bob', 'carol']);
    expect(() => assertRunnable(b.contract, SHA1, cfg)).not.toThrow();
  });

  it('approvals.min 1: a repeat approve by the same actor after APPROVED is a no-op; another actor is refused', () => {
    // SPEC §7/§14: a repeat approve by the same actor "exits 0 and records nothing" — also once
    // the quorum moved the contract to APPROVED (docs/decisions/003). Anyone else meets the state
    // check: approve is allowed only in AWAITING_APPROVAL.
    const b = approved();
    expect(decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA1, config: config() })).toBeNull();
    const e = caught(() => decideApprove(b.contract, { actor: 'carol', proposer: 'alice', diskPlanSha: SHA1, config: config() }));
    expect(e.code).toBe('INVALID_TRANSITION');
    expect(e.details).toMatchObject({ state: 'APPROVED', allowed: ['plan', 'require', 'grant', 'revoke', 'run', 'rewind', 'unrequire', 'close'] });
  });

  it('an approval voided by a re-plan does not count towards min', () => {
    const cfg = config({ min: 2 });
    const b = awaiting();
    b.record(decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA1, config: cfg })!, 'bob');
    b.record(decidePlan(b.contract, plan(SHA2)));
    b.record(decideRequestApproval(b.contract));
    const d = decideApprove(b.contract, { actor: 'carol', proposer: 'alice', diskPlanSha: SHA2, config: cfg });
    expect(d?.state).toBe('AWAITING_APPROVAL');
    // bob's old approval is void, so bob approving again is a new approval, not a repeat
    b.record(d!, 'carol');
    const bob = decideApprove(b.contract, { actor: 'bob', proposer: 'alice', diskPlanSha: SHA2, config: cfg });
    expect(bob?.state).toBe('APPROVED');
  });

  it('assertRunnable order: APPROVAL_REQUIRED → APPROVAL_STALE → CONTROLS_MISSING', () => {
    const b = approved(config(), ['local:write']);
    b.record(decideGrant(b.contract, 'revoke', ['local:write']));
    expect(b.contract.state).toBe('APPROVED');
    const c = b.contract;
    // min as configured now: 2 > 1 valid approval
    const req = caught(() => assertRunnable(c, SHA2, config({ min: 2 })));
    expect(req.code).toBe('APPROVAL_REQUIRED');
    expect(req.details).toMatchObject({ approvers: ['bob'], min: 2 });
    expect(caught(() => assertRunnable(c, null, config({ min: 2 }))).code).toBe('APPROVAL_REQUIRED');
    expect(caught(() => assertRunnable(c, SHA2, config())).code).toBe('APPROVAL_STALE');
    expect(caught(() => assertRunnable(c, null, config())).code).toBe('APPROVAL_STALE');
    const miss = caught(() => assertRunnable(c, SHA1, config()));
    expect(miss.code).toBe('CONTROLS_MISSING');
    expect(miss.details.missing).toEqual(['local:write']);
    b.record(decideGrant(b.contract, 'grant', ['local:write']));
    expect(() => assertRunnable(b.contract, SHA1, config())).not.toThrow();
  });
});

describe('checkControls', () => {
  const registry = defaultConfig('ws').controls.registry;

  const badFormat: string[] = ['local', 'Local:read', 'local:READ', 'a:b:c', ':read', 'local:', 'local read', 'lo.cal:read', ''];
  it.each(badFormat)('INVALID_CONTROL for %j (with or without a registry)', (name) => {
    for (const reg of [registry, null]) {
      const e = caught(() => checkControls(['local:read', name], reg));
      expect(e.code).toBe('INVALID_CONTROL');
      expect(e.details.controls).toEqual([name]);
    }
  });

  it('CONTROL_UNKNOWN when well-formed but not in the registry', () => {
    const e = caught(() => checkControls(['local:read', 'aws:write', 'github:admin'], registry));
    expect(e.code).toBe('CONTROL_UNKNOWN');
    expect(e.details.controls).toEqual(['aws:write', 'github:admin']);
  });

  it('format is checked before the registry', () => {
    expect(caught(() => checkControls(['aws:write', 'BAD'], registry)).code).toBe('INVALID_CONTROL');
  });

  it('without a registry (grant/revoke) any well-formed name passes', () => {
    expect(checkControls(['aws:write', 'my_ns-1:perm_2'], null)).toEqual(['aws:write', 'my_ns-1:perm_2']);
  });

  it('result is sorted and deduplicated', () => {
    expect(checkControls(['network:write', 'cloudflare:read', 'network:write', 'local:exec'], registry)).toEqual([
      'cloudflare:read',
      'local:exec',
      'network:write',
    ]);
    expect(checkControls([], registry)).toEqual([]);
  });

  it('every default registry control is accepted', () => {
    expect(checkControls([...registry], registry)).toEqual([...registry].sort());
  });
});
