/** Routing facts of a validated plan; no zod here, so `run` does not load the schema. */
import type { Plan, PlanStep } from './plan.js';

export function isKimiEligible(plan: Plan): boolean {
  return plan.strategy === 'CUSTOM' || plan.details?.requiresKimi === true;
}

export function stepLane(step: PlanStep): 'kimi' | 'aec' | 'manual' {
  if (step.lane === 'kimi') return 'kimi';
  if (step.simulation) return 'aec';
  return 'manual';
}

