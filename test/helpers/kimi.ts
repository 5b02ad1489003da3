/**
 * The seed 000 response object of a successful stub run of fixtures/plans/custom-kimi.json (two
 * features, the default caps), keys in the seed's order: the store and the e2e suites expect the
 * same figures (SPEC §8.1).
 */
export const seedKimiSuccess = (runId: string) => ({
  executionEnvelopeId: `env_${runId}`,
  executionRunId: `kexec_${runId}`,
  status: 'COMPLETED',
  maxCostUSD: 25,
  maxAgents: 5,
  maxRuntimeSec: 600,
  result: {
    tokensUsed: 10000,
    costUSD: 0.02,
    summary: 'Successfully generated: chat, notifications. Used 5 agents over 8s.',
    status: 'COMPLETED',
    runtimeSec: 8,
  },
});
