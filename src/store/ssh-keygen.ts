/**
 * Spawning ssh-keygen and git for signed approvals: no shell, no TTY, stdin a pipe holding the
 * message (never the terminal), a bounded time, and only the environment the caller passes.
 */
import type { SpawnSyncReturns } from 'node:child_process';

export type ToolResult =
  | { ok: true; stdout: string }
  /** `unavailable`: the program is not on PATH; `timeout`: killed after `timeoutMs`; `failed`: a non-zero exit. */
  | { ok: false; kind: 'unavailable' | 'timeout' | 'failed'; reason: string };

/** ssh-keygen's own chatter, not a reason. */
const NOISE = /^(Signing data on standard input|Signing file )/;

/** The last meaningful line ssh-keygen printed on stderr: its reason, escaped and short. */
export function oneLineReason(stderr: string, fallback: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !NOISE.test(l));
  const last = lines[lines.length - 1] ?? fallback;
  const clipped = last.length > 80 ? `${last.slice(0, 80)}…` : last;
  // JSON escaping without the quotes: no control character of ssh-keygen's output reaches a terminal.
  return JSON.stringify(clipped).slice(1, -1);
}

export function runTool(program: string, args: string[], o: { input: string; env: Record<string, string>; cwd: string; timeoutMs: number }): ToolResult {
  // Loaded here, not at the top: node:child_process costs every lifecycle command ~3 ms to load,
  // and only signing and verifying signatures need it.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  let r: SpawnSyncReturns<string>;
  try {
    r = spawnSync(program, args, {
      cwd: o.cwd,
      input: o.input,
      encoding: 'utf8',
      // stdin is a pipe with the message, stdout/stderr pipes: the terminal is never inherited.
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: o.timeoutMs,
      killSignal: 'SIGKILL',
      shell: false,
      maxBuffer: 1024 * 1024,
      env: o.env,
    });
  } catch (e) {
    return { ok: false, kind: 'failed', reason: oneLineReason(String((e as Error).message), 'could not be started') };
  }
  const err = r.error as NodeJS.ErrnoException | undefined;
  if (err?.code === 'ENOENT') return { ok: false, kind: 'unavailable', reason: `${program} is not on PATH` };
  if (err?.code === 'ETIMEDOUT' || (r.signal === 'SIGKILL' && r.status === null)) {
    return { ok: false, kind: 'timeout', reason: `${program} did not finish within ${Math.round(o.timeoutMs / 1000)} s` };
  }
  if (err) return { ok: false, kind: 'failed', reason: oneLineReason(err.message, 'could not be started') };
  if (r.status !== 0) {
    // ssh-keygen -Y verify says why on stderr, except "Could not verify signature." (stdout) for a key the file does not list.
    const said = (text: string | null) => oneLineReason(text ?? '', '');
    return { ok: false, kind: 'failed', reason: said(r.stderr) || said(r.stdout) || `${program} exited with status ${r.status ?? r.signal}` };
  }
  return { ok: true, stdout: r.stdout ?? '' };
}
