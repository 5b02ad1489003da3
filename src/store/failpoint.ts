/**
 * Crash-test failpoints: `KAIR_FAILPOINT=<name>` makes the process SIGKILL itself when it
 * reaches that point, so tests can prove SPEC §12 (a killed process never leaves a state that
 * verify rejects, and the next command recovers). Unset, it costs one env lookup.
 */
export function failpoint(name: string): void {
  if (process.env.KAIR_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}
