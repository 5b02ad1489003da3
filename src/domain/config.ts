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

export interface SloConfig {
  dispatch_p95_ms: number;
  dispatch_p99_ms: number;
  error_rate: number;
  duplicate_side_effects: number;
}

/**
 * The config every command sees: the file with every omitted key filled from its default
 * (`resolveConfig`). Only `workspace_id` is required in the file; `init` writes the v1 keys.
 */
export interface Config {
  workspace_id: string;
  controls: { registry: string[] };
  approvals: { min: number; forbid_self: boolean; require_signed: boolean; allowed_signers_file: string };
  kimi: { provider: 'stub'; defaults: KimiCaps; max_cost_usd_per_contract: number };
  run: { allowed_actors: string[] };
  policy: { admins: string[] };
  slo: SloConfig;
  planner: PlannerConfig;
  backend: BackendConfig;
  /** Optional; `init` does not write it. */
  limits?: { max_input_bytes?: number };
}

/**
 * Where `kair plan --generate/--refine` gets its plan. The API key is never in the config: only
 * the name of the environment variable that holds it (`api_key_env`).
 */
export interface PlannerConfig {
  provider: PlannerProvider;
  base_url?: string;
  model?: string;
  api_key_env: string;
  max_tokens: number;
  timeout_ms: number;
}

/**
 * Where the workspace keeps its contracts and execution records. The database URL is never in
 * the config (it is committable): only the name of the variable that holds it (`url_env`).
 */
export interface BackendConfig {
  kind: BackendKind;
  url_env: string;
  schema: string;
}

export const BACKEND_KINDS = ['local', 'postgres'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

export const DEFAULT_BACKEND: BackendConfig = { kind: 'local', url_env: 'KAIR_DATABASE_URL', schema: 'kair' };

export const PLANNER_PROVIDERS = ['stub', 'openai-compatible'] as const;
export type PlannerProvider = (typeof PLANNER_PROVIDERS)[number];

export const DEFAULT_PLANNER: PlannerConfig = { provider: 'stub', api_key_env: 'KAIR_PLANNER_API_KEY', max_tokens: 4096, timeout_ms: 60_000 };

export const DEFAULT_SLO: SloConfig = { dispatch_p95_ms: 1200, dispatch_p99_ms: 2500, error_rate: 0.005, duplicate_side_effects: 0 };

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

/** The full config with every default (what a file holding only `workspace_id` resolves to). */
export function defaultConfig(workspaceId: string): Config {
  return { workspace_id: workspaceId, ...configDefaults() };
}

/** What `init` writes: the v1 keys only (later keys take their defaults when omitted). */
export function initConfig(workspaceId: string): Record<string, unknown> {
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

/** Every key's default (workspace_id has none). */
export function configDefaults(): Omit<Config, 'workspace_id'> {
  return {
    controls: { registry: [...DEFAULT_REGISTRY] },
    approvals: { min: 1, forbid_self: false, require_signed: false, allowed_signers_file: '.kair/allowed_signers' },
    kimi: {
      provider: 'stub',
      defaults: { maxCostUSD: 25, maxAgents: 5, maxRuntimeSec: 600, allowedScopes: ['custom_logic', 'integration_glue'] },
      max_cost_usd_per_contract: 100,
    },
    run: { allowed_actors: ['*'] },
    policy: { admins: ['*'] },
    slo: { ...DEFAULT_SLO },
    planner: { ...DEFAULT_PLANNER },
    backend: { ...DEFAULT_BACKEND },
  };
}

/**
 * The validated file with omitted keys filled from the defaults, object by object (arrays and
 * scalars in the file replace the default whole). `$schema` is dropped.
 */
export function resolveConfig(file: Record<string, unknown>): Config {
  const merged = mergeDefaults(configDefaults() as unknown as Record<string, unknown>, file);
  delete merged.$schema;
  return merged as unknown as Config;
}

function mergeDefaults(defaults: Record<string, unknown>, given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(given)) {
    const d = defaults[key];
    out[key] = isObj(d) && isObj(value) ? mergeDefaults(d, value) : value;
  }
  return out;
}

export interface Problem {
  path: string;
  message: string;
}

type Check = (v: unknown, path: string, out: Problem[]) => void;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keys of `shape` may be omitted (defaults fill them) unless listed in `required`. */
function object(shape: Record<string, Check>, required: readonly string[] = []): Check {
  return (v, path, out) => {
    if (!isObj(v)) return void out.push({ path: path || '(root)', message: 'expected an object' });
    for (const key of Object.keys(v)) {
      if (!Object.hasOwn(shape, key) && !(path === '' && key === '$schema')) out.push({ path: join(path, key), message: 'unknown key' });
    }
    for (const [key, check] of Object.entries(shape)) {
      if (!Object.hasOwn(v, key)) {
        if (required.includes(key)) out.push({ path: join(path, key), message: 'required' });
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

const nonNegative: Check = (v, path, out) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) out.push({ path, message: 'expected a number >= 0' });
};
const fraction: Check = (v, path, out) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) out.push({ path, message: 'expected a number between 0 and 1' });
};
const nonNegInt: Check = (v, path, out) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) out.push({ path, message: 'expected an integer >= 0' });
};
// `@…` entries are groups; a misspelt one (`@approver`) would silently match nobody.
const runActor: Check = (v, path, out) => {
  str(v, path, out);
  if (typeof v === 'string' && v.startsWith('@') && v !== '@proposer' && v !== '@approvers') out.push({ path, message: 'expected a name, "*", "@proposer" or "@approvers"' });
};
const adminName: Check = (v, path, out) => {
  str(v, path, out);
  if (typeof v === 'string' && v.startsWith('@')) out.push({ path, message: 'expected a name or "*" (groups such as "@proposer" mean nothing here)' });
};
const schemaKey: Check = (v, path, out) => {
  if (typeof v !== 'string') out.push({ path, message: 'expected a string' });
};

