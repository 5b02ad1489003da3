/**
 * The `stub` plan provider: deterministic and offline, a pure function of the prompt, so the
 * same intent, DPC, controls and catalog always give the byte-identical plan (and a recorded
 * prompt replays). It is a heuristic, not a model:
 * - each sentence of the intent that the Finder matches to an Active simulation at high
 *   confidence becomes a `simulation` step (fields written `key=value` in the sentence);
 * - sentences that ask for custom logic (build, add, implement, custom…) become one step on the
 *   Kimi lane, with strategy CUSTOM, `details.requiresKimi` and the features they name;
 * - every other sentence is a step for people, and a last review step carries the DPC's
 *   constraints and open questions as risks and the required controls as tags.
 * A refine keeps the current plan, drops the steps the feedback names after drop/remove/skip,
 * and adds the feedback's other sentences as steps the same way.
 */
import type { CatalogEntry } from '../aec/finder.js';
import { HIGH_CONFIDENCE_BP, find, normalizeTokens } from '../aec/finder.js';
import type { PlanPrompt } from './prompt.js';

export const STUB_MODEL = 'kair-stub-1';

const MAX_SENTENCES = 50;
const MAX_STEPS = 200;
const MAX_FEATURES = 5;

const CUSTOM_WORDS = new Set([
  'add', 'build', 'code', 'create', 'custom', 'develop', 'extend', 'feature', 'features', 'generate', 'implement', 'integrate',
  'integration', 'logic', 'new', 'program', 'script', 'write', 'automate',
]);
const STOP_WORDS = new Set([
  'a', 'an', 'and', 'the', 'to', 'of', 'for', 'in', 'on', 'with', 'our', 'my', 'your', 'their', 'its', 'it', 'we', 'us', 'i', 'that',
  'this', 'these', 'those', 'then', 'also', 'some', 'any', 'all', 'from', 'into', 'by', 'as', 'at', 'is', 'are', 'be', 'so', 'or', 'but',
  'please', 'should', 'must', 'can', 'will', 'would', 'need', 'needs', 'want', 'make', 'sure', 'via', 'using', 'use',
]);
const DROP_WORDS = /^(?:drop|remove|skip|delete)\s+(?:the\s+)?(?:step\s+)?([a-z0-9][a-z0-9_-]{0,79})\b/i;

type Step = Record<string, unknown> & { id: string; summary: string };

/** Sentences of a text: split at . ! ? ; and line breaks, trimmed, at most MAX_SENTENCES. */
export function sentences(text: string): string[] {
  return text
    .split(/[.!?;\n\r]+(?:\s+|$)|[\n\r]+/)
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => /[\p{L}\p{N}]/u.test(s))
    .slice(0, MAX_SENTENCES);
}

/** `key=value` / `key: value` pairs written in a sentence, and the sentence without them. */
export function fieldsOf(sentence: string): { utterance: string; fields: Record<string, string> } {
  const fields: Record<string, string> = {};
  const utterance = sentence
    .replace(/\b([A-Za-z][\w-]{0,39})\s*[=:]\s*("[^"]*"|[^\s,;]+)/g, (_m, k: string, v: string) => {
      const value = v.startsWith('"') ? v.slice(1, -1) : v;
      if (!Object.hasOwn(fields, k.toLowerCase())) fields[k.toLowerCase()] = value;
      return ' ';
    })
    .replace(/\s+/g, ' ')
    .trim();
  return { utterance, fields };
}

/** An id from words: lowercase ASCII letters and digits joined by `-`, at most 40 characters. */
function slug(words: string[], fallback: string): string {
  const ascii = words.map((w) => w.normalize('NFKD').replace(/[^a-z0-9]/g, '')).filter(Boolean);
  let out = '';
  for (const w of ascii) {
    const next = out ? `${out}-${w}` : w;
    if (next.length > 40) break;
    out = next;
  }
  return out || fallback;
}

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

function catalogOf(prompt: PlanPrompt): CatalogEntry[] {
  return prompt.simulations.map((s) => ({
    id: s.id,
    title: s.title,
    examples: s.examples,
    required_fields: s.required_fields,
    status: s.status as CatalogEntry['status'],
    // Not read by the Finder's decision; the run's dispatcher reads the real catalog.
    impact: 'none',
    access_action: '',
    executor: null,
  }));
}

interface Classified {
  kind: 'simulation' | 'custom' | 'manual';
  step: Step;
  features: string[];
}

function classify(sentence: string, catalog: CatalogEntry[], index: number): Classified {
  const { utterance, fields } = fieldsOf(sentence);
  const tokens = normalizeTokens(utterance);
  const summary = clip(sentence, 200);
  if (utterance && catalog.length) {
    const packet = find({ utterance, fields }, catalog);
    // A match, or a confident one that only lacks a field (the run's Clarify asks for it).
    const simId = packet.type === 'SimulationMatchPacket' ? packet.simulation_id : packet.type === 'ClarifyPacket' && packet.reason_code === 'SIM_FINDER_CLARIFY_MISSING_FIELD' && packet.score_bp >= HIGH_CONFIDENCE_BP ? packet.simulation_id : undefined;
    if (simId !== undefined) {
      const missing = packet.type === 'ClarifyPacket' ? packet.missing_field : undefined;
      return {
        kind: 'simulation',
        features: [],
        step: {
          id: simId,
          summary,
          simulation: { utterance, ...(Object.keys(fields).length ? { fields } : {}), lang: 'en' },
          ...(missing ? { risks: [`the field ${missing} is not given; the run will ask for it`] } : {}),
        },
      };
    }
  }
  const custom = tokens.some((t) => CUSTOM_WORDS.has(t));
  const content = tokens.filter((t) => !STOP_WORDS.has(t) && !CUSTOM_WORDS.has(t));
  const features = custom ? content.map((t) => slug([t], '')).filter((t) => t.length >= 3) : [];
  return { kind: custom ? 'custom' : 'manual', features, step: { id: slug(content.length ? content : tokens, `step-${index + 1}`), summary } };
}

