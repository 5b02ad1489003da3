import { kairError } from './errors.js';

export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,79}$/;
export const CONTROL_PATTERN = /^[a-z0-9_-]+:[a-z0-9_-]+$/;

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

export function assertId(id: string, what = 'id'): string {
  if (!ID_PATTERN.test(id)) {
    throw kairError('INVALID_ID', `invalid ${what} ${JSON.stringify(id)}: must match ${ID_PATTERN.source}`, {
      [what]: id,
      pattern: ID_PATTERN.source,
    });
  }
  return id;
}

/** A slug for `propose` without --id: lowercase words joined by '-', trimmed to fit the id rule. */
export function slugify(intent: string): string {
  const words = intent
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  let slug = '';
  for (const w of words) {
    const next = slug ? `${slug}-${w}` : w;
    if (next.length > 48) break;
    slug = next;
  }
  return slug || 'contract';
}

/** First of slug, slug-2, slug-3, … that `taken` does not hold. */
export function uniqueSlug(base: string, taken: (id: string) => boolean): string {
  if (!taken(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}-${n}`;
    if (!taken(candidate)) return candidate;
  }
}
