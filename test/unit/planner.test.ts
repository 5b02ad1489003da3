/**
 * The plan providers' pure parts: the stub (deterministic, always a valid plan), the prompt
 * payload, and how a model's answer is read. The HTTP provider and the command are tested end
 * to end in test/e2e/planner*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig, resolveConfig, validateConfig } from '../../src/domain/config.js';
import { newDpc } from '../../src/domain/dpc.js';
import { validatePlan } from '../../src/domain/plan.js';
import type { PlanPrompt, PromptSimulation } from '../../src/domain/planner/prompt.js';
import { buildPrompt, extractJson, payloadSha, promptOf, promptPayload } from '../../src/domain/planner/prompt.js';
import { fieldsOf, sentences, stubAnswer } from '../../src/domain/planner/stub.js';

const caps = defaultConfig('ws').kimi.defaults;

const SIMS: PromptSimulation[] = [
  { id: 'send-invoice', title: 'Send an invoice', examples: ['send invoice', 'send the invoice', 'send an invoice to the customer', 'email the invoice'], required_fields: ['customer', 'amount'], status: 'Active' },
  { id: 'void-invoice', title: 'Void an invoice', examples: ['void invoice', 'void the invoice', 'cancel the invoice'], required_fields: ['customer'], status: 'Active' },
  { id: 'ping', title: 'Ping a host', examples: ['ping the server', 'check the host is up'], required_fields: [], status: 'Draft' },
];

function prompt(intent: string, o: { constraints?: string[]; questions?: string[]; required?: string[]; sims?: PromptSimulation[]; instructions?: string } = {}): PlanPrompt {
  const dpc = newDpc(intent, '2026-01-30T12:00:00.000Z');
  dpc.constraints = o.constraints ?? [];
  dpc.open_questions = (o.questions ?? []).map((q, i) => ({ id: `q${i + 1}`, question: q }));
  return buildPrompt({ mode: 'generate', contractId: 'c1', intent, required: o.required ?? [], dpc, simulations: o.sims ?? SIMS, caps, ...(o.instructions ? { instructions: o.instructions } : {}) });
}

const planOf = (p: PlanPrompt) => JSON.parse(stubAnswer(p)) as { strategy: string; details?: { requiresKimi: boolean; features?: string[] }; scopes?: string[]; steps: { id: string; lane?: string; simulation?: { utterance: string; fields?: Record<string, string> }; risks?: string[]; tags?: string[] }[] };

describe('the stub provider', () => {
  it('gives the byte-identical plan for the same intent, DPC and controls (and a prompt rebuilt with its keys in another order)', () => {
    const a = prompt('Build a chat widget. Send the invoice customer=acme amount=120. Tell sales', { constraints: ['no new servers'], required: ['local:write', 'local:read'] });
    const b = prompt('Build a chat widget. Send the invoice customer=acme amount=120. Tell sales', { constraints: ['no new servers'], required: ['local:read', 'local:write'] });
    const shuffled = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(a).reverse()))) as PlanPrompt;
    const text = stubAnswer(a);
    expect(stubAnswer(b)).toBe(text);
    expect(stubAnswer(shuffled)).toBe(text);
    // The payload carries the prompt as canonical JSON: same prompt, same sha, same answer back.
    const pa = promptPayload(a, 'stub', 'kair-stub-1', 4096);
    expect(payloadSha(pa)).toBe(payloadSha(promptPayload(b, 'stub', 'kair-stub-1', 4096)));
    expect(stubAnswer(promptOf(pa))).toBe(text);
  });

  it('routes a sentence an Active simulation matches to a simulation step, custom logic to the Kimi lane, the rest to people', () => {
    const plan = planOf(prompt('Build a chat widget with notifications. Send the invoice customer=acme amount=120. Ping the server. Tell the sales team', { constraints: ['no new servers'], questions: ['which region?'], required: ['local:read'] }));
    expect(plan.strategy).toBe('CUSTOM');
    expect(plan.details).toEqual({ requiresKimi: true, features: ['chat', 'widget', 'notifications'] });
    expect(plan.scopes).toEqual(['custom_logic']);
    expect(plan.steps.map((s) => s.id)).toEqual(['generate', 'send-invoice', 'ping-server', 'tell-sales-team', 'review']);
    expect(plan.steps[0]!.lane).toBe('kimi');
    expect(plan.steps[1]!.simulation).toEqual({ utterance: 'Send the invoice', fields: { customer: 'acme', amount: '120' }, lang: 'en' });
    // ping is Draft: never a simulation step
    expect(plan.steps[2]!.simulation).toBeUndefined();
    expect(plan.steps[4]).toMatchObject({ tags: ['control:local:read'], risks: ['constraint: no new servers', 'open question: which region?'] });
  });

  it('plans without Kimi when nothing asks for custom logic, and a confident match that lacks a field still routes to the simulation', () => {
    const plan = planOf(prompt('Send the invoice customer=acme. Tell the sales team'));
    expect(plan.strategy).toBe('INVENTORY');
    expect(plan.details).toBeUndefined();
    expect(plan.steps[0]).toMatchObject({ id: 'send-invoice', simulation: { utterance: 'Send the invoice', fields: { customer: 'acme' } } });
    expect(plan.steps[0]!.risks?.[0]).toContain('amount');
  });

  it('refines the current plan: drops the named steps and adds the feedback as steps before the review', () => {
    const first = prompt('Send the invoice customer=acme amount=1. Tell the sales team');
    const current = JSON.parse(stubAnswer(first)) as unknown;
    const refine = buildPrompt({ mode: 'refine', contractId: 'c1', intent: first.intent, feedback: 'Drop tell-sales-team. Build a custom report', currentPlan: current, required: [], dpc: newDpc(first.intent, 'x'), simulations: SIMS, caps });
    const plan = planOf(refine);
    expect(plan.steps.map((s) => s.id)).toEqual(['send-invoice', 'generate', 'review']);
    expect(plan.strategy).toBe('CUSTOM');
    expect(plan.details?.requiresKimi).toBe(true);
    expect(validatePlan(plan, caps).problems).toEqual([]);
  });

  it('gives a valid kair.plan.v1 plan for each of 1,000 generated intents (and a refine of each)', () => {
    let seed = 20260130;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    const fragments = [
      'build a chat widget', 'Add invoicing and notifications', 'send the invoice customer=acme amount=120', 'email the invoice customer="ACME Corp" amount=9',
      'void the invoice customer=acme', 'cancel the invoice', 'ping the server', 'tell the sales team', 'review', 'generate', 'review the review',
      'écrire un module personnalisé', '构建 新 功能', '🚀 launch it', 'implement custom logic for the checkout', 'a'.repeat(300), '   ', '...', '!!!',
      'step', 'Step-1', '123', 'integrate with github', 'write the migration script', '"quoted" \\ back\\slash', '\u001b[31mred\u001b[0m text', 'tab\tseparated',
      'drop review', 'remove the step generate', 'amount: 12 customer: bob send invoice', 'x=1 y=2', 'new', 'custom custom custom',
    ];
    const separators = ['. ', '; ', '\n', '! ', '? ', ' and ', ', '];
    for (let i = 0; i < 1000; i++) {
      const n = 1 + rnd(8);
      let intent = '';
      for (let k = 0; k < n; k++) intent += (k ? pick(separators) : '') + pick(fragments);
      if (!intent.trim()) intent = 'x';
      const sims = SIMS.map((s) => ({ ...s, status: pick(['Active', 'Active', 'Draft', 'Deprecated', 'Disabled']) }));
      const scopes = pick([['custom_logic', 'integration_glue'], ['integration_glue'], []]);
      const p = buildPrompt({
        mode: 'generate',
        contractId: `c${i}`,
        intent,
        required: rnd(2) ? ['local:read'] : [],
        dpc: { ...newDpc(intent, 'x'), constraints: rnd(3) ? [] : [pick(fragments)], open_questions: rnd(3) ? [] : [{ id: 'q1', question: pick(fragments) }] },
        simulations: rnd(5) ? sims : [],
        caps: { ...caps, allowedScopes: scopes },
        ...(rnd(4) ? {} : { instructions: pick(fragments) }),
      });
      const text = stubAnswer(p);
      expect(stubAnswer(p), intent).toBe(text);
      const plan = JSON.parse(text) as unknown;
      expect(validatePlan(plan, { ...caps, allowedScopes: scopes }).problems, `${intent}\n${text}`).toEqual([]);
      const r = buildPrompt({ mode: 'refine', contractId: `c${i}`, intent, feedback: `${pick(fragments)}. ${pick(fragments)}`, currentPlan: plan, required: [], dpc: newDpc(intent, 'x'), simulations: sims, caps: { ...caps, allowedScopes: scopes } });
      const refined = stubAnswer(r);
      expect(validatePlan(JSON.parse(refined), caps).problems, `${intent}\n${refined}`).toEqual([]);
      const scoped = JSON.parse(refined) as { scopes?: string[] };
      for (const s of scoped.scopes ?? []) expect(scopes).toContain(s);
    }
  });
});

describe('reading a model answer', () => {
  const plan = '{"version":"kair.plan.v1","title":"T","steps":[{"id":"a","summary":"A"}]}';
  it.each([
    ['bare JSON', plan],
    ['JSON wrapped in prose', `Here is the plan you asked for:\n${plan}\nLet me know if you need changes.`],
    ['a ```json code fence', `Sure!\n\`\`\`json\n${plan}\n\`\`\`\n`],
    ['a bare ``` code fence', `\`\`\`\n${plan}\n\`\`\``],
  ])('takes %s', (_name, text) => {
    const r = extractJson(text);
    expect(r).toEqual({ ok: true, value: JSON.parse(plan) });
  });
  it.each([
    ['prose only', 'I cannot help with that.', 'not valid JSON'],
    ['truncated JSON', plan.slice(0, 30), 'not valid JSON'],
    ['an array', '[1,2]', 'not a JSON object'],
    ['nesting 100 deep', '{"a":'.repeat(100) + '1' + '}'.repeat(100), 'nested deeper'],
  ])('refuses %s without quoting it', (_name, text, message) => {
    const r = extractJson(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toContain(message);
      expect(r.message).not.toContain('cannot help');
    }
  });
});

describe('sentences and fields', () => {
  it('splits at sentence ends and line breaks, and reads key=value and key: value', () => {
    expect(sentences('One. Two; three\nfour!  ')).toEqual(['One', 'Two', 'three', 'four']);
    expect(sentences('version 1.2 ships')).toEqual(['version 1.2 ships']);
    expect(fieldsOf('send the invoice customer=acme amount: 120 note="two words"')).toEqual({ utterance: 'send the invoice', fields: { customer: 'acme', amount: '120', note: 'two words' } });
  });
});

describe('planner config', () => {
  const base = (planner: unknown) => ({ workspace_id: 'w', planner });
  it('defaults to the stub with max_tokens and timeout_ms', () => {
    expect(resolveConfig({ workspace_id: 'w' }).planner).toEqual({ provider: 'stub', api_key_env: 'KAIR_PLANNER_API_KEY', max_tokens: 4096, timeout_ms: 60000 });
    expect(resolveConfig(base({ max_tokens: 100 })).planner.timeout_ms).toBe(60000);
  });
  it.each([
    [{ provider: 'openai-compatible', base_url: 'https://api.moonshot.ai/v1', model: 'kimi-k2', api_key_env: 'MOONSHOT_API_KEY' }, []],
    [{ provider: 'gpt' }, ['planner.provider']],
    [{ base_url: 'ftp://x' }, ['planner.base_url']],
    [{ base_url: 'https://user:pw@api.openai.com/v1' }, ['planner.base_url']],
    [{ base_url: 'https://api.openai.com/v1?api-key=sk-1' }, ['planner.base_url']],
    [{ api_key_env: 'sk-live-123' }, ['planner.api_key_env']],
    [{ max_tokens: 0, timeout_ms: 1.5 }, ['planner.max_tokens', 'planner.timeout_ms']],
    [{ temperature: 1 }, ['planner.temperature']],
  ])('%j → problems at %j', (planner, paths) => {
    expect(validateConfig(base(planner)).map((p) => p.path)).toEqual(paths);
  });
});