function uniqueIds(steps: Step[]): Step[] {
  const seen = new Set<string>();
  return steps.map((s) => {
    let id = s.id;
    for (let n = 2; seen.has(id); n++) id = `${s.id.slice(0, 70)}-${n}`;
    seen.add(id);
    return id === s.id ? s : { ...s, id };
  });
}

/** The plan, as the JSON text a provider answers with. */
export function stubAnswer(prompt: PlanPrompt): string {
  return JSON.stringify(prompt.mode === 'refine' && isPlanLike(prompt.current_plan) ? refine(prompt, prompt.current_plan) : generate(prompt));
}

function isPlanLike(p: unknown): p is { steps: Step[] } & Record<string, unknown> {
  return typeof p === 'object' && p !== null && Array.isArray((p as { steps?: unknown }).steps);
}

function generate(prompt: PlanPrompt): Record<string, unknown> {
  const catalog = catalogOf(prompt);
  const text = [prompt.intent, prompt.instructions ?? ''].join('\n');
  const parts = sentences(text).map((s, i) => classify(s, catalog, i));
  const custom = parts.filter((p) => p.kind === 'custom');
  const steps: Step[] = [];
  let kimiPlaced = false;
  for (const p of parts) {
    if (p.kind !== 'custom') steps.push(p.step);
    else if (!kimiPlaced) {
      kimiPlaced = true;
      const summary = clip(`Generate the custom logic: ${custom.map((c) => c.step.summary).join('; ')}`, 200);
      steps.push({ id: 'generate', summary, lane: 'kimi' });
    }
  }
  steps.push(reviewStep(prompt));
  const features = [...new Set(custom.flatMap((c) => c.features))].slice(0, MAX_FEATURES);
  const first = sentences(prompt.intent)[0] ?? prompt.contract_id;
  const plan: Record<string, unknown> = {
    version: 'kair.plan.v1',
    title: clip(first, 80),
    strategy: custom.length ? 'CUSTOM' : 'INVENTORY',
  };
  if (custom.length) {
    plan.details = { requiresKimi: true, ...(features.length ? { features } : {}) };
    const scope = prompt.limits.allowedScopes.includes('custom_logic') ? 'custom_logic' : prompt.limits.allowedScopes[0];
    if (scope !== undefined) plan.scopes = [scope];
  }
  plan.steps = uniqueIds(steps).slice(-MAX_STEPS);
  return plan;
}

function reviewStep(prompt: PlanPrompt): Step {
  const risks = [...prompt.dpc.constraints.map((c) => `constraint: ${c}`), ...prompt.dpc.open_questions.map((q) => `open question: ${q}`)].map((r) => clip(r, 200));
  const tags = prompt.controls.required.map((c) => `control:${c}`);
  return { id: 'review', summary: 'A person reviews the result against the intent', ...(tags.length ? { tags } : {}), ...(risks.length ? { risks } : {}) };
}

function refine(prompt: PlanPrompt, current: { steps: Step[] } & Record<string, unknown>): Record<string, unknown> {
  const catalog = catalogOf(prompt);
  const drop = new Set<string>();
  const added: Classified[] = [];
  sentences(prompt.feedback ?? '').forEach((s, i) => {
    const m = DROP_WORDS.exec(s);
    if (m) drop.add(m[1]!.toLowerCase());
    else added.push(classify(s, catalog, current.steps.length + i));
  });
  const kept = current.steps.filter((s) => !drop.has(s.id));
  const hasKimi = kept.some((s) => s.lane === 'kimi');
  const review = kept.findIndex((s) => s.id === 'review');
  const extra = added.map((a) => (a.kind === 'custom' && !hasKimi && a === added.find((x) => x.kind === 'custom') ? { id: 'generate', summary: a.step.summary, lane: 'kimi' } : a.step));
  // New steps go before the review step, which stays last.
  const steps = review === -1 ? [...kept, ...extra] : [...kept.slice(0, review), ...extra, ...kept.slice(review)];
  const plan: Record<string, unknown> = { ...current, steps: uniqueIds(steps.length ? steps : [reviewStep(prompt)]).slice(0, MAX_STEPS) };
  const anyKimi = (plan.steps as Step[]).some((s) => s.lane === 'kimi');
  if (anyKimi && plan.strategy !== 'CUSTOM') {
    plan.strategy = 'CUSTOM';
    const features = [...new Set(added.flatMap((a) => a.features))].slice(0, MAX_FEATURES);
    plan.details = { ...((current.details as object | undefined) ?? {}), requiresKimi: true, ...(features.length ? { features } : {}) };
    if (!plan.scopes && prompt.limits.allowedScopes.length) plan.scopes = [prompt.limits.allowedScopes.includes('custom_logic') ? 'custom_logic' : prompt.limits.allowedScopes[0]];
  }
  return plan;
}
