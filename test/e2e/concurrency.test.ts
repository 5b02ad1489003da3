/**
 * SPEC §12: one writer per contract, every concurrent command recorded, LOCK_BUSY naming the
 * holder, and stale locks of dead pids recovered.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NOW, history, historyFile, kairAsync, readIndex, kj, makeWorkspace, ok, readJson, removeWorkspaces, snapshotFile } from '../helpers/cli.js';

afterAll(removeWorkspaces);

let ws: string;
beforeAll(() => {
  ws = makeWorkspace();
  ok(ws, ['propose', 'Contended', '--id', 'c1']);
});

describe('concurrent writers', () => {
  it('10 concurrent grants on one contract: all exit 0, all 10 recorded, the chain verifies', async () => {
    const controls = Array.from({ length: 10 }, (_, i) => `ns:p${i}`);
    const results = await Promise.all(controls.map((c) => kairAsync(ws, ['grant', 'c1', c, '--json'])));
    for (const r of results) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.json.ok).toBe(true);
    }
    const grants = history(ws, 'c1').filter((e) => e.type === 'grant');
    expect(grants).toHaveLength(10);
    expect(new Set(grants.map((e) => e.seq)).size).toBe(10);
    expect(readJson(snapshotFile(ws, 'c1')).controls.granted).toEqual([...controls].sort());
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('concurrent proposes of the same intent without --id get distinct ids, all indexed', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => kairAsync(ws, ['propose', 'Same intent', '--json'])));
    for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);
    const ids = results.map((r) => r.json.contract.id as string);
    expect(new Set(ids).size).toBe(5);
    for (const id of ids) expect(id.startsWith('same-intent')).toBe(true);
    const indexed = readIndex(ws).map((e: { id: string }) => e.id);
    for (const id of ids) expect(indexed).toContain(id);
    expect(kj(ws, ['verify']).json).toMatchObject({ ok: true, problems: [], warnings: [] });
  });
});

describe('locks', () => {
  const lockDir = () => join(ws, '.kair', 'locks', 'contract-c1.lock');
  const holderFile = () => join(lockDir(), 'holder.json');
  function holdLock(pid: number) {
    mkdirSync(lockDir(), { recursive: true });
    writeFileSync(holderFile(), JSON.stringify({ host: hostname(), boot_id: null, pid, pid_start: null, actor: 'x', command: 'grant', since: NOW }));
  }
  afterEach(() => {
    rmSync(lockDir(), { recursive: true, force: true });
  });

  it('a lock held by a live process → exit 6 LOCK_BUSY naming pid, actor, command and since; nothing written', () => {
    holdLock(process.pid);
    const before = readFileSync(historyFile(ws, 'c1'), 'utf8');
    const started = Date.now();
    const r = kj(ws, ['grant', 'c1', 'local:read', '--lock-timeout', '200']);
    expect(r.code).toBe(6);
    expect(r.json.ok).toBe(false);
    expect(r.json.error.code).toBe('LOCK_BUSY');
    const msg: string = r.json.error.message;
    expect(msg).toContain(String(process.pid));
    expect(msg).toMatch(/\bx\b/); // the holder's actor
    expect(msg).toMatch(/\bgrant\b/);
    expect(msg).toContain(NOW);
    expect(Date.now() - started).toBeLessThan(10_000); // the timeout was honoured, not the default
    expect(readFileSync(historyFile(ws, 'c1'), 'utf8')).toBe(before);
    // the lock is left alone
    expect(existsSync(lockDir())).toBe(true);
  });

  it('read-only commands do not take the lock', () => {
    holdLock(process.pid);
    const r = kj(ws, ['status', 'c1', '--lock-timeout', '200']);
    expect(r.code).toBe(0);
    expect(kj(ws, ['history', 'c1', '--limit', '1']).code).toBe(0);
  });

  it('a lock whose holder pid is dead is recovered and the command succeeds', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']);
    expect(dead.status).toBe(0);
    holdLock(dead.pid!);
    const n = history(ws, 'c1').length;
    const r = kj(ws, ['grant', 'c1', 'local:read', '--lock-timeout', '200']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.contract.controls.granted).toContain('local:read');
    expect(history(ws, 'c1')).toHaveLength(n + 1);
    expect(existsSync(lockDir())).toBe(false); // released after use
  });
});
