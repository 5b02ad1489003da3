import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultConfig, validateConfig } from '../../src/domain/config.js';
import { ConfigSchema, ContractSchema, PUBLISHED_SCHEMAS, jsonSchemaOf } from '../../src/domain/schemas.js';

const dir = fileURLToPath(new URL('../../docs/schemas/', import.meta.url));

describe('docs/schemas/*.json are generated from the zod schemas (UPDATE_SCHEMAS=1 regenerates)', () => {
  it.each(Object.keys(PUBLISHED_SCHEMAS))('%s.json has not drifted', (name) => {
    const file = `${dir}${name}.json`;
    const generated = JSON.stringify(jsonSchemaOf(name), null, 2) + '\n';
    if (process.env.UPDATE_SCHEMAS === '1') {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, generated);
    }
    expect(existsSync(file), `${file} is missing: run UPDATE_SCHEMAS=1 npx vitest run test/unit/schemas.test.ts`).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(generated);
  });
});

describe('the hand-written config validator and ConfigSchema agree', () => {
  const base = defaultConfig('ws_x');
  const samples: [string, unknown][] = [
    ['default', base],
    ['unknown top-level key', { ...base, extra: 1 }],
    ['min 0', { ...base, approvals: { ...base.approvals, min: 0 } }],
    ['min 1.5', { ...base, approvals: { ...base.approvals, min: 1.5 } }],
    ['forbid_self as string', { ...base, approvals: { ...base.approvals, forbid_self: 'no' } }],
    ['bad control', { ...base, controls: { registry: ['Local:Read'] } }],
    ['provider other', { ...base, kimi: { ...base.kimi, provider: 'kimi-api' } }],
    ['cost 3 decimals', { ...base, kimi: { ...base.kimi, defaults: { ...base.kimi.defaults, maxCostUSD: 1.234 } } }],
    ['unknown key in defaults', { ...base, kimi: { ...base.kimi, defaults: { ...base.kimi.defaults, x: 1 } } }],
    ['missing approvals', { workspace_id: 'w', controls: base.controls, kimi: base.kimi }],
    ['not an object', []],
  ];
  it.each(samples)('%s', (_name, value) => {
    expect(validateConfig(value).length === 0).toBe(ConfigSchema.safeParse(value).success);
  });
});

describe('a real snapshot satisfies ContractSchema', () => {
  it('parses the fold of a proposed contract', () => {
    const snap = {
      id: 'c1', intent: 'x', state: 'DRAFT', version: 1, versions: [{ version: 1, plan_sha256: null, created_at: 't' }],
      plan_sha256: null, controls: { required: [], granted: [] }, approvals: [], runs: [], created_at: 't', updated_at: 't',
      history_seq: 1, history_head: 'a'.repeat(64),
    };
    expect(ContractSchema.safeParse(snap).success).toBe(true);
    expect(ContractSchema.safeParse({ ...snap, extra: 1 }).success).toBe(false);
  });
});
