/**
 * The Kimi lane's pure rules (SPEC §8.1, §14 "Kimi details"): money in integer micro-dollars,
 * dollar formatting, the deterministic stub pricing, effective caps, the pre-execution checks
 * and the seed's summary and history messages. No I/O here; the lane in `lanes/kimi` applies
 * these to SQLite.
 */
import type { Config, KimiCaps } from './config.js';
import type { ErrorCode, ErrorDetails } from './errors.js';
import { kairError } from './errors.js';
import type { Plan } from './plan.js';

export const MICROS_PER_USD = 1_000_000;

/** Config and plan amounts have at most 2 decimals, so rounding here never loses a cent. */
export function usdToMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

/** Exact for whole cents: 20000 → 0.02 (IEEE division is correctly rounded). */
export function microsToUsd(micros: number): number {
  return micros / MICROS_PER_USD;
}

/**
 * "$25", "$0.02", "$12.50": no decimals when whole, else two. An amount that is not a whole
 * number of cents (no stub price produces one) keeps the digits it needs, up to six, so a
 * summary never reads "$0.01 > $0.01".
 */
export function formatUsd(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(Math.round(micros));
  const whole = Math.floor(abs / MICROS_PER_USD);
  const frac = abs % MICROS_PER_USD;
  if (frac === 0) return `${sign}$${whole}`;
  let digits = String(frac).padStart(6, '0').replace(/0+$/, '');
  if (digits.length < 2) digits = digits.padEnd(2, '0');
  return `${sign}$${whole}.${digits}`;
}

// ---- stub pricing -------------------------------------------------------------------------

export const STUB_TOKENS_PER_FEATURE = 5000;
/** $0.002 per 1000 tokens = 2 micro-dollars per token. */
export const STUB_MICROS_PER_TOKEN = 2;
export const STUB_AGENT_SECONDS_PER_FEATURE = 20;

export interface KimiEstimate {
  tokens: number;
  costMicros: number;
  runtimeSec: number;
}

/** tokens = 5000 × features; cost = tokens / 1000 × $0.002; runtimeSec = ceil(20 × features / agents). */
export function stubPricing(featureCount: number, agents: number): KimiEstimate {
  if (!Number.isInteger(featureCount) || featureCount < 0) throw new RangeError(`feature count must be a non-negative integer, got ${featureCount}`);
  if (!Number.isInteger(agents) || agents < 1) throw new RangeError(`agents must be a positive integer, got ${agents}`);
  const tokens = STUB_TOKENS_PER_FEATURE * featureCount;
  return {
    tokens,
    costMicros: tokens * STUB_MICROS_PER_TOKEN,
    runtimeSec: Math.ceil((STUB_AGENT_SECONDS_PER_FEATURE * featureCount) / agents),
  };
}

/** `Successfully generated: chat, notifications. Used 5 agents over 8s.` */
export function successSummary(features: readonly string[], agents: number, runtimeSec: number): string {
  const what = features.length > 0 ? features.join(', ') : 'no features';
  return `Successfully generated: ${what}. Used ${agents} agents over ${runtimeSec}s.`;
}

// ---- caps ---------------------------------------------------------------------------------

export type PlanLimits = Pick<Plan, 'budget' | 'scopes'>;

const CAP_KEYS = ['maxCostUSD', 'maxAgents', 'maxRuntimeSec'] as const;

/**
 * The limits an envelope runs under: config `kimi.defaults` are hard caps and a plan `budget`
 * may only lower them, so each value is the smaller of the two (the config in force at run
 * time wins over whatever it was when the plan was written). `allowedScopes` of the result
 * are the scopes the plan asks for, not the whole allowed set: an envelope grants only what
 * its plan needs, and a plan that names none gets none. Throws SCOPE_NOT_ALLOWED (exit 3)
 * listing every scope outside `kimi.defaults.allowedScopes`.
 */
export function effectiveCaps(plan: PlanLimits, config: Pick<Config, 'kimi'>): KimiCaps {
  const cap = config.kimi.defaults;
  const requested = [...new Set(plan.scopes ?? [])];
  const offending = requested.filter((s) => !cap.allowedScopes.includes(s));
  if (offending.length > 0) {
    throw kairError(
      'SCOPE_NOT_ALLOWED',
      `scope${offending.length > 1 ? 's' : ''} not allowed: ${offending.join(', ')} (allowed: ${cap.allowedScopes.join(', ') || 'none'})`,
      { scopes: offending, allowed: [...cap.allowedScopes] },
    );
  }
  const b = plan.budget ?? {};
  return {
    maxCostUSD: Math.min(cap.maxCostUSD, b.maxCostUSD ?? Infinity),
    maxAgents: Math.min(cap.maxAgents, b.maxAgents ?? Infinity),
    maxRuntimeSec: Math.min(cap.maxRuntimeSec, b.maxRuntimeSec ?? Infinity),
    allowedScopes: requested,
  };
}

/**
 * Plan budget values above the caps in force (config lowered after the plan was approved).
 * `effectiveCaps` already clamps them; this is for a caller that prefers to refuse or report.
 */
