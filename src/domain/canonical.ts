import type { createHash as CreateHash } from 'node:crypto';

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
let createHash: typeof CreateHash | undefined;

export function sha256Hex(data: string | Uint8Array): string {
  createHash ??= process.getBuiltinModule('node:crypto').createHash;
  return createHash('sha256').update(data).digest('hex');
}

export function canonicalHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

export const GENESIS_HASH = '0'.repeat(64);
