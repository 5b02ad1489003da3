/**
 * Crash-test failpoints: `KAIR_FAILPOINT=<name>` makes the process SIGKILL itself when it
 * reaches that point, so tests can prove SPEC §12 (a killed process never leaves a state that
 * verify rejects, and the next command recovers). Unset, it costs one env lookup.
 */
export function failpoint(name: string): void {
  if (process.env.KAIR_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

/**
 * `KAIR_STOPPOINT=<name>` makes the process SIGSTOP itself at that point: a test can then hold
 * it stalled (e.g. holding a lock) for as long as it likes and let it go on with SIGCONT.
 */
export function stoppoint(name: string): void {
  if (process.env.KAIR_STOPPOINT === name) process.kill(process.pid, 'SIGSTOP');
}
