import { describe, expect, it } from 'vitest';
import { defaultConfig, type Config, type KimiCaps } from '../../src/domain/config.js';
import { exitCodeOf } from '../../src/domain/errors.js';
import {
  canTransitionEnvelope,
  effectiveCaps,
  ENVELOPE_STATUSES,
  formatUsd,
  kimiMessages,
  microsToUsd,
  planBudgetOverCaps,
  preflight,
  stubPricing,
  successSummary,
  usdToMicros,
  type EnvelopeStatus,
} from '../../src/domain/kimi.js';
import { providerFor, stubProvider } from '../../src/lanes/kimi/provider.js';
import { caught } from '../helpers/errors.js';

const config = defaultConfig('ws');
const defaults = config.kimi.defaults;
const PER_CONTRACT = usdToMicros(config.kimi.max_cost_usd_per_contract);


describe('money', () => {
  it.each([
    [25, 25_000_000],
    [0.02, 20_000],
    [0.01, 10_000],
    [12.5, 12_500_000],
    [0.07, 70_000],
    [100, 100_000_000],
    [19.99, 19_990_000],
  ])('usdToMicros(%s) = %s and back', (usd, micros) => {
    expect(usdToMicros(usd)).toBe(micros);
    expect(microsToUsd(micros)).toBe(usd);
  });

  it.each([
    [25_000_000, '$25'],
    [20_000, '$0.02'],
    [12_500_000, '$12.50'],
    [0, '$0'],
    [100_000_000, '$100'],
    [10_000, '$0.01'],
    [1_230_000, '$1.23'],
    [100_000, '$0.10'],
    [1_500, '$0.0015'],
    [-20_000, '-$0.02'],
  ])('formatUsd(%s) = %s', (micros, text) => {
    expect(formatUsd(micros)).toBe(text);
  });
});

describe('stub pricing', () => {
  // ceil(20 × features / agents), rows = features 1..5, columns = agents 1..5.
  const RUNTIME = [
    [20, 10, 7, 5, 4],
    [40, 20, 14, 10, 8],
    [60, 30, 20, 15, 12],
    [80, 40, 27, 20, 16],
    [100, 50, 34, 25, 20],
  ];
  const cases = RUNTIME.flatMap((row, f) => row.map((runtimeSec, a) => ({ features: f + 1, agents: a + 1, runtimeSec })));

  it.each(cases)('$features feature(s), $agents agent(s) → $runtimeSec s', ({ features, agents, runtimeSec }) => {
    const names = ['chat', 'notifications', 'billing', 'search', 'auth'].slice(0, features);
    const tokens = [5000, 10_000, 15_000, 20_000, 25_000][features - 1];
    const costUSD = [0.01, 0.02, 0.03, 0.04, 0.05][features - 1];
    const est = stubProvider.estimate({ features: names, maxAgents: agents });
    expect(est).toEqual({ tokens, costMicros: usdToMicros(costUSD), runtimeSec });
    const run = stubProvider.execute({ features: names, maxAgents: agents });
    expect(run).toEqual({ tokensUsed: tokens, costMicros: usdToMicros(costUSD), runtimeSec, summary: successSummary(names, agents, runtimeSec) });
  });

  it('prices zero features at nothing and rejects nonsense counts', () => {
    expect(stubPricing(0, 5)).toEqual({ tokens: 0, costMicros: 0, runtimeSec: 0 });
    expect(() => stubPricing(1, 0)).toThrow(RangeError);
    expect(() => stubPricing(-1, 5)).toThrow(RangeError);
    expect(() => stubPricing(1.5, 5)).toThrow(RangeError);
  });

  it('gives the exact success summary of §8.1', () => {
    expect(stubProvider.execute({ features: ['chat', 'notifications'], maxAgents: 5 }).summary).toBe(
      'Successfully generated: chat, notifications. Used 5 agents over 8s.',
    );
    expect(successSummary([], 5, 0)).toBe('Successfully generated: no features. Used 5 agents over 0s.');
  });

  it('is deterministic: two executions serialise byte for byte the same', () => {
    const req = { features: ['chat', 'notifications', 'billing'], maxAgents: 2 };
    const a = JSON.stringify([stubProvider.estimate(req), stubProvider.execute(req)]);
    const b = JSON.stringify([stubProvider.estimate({ ...req, features: [...req.features] }), stubProvider.execute({ ...req })]);
    expect(a).toBe(b);
    expect(a).toBe(
      '[{"tokens":15000,"costMicros":30000,"runtimeSec":30},' +
        '{"tokensUsed":15000,"costMicros":30000,"runtimeSec":30,"summary":"Successfully generated: chat, notifications, billing. Used 2 agents over 30s."}]',
    );
  });

  it('is the provider for kimi.provider "stub" and refuses an unknown one', () => {
    expect(providerFor(config)).toBe(stubProvider);
    expect(stubProvider.name).toBe('stub');
    const bad = { kimi: { ...config.kimi, provider: 'openai' } } as unknown as Config;
    expect(caught(() => providerFor(bad)).code).toBe('CONFIG_INVALID');
  });
});

