/**
 * Invariants today's product is known to break (issue 11), one entry per cause. With
 * KAIR_CRASH_STRICT=0 a violation matching an entry is reported as known instead of failing;
 * strict (the default) fails on every violation. Remove an entry when the product fix lands.
 */
import type { Invariant, Violation } from './harness.js';

export interface KnownFailure {
  /** The table's command name, or '*' for every command. */
  command: string;
  invariant: Invariant;
  /** Matches the operation at the kill point (random instants have none: `null` matches those). */
  op?: RegExp | null;
  why: string;
}

export const KNOWN_FAILURES: KnownFailure[] = [];

export function isKnown(v: Violation): KnownFailure | undefined {
  return KNOWN_FAILURES.find(
    (k) => (k.command === '*' || k.command === v.command) && k.invariant === v.invariant && (k.op === undefined || (k.op === null ? v.op === null : v.op !== null && k.op.test(v.op))),
  );
}
