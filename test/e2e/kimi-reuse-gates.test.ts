/**
 * A retry that reuses the Kimi envelope an earlier run paid for spends nothing, so none of the
 * money gates applies to it — not the cost, runtime or per-contract checks, and not the gate that
 * refuses a plan budget above the caps now in force — while scopes are still checked. `--regenerate`
 * (which would spend) meets every gate, and the dry run predicts the same.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PUBLISHED_SCHEMAS } from '../../src/domain/schemas.js';
import { approveContract, asAlice, catalogWorkspace, openLedger } from '../helpers/aec.js';
import { editConfig, fixture, history, kj, ok, readJson, removeWorkspaces } from '../helpers/cli.js';
import { seedKimiSuccess } from '../helpers/kimi.js';

afterAll(removeWorkspaces);

function spentMicros(ws: string, id: string): number {
  const db = openLedger(ws);
  try {
    return (db.prepare("SELECT COALESCE(SUM(r.cost_micros), 0) AS n FROM kimi_execution_runs r JOIN execution_envelopes e ON e.id = r.envelope_id WHERE e.contract_id = ? AND r.status = 'COMPLETED'").get(id) as { n: number }).n;
  } finally {
    db.close();
  }
}

const envelopeIds = (ws: string, id: string): string[] => ok(ws, ['envelopes', '--contract', id]).envelopes.map((e: { id: string }) => e.id);

describe('Kimi reuse skips the money gates, not the scopes', () => {
  it('caps lowered below the reused envelope after an AEC failure: the retry still reuses and spends $0; a scope no longer allowed is still refused', () => {
    const ws = catalogWorkspace();
    // Budget 25 USD / 5 agents / 600 s; scope custom_logic.
    approveContract(ws, 'chat', readJson(fixture('mixed-lanes.json')));
    // tester has no access rule: the Kimi step completes ($0.02), the AEC step is refused.
    const first = kj(ws, ['run', 'chat', '--confirm', 'yes']);
    expect(first.code, first.stdout + first.stderr).toBe(3);
    expect(first.json).toMatchObject({ state: 'FAILED', kimi: seedKimiSuccess('chat-run-1'), error: { code: 'ACCESS_SCOPE_VIOLATION' } });
    expect(spentMicros(ws, 'chat')).toBe(20_000);

    // Every cap below what the plan and the reused envelope say, and the contract's spend already
    // above its new per-contract cap: a new envelope would be refused three times over.
    editConfig(ws, (c) => {
      c.kimi.defaults = { ...c.kimi.defaults, maxCostUSD: 10, maxAgents: 2, maxRuntimeSec: 100 };
      c.kimi.max_cost_usd_per_contract = 0.01;
    });

    // Scopes are still checked: with custom_logic no longer allowed the retry is refused, nothing spent.
    const scopes = readJson(`${ws}/.kair/config.json`).kimi.defaults.allowedScopes as string[];
    editConfig(ws, (c) => {
      c.kimi.defaults.allowedScopes = scopes.filter((s) => s !== 'custom_logic');
    });
    const refused = kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice);
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.json.error).toMatchObject({ code: 'SCOPE_NOT_ALLOWED', details: { scopes: ['custom_logic'] } });
    const dryScopes = kj(ws, ['run', 'chat', '--dry-run', '--confirm', 'yes'], asAlice);
    expect(dryScopes.json.error.code).toBe('SCOPE_NOT_ALLOWED');
    editConfig(ws, (c) => {
      c.kimi.defaults.allowedScopes = scopes;
    });

    // The dry run predicts the reuse: no money stop, the kimi step reused.
    const dry = kj(ws, ['run', 'chat', '--dry-run', '--confirm', 'yes'], asAlice);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.json.steps[0]).toMatchObject({ id: 'generate', lane: 'kimi', status: 'ok', reason_code: 'KIMI_REUSED' });
    expect(PUBLISHED_SCHEMAS['output-run']!.safeParse(dry.json).success).toBe(true);

    const retry = kj(ws, ['run', 'chat', '--confirm', 'yes'], asAlice);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.json).toMatchObject({ run_id: 'chat-run-2', state: 'COMPLETED', status: 'COMPLETED' });
    // The reused object is printed unchanged (its caps are those it was paid under).
    expect(retry.json.kimi).toEqual(seedKimiSuccess('chat-run-1'));
    expect(retry.json.steps[0]).toEqual({ id: 'generate', lane: 'kimi', status: 'COMPLETED', reason_code: 'KIMI_REUSED', reused_from: 'chat-run-1' });
    expect(envelopeIds(ws, 'chat')).toEqual(['env_chat-run-1']);
    expect(spentMicros(ws, 'chat')).toBe(20_000);
    expect(history(ws, 'chat').filter((e) => e.type === 'gate.blocked').map((e) => e.data.code)).toEqual(['ACCESS_SCOPE_VIOLATION', 'SCOPE_NOT_ALLOWED']);
    expect(ok(ws, ['verify']).problems).toEqual([]);
  });

  it('--regenerate would spend: it meets the budget-above-caps gate (and its dry run predicts it)', () => {
    const ws = catalogWorkspace();
    approveContract(ws, 'chat', readJson(fixture('mixed-lanes.json')));
    expect(kj(ws, ['run', 'chat', '--confirm', 'yes']).code).toBe(3);
    editConfig(ws, (c) => {
      c.kimi.defaults = { ...c.kimi.defaults, maxCostUSD: 10 };
    });
    const dry = kj(ws, ['run', 'chat', '--dry-run', '--regenerate', '--confirm', 'yes'], asAlice);
    expect([dry.code, dry.json.error.code]).toEqual([5, 'BUDGET_EXCEEDED']);
    const regen = kj(ws, ['run', 'chat', '--regenerate', '--confirm', 'yes'], asAlice);
    expect([regen.code, regen.json.error.code]).toEqual([5, 'BUDGET_EXCEEDED']);
    expect(envelopeIds(ws, 'chat')).toEqual(['env_chat-run-1']);
  });
});
