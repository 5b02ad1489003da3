/**
 * SIGINT/SIGTERM during a run (and `resume`). While a run executes, kair handles both itself: the
 * first one aborts `signal` (a running `command` has its process group killed) and the run loop,
 * at its next yield, stops before the next step and records the pause `INTERRUPTED` under the
 * lock. A second signal while stopping gets the default action: kair ends at once, as if killed,
 * and the next command recovers the run as CRASHED.
 *
 * The handlers exist only for the duration of a run: the read path and every other command keep
 * the default action (kair ends at once; nothing those commands do is left half-committed).
 */
import { removeScratchDirs } from '../store/fs/temp.js';

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface Interrupts {
  /** Aborted at the first signal. */
  readonly signal: AbortSignal;
  /** The first signal received, if any. */
  received(): StopSignal | null;
  /** The run recorded the interrupt (PAUSED, INTERRUPTED): the signal is answered by the exit status. */
  acted(): void;
}

const SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM'];

/**
 * Runs `fn` with the handlers installed. A signal `fn` did not act on (it came during a refusal,
 * or after the last step) is raised again once the handlers are gone, so kair still ends by it.
 */
export async function withInterrupts<T>(fn: (i: Interrupts) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let first: StopSignal | null = null;
  let acted = false;
  const remove = () => {
    for (const s of SIGNALS) process.removeListener(s, handler);
  };
  function handler(s: NodeJS.Signals): void {
    if (first !== null) {
      // Already stopping: the person means it. With no listener left, the signal's default action applies.
      remove();
      removeScratchDirs(); // dying of the signal runs no exit handler
      process.kill(process.pid, s);
      return;
    }
    first = s as StopSignal;
    ac.abort();
  }
  for (const s of SIGNALS) process.on(s, handler);
  const interrupts: Interrupts = { signal: ac.signal, received: () => first, acted: () => (acted = true) };
  try {
    return await fn(interrupts);
  } finally {
    // A signal delivered during the last synchronous stretch is seen only after a turn of the loop.
    await yieldToSignals();
    remove();
    if (first !== null && !acted) {
      removeScratchDirs();
      process.kill(process.pid, first);
    }
  }
}

/**
 * Lets pending signal handlers run (the run loop is otherwise synchronous between steps). Node
 * reads delivered signals in the loop's poll phase; the run may be continuing from inside that
 * phase (a command's `close` event), where one setImmediate would run before the next poll, so it
 * takes two: the second runs after a full poll phase.
 */
export async function yieldToSignals(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
