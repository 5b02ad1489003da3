/**
 * `npm run demo` is the best end-to-end test: it drives the whole lifecycle and both lanes. Its
 * output is fixed (KAIR_NOW) and compared with demo.golden.txt; UPDATE_GOLDEN=1 rewrites it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const golden = fileURLToPath(new URL('./demo.golden.txt', import.meta.url));

describe('npm run demo', () => {
  // Its own system temp folder, to see that the demo leaves nothing behind in it.
  const tmp = mkdtempSync(join(tmpdir(), 'kair-demo-tmp-'));
  const r = spawnSync(process.execPath, ['scripts/demo.mjs'], { cwd: root, encoding: 'utf8', env: { ...process.env, TMPDIR: tmp, FORCE_COLOR: undefined, KAIR_ACTOR: undefined, KAIR_DEMO_KEEP: undefined } });
  const left = readdirSync(tmp);
  rmSync(tmp, { recursive: true, force: true });

  it('removes the temporary workspace it made', () => {
    expect(left).toEqual([]);
  });
  const out = r.stdout.replace(/\/[^\s]*kair-demo-[A-Za-z0-9]+/g, '<workspace>');

  it('exits 0 with nothing on stderr', () => {
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('prints exactly demo.golden.txt', () => {
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, out);
    expect(out).toBe(readFileSync(golden, 'utf8'));
  });

  it('generates a plan with the stub planner and shows --debug before the hand-written plan is used', () => {
    expect(out).toMatch(/\$ kair plan gen --generate\n {2}→ exit 0: gen PLANNED v1, planned by stub \(\d+ tokens in, \d+ out, prompt [0-9a-f]{12}\)/);
    expect(out).toMatch(/--debug\n {2}→ exit 0: Planned gen with the stub planner[^\n]*\n {4}stderr --- planner prompt payload --- \(\d+ lines\)\n {4}stderr --- DPC: \.kair\/contracts\/gen\/dpc\/dpc_v1\.json ---/);
    expect(out.indexOf('kair plan gen --generate')).toBeLessThan(out.indexOf('kair plan chat --file'));
  });

  it('shows a signed approval that verifies against .kair/allowed_signers', () => {
    expect(out).toMatch(/\$ kair approve chat --sign --key alice_ed25519 {3}\(as alice\)\n {2}→ exit 0: chat APPROVED v1/);
    expect(out).toContain('1/1 approval(s) (1 signed and verified)');
  });

  it('shows the gates refusing before anything is spent, and both lanes running', () => {
    expect(out).toMatch(/\$ kair request-approval chat\n {2}→ exit 3: CONTROLS_MISSING/);
    expect(out).toMatch(/\$ kair run chat\n {2}→ exit 3: APPROVAL_STALE/);
    expect(out).toMatch(/\$ kair run chat {3}\(as alice\)\n {2}→ exit 3: AEC_CONFIRM_REQUIRED[^\n]*\n {4}chat-run-1 PAUSED: generate=KIMI_OK, send-invoice=AEC_CONFIRM_REQUIRED/);
    expect(out).toContain('chat-run-1 COMPLETED: generate=KIMI_OK, send-invoice=AEC_DISPATCH_OK\n    kimi: Successfully generated: chat, notifications. Used 5 agents over 8s.');
    expect(out).toContain('→ exit 3: NO_EXECUTION_REQUIRED: No execution required (reuse sufficient)');
    expect(out).toContain('chat REWOUND v2');
    expect(out).toContain('verified: 0 problem(s), 0 warning(s)');
    expect(out).toContain('agent_execution_current: 1 step row(s), drift 0');
    expect(out).toContain('demo finished: every command exited as expected');
  });
});
