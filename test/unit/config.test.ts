import { describe, it, expect } from 'vitest';
import { DEFAULT_REGISTRY, defaultConfig, initConfig, isCents, resolveConfig, validateConfig } from '../../src/domain/config.js';

type Json = Record<string, unknown>;
/** A fresh, plain-JSON default config to mutate. */
const cfg = (): Json => JSON.parse(JSON.stringify(defaultConfig('ws-1'))) as Json;
const at = (o: Json, ...keys: string[]): Json => keys.reduce((x, k) => x[k] as Json, o);

function paths(value: unknown): string[] {
  return validateConfig(value).map((p) => p.path);
}

describe('initConfig', () => {
  it('is exactly the v1 document (later keys are left to their defaults)', () => {
    expect(initConfig('abc')).toEqual({
      workspace_id: 'abc',
      controls: {
        registry: [
          'cloudflare:read',
          'cloudflare:write',
          'github:read',
          'github:write',
          'schwab:read',
          'local:read',
          'local:write',
          'local:exec',
          'network:read',
          'network:write',
        ],
      },
      approvals: { min: 1, forbid_self: false },
      kimi: {
        provider: 'stub',
        defaults: { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600, allowedScopes: ['custom_logic', 'integration_glue'] },
        max_cost_usd_per_contract: 100,
      },
    });
  });

  it('resolves to defaultConfig', () => {
    expect(resolveConfig(initConfig('abc'))).toEqual(defaultConfig('abc'));
  });

  it('is valid, also after a JSON round trip', () => {
    expect(validateConfig(defaultConfig('ws'))).toEqual([]);
    expect(validateConfig(cfg())).toEqual([]);
  });

  it('returns a fresh registry each time', () => {
    const a = defaultConfig('a');
    a.controls.registry.push('x:y');
    expect(defaultConfig('b').controls.registry).toEqual(DEFAULT_REGISTRY);
  });
});

