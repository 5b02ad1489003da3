import { describe, expect, it } from 'vitest';
import type { Json } from '../../src/domain/plan-diff.js';
import { diffPlans } from '../../src/domain/plan-diff.js';

const step = (id: string, summary = `do ${id}`, extra: Record<string, Json> = {}) => ({ id, summary, ...extra });
const plan = (steps: Json[], extra: Record<string, Json> = {}): Json => ({ version: 'kair.plan.v1', title: 'T', steps, ...extra });

describe('diffPlans: steps are matched by id', () => {
  it('identical plans (keys in another order) are identical', () => {
    const a = plan([step('a'), step('b')], { budget: { maxAgents: 1, maxCostUSD: 2 } });
    const b = { steps: [{ summary: 'do a', id: 'a' }, step('b')], budget: { maxCostUSD: 2, maxAgents: 1 }, title: 'T', version: 'kair.plan.v1' };
    expect(diffPlans(a, b)).toEqual({ identical: true, steps: { added: [], removed: [], moved: [], changed: [] }, other: [] });
  });

  it('an inserted step is added and shifts nothing into "moved"; a dropped one is removed', () => {
    const d = diffPlans(plan([step('a'), step('b'), step('c')]), plan([step('a'), step('new'), step('b')]));
    expect(d.identical).toBe(false);
    expect(d.steps.added).toEqual([{ id: 'new', index: 1, step: step('new') }]);
    expect(d.steps.removed).toEqual([{ id: 'c', index: 2, step: step('c') }]);
    expect(d.steps.moved).toEqual([]);
    expect(d.steps.changed).toEqual([]);
  });

  it('a reordered step is moved (only the one that left its place, with both positions)', () => {
    const d = diffPlans(plan([step('a'), step('b'), step('c'), step('d')]), plan([step('a'), step('c'), step('d'), step('b')]));
    expect(d.steps.moved).toEqual([{ id: 'b', from: 1, to: 3 }]);
    expect(d.steps.added).toEqual([]);
    expect(d.steps.removed).toEqual([]);
  });

  it('a swap of two steps moves one of them', () => {
    const d = diffPlans(plan([step('a'), step('b')]), plan([step('b'), step('a')]));
    expect(d.steps.moved).toHaveLength(1);
  });

  it('a changed step is reported field by field, nested fields as paths, with add/remove/replace', () => {
    const before = step('send', 'Send it', { simulation: { utterance: 'send invoice', fields: { amount: '120', customer: 'acme' } }, risks: ['x'] });
    const after = step('send', 'Send the invoice', { simulation: { utterance: 'send invoice', fields: { amount: '1200', 'due date': 'now' } }, tags: ['t'] });
    const d = diffPlans(plan([before]), plan([after]));
    expect(d.steps.changed).toEqual([
      { id: 'send', path: 'risks', op: 'remove', from: ['x'], to: null },
      { id: 'send', path: 'simulation.fields.amount', op: 'replace', from: '120', to: '1200' },
      { id: 'send', path: 'simulation.fields.customer', op: 'remove', from: 'acme', to: null },
      { id: 'send', path: 'simulation.fields["due date"]', op: 'add', from: null, to: 'now' },
      { id: 'send', path: 'summary', op: 'replace', from: 'Send it', to: 'Send the invoice' },
      { id: 'send', path: 'tags', op: 'add', from: null, to: ['t'] },
    ]);
    expect(d.other).toEqual([]);
  });

  it('a step that moves and changes is both moved and changed', () => {
    const d = diffPlans(plan([step('a'), step('b')]), plan([step('b', 'other'), step('a')]));
    expect(d.steps.moved).toHaveLength(1);
    expect(d.steps.changed).toEqual([{ id: 'b', path: 'summary', op: 'replace', from: 'do b', to: 'other' }]);
  });

  it('keys other than steps are JSON paths; arrays are compared whole', () => {
    const d = diffPlans(
      plan([step('a')], { budget: { maxCostUSD: 25 }, scopes: ['custom_logic'], strategy: 'CUSTOM' }),
      plan([step('a')], { budget: { maxCostUSD: 30, maxAgents: 2 }, scopes: ['custom_logic', 'integration_glue'], title: 'T2' }),
    );
    expect(d.other).toEqual([
      { path: 'budget.maxAgents', op: 'add', from: null, to: 2 },
      { path: 'budget.maxCostUSD', op: 'replace', from: 25, to: 30 },
      { path: 'scopes', op: 'replace', from: ['custom_logic'], to: ['custom_logic', 'integration_glue'] },
      { path: 'strategy', op: 'remove', from: 'CUSTOM', to: null },
      { path: 'title', op: 'replace', from: 'T', to: 'T2' },
    ]);
  });

  it('a value that becomes null is a replace, not a removal', () => {
    const d = diffPlans(plan([step('a', 'x', { details: { k: 1 } })]), plan([step('a', 'x', { details: { k: null } })]));
    expect(d.steps.changed).toEqual([{ id: 'a', path: 'details.k', op: 'replace', from: 1, to: null }]);
  });

  it('from null (no plan before): every step is added and every key is an addition', () => {
    const d = diffPlans(null, plan([step('a'), step('b')]));
    expect(d.steps.added.map((s) => s.id)).toEqual(['a', 'b']);
    expect(d.other.map((o) => [o.path, o.op])).toEqual([
      ['title', 'add'],
      ['version', 'add'],
    ]);
    expect(d.identical).toBe(false);
  });

  it('a key named like a path cannot be confused with a nested one', () => {
    const d = diffPlans(plan([step('a', 'x', { details: { 'a.b': 1 } })]), plan([step('a', 'x', { details: { 'a.b': 2 } })]));
    expect(d.steps.changed[0]!.path).toBe('details["a.b"]');
  });
});
