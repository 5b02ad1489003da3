import { describe, it, expect } from 'vitest';
import { defaultConfig } from '../../src/domain/config.js';
import { formatPath, isKimiEligible, stepLane, validatePlan, type Plan, type PlanStep } from '../../src/domain/plan.js';

const caps = defaultConfig('ws').kimi.defaults;

/** The SPEC §6 example, verbatim. */
const EXAMPLE = {
  version: 'kair.plan.v1',
  title: 'Add chat and invoicing',
  strategy: 'CUSTOM',
  details: { requiresKimi: true, features: ['chat', 'notifications'] },
  scopes: ['custom_logic'],
  budget: { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600 },
  steps: [
    { id: 'generate', summary: 'Generate the custom delta', lane: 'kimi' },
    {
      id: 'send-invoice',
      summary: 'Send the first invoice',
      simulation: { utterance: 'send invoice', fields: { customer: 'acme', amount: '120' }, lang: 'en' },
    },
  ],
};

type Json = Record<string, unknown>;
const minimal = (): Json => ({ version: 'kair.plan.v1', title: 'T', steps: [{ id: 'a', summary: 'A' }] });
const withStep = (step: Json): Json => ({ ...minimal(), steps: [step] });
const withBudget = (budget: Json): Json => ({ ...minimal(), budget });
const manySteps = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i}`, summary: `step ${i}` }));

function paths(input: unknown): string[] {
  return validatePlan(input, caps).problems.map((p) => p.path);
}

/** An unknown key is reported at the key's own JSON path (`steps[0].foo`), like config paths. */
function expectUnknownKey(input: unknown, container: string, key: string) {
  const { problems, plan } = validatePlan(input, caps);
  expect(plan).toBeUndefined();
  const own = container === '(root)' ? key : `${container}.${key}`;
  expect(problems.map((p) => p.path)).toEqual([own]);
  expect(problems[0].message).toMatch(/unknown|unrecognized/i);
}

describe('validatePlan: valid plans', () => {
  it('the SPEC §6 example is valid and returned as given', () => {
    const r = validatePlan(EXAMPLE, caps);
    expect(r.problems).toEqual([]);
    expect(r.plan).toEqual(EXAMPLE);
  });

  const valid: Array<[string, Json]> = [
    ['minimal', minimal()],
    ['every strategy: INVENTORY', { ...minimal(), strategy: 'INVENTORY' }],
    ['every strategy: INVENTORY_PLUS_OSS', { ...minimal(), strategy: 'INVENTORY_PLUS_OSS' }],
    ['every strategy: OSS', { ...minimal(), strategy: 'OSS' }],
    ['budget exactly at the caps', withBudget({ maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600 })],
    ['maxCostUSD with 2 decimals', withBudget({ maxCostUSD: 12.34 })],
    ['maxCostUSD 0.29 (float noise)', withBudget({ maxCostUSD: 0.29 })],
    ['200 steps', { ...minimal(), steps: manySteps(200) }],
    ['step with details/tags/risks', withStep({ id: 'a', summary: 'A', details: 'text', tags: ['x'], risks: ['r'] })],
    ['step details as an object', withStep({ id: 'a', summary: 'A', details: { any: 1 } })],
    ['step id of 80 chars', withStep({ id: 'a'.repeat(80), summary: 'A' })],
    ['simulation without fields/lang', withStep({ id: 'a', summary: 'A', simulation: { utterance: 'x' } })],
    ['empty details', { ...minimal(), details: {} }],
  ];

  it.each(valid)('%s', (_n, input) => {
    const r = validatePlan(input, caps);
    expect(r.problems).toEqual([]);
    expect(r.plan).toBeDefined();
  });
});

describe('validatePlan: invalid plans', () => {
  const invalid: Array<[string, unknown, string[]]> = [
    ['missing title', { version: 'kair.plan.v1', steps: [{ id: 'a', summary: 'A' }] }, ['title']],
    ['empty title', { ...minimal(), title: '' }, ['title']],
    ['missing steps', { version: 'kair.plan.v1', title: 'T' }, ['steps']],
    ['empty steps', { ...minimal(), steps: [] }, ['steps']],
    ['201 steps', { ...minimal(), steps: manySteps(201) }, ['steps']],
    ['missing version', { title: 'T', steps: [{ id: 'a', summary: 'A' }] }, ['version']],
    ['wrong version', { ...minimal(), version: 'kair.plan.v2' }, ['version']],
    ['bad step id A', withStep({ id: 'A', summary: 'A' }), ['steps[0].id']],
    ['bad step id ../x', withStep({ id: '../x', summary: 'A' }), ['steps[0].id']],
    ['step id of 81 chars', withStep({ id: 'a'.repeat(81), summary: 'A' }), ['steps[0].id']],
    ['step without summary', withStep({ id: 'a' }), ['steps[0].summary']],
    ['step without id', withStep({ summary: 'A' }), ['steps[0].id']],
    ['bad feature id', { ...minimal(), details: { features: ['chat', 'Bad Feature'] } }, ['details.features[1]']],
    ['requiresKimi not boolean', { ...minimal(), details: { requiresKimi: 'yes' } }, ['details.requiresKimi']],
    ['strategy not in enum', { ...minimal(), strategy: 'YOLO' }, ['strategy']],
    ['strategy lowercase', { ...minimal(), strategy: 'custom' }, ['strategy']],
    ['lane kimi and simulation', withStep({ id: 'a', summary: 'A', lane: 'kimi', simulation: { utterance: 'x' } }), ['steps[0].lane']],
    ['lane other than kimi', withStep({ id: 'a', summary: 'A', lane: 'aec' }), ['steps[0].lane']],
    ['budget above cap', withBudget({ maxCostUSD: 26 }), ['budget.maxCostUSD']],
    ['maxAgents above cap', withBudget({ maxAgents: 6 }), ['budget.maxAgents']],
    ['maxRuntimeSec above cap', withBudget({ maxRuntimeSec: 601 }), ['budget.maxRuntimeSec']],
    ['maxCostUSD with 3 decimals', withBudget({ maxCostUSD: 1.234 }), ['budget.maxCostUSD']],
    ['maxCostUSD 0', withBudget({ maxCostUSD: 0 }), ['budget.maxCostUSD']],
    ['maxCostUSD negative', withBudget({ maxCostUSD: -1 }), ['budget.maxCostUSD']],
    ['maxCostUSD as a string', withBudget({ maxCostUSD: '5' }), ['budget.maxCostUSD']],
    ['maxAgents 2.5', withBudget({ maxAgents: 2.5 }), ['budget.maxAgents']],
    ['maxRuntimeSec 0', withBudget({ maxRuntimeSec: 0 }), ['budget.maxRuntimeSec']],
    ['scopes with an empty string', { ...minimal(), scopes: ['ok', ''] }, ['scopes[1]']],
    ['simulation without utterance', withStep({ id: 'a', summary: 'A', simulation: { lang: 'en' } }), ['steps[0].simulation.utterance']],
    ['simulation field value not a string', withStep({ id: 'a', summary: 'A', simulation: { utterance: 'x', fields: { amount: 120 } } }), ['steps[0].simulation.fields.amount']],
  ];

  it.each(invalid)('%s → %j', (_n, input, expected) => {
    const r = validatePlan(input, caps);
    expect(r.plan).toBeUndefined();
    expect(r.problems.map((p) => p.path)).toEqual(expected);
    for (const p of r.problems) expect(p.message.length).toBeGreaterThan(0);
  });

  it('duplicate step ids → steps[1].id: duplicate "a"', () => {
    const r = validatePlan({ ...minimal(), steps: [{ id: 'a', summary: 'A' }, { id: 'a', summary: 'B' }] }, caps);
    expect(r.plan).toBeUndefined();
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0].path).toBe('steps[1].id');
    expect(r.problems[0].message).toContain('duplicate "a"');
  });

  it('every later duplicate is reported', () => {
    const steps = ['a', 'b', 'a', 'b', 'a'].map((id) => ({ id, summary: id }));
    expect(paths({ ...minimal(), steps })).toEqual(['steps[2].id', 'steps[3].id', 'steps[4].id']);
  });

  it('budget above cap names the cap', () => {
    const [p] = validatePlan(withBudget({ maxCostUSD: 26 }), caps).problems;
    expect(p.message).toContain('25');
  });

  it('caps come from the argument', () => {
    expect(paths(withBudget({ maxCostUSD: 26 }))).toEqual(['budget.maxCostUSD']);
    expect(validatePlan(withBudget({ maxCostUSD: 26 }), { ...caps, maxCostUSD: 30 }).problems).toEqual([]);
  });

  it('two unknown keys in one object are both reported', () => {
    expect(paths(withStep({ id: 'a', summary: 'A', foo: 1, bar: 2 }))).toEqual(['steps[0].bar', 'steps[0].foo']);
  });

  it.each([
    ['unknown top-level key', { ...minimal(), foo: 1 }, '(root)', 'foo'],
    ['unknown key in a step', withStep({ id: 'a', summary: 'A', foo: 1 }), 'steps[0]', 'foo'],
    ['unknown key in budget', withBudget({ maxCostUSD: 1, foo: 1 }), 'budget', 'foo'],
    ['unknown key in details', { ...minimal(), details: { foo: 1 } }, 'details', 'foo'],
    ['unknown key in a simulation', withStep({ id: 'a', summary: 'A', simulation: { utterance: 'x', foo: 1 } }), 'steps[0].simulation', 'foo'],
    ['unknown key named like an Object.prototype member', { ...minimal(), constructor: 1 }, '(root)', 'constructor'],
  ])('%s is rejected with its path', (_n, input, container, key) => {
    expectUnknownKey(input, container, key);
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'plan'],
    ['a number', 1],
  ])('a non-object (%s) is rejected', (_n, input) => {
    const r = validatePlan(input, caps);
    expect(r.plan).toBeUndefined();
    expect(r.problems.length).toBeGreaterThan(0);
  });

  it('several problems at once are ALL reported', () => {
    const input = {
      version: 'kair.plan.v0',
      strategy: 'NOPE',
      extra: true,
      budget: { maxCostUSD: 26, maxAgents: 2.5, maxRuntimeSec: 0 },
      details: { features: ['ok', 'NOT OK'] },
      steps: [
        { id: 'a', summary: 'A' },
        { id: 'a', summary: 'dup' },
        { id: 'B', summary: 'bad id' },
        { id: 'c', summary: 'both', lane: 'kimi', simulation: { utterance: 'x' } },
        { id: 'd', summary: 'bad lane', lane: 'manual' },
        { id: 'e', summary: 'unknown key', colour: 'red' },
      ],
    };
    const r = validatePlan(input, caps);
    expect(r.plan).toBeUndefined();
    const got = r.problems.map((p) => p.path);
    for (const want of [
      'version',
      'title',
      'strategy',
      'budget.maxCostUSD',
      'budget.maxAgents',
      'budget.maxRuntimeSec',
      'details.features[1]',
      'steps[1].id',
      'steps[2].id',
      'steps[3].lane',
      'steps[4].lane',
      'extra',
      'steps[5].colour',
    ]) {
      expect(got, want).toContain(want);
    }
    expect(r.problems.find((p) => p.path === 'steps[1].id')?.message).toContain('duplicate "a"');
  });
});

describe('isKimiEligible', () => {
  const strategies = ['INVENTORY', 'INVENTORY_PLUS_OSS', 'OSS', 'CUSTOM', undefined] as const;
  const requires = [true, false, undefined] as const;
  const cases: Array<[string, string, boolean]> = [];
  for (const s of strategies) {
    for (const r of requires) cases.push([String(s), String(r), s === 'CUSTOM' || r === true]);
  }

  it.each(cases)('strategy %s, requiresKimi %s → %s', (s, r, want) => {
    const plan: Json = minimal();
    if (s !== 'undefined') plan.strategy = s;
    if (r !== 'undefined') plan.details = { requiresKimi: r === 'true' };
    const parsed = validatePlan(plan, caps).plan as Plan;
    expect(parsed).toBeDefined();
    expect(isKimiEligible(parsed)).toBe(want);
  });

  it('the SPEC §6 example is Kimi-eligible', () => {
    expect(isKimiEligible(validatePlan(EXAMPLE, caps).plan as Plan)).toBe(true);
  });
});

describe('stepLane', () => {
  const cases: Array<[string, PlanStep, 'kimi' | 'aec' | 'manual']> = [
    ['lane kimi', { id: 'a', summary: 'A', lane: 'kimi' }, 'kimi'],
    ['simulation', { id: 'a', summary: 'A', simulation: { utterance: 'send invoice' } }, 'aec'],
    ['neither', { id: 'a', summary: 'A' }, 'manual'],
    ['neither, with details', { id: 'a', summary: 'A', details: 'x', tags: ['t'] }, 'manual'],
  ];
  it.each(cases)('%s → %s', (_n, step, lane) => {
    expect(stepLane(step)).toBe(lane);
  });

  it('the SPEC §6 example steps are kimi then aec', () => {
    const plan = validatePlan(EXAMPLE, caps).plan as Plan;
    expect(plan.steps.map(stepLane)).toEqual(['kimi', 'aec']);
  });
});

describe('formatPath', () => {
  const cases: Array<[PropertyKey[], string]> = [
    [['steps', 1, 'id'], 'steps[1].id'],
    [['steps', 0], 'steps[0]'],
    [['budget', 'maxCostUSD'], 'budget.maxCostUSD'],
    [['details', 'features', 3], 'details.features[3]'],
    [['steps', 2, 'simulation', 'fields', 'amount'], 'steps[2].simulation.fields.amount'],
    [['title'], 'title'],
    [[], '(root)'],
  ];
  it.each(cases)('%j → %s', (p, s) => {
    expect(formatPath(p)).toBe(s);
  });
});
