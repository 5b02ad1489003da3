/** The pure parts of signed approvals, and ssh-keygen's spawn under a hostile or hanging program. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Ctx } from '../../src/app/context.js';
import { signApproval } from '../../src/app/signatures.js';
import { isKairError } from '../../src/domain/errors.js';
import { approvalMessage, messageField, readSshSig, signatureOf, verifyTime } from '../../src/domain/signing.js';
import { oneLineReason, runTool } from '../../src/store/ssh-keygen.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'kair-unit-sign-'));
  dirs.push(d);
  return d;
};

/** A folder holding an executable `ssh-keygen` with this shell body. */
function fakeKeygen(body: string): string {
  const d = tmp();
  writeFileSync(join(d, 'ssh-keygen'), `#!/bin/sh\n${body}\n`);
  chmodSync(join(d, 'ssh-keygen'), 0o755);
  return d;
}

const FIELDS = { workspace_id: 'ws1', contract_id: 'c1', version: 2, plan_sha256: 'a'.repeat(64), actor: 'alice', at: '2026-01-30T12:00:00.000Z' };

describe('approvalMessage', () => {
  it('is the documented message for ordinary names', () => {
    expect(approvalMessage(FIELDS)).toBe(`kair-approval:v1:ws1:c1:v2:${'a'.repeat(64)}:alice:2026-01-30T12:00:00.000Z`);
  });

  it.each([
    ['a:b', 'a%3Ab'],
    ['100%', '100%25'],
    ['line\nbreak', 'line%0Abreak'],
    ['tab\there', 'tab%09here'],
    ['esc\u001b[31m', 'esc%1B[31m'],
    ['c1\u009b', 'c1%9B'],
    ['Ünïcode bob', 'Ünïcode bob'],
  ])('encodes %j as %s so no field can borrow a separator', (raw, encoded) => {
    expect(messageField(raw)).toBe(encoded);
  });

  it('two approvals that differ only in where a ":" sits give different messages', () => {
    const a = approvalMessage({ ...FIELDS, workspace_id: 'ws:1', actor: 'alice' });
    const b = approvalMessage({ ...FIELDS, workspace_id: 'ws', actor: 'alice' });
    expect(a).not.toBe(b);
    expect(approvalMessage({ ...FIELDS, actor: `alice:${FIELDS.at}` })).not.toBe(approvalMessage({ ...FIELDS, actor: 'alice' }));
  });
});

describe('readSshSig / verifyTime / signatureOf', () => {
  it('rejects what is not an armored SSHSIG', () => {
    for (const bad of [undefined, 42, '', 'hello', '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n', `-----BEGIN SSH SIGNATURE-----\n${'A'.repeat(20000)}\n-----END SSH SIGNATURE-----\n`]) {
      expect(readSshSig(bad)).toBeNull();
    }
  });

  it('gives ssh-keygen -Y verify-time in UTC', () => {
    expect(verifyTime('2026-01-30T12:00:00.000Z')).toBe('20260130120000Z');
    expect(verifyTime('2026-01-30T13:00:00+01:00')).toBe('20260130120000Z');
    expect(verifyTime('yesterday')).toBeNull();
  });

  it('accepts only the recorded shape', () => {
    expect(signatureOf({})).toBeNull();
    expect(signatureOf({ signature: { armored: 'x', at: 'y', fingerprint: 'z' } })).toBeNull();
    expect(signatureOf({ signature: { armored: 'x', at: 'y', fingerprint: 'z', allowed_signers_sha256: 'w' } })).not.toBeNull();
  });
});

describe('runTool', () => {
  it('kills a hanging ssh-keygen at the timeout', () => {
    const bin = fakeKeygen('exec sleep 30');
    const started = Date.now();
    const r = runTool('ssh-keygen', ['-Y', 'sign'], { input: 'm', env: { PATH: `${bin}:/usr/bin:/bin` }, cwd: bin, timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r).toMatchObject({ ok: false, kind: 'timeout' });
  });

  it('reports a missing program as unavailable and a failure with its last line, escaped and clipped', () => {
    expect(runTool('ssh-keygen', [], { input: '', env: { PATH: tmp() }, cwd: tmpdir(), timeoutMs: 5000 })).toMatchObject({ ok: false, kind: 'unavailable' });
    const bin = fakeKeygen(`printf 'Signing data on standard input\\nfirst\\n\\033]0;owned\\007 bad key ${'x'.repeat(200)}\\n' >&2; exit 255`);
    const r = runTool('ssh-keygen', [], { input: '', env: { PATH: `${bin}:/usr/bin:/bin` }, cwd: bin, timeoutMs: 5000 });
    expect(r.ok).toBe(false);
    const reason = (r as { reason: string }).reason;
    // eslint-disable-next-line no-control-regex -- no control character may reach a terminal
    expect(reason).not.toMatch(/[\u0000-\u001f]/);
    expect(reason.startsWith('\\u001b]0;owned\\u0007 bad key')).toBe(true);
    expect(reason.length).toBeLessThan(120);
    expect(oneLineReason('', 'fallback')).toBe('fallback');
  });

  it('signApproval turns a hang into SIGNING_FAILED', () => {
    const bin = fakeKeygen('exec sleep 30');
    const ws = tmp();
    const ctx = { ws: { root: ws, kairDir: join(ws, '.kair') }, env: { PATH: `${bin}:/usr/bin:/bin` } } as unknown as Ctx;
    let err: unknown;
    try {
      signApproval(ctx, { kind: 'file', path: join(ws, 'key'), source: '--key' }, FIELDS, { ok: true, path: 'x', text: '', sha256: '0' }, 300);
    } catch (e) {
      err = e;
    }
    expect(isKairError(err) && err.code).toBe('SIGNING_FAILED');
    expect((err as Error).message).toMatch(/did not finish within/);
  });
});
