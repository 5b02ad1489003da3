/**
 * Who may act: `run.allowed_actors` (NOT_OWNER from run, resume and the dry run) and
 * `policy.admins` (NOT_ADMIN from every catalog, access-policy and waiver change), and the change
 * log naming every actor. Through the built CLI, in temp workspaces.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SIMULATIONS, setUpCatalog } from '../helpers/aec.js';
import type { Json } from '../helpers/cli.js';
import { contractDir, editConfig, fixture, history, historyFile, kair, kairPath, kj, makeWorkspace, ok, removeWorkspaces, snapshotFile } from '../helpers/cli.js';

afterAll(removeWorkspaces);

const as = (actor: string) => ({ env: { KAIR_ACTOR: actor } });

/** alice proposes `m` (the Kimi stub plan), bob approves it. */
function aliceProposesBobApproves(ws: string, id = 'm'): void {
  ok(ws, ['propose', 'Add chat', '--id', id], as('alice'));
  ok(ws, ['plan', id, '--file', fixture('custom-kimi.json')], as('alice'));
  ok(ws, ['request-approval', id], as('alice'));
  ok(ws, ['approve', id], as('bob'));
}

const runFolders = (ws: string, id: string) => {
  const dir = join(contractDir(ws, id), 'artifacts', 'run');
  return existsSync(dir) ? readdirSync(dir) : [];
};

describe('run.allowed_actors: NOT_OWNER', () => {
  it('mallory may not run a contract alice proposed and bob approved under ["@proposer","@approvers"]; nothing runs, the refusal names her; bob and alice may', () => {
    const ws = makeWorkspace();
    editConfig(ws, (c) => (c.run = { allowed_actors: ['@proposer', '@approvers'] }));
    aliceProposesBobApproves(ws);
    const before = history(ws, 'm').length;

    const r = kj(ws, ['run', 'm', '--by', 'mallory']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'NOT_OWNER', details: { contract_id: 'm', actor: 'mallory', command: 'run', allowed_actors: ['@proposer', '@approvers'] } });
    expect(r.json.error.message).toContain('run.allowed_actors');
    expect(r.json.error.details.hint).toContain('run.allowed_actors');
    // Nothing ran: no run folder, no Kimi envelope, state unchanged; the refusal is the one
    // gate.blocked event every refused lifecycle command records, naming who was refused.
    expect(runFolders(ws, 'm')).toEqual([]);
    expect(existsSync(kairPath(ws, 'kair.db'))).toBe(false);
    const h = history(ws, 'm');
    expect(h).toHaveLength(before + 1);
    expect(h.at(-1)).toMatchObject({ type: 'gate.blocked', actor: 'mallory', state: 'APPROVED', data: { command: 'run', code: 'NOT_OWNER' } });
    expect(JSON.parse(readFileSync(snapshotFile(ws, 'm'), 'utf8')).state).toBe('APPROVED');

    // The dry run refuses the same way and writes nothing at all.
    const hist = readFileSync(historyFile(ws, 'm'), 'utf8');
    const dry = kj(ws, ['run', 'm', '--dry-run', '--by', 'mallory']);
    expect(dry.code).toBe(3);
    expect(dry.json.error.code).toBe('NOT_OWNER');
    expect(readFileSync(historyFile(ws, 'm'), 'utf8')).toBe(hist);

    const byBob = kj(ws, ['run', 'm', '--by', 'bob']);
    expect(byBob.code, byBob.stdout + byBob.stderr).toBe(0);
    expect(byBob.json).toMatchObject({ ok: true, state: 'COMPLETED' });

    // The proposer may run too (a second contract, so this run is not a retry of bob's).
    aliceProposesBobApproves(ws, 'm2');
    expect(kj(ws, ['run', 'm2', '--by', 'alice']).code).toBe(0);
  });

  it('resume is held to the same list; a name in the list may act; the default ["*"] lets anyone run', () => {
    const ws = makeWorkspace();
    aliceProposesBobApproves(ws);
    const paused = kj(ws, ['run', 'm', '--pause-at', 'review-delta', '--by', 'mallory']);
    expect(paused.code, paused.stdout + paused.stderr).toBe(0);
    expect(paused.json.state).toBe('PAUSED');

    editConfig(ws, (c) => (c.run = { allowed_actors: ['@approvers', 'carol'] }));
    const r = kj(ws, ['resume', 'm', '--by', 'mallory']);
    expect(r.code).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'NOT_OWNER', details: { command: 'resume', actor: 'mallory' } });
    expect(JSON.parse(readFileSync(snapshotFile(ws, 'm'), 'utf8')).state).toBe('PAUSED');
    // alice proposed it, but @proposer is not in the list now.
    expect(kj(ws, ['resume', 'm', '--by', 'alice']).json.error.code).toBe('NOT_OWNER');
    const byCarol = kj(ws, ['resume', 'm', '--by', 'carol']);
    expect(byCarol.code, byCarol.stdout + byCarol.stderr).toBe(0);
    expect(byCarol.json.state).toBe('COMPLETED');
  });

  it('an unknown @group in run.allowed_actors or any @group in policy.admins is CONFIG_INVALID naming the path', () => {
    const ws = makeWorkspace();
    editConfig(ws, (c) => {
      c.run = { allowed_actors: ['@approver'] };
      c.policy = { admins: ['@proposer'] };
    });
    const r = kj(ws, ['list']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('CONFIG_INVALID');
    expect(r.json.error.details.problems.map((p: Json) => p.path).sort()).toEqual(['policy.admins[0]', 'run.allowed_actors[0]']);
  });
});

