/**
 * Plan providers behind one interface: the payload in, the answer text and its token counts
 * out. `stub` answers in-process; `openai-compatible` calls an HTTP chat-completions endpoint
 * (OpenAI, Kimi/Moonshot and other compatible servers). Neither records anything: the use case
 * (app/plan-generate.ts) validates the answer and records the call.
 */
import type { PlannerConfig, PlannerProvider } from '../../domain/config.js';
import { PLANNER_PROVIDERS } from '../../domain/config.js';
import { kairError } from '../../domain/errors.js';
import type { PromptPayload } from '../../domain/planner/prompt.js';
import { estimateTokens, promptOf } from '../../domain/planner/prompt.js';
import { STUB_MODEL, stubAnswer } from '../../domain/planner/stub.js';
import { overMaxTokens } from './limits.js';
import { chatCompletion } from './openai.js';

export interface ProviderAnswer {
  text: string;
  tokens_in: number;
  tokens_out: number;
}

export interface PlanProvider {
  name: PlannerProvider;
  model: string;
  maxTokens: number;
  complete(payload: PromptPayload): Promise<ProviderAnswer>;
}

export function assertProviderName(name: string): asserts name is PlannerProvider {
  if (!(PLANNER_PROVIDERS as readonly string[]).includes(name)) {
    throw kairError('USAGE_ERROR', `--provider must be one of ${PLANNER_PROVIDERS.join(', ')}, got ${JSON.stringify(name.slice(0, 80))}`, { flag: '--provider', allowed: [...PLANNER_PROVIDERS] });
  }
}

/** The provider to call: `--provider` over `planner.provider`; PLANNER_NOT_CONFIGURED when its settings are missing. */
export function selectProvider(name: string | undefined, cfg: PlannerConfig, env: NodeJS.ProcessEnv): PlanProvider {
  const chosen = name ?? cfg.provider;
  assertProviderName(chosen);
  if (chosen === 'stub') {
    return {
      name: 'stub',
      model: STUB_MODEL,
      maxTokens: cfg.max_tokens,
      complete: async (payload) => {
        const text = stubAnswer(promptOf(payload));
        const answer = { text, tokens_in: estimateTokens(payload.messages.map((m) => m.content).join('\n')), tokens_out: estimateTokens(text) };
        if (answer.tokens_out > cfg.max_tokens) throw overMaxTokens('stub', answer.tokens_out, cfg.max_tokens);
        return answer;
      },
    };
  }
  const missing = [cfg.base_url === undefined ? 'planner.base_url' : '', cfg.model === undefined ? 'planner.model' : ''].filter(Boolean);
  const key = env[cfg.api_key_env];
  if (missing.length || !key) {
    const what = [...missing, ...(key ? [] : [`the API key (environment variable ${cfg.api_key_env}, named by planner.api_key_env)`])];
    throw kairError('PLANNER_NOT_CONFIGURED', `the openai-compatible planner needs ${what.join(', ')}; nothing was written`, {
      provider: 'openai-compatible',
      missing: what,
      hint: `set planner.base_url and planner.model in .kair/config.json and export ${cfg.api_key_env}=<key>, or use --provider stub`,
    });
  }
  const settings = { baseUrl: cfg.base_url!, model: cfg.model!, maxTokens: cfg.max_tokens, timeoutMs: cfg.timeout_ms, key, keyEnv: cfg.api_key_env };
  return { name: 'openai-compatible', model: settings.model, maxTokens: cfg.max_tokens, complete: (payload) => chatCompletion(settings, payload) };
}