describe('validateConfig: unknown keys, with their dotted path', () => {
  const levels: Array<[string[], string]> = [
    [[], 'extra'],
    [['controls'], 'controls.extra'],
    [['approvals'], 'approvals.extra'],
    [['kimi'], 'kimi.extra'],
    [['kimi', 'defaults'], 'kimi.defaults.extra'],
  ];
  it.each(levels)('at %j → %s', (where, path) => {
    const c = cfg();
    at(c, ...where).extra = 1;
    const problems = validateConfig(c);
    expect(problems.map((p) => p.path)).toEqual([path]);
    expect(problems[0].message).toMatch(/unknown/i);
  });

  // Was a bug (fixed): src/domain/config.ts object() tests `key in shape`, which also sees inherited
  // Object.prototype members, so an unknown key named "toString", "constructor", "__proto__",
  // "hasOwnProperty", … is silently accepted (validateConfig returns []), although SPEC §2/§14
  // say unknown config keys are rejected. Fix: Object.hasOwn(shape, key).
  it.each([
    [[], 'toString', 'toString'],
    [[], 'constructor', 'constructor'],
    [['approvals'], 'hasOwnProperty', 'approvals.hasOwnProperty'],
    [['kimi', 'defaults'], 'valueOf', 'kimi.defaults.valueOf'],
  ])('unknown key at %j named like an Object.prototype member (%s) is reported', (where, key, path) => {
    const c = cfg();
    at(c, ...(where as string[]))[key as string] = 1;
    expect(paths(c)).toEqual([path]);
  });

  // Was a bug (fixed): same cause; JSON.parse makes "__proto__" an own key, which is then accepted.
  it('unknown "__proto__" key from JSON.parse is reported', () => {
    const text = JSON.stringify(cfg()).replace(/^\{/, '{"__proto__":{"x":1},');
    expect(paths(JSON.parse(text))).toEqual(['__proto__']);
  });
});

describe('validateConfig: missing keys', () => {
  it('workspace_id is the one required key', () => {
    const c = cfg();
    delete c.workspace_id;
    expect(paths(c)).toEqual(['workspace_id']);
  });

  const omitted: Array<[string[], string, (c: ReturnType<typeof defaultConfig>) => unknown, unknown]> = [
    [[], 'controls', (c) => c.controls.registry, DEFAULT_REGISTRY],
    [['approvals'], 'min', (c) => c.approvals.min, 1],
    [['approvals'], 'forbid_self', (c) => c.approvals.forbid_self, false],
    [['kimi'], 'provider', (c) => c.kimi.provider, 'stub'],
    [['kimi'], 'max_cost_usd_per_contract', (c) => c.kimi.max_cost_usd_per_contract, 100],
    [['kimi', 'defaults'], 'allowedScopes', (c) => c.kimi.defaults.allowedScopes, ['custom_logic', 'integration_glue']],
  ];
  it.each(omitted)('omitted %j.%s is valid and takes its default', (where, key, get, value) => {
    const c = cfg();
    delete at(c, ...where)[key];
    expect(paths(c)).toEqual([]);
    expect(get(resolveConfig(c))).toEqual(value);
  });

  it('one key overridden alone keeps the others', () => {
    const r = resolveConfig({ workspace_id: 'w', approvals: { min: 2 } });
    expect(r.approvals).toEqual({ min: 2, forbid_self: false, require_signed: false, allowed_signers_file: '.kair/allowed_signers' });
    expect(r.run.allowed_actors).toEqual(['*']);
    expect(r.slo.dispatch_p95_ms).toBe(1200);
  });

  it('$schema is allowed at the top and dropped', () => {
    const c = { ...cfg(), $schema: '../docs/schemas/config.schema.json' };
    expect(paths(c)).toEqual([]);
    expect('$schema' in resolveConfig(c)).toBe(false);
  });
});

describe('validateConfig: wrong types and values', () => {
  const cases: Array<[string, string[], string, unknown, string]> = [
    ['workspace_id number', [], 'workspace_id', 5, 'workspace_id'],
    ['workspace_id empty', [], 'workspace_id', '', 'workspace_id'],
    ['controls not an object', [], 'controls', [], 'controls'],
    ['controls null', [], 'controls', null, 'controls'],
    ['registry not an array', ['controls'], 'registry', 'local:read', 'controls.registry'],
    ['approvals.min 0', ['approvals'], 'min', 0, 'approvals.min'],
    ['approvals.min -1', ['approvals'], 'min', -1, 'approvals.min'],
    ['approvals.min 1.5', ['approvals'], 'min', 1.5, 'approvals.min'],
    ['approvals.min "1"', ['approvals'], 'min', '1', 'approvals.min'],
    ['forbid_self "false"', ['approvals'], 'forbid_self', 'false', 'approvals.forbid_self'],
    ['forbid_self 0', ['approvals'], 'forbid_self', 0, 'approvals.forbid_self'],
    ['provider other than stub', ['kimi'], 'provider', 'openai', 'kimi.provider'],
    ['maxCostUSD 0', ['kimi', 'defaults'], 'maxCostUSD', 0, 'kimi.defaults.maxCostUSD'],
    ['maxCostUSD 3 decimals', ['kimi', 'defaults'], 'maxCostUSD', 1.234, 'kimi.defaults.maxCostUSD'],
    ['maxCostUSD string', ['kimi', 'defaults'], 'maxCostUSD', '25', 'kimi.defaults.maxCostUSD'],
    ['maxAgents 0', ['kimi', 'defaults'], 'maxAgents', 0, 'kimi.defaults.maxAgents'],
    ['maxAgents 2.5', ['kimi', 'defaults'], 'maxAgents', 2.5, 'kimi.defaults.maxAgents'],
    ['maxRuntimeSec -5', ['kimi', 'defaults'], 'maxRuntimeSec', -5, 'kimi.defaults.maxRuntimeSec'],
    ['allowedScopes not an array', ['kimi', 'defaults'], 'allowedScopes', 'custom_logic', 'kimi.defaults.allowedScopes'],
    ['allowedScopes with an empty string', ['kimi', 'defaults'], 'allowedScopes', ['custom_logic', ''], 'kimi.defaults.allowedScopes[1]'],
    ['max_cost_usd_per_contract negative', ['kimi'], 'max_cost_usd_per_contract', -1, 'kimi.max_cost_usd_per_contract'],
    ['max_cost_usd_per_contract null', ['kimi'], 'max_cost_usd_per_contract', null, 'kimi.max_cost_usd_per_contract'],
  ];
  it.each(cases)('%s', (_n, where, key, value, path) => {
    const c = cfg();
    at(c, ...where)[key] = value;
    const problems = validateConfig(c);
    expect(problems.map((p) => p.path)).toEqual([path]);
    expect(problems[0].message.length).toBeGreaterThan(0);
  });

  it('values that are fine: min 3, forbid_self true, cents, empty registry', () => {
    const c = cfg();
    at(c, 'approvals').min = 3;
    at(c, 'approvals').forbid_self = true;
    at(c, 'kimi', 'defaults').maxCostUSD = 0.05;
    at(c, 'kimi').max_cost_usd_per_contract = 99.99;
    at(c, 'controls').registry = [];
    expect(validateConfig(c)).toEqual([]);
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'config'],
  ])('a root that is %s → (root)', (_n, value) => {
    expect(paths(value)).toEqual(['(root)']);
  });

  it('several problems at once are all reported', () => {
    const c = cfg();
    c.extra = 1;
    at(c, 'approvals').min = 0;
    at(c, 'kimi').provider = 'x';
    at(c, 'controls').registry = ['local:read', 'BAD'];
    expect(paths(c).sort()).toEqual(['approvals.min', 'controls.registry[1]', 'extra', 'kimi.provider']);
  });
});

