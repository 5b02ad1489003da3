/**
 * Impact classes of a simulation and what each requires. Kept apart from simulation.ts (which
 * loads zod) because the dispatcher, on the run path, needs them and must not load zod.
 */
import type { SimulationImpact } from './finder.js';

/** Only impactful and irreversible simulations must name a rollback; side-effecting ones need confirmation only. */
export const needsRollback = (impact: SimulationImpact): boolean => impact === 'impactful' || impact === 'irreversible';

/** Executors that change something outside kair's own records: a file in the outbox, or any command. */
export function hasSideEffects(executor: unknown): boolean {
  const e = executor as { kind?: unknown; name?: unknown } | null;
  return e?.kind === 'command' || (e?.kind === 'builtin' && e.name === 'write_file');
}

/**
 * The impact the dispatcher acts on: a side-effecting executor declared `none` (registered before
 * `side_effecting` existed, or written into the catalog some other way) is `side_effecting`.
 */
export function effectiveImpact(s: { impact: SimulationImpact; executor: unknown }): SimulationImpact {
  return s.impact === 'none' && hasSideEffects(s.executor) ? 'side_effecting' : s.impact;
}

