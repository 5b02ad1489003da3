import type { KairError } from '../../src/domain/errors.js';
import { isKairError } from '../../src/domain/errors.js';

/** The KairError `fn` throws; any other error is rethrown, and not throwing fails the test. */
export function caught(fn: () => unknown): KairError {
  try {
    fn();
  } catch (e) {
    if (isKairError(e)) return e;
    throw e;
  }
  throw new Error('expected a KairError, nothing was thrown');
}

/** caught() for a function that rejects (the port's repositories and lanes are asynchronous). */
export async function caughtAsync(fn: () => Promise<unknown>): Promise<KairError> {
  try {
    await fn();
  } catch (e) {
    if (isKairError(e)) return e;
    throw e;
  }
  throw new Error('expected a KairError, nothing was thrown');
}

/** What `p` rejects with, whatever it is (a KairError, or a driver's own error with its SQLSTATE); resolving fails the test. */
export async function rejectionOf(p: Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('expected a rejection');
}