describe('effectiveCaps', () => {
  it('uses the config defaults when the plan gives no budget, and no scopes when it names none', () => {
    expect(effectiveCaps({}, config)).toEqual({ maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600, allowedScopes: [] });
  });

  it.each([
    [{ maxCostUSD: 10 }, { maxCostUSD: 10, maxAgents: 5, maxRuntimeSec: 600 }],
    [{ maxAgents: 2, maxRuntimeSec: 30 }, { maxCostUSD: 25, maxAgents: 2, maxRuntimeSec: 30 }],
    [{ maxCostUSD: 0.01, maxAgents: 1, maxRuntimeSec: 1 }, { maxCostUSD: 0.01, maxAgents: 1, maxRuntimeSec: 1 }],
    // The config is a hard cap: a plan above it (config lowered since) cannot raise it.
    [{ maxCostUSD: 500, maxAgents: 50, maxRuntimeSec: 6000 }, { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600 }],
  ])('budget %j → %j', (budget, expected) => {
    expect(effectiveCaps({ budget, scopes: ['custom_logic'] }, config)).toEqual({ ...expected, allowedScopes: ['custom_logic'] });
  });

  it('follows the config in force, not the one the plan was written against', () => {
    const lowered: Config = { ...config, kimi: { ...config.kimi, defaults: { ...defaults, maxCostUSD: 5, maxAgents: 3 } } };
    const caps = effectiveCaps({ budget: { maxCostUSD: 10, maxAgents: 4 } }, lowered);
    expect(caps).toMatchObject({ maxCostUSD: 5, maxAgents: 3, maxRuntimeSec: 600 });
    expect(planBudgetOverCaps({ budget: { maxCostUSD: 10, maxAgents: 3 } }, lowered.kimi.defaults)).toEqual([{ key: 'maxCostUSD', value: 10, cap: 5 }]);
    expect(planBudgetOverCaps({ budget: { maxCostUSD: 5 } }, lowered.kimi.defaults)).toEqual([]);
  });

  it('keeps the scopes the plan asks for when they are allowed (duplicates once)', () => {
    expect(effectiveCaps({ scopes: ['integration_glue', 'custom_logic', 'integration_glue'] }, config).allowedScopes).toEqual([
      'integration_glue',
      'custom_logic',
    ]);
  });

  it('refuses scopes outside allowedScopes with SCOPE_NOT_ALLOWED (exit 3) listing each', () => {
    const err = caught(() => effectiveCaps({ scopes: ['custom_logic', 'payments', 'shell'] }, config));
    expect(err.code).toBe('SCOPE_NOT_ALLOWED');
    expect(exitCodeOf(err.code)).toBe(3);
    expect(err.details).toEqual({ scopes: ['payments', 'shell'], allowed: ['custom_logic', 'integration_glue'] });
    expect(err.message).toContain('payments, shell');
  });
});

