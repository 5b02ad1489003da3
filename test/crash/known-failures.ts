/**
 * Violations today's product is known to produce (issue 11), one entry per cause. With
 * KAIR_CRASH_STRICT=0 a violation matching an entry is reported as known instead of failing;
 * strict (the default) fails on every violation. Remove an entry when its product fix lands.
 */
import type { Invariant, Violation } from './harness.js';

export interface KnownFailure {
  /** The table's command name, or '*' for every command. */
  command: string;
  invariants: Invariant[];
  /** Matches the operation at the kill point; random instants have none and never match an `op`. */
  op?: RegExp;
  /** Matches the violation's detail. */
  detail?: RegExp;
  why: string;
}

export const KNOWN_FAILURES: KnownFailure[] = [
  // None: every violation seen on the code this harness was written against is fixed (issue 11).
];

export function isKnown(v: Violation): KnownFailure | undefined {
  return KNOWN_FAILURES.find(
    (k) =>
      (k.command === '*' || k.command === v.command) &&
      k.invariants.includes(v.invariant) &&
      (k.op === undefined || (v.op !== null && k.op.test(v.op))) &&
      (k.detail === undefined || k.detail.test(v.detail)),
  );
}
