/**
 * The retry both adapters give a boundary that lost the race for its seq (the local fence, the
 * PostgreSQL unique key): CONCURRENT_WRITE means another writer appended first, so the boundary
 * decides again on the new state, with a growing jittered pause, until --lock-timeout. A caller
 * that decided outside the lock (`expectTail`) gets the error at once: deciding again would
 * commit an answer given for another state.
 */
import { isKairError } from '../domain/errors.js';

export async function retryConcurrentWrite<T>(req: { lockTimeoutMs: number; expectTail?: unknown }, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + req.lockTimeoutMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      return await attempt();
    } catch (e) {
      if (!isKairError(e) || e.code !== 'CONCURRENT_WRITE' || Date.now() >= deadline || req.expectTail) throw e;
      await new Promise<void>((r) => setTimeout(r, wait + Math.floor(Math.random() * 5)));
    }
  }
}