describe('preflight', () => {
  const caps = (over: Partial<KimiCaps> = {}): KimiCaps => ({ ...defaults, ...over });
  const twoFeatures = stubPricing(2, 5); // 10000 tokens, $0.02, 8 s

  it('passes within every limit and exactly at each limit', () => {
    expect(preflight(twoFeatures, caps(), 0, PER_CONTRACT)).toEqual({ ok: true });
    expect(preflight(twoFeatures, caps({ maxCostUSD: 0.02, maxRuntimeSec: 8 }), 0, PER_CONTRACT)).toEqual({ ok: true });
    expect(preflight(twoFeatures, caps(), usdToMicros(0.08), usdToMicros(0.1))).toEqual({ ok: true });
  });

  it.each([
    {
      name: 'cost over budget',
      estimate: twoFeatures,
      caps: caps({ maxCostUSD: 0.01 }),
      spent: 0,
      code: 'BUDGET_EXCEEDED',
      summary: 'Execution aborted: budget exceeded ($0.02 > $0.01)',
    },
    {
      name: 'cost over a whole-dollar budget',
      estimate: { costMicros: usdToMicros(30), runtimeSec: 1 },
      caps: caps(),
      spent: 0,
      code: 'BUDGET_EXCEEDED',
      summary: 'Execution aborted: budget exceeded ($30 > $25)',
    },
    {
      name: 'runtime over limit',
      estimate: twoFeatures,
      caps: caps({ maxRuntimeSec: 5 }),
      spent: 0,
      code: 'RUNTIME_EXCEEDED',
      summary: 'Execution aborted: runtime exceeded (8s > 5s)',
    },
    {
      name: 'cost is checked before runtime',
      estimate: twoFeatures,
      caps: caps({ maxCostUSD: 0.01, maxRuntimeSec: 5 }),
      spent: 0,
      code: 'BUDGET_EXCEEDED',
      summary: 'Execution aborted: budget exceeded ($0.02 > $0.01)',
    },
    {
      name: 'prior spend plus this estimate over the contract cap',
      estimate: twoFeatures,
      caps: caps(),
      spent: usdToMicros(0.09),
      code: 'CONTRACT_BUDGET_EXCEEDED',
      summary: 'Execution aborted: contract budget exceeded ($0.11 > $0.10)',
    },
    {
      name: 'runtime is checked before the contract cap',
      estimate: twoFeatures,
      caps: caps({ maxRuntimeSec: 7 }),
      spent: usdToMicros(0.09),
      code: 'RUNTIME_EXCEEDED',
      summary: 'Execution aborted: runtime exceeded (8s > 7s)',
    },
  ])('$name → $code', ({ estimate, caps: c, spent, code, summary }) => {
    const r = preflight(estimate, c, spent, usdToMicros(0.1));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe(code);
    expect(r.summary).toBe(summary);
    expect(exitCodeOf(r.code)).toBe(5);
  });

  it('reports the figures in details', () => {
    const r = preflight(twoFeatures, caps(), usdToMicros(99.99), PER_CONTRACT);
    expect(r).toEqual({
      ok: false,
      code: 'CONTRACT_BUDGET_EXCEEDED',
      summary: 'Execution aborted: contract budget exceeded ($100.01 > $100)',
      details: { spent_usd: 99.99, cost_usd: 0.02, total_usd: 100.01, max_cost_usd_per_contract: 100 },
    });
  });
});

describe('seed messages', () => {
  it.each([
    [kimiMessages.started({ maxCostUSD: 25, maxAgents: 5 }), 'Kimi execution started (budget $25, agents 5)'],
    [kimiMessages.started({ maxCostUSD: 12.5, maxAgents: 2 }), 'Kimi execution started (budget $12.50, agents 2)'],
    [kimiMessages.completed(20_000), 'Kimi execution completed (cost $0.02)'],
    [kimiMessages.completed(0), 'Kimi execution completed (cost $0)'],
    [kimiMessages.aborted('BUDGET_EXCEEDED'), 'Kimi execution aborted (budget exceeded)'],
    [kimiMessages.aborted('RUNTIME_EXCEEDED'), 'Kimi execution aborted (runtime exceeded)'],
    [kimiMessages.aborted('CONTRACT_BUDGET_EXCEEDED'), 'Kimi execution aborted (contract budget exceeded)'],
    [kimiMessages.aborted('INTERNAL_ERROR'), 'Kimi execution aborted (internal error)'],
  ])('%s', (actual, expected) => {
    expect(actual).toBe(expected);
  });
});

describe('envelope transitions', () => {
  const allowed: Record<EnvelopeStatus, EnvelopeStatus[]> = {
    PENDING: ['RUNNING', 'FAILED', 'CANCELLED'],
    RUNNING: ['COMPLETED', 'FAILED', 'CANCELLED'],
    COMPLETED: [],
    FAILED: [],
    CANCELLED: [],
  };
  const pairs = ENVELOPE_STATUSES.flatMap((from) => ENVELOPE_STATUSES.map((to) => ({ from, to, ok: allowed[from].includes(to) })));
  it.each(pairs)('$from → $to: $ok', ({ from, to, ok }) => {
    expect(canTransitionEnvelope(from, to)).toBe(ok);
  });
});
