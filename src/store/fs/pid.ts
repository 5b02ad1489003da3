/**
 * Which process is which, across pid reuse and reboots: a process is named by host, boot id, pid
 * and the pid's start time, and is provably dead only on the same host (docs/decisions/013).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

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
 * Field 3 (state) and field 22 (start time, clock ticks since boot) of /proc/<pid>/stat; null
 * when /proc is missing or the process is gone. The command name (field 2) may hold spaces and
 * parentheses, so the fields are counted from its closing parenthesis.
 */
function procStat(pid: number): { state: string; start: number | null } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[19]);
  return { state: fields[0] ?? '', start: Number.isSafeInteger(start) ? start : null };
}

/** When `pid` started (null: unknown). With the pid it names one process, whatever reuses the pid later. */
export function pidStart(pid: number): number | null {
  return procStat(pid)?.start ?? null;
}

export interface ProcessIdentity {
  host: string;
  boot_id: string | null;
  /**
   * The pid namespace (`pid:[4026531836]`), null without /proc. A container started with
   * `--network host` has the host's name and boot id but its own pids: a pid seen from the other
   * side says nothing, so a record of another namespace is treated like one of another host.
   */
  pid_ns: string | null;
  pid: number;
  pid_start: number | null;
}

let self: ProcessIdentity | undefined;

function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

export function selfIdentity(): ProcessIdentity {
  self ??= { host: hostname(), boot_id: bootId(), pid_ns: pidNamespace(), pid: process.pid, pid_start: pidStart(process.pid) };
  return self;
}

/**
 * Whether the process a record names still runs: `dead` only when that is proved (same host, and
 * another boot, or the pid gone, exited and unreaped (a zombie), or started at another time);
 * `remote` for another host or pid namespace, which kair cannot see; else `alive`, however long
 * it has been.
 */
export function processVerdict(p: ProcessIdentity): 'alive' | 'dead' | 'remote' {
  if (p.host !== hostname()) return 'remote';
  const ns = selfIdentity().pid_ns;
  if (p.pid_ns && ns && p.pid_ns !== ns) return 'remote';
  const boot = bootId();
  if (p.boot_id && boot && p.boot_id !== boot) return 'dead';
  if (!isPidAlive(p.pid)) return 'dead';
  const stat = procStat(p.pid);
  if (stat && (stat.state === 'Z' || stat.state === 'X')) return 'dead';
  if (p.pid_start !== null && stat?.start != null && stat.start !== p.pid_start) return 'dead';
  return 'alive';
}

/**
 * Whether a run's process is dead, by the same rules as a lock holder: proved dead only on this
 * host (and pid namespace), never by age. Histories from before runs recorded their identity give
 * only a pid: `kill -0` decides.
 */
export function runnerVerdict(running: { pid: number; runner?: ProcessIdentity }): 'alive' | 'dead' | 'remote' {
  if (running.runner) return processVerdict(running.runner);
  return isPidAlive(running.pid) ? 'alive' : 'dead';
}