describe('policy.admins: NOT_ADMIN', () => {
  const sim = join(SIMULATIONS, 'ping.json');

  it('a non-admin changes neither the catalog nor the access policy nor the waivers; nothing is written; an admin can', () => {
    const ws = makeWorkspace();
    editConfig(ws, (c) => (c.policy = { admins: ['root'] }));
    const refused: string[][] = [
      ['sim', 'register', '--file', sim],
      ['access', 'allow', 'alice', 'system:ping'],
      ['access', 'deny', 'alice', 'system:ping'],
      ['access', 'require-ap', 'alice', 'system:ping'],
      ['aec', 'waiver', 'add', '--until', '2026-02-01T00:00:00Z', '--reason', 'incident'],
    ];
    for (const args of refused) {
      const r = kj(ws, [...args, '--by', 'mallory']);
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(3);
      expect(r.json.error).toMatchObject({ code: 'NOT_ADMIN', details: { actor: 'mallory', admins: ['root'] } });
      expect(r.json.error.details.hint).toContain('root');
    }
    // Refused before the database is opened: it does not even exist yet.
    expect(existsSync(kairPath(ws, 'kair.db'))).toBe(false);

    ok(ws, ['sim', 'register', '--file', sim, '--by', 'root']);
    for (const verb of ['activate', 'deprecate', 'disable']) {
      const r = kj(ws, ['sim', verb, 'ping', '--by', 'mallory']);
      expect(r.code).toBe(3);
      expect(r.json.error.code).toBe('NOT_ADMIN');
    }
    expect(ok(ws, ['sim', 'show', 'ping']).simulation.status).toBe('Draft');
    expect(ok(ws, ['sim', 'log', 'ping']).entries.map((e: Json) => [e.action, e.actor])).toEqual([['register', 'root']]);
    ok(ws, ['sim', 'activate', 'ping', '--by', 'root']);
    ok(ws, ['access', 'allow', 'alice', 'system:ping', '--by', 'root']);
    expect(ok(ws, ['access', 'list']).rules).toEqual([{ actor: 'alice', action: 'system:ping', decision: 'allow' }]);
  });

  it('argument errors come first: a non-admin with a bad simulation file gets exit 2', () => {
    const ws = makeWorkspace();
    editConfig(ws, (c) => (c.policy = { admins: ['root'] }));
    const r = kj(ws, ['sim', 'register', '--file', join(ws, 'missing.json'), '--by', 'mallory']);
    expect(r.code).toBe(2);
  });
});

describe('the change log names every actor', () => {
  it('an allow by mallory then a deny by root both show in `kair access log`, with time; register/activate by two actors in `sim log`', () => {
    const ws = makeWorkspace();
    ok(ws, ['access', 'allow', 'alice', 'invoice:send', '--by', 'mallory'], { env: { KAIR_NOW: '2026-01-30T12:00:00Z' } });
    ok(ws, ['access', 'deny', 'alice', 'invoice:send', '--by', 'root'], { env: { KAIR_NOW: '2026-01-30T12:05:00Z' } });
    const log = ok(ws, ['access', 'log']).entries;
    expect(log.map((e: Json) => [e.actor, e.action, e.changed_at, e.change.decision])).toEqual([
      ['mallory', 'allow', '2026-01-30T12:00:00.000Z', { from: null, to: 'allow' }],
      ['root', 'deny', '2026-01-30T12:05:00.000Z', { from: 'allow', to: 'deny' }],
    ]);
    expect(kair(ws, ['access', 'log']).stdout).toMatch(/2026-01-30T12:00:00.000Z +mallory +allow[\s\S]*2026-01-30T12:05:00.000Z +root +deny/);

    ok(ws, ['sim', 'register', '--file', join(SIMULATIONS, 'ping.json'), '--by', 'dora']);
    ok(ws, ['sim', 'activate', 'ping', '--by', 'erin']);
    expect(ok(ws, ['sim', 'log', 'ping']).entries.map((e: Json) => [e.action, e.actor])).toEqual([
      ['register', 'dora'],
      ['activate', 'erin'],
    ]);
  });

  it('a change-log row edited with its trigger dropped (mallory rewritten as root) breaks verify (exit 7)', () => {
    const ws = makeWorkspace();
    setUpCatalog(ws, ['ping']);
    ok(ws, ['access', 'allow', 'alice', 'invoice:send', '--by', 'mallory']);
    expect(kj(ws, ['verify']).code).toBe(0);
    const db = new Database(kairPath(ws, 'kair.db'));
    db.exec('DROP TRIGGER change_log_no_update');
    expect(db.prepare("UPDATE change_log SET actor = 'root' WHERE actor = 'mallory'").run().changes).toBe(1);
    // Put a trigger of the same name back, so only the chain can tell.
    db.exec("CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;");
    db.close();
    const v = kj(ws, ['verify']);
    expect(v.code, v.stdout).toBe(7);
    expect(v.json.problems.map((p: Json) => p.kind)).toContain('ledger_chain_broken');
    expect(v.json.problems.find((p: Json) => p.kind === 'ledger_chain_broken').message).toContain('change_log');
  });
});
