import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run demo', () => {
  it('drives the lifecycle on fixtures/ and every command exits as expected', () => {
    const r = spawnSync(process.execPath, ['scripts/demo.mjs'], { cwd: root, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = r.stdout;
    // The gates refuse before anything is spent …
    expect(out).toMatch(/\$ kair request-approval chat\n {2}→ exit 3: CONTROLS_MISSING/);
    expect(out).toMatch(/\$ kair run chat --dry-run\n {2}→ exit 3: APPROVAL_STALE/);
    expect(out).toMatch(/→ exit 3: CONTROLS_MISSING: chat needs controls that are not granted: local:write/);
    expect(out).toContain('→ exit 3: NO_EXECUTION_REQUIRED: No execution required (reuse sufficient)');
    // … and the approved plan runs through the Kimi lane with the seed's figures.
    expect(out).toContain('chat-run-1 PAUSED: generate=KIMI_OK, review-delta=PENDING');
    expect(out).toContain('chat-run-1 COMPLETED: generate=KIMI_OK, review-delta=MANUAL_RECORDED — Successfully generated: chat, notifications. Used 5 agents over 8s.');
    expect(out).toContain('chat ACCEPTED v1');
    expect(out).toContain('chat REWOUND v2');
    expect(out).toMatch(/verified: 2 contract\(s\), \d+ event\(s\), 0 problem\(s\)/);
    expect(out).toContain('demo finished: every command exited as expected');
  });
});
