import { readFileSync } from 'node:fs';

/** Liveness of a process on this host (kill -0); EPERM means it exists but is not ours. */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let boot: string | null | undefined;

/**
 * This boot of the kernel (Linux). A different value in a record means the machine rebooted
 * since, so every process the record names is gone. Null where /proc is missing (macOS, BSD):
 * then only kill -0 speaks, which cannot see a reboot or a reused pid.
 */
export function bootId(): string | null {
  if (boot === undefined) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim() || null;
    } catch {
      boot = null;
    }
  }
  return boot;
}

/**
 * When `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat): together with the
 * pid it names one process, so a reused pid is told apart from the one a record names. Null when
 * /proc is missing or the process is gone. The command name (field 2) may hold spaces and
 * parentheses, so the fields are counted from its closing parenthesis.
 */
export function pidStart(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  return Number.isSafeInteger(start) ? start : null;
}
