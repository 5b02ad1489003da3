/**
 * The openai-compatible plan provider against a local HTTP server this test starts on
 * 127.0.0.1 (port 0) and closes afterwards: good answers (bare, in prose, in a code fence),
 * answers that are not plans (PLAN_INVALID naming the provider), HTTP errors, a timeout and an
 * answer over max_tokens (PLANNER_FAILED), the commit refused when the contract changed while
 * the provider was answering (CONCURRENT_WRITE) — and the API key in none of history, DPC,
 * artifacts, output or --debug.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Json, RunResult } from '../helpers/cli.js';
import { cloneWorkspace, editConfig, history, kairAsync, makeWorkspace, ok, planFile, readJson, removeWorkspaces } from '../helpers/cli.js';

// Shaped like no common token pattern, so only kair's own scrubbing can keep it out of messages.
const KEY = 'k7Qz-plannertest-9f2c1e5a7b3d';
const ENV = { PLANNER_TEST_KEY: KEY };
const PLAN = { version: 'kair.plan.v1', title: 'Chat', strategy: 'CUSTOM', details: { requiresKimi: true, features: ['chat'] }, scopes: ['custom_logic'], steps: [{ id: 'generate', summary: 'Write the chat', lane: 'kimi' }, { id: 'check', summary: 'Check it' }] };

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let server: Server;
let base = '';
let handler: Handler = () => undefined;
let requests: { headers: IncomingMessage['headers']; url: string; body: Json }[] = [];

const chat = (content: string, usage: Json = { prompt_tokens: 321, completion_tokens: 45 }, finish = 'stop') => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
  usage,
});
const answer = (status: number, doc: unknown): Handler => (_req, _body, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof doc === 'string' ? doc : JSON.stringify(doc));
};

let T: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      let parsed: Json = null;
      try {
        parsed = JSON.parse(body);
      } catch {
        // recorded as null
      }
      requests.push({ headers: req.headers, url: req.url ?? '', body: parsed });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  T = makeWorkspace();
  editConfig(T, (c) => {
    c.planner = { provider: 'openai-compatible', base_url: base, model: 'kimi-k2-test', api_key_env: 'PLANNER_TEST_KEY', max_tokens: 500, timeout_ms: 5000 };
  });
  ok(T, ['propose', 'Add a chat', '--id', 'c1']);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  removeWorkspaces();
});

beforeEach(() => {
  requests = [];
  handler = answer(200, chat(JSON.stringify(PLAN)));
});

const files = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
const tree = (ws: string) => Object.fromEntries(files(join(ws, '.kair')).filter((f) => !f.includes('/locks/')).map((f) => [f, readFileSync(f, 'utf8')]));

/** The key must be nowhere kair wrote or printed. */
function expectNoKey(ws: string, ...outputs: RunResult[]): void {
  for (const f of files(join(ws, '.kair'))) expect(readFileSync(f).includes(KEY), f).toBe(false);
  for (const o of outputs) expect(o.stdout + o.stderr).not.toContain(KEY);
}

async function generate(ws: string, extra: string[] = [], env: Record<string, string | undefined> = ENV): Promise<RunResult> {
  return kairAsync(ws, ['plan', 'c1', '--generate', ...extra, '--json'], { env });
}