describe('validateConfig: registry entries', () => {
  const bad = ['Cloudflare:read', 'cloudflare', 'a:b:c', 'local:', ':read', 'local:re ad', 'local.read', 7, null];
  it.each(bad)('registry entry %j → controls.registry[1]', (entry) => {
    const c = cfg();
    at(c, 'controls').registry = ['local:read', entry, 'local:write'];
    expect(paths(c)).toEqual(['controls.registry[1]']);
  });

  it('custom well-formed entries are fine', () => {
    const c = cfg();
    at(c, 'controls').registry = ['aws:s3_write', 'my-ns:do-it', '0:1'];
    expect(validateConfig(c)).toEqual([]);
  });
});

describe('isCents', () => {
  it.each([
    [25, true],
    [0.29, true],
    [12.34, true],
    [0.1 + 0.2, true],
    [1.234, false],
    [0.001, false],
    [99.999, false],
  ])('%d → %s', (v, want) => {
    expect(isCents(v)).toBe(want);
  });
});

describe('the backend block', () => {
  const withBackend = (b: unknown): Json => ({ ...cfg(), backend: b });
  const problems = (b: unknown) => validateConfig(withBackend(b));

  it('is local, with KAIR_DATABASE_URL and schema kair, when absent', () => {
    const c = resolveConfig({ workspace_id: 'w' });
    expect(c.backend).toEqual({ kind: 'local', url_env: 'KAIR_DATABASE_URL', schema: 'kair' });
  });

  it('accepts what `init --backend postgres` is to write, and fills omitted keys', () => {
    const b = { kind: 'postgres', url_env: 'KAIR_DATABASE_URL', schema: 'kair' };
    expect(problems(b)).toEqual([]);
    expect(resolveConfig({ workspace_id: 'w', backend: { kind: 'postgres' } }).backend).toEqual(b);
    expect(problems({ kind: 'postgres', url_env: 'TEAM_PG', schema: 'team_a' })).toEqual([]);
  });

  it.each([
    ['a URL under its own key', { kind: 'postgres', url: 'postgres://kair:s3cret@db.example:5432/kair' }, 'backend.url'],
    ['a URL as url_env', { kind: 'postgres', url_env: 'postgresql://kair:s3cret@db/kair' }, 'backend.url_env'],
    ['credentials as url_env', { url_env: 'kair:s3cret@db' }, 'backend.url_env'],
    ['a URL as schema', { schema: 'postgres://kair:s3cret@db/kair' }, 'backend.schema'],
  ])('%s is CONFIG_INVALID naming the path, saying the URL is never stored, never echoing it', (_name, b, path) => {
    const got = problems(b);
    expect(got.map((p) => p.path)).toEqual([path]);
    expect(got[0]!.message).toMatch(/never stored in the config/);
    expect(JSON.stringify(got)).not.toContain('s3cret');
  });

  it.each([
    [{ kind: 'mysql' }, 'backend.kind'],
    [{ kind: 'postgres', url_env: '1BAD' }, 'backend.url_env'],
    [{ schema: 'Kair-Team' }, 'backend.schema'],
    [{ schema: 'x'.repeat(64) }, 'backend.schema'],
    [{ kind: 'local', extra: 1 }, 'backend.extra'],
    ['postgres', 'backend'],
  ])('%j → %s', (b, path) => {
    expect(problems(b).map((p) => p.path)).toEqual([path]);
  });
});
