import type { hash as Hash } from 'node:crypto';

/**
 * Canonical JSON (RFC 8785 / JCS for the values kair writes): object keys sorted by UTF-16
 * code units, recursively, no whitespace, `undefined` members dropped like JSON.stringify.
 * ES number serialisation is what JCS specifies, so JSON.stringify is used for leaves.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new TypeError('canonicalJson: non-finite number');
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return '[' + value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',') + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k])).join(',') + '}';
}

// node:crypto is loaded at the first hash, not when a module imports this one: its first use
// starts OpenSSL (~13M instructions), which a read such as `status` never needs (decision 029).
// Its one-shot hash gives the same digest as createHash().update().digest() without a Hash
// object per call (verify hashes one string per history line, decision 030).
let hash: typeof Hash | undefined;

export function sha256Hex(data: string | Uint8Array): string {
  hash ??= process.getBuiltinModule('node:crypto').hash;
  return hash('sha256', data, 'hex');
}

export function canonicalHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

export const GENESIS_HASH = '0'.repeat(64);

/**
 * True when every object in `value` lists its keys in canonical (sorted) order and every number
 * is finite: for a value that came from JSON.parse, JSON.stringify(value) is then exactly
 * canonicalJson(value). (JSON.parse yields no undefined, functions or toJSON objects, and leaves
 * are serialised by JSON.stringify in both.) Only meant for parsed values.
 */
export function inCanonicalOrder(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return typeof value !== 'number' || Number.isFinite(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!inCanonicalOrder(value[i])) return false;
    return true;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
    if (!inCanonicalOrder(obj[keys[i]!])) return false;
  }
  return true;
}

/**
 * canonicalJson of a value from JSON.parse (verify re-derives it for every history line): each
 * subtree already in canonical order is serialised by one native JSON.stringify instead of key
 * by key; the rest is sorted as canonicalJson sorts it. A non-finite number (JSON.parse makes
 * Infinity of 1e999) goes to canonicalJson, which throws as it always did.
 */
export function canonicalJsonOfParsed(value: unknown): string {
  if (typeof value !== 'object' || value === null) return canonicalJson(value);
  if (inCanonicalOrder(value)) return JSON.stringify(value);
  if (Array.isArray(value)) {
    let s = '[';
    for (let i = 0; i < value.length; i++) s += (i ? ',' : '') + canonicalJsonOfParsed(value[i]);
    return s + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let s = '{';
  for (let i = 0; i < keys.length; i++) s += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + canonicalJsonOfParsed(obj[keys[i]!]);
  return s + '}';
}

