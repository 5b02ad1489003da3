/**
 * What a plan provider is asked (`kair plan --generate/--refine`): one prompt document built
 * from the contract's intent, its DPC, its controls, the simulation catalog and the workspace's
 * Kimi caps, sent as a chat (a fixed system message + the document as canonical JSON). The
 * payload is the exact request minus the credentials, so its sha names the call in the DPC
 * and the stub provider, a pure function of it, replays it.
 */
import { canonicalHash, canonicalJson } from '../canonical.js';
import type { KimiCaps } from '../config.js';
import type { Dpc } from '../dpc.js';
import type { JsonParse } from '../json-input.js';
import { parseJsonInput } from '../json-input.js';

export const PROMPT_VERSION = 'kair.plan-prompt.v1';

export type PlanMode = 'generate' | 'refine';

/** A simulation as the planner sees it: enough to name it in a `simulation` step. */
export interface PromptSimulation {
  id: string;
  title: string;
  examples: string[];
  required_fields: string[];
  status: string;
}

export interface PlanPrompt {
  version: typeof PROMPT_VERSION;
  mode: PlanMode;
  contract_id: string;
  intent: string;
  instructions?: string;
  /** Refine only: what to change, and the plan to change. */
  feedback?: string;
  current_plan?: unknown;
  controls: { required: string[] };
  dpc: { assumptions: string[]; constraints: string[]; decisions: string[]; open_questions: string[] };
  simulations: PromptSimulation[];
  limits: { maxCostUSD: number; maxAgents: number; maxRuntimeSec: number; allowedScopes: string[] };
}

export interface PromptPayload {
  provider: string;
  model: string;
  max_tokens: number;
  messages: { role: 'system' | 'user'; content: string }[];
}

export const SYSTEM_PROMPT = [
  'You plan work for kair, a contract-based execution tool. Answer with exactly one JSON object, a kair.plan.v1 plan, and nothing else.',
  'Shape: {"version":"kair.plan.v1","title":string,"strategy":"INVENTORY"|"INVENTORY_PLUS_OSS"|"OSS"|"CUSTOM","details":{"requiresKimi":boolean,"features":[id]},"scopes":[string],"budget":{"maxCostUSD":number,"maxAgents":int,"maxRuntimeSec":int},"steps":[{"id":id,"summary":string,"details"?:string,"tags"?:[string],"risks"?:[string],"lane"?:"kimi","simulation"?:{"utterance":string,"fields":{string:string},"lang":"en"}}]}.',
  'Rules: version, title and 1 to 200 steps are required; ids match ^[a-z0-9][a-z0-9_-]{0,79}$ and are unique; no other keys; a step has at most one of lane "kimi" or simulation.',
  'Use strategy CUSTOM, details.requiresKimi true and one step with lane "kimi" only when custom logic must be written; scopes only from limits.allowedScopes; budget values not above limits.',
  'Use a simulation step only for a simulation in the request whose status is Active: its utterance is one of that simulation\'s examples and its fields give every required field.',
  'Steps with neither lane nor simulation are done by people. When mode is "refine", return the whole revised plan, changed as the feedback asks.',
].join('\n');

export interface PromptInput {
  mode: PlanMode;
  contractId: string;
  intent: string;
  instructions?: string;
  feedback?: string;
  currentPlan?: unknown;
  required: string[];
  dpc: Dpc;
  simulations: PromptSimulation[];
  caps: KimiCaps;
}

export function buildPrompt(i: PromptInput): PlanPrompt {
  return {
    version: PROMPT_VERSION,
    mode: i.mode,
    contract_id: i.contractId,
    intent: i.intent,
    ...(i.instructions === undefined ? {} : { instructions: i.instructions }),
    ...(i.mode === 'refine' ? { feedback: i.feedback ?? '', current_plan: i.currentPlan } : {}),
    controls: { required: [...i.required].sort() },
    dpc: {
      assumptions: i.dpc.assumptions,
      constraints: i.dpc.constraints,
      decisions: i.dpc.decisions.filter((d) => d.status === 'active').map((d) => d.decision),
      open_questions: i.dpc.open_questions.map((q) => q.question),
    },
    simulations: [...i.simulations]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((s) => ({ id: s.id, title: s.title, examples: s.examples, required_fields: s.required_fields, status: s.status })),
    limits: { maxCostUSD: i.caps.maxCostUSD, maxAgents: i.caps.maxAgents, maxRuntimeSec: i.caps.maxRuntimeSec, allowedScopes: [...i.caps.allowedScopes] },
  };
}

export function promptPayload(prompt: PlanPrompt, provider: string, model: string, maxTokens: number): PromptPayload {
  return {
    provider,
    model,
    max_tokens: maxTokens,
    messages: [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: canonicalJson(prompt) },
    ],
  };
}

export const payloadSha = (p: PromptPayload): string => canonicalHash(p);

/** The prompt document back from a payload (the stub reads it; a replay does too). */
export function promptOf(p: PromptPayload): PlanPrompt {
  return JSON.parse(p.messages[p.messages.length - 1]!.content) as PlanPrompt;
}

/** A token count for providers that report none: ~4 bytes a token, rounded up. */
export const estimateTokens = (text: string): number => Math.ceil(Buffer.byteLength(text) / 4);

/**
 * The JSON object in a model's answer: the whole text, else the body of a ```json fence, else
 * the span from the first `{` to the last `}` (models wrap answers in prose). `ok: false` with
 * the whole text's parse error when none of them parses (the message never quotes the text).
 */
export function extractJson(text: string): JsonParse {
  const candidates = [text.trim()];
  const fence = /```(?:json|JSON)?\s*\n?([\s\S]*?)```/.exec(text);
  if (fence) candidates.push(fence[1]!.trim());
  const first = text.indexOf('{');
  const last = text.lastIndexOf('}');
  if (first !== -1 && last > first) candidates.push(text.slice(first, last + 1));
  for (const c of candidates) {
    if (!c.startsWith('{')) continue;
    const parsed = parseJsonInput(c);
    if (parsed.ok) return parsed;
  }
  const whole = parseJsonInput(text.trim());
  return whole.ok ? { ok: false, message: 'not a JSON object' } : whole;
}
