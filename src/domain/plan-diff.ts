/**
 * The step-aware difference between two plans (`kair diff`). Pure: the app layer finds and
 * checks the plans. Steps are matched by id, so a renamed summary is a change of that step and
 * not a removal plus an addition; every other key is compared as a JSON path.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One difference at a JSON path. `op` says which side is absent (JSON has no `undefined`). */
export interface PathChange {
  path: string;
  op: 'add' | 'remove' | 'replace';
  from: Json;
  to: Json;
}

export interface StepChange extends PathChange {
  id: string;
}

export interface PlanDiff {
  identical: boolean;
  steps: {
    added: { id: string; index: number; step: Json }[];
    removed: { id: string; index: number; step: Json }[];
    /** Steps whose order relative to the other kept steps changed (from/to: 0-based positions). */
    moved: { id: string; from: number; to: number }[];
    changed: StepChange[];
  };
  other: PathChange[];
}

type Obj = { [key: string]: Json };

const isObject = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `a.b`, `a["odd key"]`: a key that is not an identifier is quoted, so a path is never ambiguous. */
function join(base: string, key: string): string {
  if (IDENT.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

function equal(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as Json[];
    return a.length === bb.length && a.every((v, i) => equal(v, bb[i]));
  }
  const ao = a as Obj;
  const bo = b as Obj;
  const ak = Object.keys(ao);
  return ak.length === Object.keys(bo).length && ak.every((k) => Object.hasOwn(bo, k) && equal(ao[k], bo[k]));
}

/**
 * Objects are compared key by key (keys in sorted order, so the output does not depend on how a
 * file was formatted); arrays and scalars as whole values: a list of scopes or risks is read as
 * one thing, and an index-by-index diff of a list with one insertion would report every element.
 */
function diffValues(from: Json | undefined, to: Json | undefined, path: string, out: PathChange[], skip?: string): void {
  if (equal(from, to)) return;
  if (isObject(from) && isObject(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    for (const k of keys) {
      if (path === '' && k === skip) continue;
      diffValues(Object.hasOwn(from, k) ? from[k] : undefined, Object.hasOwn(to, k) ? to[k] : undefined, join(path, k), out);
    }
    return;
  }
  out.push({ path, op: from === undefined ? 'add' : to === undefined ? 'remove' : 'replace', from: from ?? null, to: to ?? null });
}

/** Indexes (into `seq`) of a longest increasing subsequence: the kept steps that did not move. */
function longestIncreasing(seq: number[]): Set<number> {
  const tails: number[] = [];
  const prev = new Array<number>(seq.length).fill(-1);
  for (let i = 0; i < seq.length; i++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seq[tails[mid]!]! < seq[i]!) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1]!;
    tails[lo] = i;
  }
  const keep = new Set<number>();
  for (let i = tails.length ? tails[tails.length - 1]! : -1; i !== -1; i = prev[i]!) keep.add(i);
  return keep;
}

function stepsOf(plan: Obj | null): { id: string; step: Json }[] {
  const steps = plan?.steps;
  if (!Array.isArray(steps)) return [];
  return steps.map((s, i) => ({ id: isObject(s) && typeof s.id === 'string' ? s.id : `#${i}`, step: s }));
}

/**
 * `from` null is "no plan before": every step is added. Plans reaching here are validated, so
 * step ids are unique; a step without one is keyed by its position (`#3`) rather than dropped.
 */
export function diffPlans(from: Json | null, to: Json): PlanDiff {
  const a = isObject(from) ? from : null;
  const b = isObject(to) ? to : null;
  const fromSteps = stepsOf(a);
  const toSteps = stepsOf(b);
  const fromIndex = new Map(fromSteps.map((s, i) => [s.id, i]));
  const toIndex = new Map(toSteps.map((s, i) => [s.id, i]));

  const added = toSteps.flatMap((s, i) => (fromIndex.has(s.id) ? [] : [{ id: s.id, index: i, step: s.step }]));
  const removed = fromSteps.flatMap((s, i) => (toIndex.has(s.id) ? [] : [{ id: s.id, index: i, step: s.step }]));

  // Kept steps in their new order, by their old positions: those outside a longest increasing run
  // moved. An insertion or removal shifts positions but moves nothing.
  const kept = toSteps.filter((s) => fromIndex.has(s.id));
  const oldPositions = kept.map((s) => fromIndex.get(s.id)!);
  const still = longestIncreasing(oldPositions);
  const moved = kept.flatMap((s, k) => (still.has(k) ? [] : [{ id: s.id, from: fromIndex.get(s.id)!, to: toIndex.get(s.id)! }]));

  const changed: StepChange[] = [];
  for (const s of kept) {
    const before = fromSteps[fromIndex.get(s.id)!]!.step;
    const found: PathChange[] = [];
    diffValues(before, s.step, '', found);
    for (const f of found) changed.push({ id: s.id, ...f, path: f.path || '(step)' });
  }

  const other: PathChange[] = [];
  diffValues(a ?? {}, b ?? {}, '', other, 'steps');
  other.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));

  const identical = added.length + removed.length + moved.length + changed.length + other.length === 0;
  return { identical, steps: { added, removed, moved, changed }, other };
}
