/** A run's process is judged like a lock holder: dead only when proved so, never by age. */
import { describe, expect, it } from 'vitest';
import { runnerVerdict, selfIdentity } from '../../src/store/fs/pid.js';

describe('runnerVerdict', () => {
  const me = selfIdentity();
  it.each([
    ['this very process', { pid: me.pid, runner: me }, 'alive'],
    ['its pid, started at another time (pid reuse)', { pid: me.pid, runner: { ...me, pid_start: (me.pid_start ?? 0) + 1 } }, me.pid_start === null ? 'alive' : 'dead'],
    ['its pid after a reboot', { pid: me.pid, runner: { ...me, boot_id: 'another-boot' } }, me.boot_id === null ? 'alive' : 'dead'],
    ['another host', { pid: 999_999_999, runner: { ...me, host: `not-${me.host}`, pid: 999_999_999 } }, 'remote'],
    ['a pid that is gone', { pid: 999_999_999, runner: { ...me, pid: 999_999_999 } }, 'dead'],
    ['an older history (pid only), alive', { pid: me.pid }, 'alive'],
    ['an older history (pid only), gone', { pid: 999_999_999 }, 'dead'],
  ] as const)('%s → %s', (_name, running, verdict) => {
    expect(runnerVerdict(running)).toBe(verdict);
  });
});
