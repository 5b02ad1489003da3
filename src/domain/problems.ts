/** Validation problems with JSON paths, shared by every strict document kair reads (plan, simulation). */
import type * as z from 'zod';
import type { Problem } from './config.js';

/** `steps[1].id` style paths, indexing from 0. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

/** A zod error as problems; an unknown key is reported at its own path, not at its parent. */
export function zodProblems(error: z.ZodError | undefined): Problem[] {
  const problems: Problem[] = [];
  for (const issue of error?.issues ?? []) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: formatPath([...issue.path, key]), message: 'unknown key' });
    } else {
      problems.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return problems;
}

export function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
