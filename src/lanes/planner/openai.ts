/**
 * The `openai-compatible` provider: one POST to `<base_url>/chat/completions` with node's own
 * fetch (no dependency), asking for a JSON object within `max_tokens`. The key goes in the
 * Authorization header and nowhere else; anything the server sends back is scrubbed of it
 * before it can reach a message.
 */
import { kairError } from '../../domain/errors.js';
import { redactSecrets } from '../../domain/dpc.js';
import type { PromptPayload } from '../../domain/planner/prompt.js';
import { estimateTokens } from '../../domain/planner/prompt.js';
import type { ProviderAnswer } from './provider.js';
import { overMaxTokens } from './limits.js';

export interface ChatSettings {
  baseUrl: string;
  model: string;
  maxTokens: number;
  timeoutMs: number;
  key: string;
  keyEnv: string;
}

const PROVIDER = 'openai-compatible';

function failed(message: string, details: Record<string, unknown>, hint: string) {
  return kairError('PLANNER_FAILED', `the ${PROVIDER} planner ${message}; nothing was written`, { provider: PROVIDER, ...details, hint });
}

/** A server's words in a message: without the key, redacted, one line, at most 80 characters. */
function quoteServer(text: string, key: string): string {
  const clean = redactSecrets(text.split(key).join('[REDACTED]')).replace(/\s+/g, ' ').trim();
  return JSON.stringify(clean.length > 80 ? `${clean.slice(0, 80)}…` : clean);
}

/** The response body, refusing one larger than `limit` bytes before it is all in memory. */
async function readCapped(res: Response, limit: number): Promise<string | null> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function chatCompletion(s: ChatSettings, payload: PromptPayload): Promise<ProviderAnswer> {
  const url = `${s.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const timeout = AbortSignal.timeout(s.timeoutMs);
  // The answer may be at most max_tokens tokens; a body far larger than that many tokens can
  // take (JSON escaping, metadata) is not an answer kair asked for.
  const limit = Math.max(64 * 1024, s.maxTokens * 64);
  let res: Response;
  let body: string | null;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${s.key}` },
      body: JSON.stringify({ model: s.model, messages: payload.messages, max_tokens: s.maxTokens, temperature: 0, response_format: { type: 'json_object' } }),
      signal: timeout,
      redirect: 'error',
    });
    body = await readCapped(res, limit);
  } catch (e) {
    if (timeout.aborted) {
      throw failed(`did not answer within ${s.timeoutMs} ms (planner.timeout_ms)`, { timeout_ms: s.timeoutMs }, 'try again, or raise planner.timeout_ms in .kair/config.json');
    }
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
    throw failed(`could not be reached (${String(cause).slice(0, 40)})`, { cause: String(cause).slice(0, 40) }, 'check planner.base_url and the network, or use --provider stub');
  }
  if (!res.ok) {
    const hints: Record<number, string> = {
      401: `the server refused the key: check ${s.keyEnv} (the variable named by planner.api_key_env)`,
      403: 'the key may not use this model or endpoint: check planner.model and the key',
      404: 'check planner.base_url (it ends before /chat/completions, e.g. https://api.openai.com/v1) and planner.model',
      429: 'rate limited or out of quota: wait and run the command again',
    };
    const hint = hints[res.status] ?? (res.status >= 500 ? 'the server failed: run the command again later' : 'check planner.base_url and planner.model');
    const said = body ? serverMessage(body) : null;
    throw failed(`answered HTTP ${res.status}${said ? `: ${quoteServer(said, s.key)}` : ''}`, { status: res.status }, hint);
  }
  if (body === null) throw overMaxTokens(PROVIDER, estimateTokens('x'.repeat(limit)), s.maxTokens);
  let doc: ChatResponse;
  try {
    doc = JSON.parse(body) as ChatResponse;
  } catch {
    throw failed('answered with a body that is not a chat completion (not JSON)', {}, 'check that planner.base_url is an OpenAI-compatible API');
  }
  const choice = doc?.choices?.[0];
  const text = choice?.message?.content;
  if (typeof text !== 'string') {
    throw failed('answered without choices[0].message.content', {}, 'check that planner.base_url is an OpenAI-compatible API');
  }
  const tokensOut = Number.isSafeInteger(doc.usage?.completion_tokens) ? doc.usage!.completion_tokens! : estimateTokens(text);
  const tokensIn = Number.isSafeInteger(doc.usage?.prompt_tokens) ? doc.usage!.prompt_tokens! : estimateTokens(payload.messages.map((m) => m.content).join('\n'));
  // A cut-off answer (finish_reason "length") or one over the limit is never taken as a plan.
  if (tokensOut > s.maxTokens || choice?.finish_reason === 'length') throw overMaxTokens(PROVIDER, Math.max(tokensOut, s.maxTokens), s.maxTokens);
  return { text, tokens_in: tokensIn, tokens_out: tokensOut };
}

interface ChatResponse {
  choices?: { message?: { content?: unknown }; finish_reason?: string }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

function serverMessage(body: string): string | null {
  try {
    const doc = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof doc.error === 'string' ? doc.error : doc.error?.message ?? doc.message;
    return typeof m === 'string' ? m : null;
  } catch {
    return null;
  }
}