describe('the openai-compatible provider', () => {
  it('sends one chat completion with the key in the Authorization header, and sets the plan it answers', async () => {
    const w = cloneWorkspace(T);
    const r = await generate(w);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(requests).toHaveLength(1);
    const q = requests[0]!;
    expect(q.url).toBe('/v1/chat/completions');
    expect(q.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(q.body).toMatchObject({ model: 'kimi-k2-test', max_tokens: 500, temperature: 0, response_format: { type: 'json_object' } });
    expect(q.body.messages.map((m: Json) => m.role)).toEqual(['system', 'user']);
    expect(JSON.parse(q.body.messages[1].content)).toMatchObject({ version: 'kair.plan-prompt.v1', mode: 'generate', intent: 'Add a chat' });
    expect(r.json.planner).toMatchObject({ provider: 'openai-compatible', model: 'kimi-k2-test', tokens_in: 321, tokens_out: 45 });
    expect(readJson(planFile(w, 'c1'))).toEqual(PLAN);
    const payload = readJson(join(w, r.json.planner.prompt_ref));
    expect(payload.messages).toEqual(q.body.messages);
    expectNoKey(w, r);
  });

  it.each([
    ['in prose', `Here is your plan:\n${JSON.stringify(PLAN)}\nGood luck!`],
    ['in a ```json code fence', `\`\`\`json\n${JSON.stringify(PLAN, null, 2)}\n\`\`\``],
  ])('takes an answer wrapped %s', async (_name, content) => {
    const w = cloneWorkspace(T);
    handler = answer(200, chat(content));
    const r = await generate(w);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readJson(planFile(w, 'c1'))).toEqual(PLAN);
  });

  it('--debug prints the payload and the DPC on stderr, never the key', async () => {
    const w = cloneWorkspace(T);
    const r = await kairAsync(w, ['plan', 'c1', '--generate', '--debug'], { env: ENV });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('"provider": "openai-compatible"');
    expect(r.stderr).toContain('--- DPC: .kair/contracts/c1/dpc/dpc_v1.json ---');
    expectNoKey(w, r);
  });

  const refusals: [string, number, string, RegExp, Handler][] = [
    ['invalid JSON', 2, 'PLAN_INVALID', /openai-compatible planner's answer is not a plan/, answer(200, chat('{"version": "kair.plan.v1", "title": '))],
    ['a schema-invalid plan', 2, 'PLAN_INVALID', /plan from the openai-compatible planner has 3 problem/, answer(200, chat(JSON.stringify({ ...PLAN, steps: [{ id: 'A B', summary: '' }], extra: 1 })))],
    ['HTTP 401 (echoing the key)', 5, 'PLANNER_FAILED', /HTTP 401/, answer(401, { error: { message: `Incorrect API key provided: ${KEY}`, type: 'invalid_request_error' } })],
    ['HTTP 429', 5, 'PLANNER_FAILED', /HTTP 429: "Rate limit reached"/, answer(429, { error: { message: 'Rate limit reached' } })],
    ['HTTP 500', 5, 'PLANNER_FAILED', /HTTP 500/, answer(500, 'Internal Server Error')],
    ['an answer over max_tokens', 5, 'PLANNER_FAILED', /does not fit planner.max_tokens 500/, answer(200, chat(JSON.stringify(PLAN), { prompt_tokens: 10, completion_tokens: 501 }))],
    ['an answer cut off at max_tokens', 5, 'PLANNER_FAILED', /does not fit planner.max_tokens/, answer(200, chat(JSON.stringify(PLAN).slice(0, 40), { prompt_tokens: 10, completion_tokens: 500 }, 'length'))],
    ['a body that is no chat completion', 5, 'PLANNER_FAILED', /not a chat completion/, answer(200, '<html>proxy login</html>')],
  ];
  it.each(refusals)('%s → exit %i %s, nothing written', async (_name, exit, code, message, h) => {
    const w = cloneWorkspace(T);
    const before = tree(w);
    handler = h;
    const r = await generate(w);
    expect(r.code, r.stdout + r.stderr).toBe(exit);
    expect(r.json.error.code).toBe(code);
    expect(r.json.error.message).toMatch(message);
    expect(r.json.error.details.provider).toBe('openai-compatible');
    expect(r.json.error.details.hint).toBeTruthy();
    expect(tree(w)).toEqual(before);
    expectNoKey(w, r);
  });

  it('a provider that does not answer within planner.timeout_ms → exit 5 PLANNER_FAILED, nothing written', async () => {
    const w = cloneWorkspace(T);
    editConfig(w, (c) => {
      c.planner.timeout_ms = 300;
    });
    const before = tree(w);
    handler = () => undefined; // never answers
    const started = Date.now();
    const r = await generate(w);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.json.error.code).toBe('PLANNER_FAILED');
    expect(r.json.error.message).toContain('within 300 ms');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(tree(w)).toEqual(before);
  });

  it('PLANNER_NOT_CONFIGURED (exit 2) when the key variable is empty; nothing is sent', async () => {
    const w = cloneWorkspace(T);
    const r = await generate(w, [], { PLANNER_TEST_KEY: '' });
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('PLANNER_NOT_CONFIGURED');
    expect(r.json.error.message).toContain('PLANNER_TEST_KEY');
    expect(requests).toHaveLength(0);
  });

  it('a contract changed while the provider was answering → exit 6 CONCURRENT_WRITE, the plan is not committed', async () => {
    const w = cloneWorkspace(T);
    let release!: () => void;
    const asked = new Promise<void>((r) => {
      handler = (_req, _body, res) => {
        r();
        release = () => answer(200, chat(JSON.stringify(PLAN)))(_req, _body, res);
      };
    });
    const pending = generate(w);
    await asked;
    ok(w, ['dpc', 'c1', '--add-assumption', 'written while the planner thinks']);
    const n = history(w, 'c1').length;
    release();
    const r = await pending;
    expect(r.code, r.stdout + r.stderr).toBe(6);
    expect(r.json.error.code).toBe('CONCURRENT_WRITE');
    expect(history(w, 'c1').length).toBe(n);
    expect(history(w, 'c1').some((e) => e.type === 'plan')).toBe(false);
    expect(readdirSync(join(w, '.kair', 'contracts', 'c1', 'dpc')).filter((f) => f.startsWith('prompt-'))).toEqual([]);
  });

  it('a contract in a state that takes no plan is refused before the provider is asked', async () => {
    const w = cloneWorkspace(T);
    ok(w, ['plan', 'c1', '--generate', '--provider', 'stub']);
    ok(w, ['request-approval', 'c1']);
    ok(w, ['approve', 'c1']);
    ok(w, ['run', 'c1']);
    ok(w, ['accept', 'c1']);
    const r = await generate(w);
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('INVALID_TRANSITION');
    expect(requests).toHaveLength(0);
  });
});
