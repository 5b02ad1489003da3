/** kair.dpc.v1: decision state, changed only by additions that are also history events. */

export interface Dpc {
  version: 'kair.dpc.v1';
  topic: string;
  assumptions: string[];
  constraints: string[];
  decisions: { id: string; decision: string; status: 'active' | 'superseded'; rationale?: string }[];
  open_questions: { id: string; question: string; impact?: string }[];
  evidence: { id: string; kind: 'prompt' | 'plan' | 'diff' | 'file' | 'url' | 'run'; ref: string; note?: string }[];
  updated_at: string;
  parent_dpc_id?: string;
}

export interface DpcAddition {
  assumptions?: string[];
  constraints?: string[];
  decisions?: { decision: string; rationale?: string; supersedes_active?: boolean }[];
  open_questions?: { question: string; impact?: string }[];
  evidence?: { kind: Dpc['evidence'][number]['kind']; ref: string; note?: string }[];
}

export function newDpc(topic: string, at: string): Dpc {
  return { version: 'kair.dpc.v1', topic: redactSecrets(topic), assumptions: [], constraints: [], decisions: [], open_questions: [], evidence: [], updated_at: at };
}

const SECRET_PATTERNS: RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\bgh[pousr]_[A-Za-z0-9]{20,}\b/g,
  /\bgithub_pat_[A-Za-z0-9_]{20,}\b/g,
  /\bsk-[A-Za-z0-9_-]{20,}\b/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}\b/g,
  /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b/g,
  /\b(Bearer)\s+[A-Za-z0-9._~+/-]{16,}=*/gi,
  // key = value forms, also inside longer names (DB_PASSWORD, GITHUB_TOKEN, client_secret) and JSON.
  /(\b[\w-]*(?:api[_-]?key|token|secret|password|passwd|authorization)["']?\s*[:=]\s*["']?(?:bearer\s+)?)[^\s"',;}&]{6,}/gi,
];

/**
 * Every pattern above needs one of these words, in some case. Testing for them first means the
 * usual text, with none of them, never runs the nine patterns: compiling them (the case-
 * insensitive ones above all) cost ~1 ms of every command that writes the DPC.
 */
const SECRET_MARKERS = /-----begin |gh[pousr]_|github_pat_|sk-|akia|xox[abprs]-|eyj|bearer|api[_-]?key|token|secret|passw(?:or)?d|authorization/;

/** Replaces common token shapes with [REDACTED] before anything reaches the DPC. */
export function redactSecrets(text: string): string {
  return SECRET_MARKERS.test(text.toLowerCase()) ? redactPatterns(text) : text;
}

/** The patterns alone, without the marker test (exported for the test that compares both). */
export function redactPatterns(text: string): string {
  let out = text;
  for (const re of SECRET_PATTERNS) {
    out = out.replace(re, (_m, prefix?: string) =>
      typeof prefix !== 'string' ? '[REDACTED]' : /^bearer$/i.test(prefix) ? `${prefix} [REDACTED]` : `${prefix}[REDACTED]`,
    );
  }
  return out;
}

function redactDeep<T>(v: T): T {
  if (typeof v === 'string') return redactSecrets(v) as T;
  if (Array.isArray(v)) return v.map(redactDeep) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeep(x)])) as T;
  return v;
}

/**
 * Resolves an addition against the current DPC: assigns ids, redacts secrets. The result is
 * what the `dpc` history event records and what `applyDpc` folds in.
 */
export function resolveAddition(dpc: Dpc, add: DpcAddition): Partial<Pick<Dpc, 'assumptions' | 'constraints' | 'decisions' | 'open_questions' | 'evidence'>> & { superseded?: string[] } {
  const a = redactDeep(add);
  const out: ReturnType<typeof resolveAddition> = {};
  if (a.assumptions?.length) out.assumptions = a.assumptions;
  if (a.constraints?.length) out.constraints = a.constraints;
  if (a.decisions?.length) {
    out.decisions = a.decisions.map((d, i) => ({
      id: `d${dpc.decisions.length + i + 1}`,
      decision: d.decision,
      status: 'active' as const,
      ...(d.rationale ? { rationale: d.rationale } : {}),
    }));
    if (a.decisions.some((d) => d.supersedes_active)) {
      out.superseded = dpc.decisions.filter((d) => d.status === 'active').map((d) => d.id);
    }
  }
  if (a.open_questions?.length) {
    out.open_questions = a.open_questions.map((q, i) => ({ id: `q${dpc.open_questions.length + i + 1}`, question: q.question, ...(q.impact ? { impact: q.impact } : {}) }));
  }
  if (a.evidence?.length) {
    out.evidence = a.evidence.map((e, i) => ({ id: `e${dpc.evidence.length + i + 1}`, kind: e.kind, ref: e.ref, ...(e.note ? { note: e.note } : {}) }));
  }
  return out;
}

export function applyDpc(dpc: Dpc, added: ReturnType<typeof resolveAddition>, at: string): Dpc {
  const superseded = new Set(added.superseded ?? []);
  return {
    ...dpc,
    assumptions: [...dpc.assumptions, ...(added.assumptions ?? [])],
    constraints: [...dpc.constraints, ...(added.constraints ?? [])],
    decisions: [...dpc.decisions.map((d) => (superseded.has(d.id) ? { ...d, status: 'superseded' as const } : d)), ...(added.decisions ?? [])],
    open_questions: [...dpc.open_questions, ...(added.open_questions ?? [])],
    evidence: [...dpc.evidence, ...(added.evidence ?? [])],
    updated_at: at,
  };
}

/**
 * The DPC folded from history: `propose` creates it, each `dpc` event applies what it added (at
 * the time it recorded). Yields every state it has had, oldest first, so a file on disk can be
 * told apart as current, behind (an earlier state) or foreign.
 */
export function foldDpcStates(events: Iterable<{ type: string; at: string; data: Record<string, unknown> }>): Dpc[] {
  const states: Dpc[] = [];
  let dpc: Dpc | null = null;
  for (const e of events) {
    if (e.type === 'propose') dpc = newDpc(e.data.intent as string, e.at);
    else if (e.type === 'dpc' && dpc) dpc = applyDpc(dpc, e.data.added as ReturnType<typeof resolveAddition>, typeof e.data.at === 'string' ? e.data.at : e.at);
    else continue;
    states.push(dpc);
  }
  return states;
}
