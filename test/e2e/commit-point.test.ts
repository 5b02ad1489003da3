/**
 * The commit point from the CLI (issue 11): once a command's history append is durable, nothing
 * after it (snapshot, index, copies) changes its exit code, and temp files a killed writer left
 * are never read as data, are counted by verify and are swept by the next writer.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bring, contractDir, history, kairPath, kj, makeWorkspace, ok, removeWorkspaces, snapshot } from '../helpers/cli.js';

afterAll(removeWorkspaces);

/** Holds the index lock as a live process would (this test's own pid is alive). */
function holdIndexLock(ws: string): void {
  const locks = kairPath(ws, 'locks');
  mkdirSync(join(locks, 'index.lock'), { recursive: true });
  const holder = { pid: process.pid, host: hostname(), actor: 'someone', command: 'grant', since: '2026-01-30T12:00:00.000Z' };
  writeFileSync(join(locks, 'index.holder.json'), JSON.stringify(holder));
  mkdirSync(join(locks, '_index.lock'), { recursive: true });
  writeFileSync(join(locks, '_index.lock', 'holder.json'), JSON.stringify({ ...holder, boot_id: null, pid_start: null }));
}

describe('after the commit point nothing changes the exit code', () => {
  it('request-approval with the index lock busy: exit 0 at once, the event recorded and the index entry appended (writers never wait for the index lock)', () => {
    const ws = makeWorkspace();
    bring(ws, 'c1', 'PLANNED');
    holdIndexLock(ws);
    const t = Date.now();
    const r = kj(ws, ['request-approval', 'c1', '--lock-timeout', '3000']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(Date.now() - t).toBeLessThan(2500);
    expect(r.stderr).not.toMatch(/warning/);
    expect(history(ws, 'c1').at(-1)).toMatchObject({ type: 'request-approval', state: 'AWAITING_APPROVAL' });
    expect(snapshot(ws, 'c1').state).toBe('AWAITING_APPROVAL');
    expect(ok(ws, ['list', '--limit', '5']).contracts).toEqual([expect.objectContaining({ id: 'c1', state: 'AWAITING_APPROVAL' })]);
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(0);
    expect(v.json.warnings.map((w: { kind: string }) => w.kind)).not.toContain('index_behind');
  });

  it('run with the index lock busy: exit 0 COMPLETED, never left RUNNING', () => {
    const ws = makeWorkspace();
    bring(ws, 'c1', 'APPROVED');
    holdIndexLock(ws);
    const r = kj(ws, ['run', 'c1', '--lock-timeout', '300']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.state).toBe('COMPLETED');
    expect(snapshot(ws, 'c1').state).toBe('COMPLETED');
    expect(snapshot(ws, 'c1').running).toBeUndefined();
  });
});

describe('temp files', () => {
  it('are never read as data, are temp_file warnings, and the next writer removes them', () => {
    const ws = makeWorkspace();
    bring(ws, 'c1', 'PLANNED');
    const dir = contractDir(ws, 'c1');
    const temps = [
      join(dir, 'contract.json.2419871234'),
      join(dir, 'plan', 'plan_v1.json.77'),
      join(dir, 'dpc', 'dpc_v1.json.3'),
      kairPath(ws, 'contracts', 'index.json.1234567'),
    ];
    for (const t of temps) writeFileSync(t, '{"half": ');
    mkdirSync(kairPath(ws, 'tmp', 'propose-ghost-999999-1'), { recursive: true });
    writeFileSync(kairPath(ws, 'tmp', 'index.json.42'), '[');

    const list = kj(ws, ['list']);
    expect(list.json.contracts.map((c: { id: string }) => c.id)).toEqual(['c1']);
    const v = kj(ws, ['verify']);
    expect(v.code, JSON.stringify(v.json)).toBe(0);
    expect(v.json.warnings.filter((w: { kind: string }) => w.kind === 'temp_file')).toHaveLength(temps.length + 2);

    ok(ws, ['grant', 'c1', 'local:read']);
    for (const t of temps.slice(0, 3)) expect(existsSync(t), t).toBe(false);
    expect(readdirSync(kairPath(ws, 'tmp'))).toEqual([]);
  });
});
