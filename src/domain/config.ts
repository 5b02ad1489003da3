/**
 * Workspace config (.kair/config.json). Validated by hand rather than with zod because every
 * command, including the read paths whose start-up we keep cheap, re-reads it.
 */
import { CONTROL_PATTERN } from './ids.js';

export interface KimiCaps {
  maxCostUSD: number;
  maxAgents: number;
  maxRuntimeSec: number;
  allowedScopes: string[];
}

export interface Config {
  workspace_id: string;
  controls: { registry: string[] };
  approvals: { min: number; forbid_self: boolean };
  kimi: { provider: 'stub'; defaults: KimiCaps; max_cost_usd_per_contract: number };
  /** Optional; `init` does not write it. */
  limits?: { max_input_bytes?: number };
}

export const DEFAULT_REGISTRY = [
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
];

export function defaultConfig(workspaceId: string): Config {
  return {
    workspace_id: workspaceId,
    controls: { registry: [...DEFAULT_REGISTRY] },
    approvals: { min: 1, forbid_self: false },
    kimi: {
      provider: 'stub',
      defaults: { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600, allowedScopes: ['custom_logic', 'integration_glue'] },
      max_cost_usd_per_contract: 100,
    },
  };
}

export interface Problem {
  path: string;
  message: string;
}

type Check = (v: unknown, path: string, out: Problem[]) => void;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function object(shape: Record<string, Check>, optional: readonly string[] = []): Check {
  return (v, path, out) => {
    if (!isObj(v)) return void out.push({ path: path || '(root)', message: 'expected an object' });
    for (const key of Object.keys(v)) {
      if (!Object.hasOwn(shape, key)) out.push({ path: join(path, key), message: 'unknown key' });
    }
    for (const [key, check] of Object.entries(shape)) {
      if (!Object.hasOwn(v, key)) {
        if (!optional.includes(key)) out.push({ path: join(path, key), message: 'required' });
      }
      else check(v[key], join(path, key), out);
    }
  };
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

const str: Check = (v, path, out) => {
  if (typeof v !== 'string' || v.length === 0) out.push({ path, message: 'expected a non-empty string' });
};
const bool: Check = (v, path, out) => {
  if (typeof v !== 'boolean') out.push({ path, message: 'expected true or false' });
};
const posInt: Check = (v, path, out) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) out.push({ path, message: 'expected a positive integer' });
};
const money: Check = (v, path, out) => {
  if (typeof v !== 'number' || !(v > 0) || !isCents(v)) {
    out.push({ path, message: 'expected a positive amount with at most 2 decimals' });
  }
};
const literal =
  (value: string): Check =>
  (v, path, out) => {
    if (v !== value) out.push({ path, message: `expected ${JSON.stringify(value)}` });
  };
const array =
  (item: Check): Check =>
  (v, path, out) => {
    if (!Array.isArray(v)) return void out.push({ path, message: 'expected an array' });
    v.forEach((x, i) => item(x, `${path}[${i}]`, out));
  };
const control: Check = (v, path, out) => {
  if (typeof v !== 'string' || !CONTROL_PATTERN.test(v)) out.push({ path, message: 'expected <namespace>:<permission>' });
};

export function isCents(v: number): boolean {
  return Math.abs(Math.round(v * 100) - v * 100) < 1e-6;
}

const configCheck = object({
  workspace_id: str,
  controls: object({ registry: array(control) }),
  approvals: object({ min: posInt, forbid_self: bool }),
  kimi: object({
    provider: literal('stub'),
    defaults: object({ maxCostUSD: money, maxAgents: posInt, maxRuntimeSec: posInt, allowedScopes: array(str) }),
    max_cost_usd_per_contract: money,
  }),
  limits: object({ max_input_bytes: posInt }, ['max_input_bytes']),
}, ['limits']);

export function validateConfig(value: unknown): Problem[] {
  const out: Problem[] = [];
  configCheck(value, '', out);
  return out;
}