export function planBudgetOverCaps(plan: PlanLimits, caps: KimiCaps): { key: (typeof CAP_KEYS)[number]; value: number; cap: number }[] {
  const out: { key: (typeof CAP_KEYS)[number]; value: number; cap: number }[] = [];
  for (const key of CAP_KEYS) {
    const value = plan.budget?.[key];
    if (value !== undefined && value > caps[key]) out.push({ key, value, cap: caps[key] });
  }
  return out;
}

// ---- pre-execution checks -----------------------------------------------------------------

export type KimiAbortCode = 'BUDGET_EXCEEDED' | 'RUNTIME_EXCEEDED' | 'CONTRACT_BUDGET_EXCEEDED';

export type PreflightResult = { ok: true } | { ok: false; code: KimiAbortCode; summary: string; details: ErrorDetails };

/**
 * §14: cost → runtime → per-contract cap, first failure wins; a value exactly at a limit
 * passes. `spentMicrosOnContract` is the sum over the contract's COMPLETED runs (all
 * versions, this attempt excluded).
 */
export function preflight(
  estimate: Pick<KimiEstimate, 'costMicros' | 'runtimeSec'>,
  caps: Pick<KimiCaps, 'maxCostUSD' | 'maxRuntimeSec'>,
  spentMicrosOnContract: number,
  perContractCapMicros: number,
): PreflightResult {
  const budget = usdToMicros(caps.maxCostUSD);
  if (estimate.costMicros > budget) {
    return {
      ok: false,
      code: 'BUDGET_EXCEEDED',
      summary: `Execution aborted: budget exceeded (${formatUsd(estimate.costMicros)} > ${formatUsd(budget)})`,
      details: { cost_usd: microsToUsd(estimate.costMicros), max_cost_usd: microsToUsd(budget) },
    };
  }
  if (estimate.runtimeSec > caps.maxRuntimeSec) {
    return {
      ok: false,
      code: 'RUNTIME_EXCEEDED',
      summary: `Execution aborted: runtime exceeded (${estimate.runtimeSec}s > ${caps.maxRuntimeSec}s)`,
      details: { runtime_sec: estimate.runtimeSec, max_runtime_sec: caps.maxRuntimeSec },
    };
  }
  const total = spentMicrosOnContract + estimate.costMicros;
  if (total > perContractCapMicros) {
    return {
      ok: false,
      code: 'CONTRACT_BUDGET_EXCEEDED',
      summary: `Execution aborted: contract budget exceeded (${formatUsd(total)} > ${formatUsd(perContractCapMicros)})`,
      details: {
        spent_usd: microsToUsd(spentMicrosOnContract),
        cost_usd: microsToUsd(estimate.costMicros),
        total_usd: microsToUsd(total),
        max_cost_usd_per_contract: microsToUsd(perContractCapMicros),
      },
    };
  }
  return { ok: true };
}

// ---- envelope and run states --------------------------------------------------------------

export const ENVELOPE_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type EnvelopeStatus = (typeof ENVELOPE_STATUSES)[number];

export const ENVELOPE_TRANSITIONS = {
  PENDING: ['RUNNING', 'FAILED', 'CANCELLED'],
  RUNNING: ['COMPLETED', 'FAILED', 'CANCELLED'],
  COMPLETED: [],
  FAILED: [],
  CANCELLED: [],
} as const satisfies Record<EnvelopeStatus, readonly EnvelopeStatus[]>;

export const KIMI_RUN_STATUSES = ['RUNNING', 'COMPLETED', 'FAILED'] as const;
export type KimiRunStatus = (typeof KIMI_RUN_STATUSES)[number];

export const KIMI_RUN_TRANSITIONS = {
  RUNNING: ['COMPLETED', 'FAILED'],
  COMPLETED: [],
  FAILED: [],
} as const satisfies Record<KimiRunStatus, readonly KimiRunStatus[]>;

export function canTransitionEnvelope(from: EnvelopeStatus, to: EnvelopeStatus): boolean {
  return (ENVELOPE_TRANSITIONS[from] as readonly EnvelopeStatus[]).includes(to);
}

// ---- seed messages ------------------------------------------------------------------------

const ABORT_REASONS: Record<KimiAbortCode, string> = {
  BUDGET_EXCEEDED: 'budget exceeded',
  RUNTIME_EXCEEDED: 'runtime exceeded',
  CONTRACT_BUDGET_EXCEEDED: 'contract budget exceeded',
};

/** The seed's C2 messages, recorded in history events' `data.message`. */
export const kimiMessages = {
  started: (caps: Pick<KimiCaps, 'maxCostUSD' | 'maxAgents'>): string =>
    `Kimi execution started (budget ${formatUsd(usdToMicros(caps.maxCostUSD))}, agents ${caps.maxAgents})`,
  completed: (costMicros: number): string => `Kimi execution completed (cost ${formatUsd(costMicros)})`,
  /** Codes outside the three checks (a provider failure) read as their lower-cased words. */
  aborted: (code: KimiAbortCode | ErrorCode): string =>
    `Kimi execution aborted (${(ABORT_REASONS as Partial<Record<string, string>>)[code] ?? code.toLowerCase().replace(/_/g, ' ')})`,
};