const oneOf =
  (values: readonly string[]): Check =>
  (v, path, out) => {
    if (typeof v !== 'string' || !values.includes(v)) out.push({ path, message: `expected one of ${values.join(', ')}` });
  };
/**
 * An http(s) URL without credentials or a query: the key belongs in the variable named by
 * `api_key_env`, never in a file kair reads, prints or records.
 */
const baseUrl: Check = (v, path, out) => {
  let u: URL | null;
  try {
    u = typeof v === 'string' ? new URL(v) : null;
  } catch {
    u = null;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) return void out.push({ path, message: 'expected an http(s) URL, e.g. https://api.openai.com/v1' });
  if (u.username || u.password || u.search) out.push({ path, message: 'must not carry credentials or a query; put the key in the variable named by planner.api_key_env' });
};
const envName: Check = (v, path, out) => {
  if (typeof v !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) out.push({ path, message: 'expected an environment variable name, e.g. OPENAI_API_KEY' });
};

/** Something a user may paste where only a name belongs: a URL, or credentials in `user:pw@host` form. */
const looksLikeUrl = (v: string) => /:\/\/|^[a-z][a-z0-9+.-]*:|@/i.test(v);
const urlEnv: Check = (v, path, out) => {
  if (typeof v === 'string' && looksLikeUrl(v)) return void out.push({ path, message: 'expected the name of the environment variable that holds the database URL (e.g. KAIR_DATABASE_URL), not the URL itself: the URL is never stored in the config' });
  envName(v, path, out);
};
// A PostgreSQL identifier kair can use unquoted: lower case, at most 63 bytes.
const pgSchema: Check = (v, path, out) => {
  if (typeof v === 'string' && looksLikeUrl(v)) return void out.push({ path, message: 'expected a schema name (e.g. kair), not a URL: the URL is never stored in the config' });
  if (typeof v !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(v)) out.push({ path, message: 'expected a PostgreSQL schema name: lower-case letters, digits and _, at most 63 characters, e.g. kair' });
};
const backendCheck: Check = (v, path, out) => {
  // `url`, `database_url`…: a secret in a committable file. Named before the generic "unknown key".
  if (isObj(v)) {
    for (const [key, value] of Object.entries(v)) {
      if (key !== 'url_env' && typeof value === 'string' && looksLikeUrl(value)) out.push({ path: join(path, key), message: 'a database URL is never stored in the config: put it in the environment variable named by backend.url_env (default KAIR_DATABASE_URL)' });
    }
  }
  const before = out.length;
  object({ kind: oneOf(BACKEND_KINDS), url_env: urlEnv, schema: pgSchema })(v, path, out);
  // One message per key: the URL one above says more than "unknown key".
  const named = new Set(out.slice(0, before).map((p) => p.path));
  for (let i = out.length - 1; i >= before; i--) if (named.has(out[i]!.path)) out.splice(i, 1);
};

const configCheck = object({
  $schema: schemaKey,
  workspace_id: str,
  controls: object({ registry: array(control) }),
  approvals: object({ min: posInt, forbid_self: bool, require_signed: bool, allowed_signers_file: str }),
  kimi: object({
    provider: literal('stub'),
    defaults: object({ maxCostUSD: money, maxAgents: posInt, maxRuntimeSec: posInt, allowedScopes: array(str) }),
    max_cost_usd_per_contract: money,
  }),
  run: object({ allowed_actors: array(runActor) }),
  policy: object({ admins: array(adminName) }),
  slo: object({ dispatch_p95_ms: nonNegative, dispatch_p99_ms: nonNegative, error_rate: fraction, duplicate_side_effects: nonNegInt }),
  limits: object({ max_input_bytes: posInt }),
  planner: object({ provider: oneOf(PLANNER_PROVIDERS), base_url: baseUrl, model: str, api_key_env: envName, max_tokens: posInt, timeout_ms: posInt }),
  backend: backendCheck,
}, ['workspace_id']);

export function validateConfig(value: unknown): Problem[] {
  const out: Problem[] = [];
  configCheck(value, '', out);
  return out;
}
