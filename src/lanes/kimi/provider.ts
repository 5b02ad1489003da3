/**
 * The Kimi provider seam (SPEC §8.1: "The provider is an interface"). The lane asks for an
 * estimate before anything is spent and executes only after every check passed; a provider
 * is synchronous so the lane's transactions stay simple.
 */
import type { Config } from '../../domain/config.js';
import { kairError } from '../../domain/errors.js';
import { stubPricing, successSummary } from '../../domain/kimi.js';

export interface KimiRequest {
  features: readonly string[];
  maxAgents: number;
}

export interface KimiProviderEstimate {
  tokens: number;
  costMicros: number;
  runtimeSec: number;
}

export interface KimiExecution {
  tokensUsed: number;
  costMicros: number;
  runtimeSec: number;
  summary: string;
}

export interface KimiProvider {
  readonly name: string;
  estimate(req: KimiRequest): KimiProviderEstimate;
  execute(req: KimiRequest): KimiExecution;
}

/**
 * The specified provider: prices by the §8.1 formula and "executes" by returning exactly its
 * estimate. No network, no sleeping, no clock, so equal requests give equal results.
 */
export const stubProvider: KimiProvider = {
  name: 'stub',
  estimate(req) {
    return stubPricing(req.features.length, req.maxAgents);
  },
  execute(req) {
    const { tokens, costMicros, runtimeSec } = stubPricing(req.features.length, req.maxAgents);
    return { tokensUsed: tokens, costMicros, runtimeSec, summary: successSummary(req.features, req.maxAgents, runtimeSec) };
  },
};

export function providerFor(config: Pick<Config, 'kimi'>): KimiProvider {
  const name: string = config.kimi.provider;
  if (name === 'stub') return stubProvider;
  // Unreachable with a validated config; kept so a new provider name cannot slip through.
  throw kairError('CONFIG_INVALID', `kimi.provider: unknown provider ${JSON.stringify(name)} (known: "stub")`, { path: 'kimi.provider', value: name });
}
