import { kairError } from '../../domain/errors.js';

/** An answer that does not fit `planner.max_tokens` (over it, or cut off at it) is never taken as a plan. */
export function overMaxTokens(provider: string, tokens: number, max: number) {
  return kairError('PLANNER_FAILED', `the ${provider} planner's answer (${tokens} tokens) does not fit planner.max_tokens ${max}; nothing was written`, {
    provider,
    tokens_out: tokens,
    max_tokens: max,
    hint: 'raise planner.max_tokens in .kair/config.json, or ask for a smaller plan with --instructions',
  });
}
