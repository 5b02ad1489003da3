/**
 * Every error says what to do next. Each failure code of the catalog has its own actionable
 * hint (a command to run or a flag to pass), used when the code that raised the error gave none;
 * text errors print it and --json carries it in `details.hint`, so both say the same.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_HINTS, hintFor } from '../../src/domain/error-hints.js';
import { ERROR_CATALOG, ERROR_CODES } from '../../src/domain/errors.js';
import { bring, fixture, kair, kj, makeWorkspace, ok, removeWorkspaces } from '../helpers/cli.js';

afterAll(removeWorkspaces);

/** Codes that never reach a user as an error, with the reason. */
const NO_HINT: Record<string, string> = {
  AEC_DISPATCH_OK: 'success reason code of a step',
  AEC_IDEMPOTENT_REPLAY: 'success reason code of a step',
  SIM_FINDER_MATCH_OK: 'success reason code of a Finder packet',
  KIMI_OK: 'success reason code of a step',
  KIMI_REUSED: 'success reason code of a step',
  MANUAL_RECORDED: 'success reason code of a step',
};

describe('per-code hints', () => {
  it('every failure code of the catalog has a specific hint naming a command or a flag; the exceptions are the exit-0 reason codes', () => {
    const hints = ERROR_HINTS as Record<string, string | undefined>;
    const missing = ERROR_CODES.filter((c) => !NO_HINT[c] && !hints[c]);
    expect(missing).toEqual([]);
    for (const c of Object.keys(NO_HINT)) expect(ERROR_CATALOG[c as keyof typeof ERROR_CATALOG], c).toBe(0);
    const vague = Object.entries(hints).filter(([, h]) => !h || /docs\/errors/.test(h) || !/kair |--[a-z]|KAIR_[A-Z]/.test(h));
    expect(vague).toEqual([]);
    // No two codes share one hint: a copied hint is a hint nobody thought about.
    expect(new Set(Object.values(hints)).size).toBe(Object.keys(hints).length);
  });

  it('fills <id> from details.contract_id, and only with a valid id', () => {
    expect(hintFor('AEC_CONFIRM_REQUIRED', { contract_id: 'chat' })).toContain('kair resume chat --confirm yes');
    expect(hintFor('AEC_CONFIRM_REQUIRED', { contract_id: 'x\u001b[2J' })).toContain('kair resume <id>');
    expect(hintFor('KIMI_OK')).toBeNull();
  });

  it('an error without a hint of its own prints its code\'s, in text and in --json alike', () => {
    const ws = makeWorkspace();
    const t = kair(ws, ['status', 'nope']);
    expect(t.code).toBe(4);
    expect(t.stderr).toContain(`hint: ${ERROR_HINTS.CONTRACT_NOT_FOUND}`);
    expect(t.stderr).not.toMatch(/docs\/errors/);
    const j = kj(ws, ['status', 'nope']);
    expect(j.json.error.details.hint).toBe(ERROR_HINTS.CONTRACT_NOT_FOUND);

    // The contract's own id is filled in: chat has one approval of the two now required.
    bring(ws, 'chat', 'APPROVED');
    kj(ws, ['config', 'set', 'approvals.min', '2']);
    const r = kair(ws, ['run', 'chat']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^kair: APPROVAL_REQUIRED/m);
    expect(r.stderr).toMatch(/^hint: .*`kair approve chat --actor <name>`/m);
  });

  it('a hint the error carries itself still wins', () => {
    const ws = makeWorkspace();
    ok(ws, ['propose', 'x', '--id', 'chat', '--requires', 'local:read']);
    ok(ws, ['plan', 'chat', '--file', fixture('custom-kimi.json')]);
    const r = kj(ws, ['request-approval', 'chat']);
    expect(r.json.error.code).toBe('CONTROLS_MISSING');
    expect(r.json.error.details.hint).toBe('kair grant chat local:read');
  });
});
