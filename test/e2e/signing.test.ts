/**
 * Signed approvals: `approve --sign [--key]`, `approvals.allowed_signers_file`,
 * `approvals.require_signed` in `approve` and `run`, and `verify`'s `signature_invalid`.
 * Throwaway ed25519 keys are made with ssh-keygen; every crafted signature is made with a key
 * the allowed signers file trusts, so only the message it covers makes it wrong.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/domain/canonical.js';
import {
  BIN,
  NOW,
  baseEnv,
  cloneWorkspace,
  editConfig,
  fixture,
  history,
  historyFile,
  kj,
  makeTempDir,
  makeWorkspace,
  ok,
  readJson,
  removeWorkspaces,
  snapshotFile,
  type HistoryEvent,
  type Json,
} from '../helpers/cli.js';

afterAll(removeWorkspaces);

const SSH_KEYGEN = spawnSync('sh', ['-c', 'command -v ssh-keygen'], { encoding: 'utf8' }).stdout.trim();
const GIT = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim();

let KEYS: string;
const key = (name: string) => join(KEYS, name);
const pub = (name: string) => readFileSync(`${key(name)}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
const fingerprint = (name: string) => spawnSync(SSH_KEYGEN, ['-l', '-f', `${key(name)}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1]!;

/** Signs `message` like kair does, outside kair (for crafted signatures). */
function sshSign(name: string, message: string): string {
  const r = spawnSync(SSH_KEYGEN, ['-Y', 'sign', '-n', 'kair-approval', '-f', key(name)], { input: message, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

/** An environment without an agent, so a passphrase key cannot be unlocked behind the test's back. */
const NO_AGENT = { SSH_AUTH_SOCK: undefined };

/** A folder for PATH holding only the named programs (node is spawned by absolute path). */
function binWith(programs: Record<string, string>): string {
  const dir = makeTempDir('kair-bin-');
  for (const [name, target] of Object.entries(programs)) symlinkSync(target, join(dir, name));
  return dir;
}

/** A fake ssh-keygen that logs each call (and its environment) to `log`, then runs the real one. */
function spyKeygen(log: string): string {
  const dir = makeTempDir('kair-spy-');
  const script = join(dir, 'ssh-keygen');
  writeFileSync(script, `#!/bin/sh\n{ echo "CALL $*"; env; } >> '${log}'\nexec '${SSH_KEYGEN}' "$@"\n`);
  chmodSync(script, 0o755);
  return dir;
}

const signersFile = (ws: string) => join(ws, '.kair', 'allowed_signers');
const writeSigners = (ws: string, lines: string[]) => writeFileSync(signersFile(ws), lines.join('\n') + '\n');

/** sha256(prev + canonical(event without hash)) from the first edited event on: a careful hand edit. */
function rewriteHistory(ws: string, id: string, edit: (events: HistoryEvent[]) => void): void {
  const events = history(ws, id);
  edit(events);
  let prev = '0'.repeat(64);
  for (const e of events) {
    const { hash: _old, ...rest } = e;
    void _old;
    rest.prev = prev;
    e.prev = prev;
    e.hash = createHash('sha256').update(prev + canonicalJson(rest)).digest('hex');
    prev = e.hash;
  }
  writeFileSync(historyFile(ws, id), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  // The snapshot names the old head; without it verify rebuilds the fold from history.
  rmSync(snapshotFile(ws, id), { force: true });
  rmSync(join(ws, '.kair', 'contracts', id, 'checkpoints'), { recursive: true, force: true });
}

const approveEvent = (ws: string, id: string) => history(ws, id).filter((e) => e.type === 'approve');
const lastApprove = (ws: string, id: string) => approveEvent(ws, id).at(-1)!;

/** The message kair signs for an approval. */
const message = (f: { ws: string; id: string; version: number; sha: string; actor: string; at: string }) => `kair-approval:v1:${f.ws}:${f.id}:v${f.version}:${f.sha}:${f.actor}:${f.at}`;

/** A workspace with `c1` AWAITING_APPROVAL (custom-kimi plan) and alice + bob in the allowed signers file. */
let T: string;
let WS_ID: string;
let SHA: string;
beforeAll(() => {
  expect(SSH_KEYGEN, 'ssh-keygen must be on PATH for these tests').not.toBe('');
  KEYS = makeTempDir('kair-keys-');
  for (const [name, pass] of [['alice', ''], ['bob', ''], ['mallory', ''], ['locked', 'secret']] as const) {
    const r = spawnSync(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', pass, '-f', key(name), '-C', name]);
    if (r.status !== 0) throw new Error(`ssh-keygen -t ed25519 failed: ${r.stderr}`);
  }
  T = makeWorkspace();
  ok(T, ['propose', 'Sign me', '--id', 'c1']);
  SHA = ok(T, ['plan', 'c1', '--file', fixture('custom-kimi.json')]).plan_sha256;
  ok(T, ['request-approval', 'c1']);
  writeSigners(T, [`alice ${pub('alice')}`, `bob ${pub('bob')}`]);
  WS_ID = readJson(join(T, '.kair', 'config.json')).workspace_id;
});

describe('approve --sign', () => {
  it('records the armored signature, the signed time, the key fingerprint and the allowed signers sha; the message is the documented one', () => {
    const ws = cloneWorkspace(T);
    const tmp = makeTempDir('kair-tmpdir-');
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice'], { env: { TMPDIR: tmp } });
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, recorded: true, contract: { state: 'APPROVED' } });
    const e = lastApprove(ws, 'c1');
    expect(e.actor).toBe('alice');
    const sig = e.data.signature;
    expect(Object.keys(sig).sort()).toEqual(['allowed_signers_sha256', 'armored', 'at', 'fingerprint']);
    expect(sig.armored).toMatch(/^-----BEGIN SSH SIGNATURE-----\n[\s\S]+\n-----END SSH SIGNATURE-----\n$/);
    expect(sig.at).toBe(NOW);
    expect(sig.fingerprint).toBe(fingerprint('alice'));
    expect(sig.allowed_signers_sha256).toBe(createHash('sha256').update(readFileSync(signersFile(ws))).digest('hex'));
    // Anyone can check it with ssh-keygen alone, over the documented message.
    const sigFile = join(makeTempDir(), 'sig');
    writeFileSync(sigFile, sig.armored);
    const v = spawnSync(SSH_KEYGEN, ['-Y', 'verify', '-f', signersFile(ws), '-I', 'alice', '-n', 'kair-approval', '-s', sigFile], {
      input: message({ ws: WS_ID, id: 'c1', version: 1, sha: SHA, actor: 'alice', at: NOW }),
      encoding: 'utf8',
    });
    expect(v.status, v.stderr).toBe(0);
    expect(kj(ws, ['verify'], { env: { TMPDIR: tmp } }).code).toBe(0);
    // The signature and signers copies ssh-keygen read are removed; nothing was written into .kair/ for them.
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(join(ws, '.kair', 'tmp')) ? readdirSync(join(ws, '.kair', 'tmp')) : []).toEqual([]);
  });

  it('--key defaults to git user.signingKey; unset (or no git) is USAGE_ERROR naming --key', () => {
    const ws = cloneWorkspace(T);
    const gitconfig = join(makeTempDir(), 'gitconfig');
    writeFileSync(gitconfig, '');
    const gitEnv = { GIT_CONFIG_GLOBAL: gitconfig, GIT_CONFIG_NOSYSTEM: '1', HOME: makeTempDir() };
    const unset = kj(ws, ['approve', 'c1', '--sign', '--actor', 'alice'], { env: gitEnv });
    expect(unset.code).toBe(2);
    expect(unset.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--key' } });
    expect(unset.json.error.message).toContain('--key');
    const noGit = kj(ws, ['approve', 'c1', '--sign', '--actor', 'alice'], { env: { ...gitEnv, PATH: binWith({ 'ssh-keygen': SSH_KEYGEN }) } });
    expect(noGit.code).toBe(2);
    expect(noGit.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--key' } });
    const keyAlone = kj(ws, ['approve', 'c1', '--key', key('alice'), '--actor', 'alice']);
    expect(keyAlone.code).toBe(2);
    expect(keyAlone.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--key' } });
    expect(approveEvent(ws, 'c1')).toHaveLength(0);
    if (GIT) {
      writeFileSync(gitconfig, `[user]\n\tsigningKey = ${key('alice')}\n`);
      const r = kj(ws, ['approve', 'c1', '--sign', '--actor', 'alice'], { env: gitEnv });
      expect(r.code, r.stdout).toBe(0);
      expect(lastApprove(ws, 'c1').data.signature.fingerprint).toBe(fingerprint('alice'));
    }
  });

  it('without ssh-keygen on PATH: SIGNING_UNAVAILABLE (exit 2), nothing written', () => {
    const ws = cloneWorkspace(T);
    const before = readFileSync(historyFile(ws, 'c1'), 'utf8');
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice'], { env: { PATH: binWith({}) } });
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('SIGNING_UNAVAILABLE');
    expect(r.json.error.details.hint).toBeTruthy();
    expect(readFileSync(historyFile(ws, 'c1'), 'utf8')).toBe(before);
  });

  it('a key with a passphrase and no agent: SIGNING_FAILED (exit 2) with ssh-keygen\'s reason, no prompt, nothing written', () => {
    const ws = cloneWorkspace(T);
    const before = readFileSync(historyFile(ws, 'c1'), 'utf8');
    const started = Date.now();
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('locked'), '--actor', 'alice'], { env: NO_AGENT });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('SIGNING_FAILED');
    expect(r.json.error.details.reason).toMatch(/passphrase/);
    expect(r.json.error.message).not.toMatch(/\n/);
    expect(readFileSync(historyFile(ws, 'c1'), 'utf8')).toBe(before);
    // A key file that is not a regular file is refused before ssh-keygen could block on it.
    const r2 = kj(ws, ['approve', 'c1', '--sign', '--key', KEYS, '--actor', 'alice']);
    expect(r2.code).toBe(2);
    expect(r2.json.error).toMatchObject({ code: 'USAGE_ERROR', details: { flag: '--key' } });
  });

  it('ssh-keygen runs with the allowlisted environment only, without a terminal or kair\'s variables', () => {
    const ws = cloneWorkspace(T);
    const log = join(makeTempDir(), 'calls.log');
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice'], { env: { PATH: `${spyKeygen(log)}:${process.env.PATH}`, SECRET_TOKEN: 'hunter2' } });
    expect(r.code, r.stdout).toBe(0);
    const text = readFileSync(log, 'utf8');
    expect(text).toMatch(/CALL -Y sign -n kair-approval -f /);
    expect(text).toMatch(/CALL -Y verify /);
    expect(text).not.toMatch(/SECRET_TOKEN|KAIR_ACTOR|KAIR_NOW/);
    expect(text).toMatch(/SSH_ASKPASS_REQUIRE=force/);
  });

  it('with require_signed false, a signature the allowed signers file does not accept is refused (SIGNATURE_INVALID), never recorded', () => {
    const ws = cloneWorkspace(T);
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('mallory'), '--actor', 'alice']);
    expect(r.code).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'SIGNATURE_INVALID', details: { actor: 'alice', fingerprint: fingerprint('mallory') } });
    rmSync(signersFile(ws));
    const missing = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    expect(missing.code).toBe(3);
    expect(missing.json.error.code).toBe('SIGNATURE_INVALID');
    expect(missing.json.error.message).toContain('does not exist');
    expect(approveEvent(ws, 'c1')).toHaveLength(0);
    expect(history(ws, 'c1').filter((e) => e.type === 'gate.blocked').map((e) => e.data.code)).toEqual(['SIGNATURE_INVALID', 'SIGNATURE_INVALID']);
  });

  it('a repeat approve that adds a signature to an unsigned approval is recorded; a second signed repeat is not', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['approve', 'c1', '--actor', 'alice']);
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ recorded: true, contract: { state: 'APPROVED' } });
    expect(approveEvent(ws, 'c1').map((e) => [e.actor, e.data.signature !== undefined, e.data.approvers])).toEqual([
      ['alice', false, 1],
      ['alice', true, 1],
    ]);
    const again = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    expect(again.json).toMatchObject({ ok: true, recorded: false });
    expect(approveEvent(ws, 'c1')).toHaveLength(2);
    expect(kj(ws, ['verify']).code).toBe(0);
  });
});

describe('approve --sign killed mid-way', () => {
  it('SIGKILL while ssh-keygen checks the new signature leaves its kair-sig-<pid> folder; the next kair that signs removes it', async () => {
    const ws = cloneWorkspace(T);
    const tmp = makeTempDir('kair-tmpdir-');
    const marker = join(makeTempDir('kair-marker-'), 'verify.pid');
    // ssh-keygen signs for real and then hangs in -Y verify, the step that uses the private folder.
    const dir = makeTempDir('kair-slow-');
    const script = join(dir, 'ssh-keygen');
    writeFileSync(script, `#!/bin/sh\ncase "$*" in *"-Y verify"*) echo $$ > '${marker}'; exec sleep 30;; esac\nexec '${SSH_KEYGEN}' "$@"\n`);
    chmodSync(script, 0o755);
    const child = spawn(process.execPath, [BIN, 'approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice'], { cwd: ws, env: baseEnv({ TMPDIR: tmp, PATH: `${dir}:${process.env.PATH}` }), stdio: 'ignore' });
    const closed = new Promise<string | null>((res) => child.on('close', (_c, sig) => res(sig)));
    for (const t0 = Date.now(); !(existsSync(marker) && readFileSync(marker, 'utf8').trim() !== ''); await new Promise((r) => setTimeout(r, 25))) {
      if (Date.now() - t0 > 15_000) throw new Error('ssh-keygen -Y verify never started');
    }
    child.kill('SIGKILL');
    expect(await closed).toBe('SIGKILL');
    process.kill(Number(readFileSync(marker, 'utf8')), 'SIGKILL');
    const leftovers = () => readdirSync(tmp).filter((n) => n.startsWith(`kair-sig-${child.pid}-`));
    expect(leftovers()).toHaveLength(1);
    // Nothing was approved; the next signing approve (real ssh-keygen) sweeps the dead folder.
    expect(lastApprove(ws, 'c1')).toBeUndefined();
    expect(kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice'], { env: { TMPDIR: tmp } }).code).toBe(0);
    expect(leftovers()).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('kair show: signed and verified', () => {
  it('an unsigned approval is signed false, verified null; a signed one verified true; after its key is removed, verified false', () => {
    const ws = cloneWorkspace(T);
    ok(ws, ['config', 'set', 'approvals.min', '2']);
    ok(ws, ['approve', 'c1', '--actor', 'bob']);
    expect(ok(ws, ['show', 'c1']).approvals).toEqual([expect.objectContaining({ actor: 'bob', signed: false, verified: null })]);
    ok(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    const shown = ok(ws, ['show', 'c1']).approvals;
    expect(shown.find((a: Json) => a.actor === 'alice')).toMatchObject({ signed: true, verified: true });
    writeSigners(ws, [`bob ${pub('bob')}`]);
    expect(ok(ws, ['show', 'c1']).approvals.find((a: Json) => a.actor === 'alice')).toMatchObject({ signed: true, verified: false });
  });
});

describe('approvals.allowed_signers_file', () => {
  it('is read relative to the workspace root, may be a symlink to a regular file, and is refused (not blocked on) as a FIFO or above the input limit', () => {
    const ws = cloneWorkspace(T);
    mkdirSync(join(ws, 'trust'));
    writeFileSync(join(ws, 'trust', 'signers'), `alice ${pub('alice')}\n`);
    symlinkSync(join(ws, 'trust', 'signers'), join(ws, 'trust', 'link'));
    editConfig(ws, (c) => (c.approvals = { ...c.approvals, allowed_signers_file: 'trust/link' }));
    const good = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice'], { cwd: join(ws, 'trust') });
    expect(good.code, good.stdout).toBe(0);

    const fifoWs = cloneWorkspace(T);
    unlinkSync(signersFile(fifoWs));
    expect(spawnSync('mkfifo', [signersFile(fifoWs)]).status).toBe(0);
    const fifo = kj(fifoWs, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    expect(fifo.code).toBe(3);
    expect(fifo.json.error.code).toBe('SIGNATURE_INVALID');
    expect(fifo.json.error.message).toMatch(/named pipe/);

    const bigWs = cloneWorkspace(T);
    editConfig(bigWs, (c) => (c.limits = { max_input_bytes: 4096 }));
    writeSigners(bigWs, [`alice ${pub('alice')}`, ...Array.from({ length: 100 }, (_, i) => `user${i} ${pub('bob')}`)]);
    const big = kj(bigWs, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    expect(big.code).toBe(3);
    expect(big.json.error.message).toMatch(/larger than 4096 bytes/);
    expect(approveEvent(fifoWs, 'c1')).toHaveLength(0);
    expect(approveEvent(bigWs, 'c1')).toHaveLength(0);
  });
});

describe('approvals.require_signed', () => {
  /** c1 approved by alice unsigned, then require_signed turned on. */
  let U: string;
  beforeAll(() => {
    U = cloneWorkspace(T);
    ok(U, ['approve', 'c1', '--actor', 'alice']);
    editConfig(U, (c) => (c.approvals = { ...c.approvals, require_signed: true }));
  });

  it('approve without --sign is SIGNATURE_REQUIRED (exit 3), one gate.blocked, no approval', () => {
    const ws = cloneWorkspace(T);
    editConfig(ws, (c) => (c.approvals = { ...c.approvals, require_signed: true }));
    const r = kj(ws, ['approve', 'c1', '--actor', 'bob']);
    expect(r.code).toBe(3);
    expect(r.json.error).toMatchObject({ code: 'SIGNATURE_REQUIRED', details: { contract_id: 'c1' } });
    expect(r.json.error.details.hint).toContain('--sign');
    const added = history(ws, 'c1').slice(-1);
    expect(added[0]).toMatchObject({ type: 'gate.blocked', data: { command: 'approve', code: 'SIGNATURE_REQUIRED' } });
    expect(approveEvent(ws, 'c1')).toHaveLength(0);
  });

  it('approve --sign with a key not listed for the actor is SIGNATURE_INVALID (exit 3)', () => {
    const ws = cloneWorkspace(T);
    editConfig(ws, (c) => (c.approvals = { ...c.approvals, require_signed: true }));
    for (const [actor, k] of [['mallory', 'mallory'], ['alice', 'bob']]) {
      const r = kj(ws, ['approve', 'c1', '--sign', '--key', key(k!), '--actor', actor!]);
      expect(r.code).toBe(3);
      expect(r.json.error.code).toBe('SIGNATURE_INVALID');
    }
    expect(approveEvent(ws, 'c1')).toHaveLength(0);
  });

  it('run counts only approvals whose signature verifies now: unsigned → APPROVAL_REQUIRED; signed → passes; key removed → APPROVAL_REQUIRED again', () => {
    const ws = cloneWorkspace(U);
    const unsigned = kj(ws, ['run', 'c1', '--dry-run']);
    expect(unsigned.code).toBe(3);
    expect(unsigned.json.error).toMatchObject({ code: 'APPROVAL_REQUIRED', details: { approvers: [], require_signed: true } });
    ok(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    expect(kj(ws, ['run', 'c1', '--dry-run']).code).toBe(0);
    writeSigners(ws, [`bob ${pub('bob')}`]);
    const removed = kj(ws, ['run', 'c1', '--dry-run']);
    expect(removed.code).toBe(3);
    expect(removed.json.error.code).toBe('APPROVAL_REQUIRED');
    expect(removed.json.error.details.rejected).toEqual([expect.objectContaining({ actor: 'alice' })]);
    // verify checks against the file as it is now: the removed key's approval is a problem.
    const v = kj(ws, ['verify']);
    expect(v.code).toBe(7);
    expect(v.json.problems.map((p: Json) => p.kind)).toEqual(['signature_invalid']);
  });

  it("a key retired with valid-before keeps the approvals it signed before that date (checked at the signature's time)", () => {
    const ws = cloneWorkspace(U);
    ok(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    writeSigners(ws, [`alice valid-before="20260601" ${pub('alice')}`, `alice valid-after="20260601" ${pub('bob')}`]);
    expect(kj(ws, ['run', 'c1', '--dry-run']).code).toBe(0);
    expect(kj(ws, ['verify']).code).toBe(0);
    writeSigners(ws, [`alice valid-before="20260101" ${pub('alice')}`]);
    expect(kj(ws, ['run', 'c1', '--dry-run']).code).toBe(3);
  });

  it('with require_signed true the run gate calls ssh-keygen; with it false no ssh-keygen is spawned on the run path at all', () => {
    const ws = cloneWorkspace(U);
    ok(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    const log = join(makeTempDir(), 'calls.log');
    const path = `${spyKeygen(log)}:${process.env.PATH}`;
    expect(kj(ws, ['run', 'c1', '--dry-run'], { env: { PATH: path } }).code).toBe(0);
    expect(readFileSync(log, 'utf8')).toMatch(/CALL -Y verify/);
    rmSync(log);
    editConfig(ws, (c) => (c.approvals = { ...c.approvals, require_signed: false }));
    const r = kj(ws, ['run', 'c1'], { env: { PATH: path } });
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.status).toBe('COMPLETED');
    expect(existsSync(log)).toBe(false);
    // And without any ssh-keygen on PATH.
    const ws2 = cloneWorkspace(T);
    ok(ws2, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    const r2 = kj(ws2, ['run', 'c1'], { env: { PATH: binWith({}) } });
    expect(r2.code, r2.stdout).toBe(0);
  });
});

describe('signature checks stay off the path when require_signed is false', () => {
  it('with a signed approval on record, run, status and an unsigned approve never start ssh-keygen; with require_signed true run starts it once per signed approval', () => {
    const log = join(makeTempDir(), 'calls.log');
    const spy = { env: { PATH: `${spyKeygen(log)}:${process.env.PATH}` } };
    const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('CALL ')) : []);

    // Two approvals needed; alice's is signed (before the spy: signing itself runs ssh-keygen).
    const ws = cloneWorkspace(T);
    editConfig(ws, (c) => (c.approvals = { ...c.approvals, min: 2 }));
    const on = cloneWorkspace(T);
    for (const w of [ws, on]) ok(w, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    ok(ws, ['status', 'c1'], spy);
    ok(ws, ['approve', 'c1', '--actor', 'bob'], spy);
    expect(ok(ws, ['status', 'c1'], spy).contract.state).toBe('APPROVED');
    expect(kj(ws, ['run', 'c1', '--dry-run'], spy).code).toBe(0);
    const r = kj(ws, ['run', 'c1'], spy);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(ok(ws, ['status', 'c1'], spy).contract.state).toBe('COMPLETED');
    expect(calls()).toEqual([]);

    editConfig(on, (c) => (c.approvals = { ...c.approvals, require_signed: true }));
    expect(ok(on, ['status', 'c1'], spy).contract.state).toBe('APPROVED');
    expect(calls()).toEqual([]);
    const signed = kj(on, ['run', 'c1'], spy);
    expect(signed.code, signed.stdout + signed.stderr).toBe(0);
    expect(calls()).toEqual([expect.stringMatching(/^CALL -Y verify -f \S+ -I alice -n kair-approval -s \S+ -O verify-time=\d{14}Z$/)]);
  });
});

describe('verify: signature_invalid', () => {
  /** c1 approved by alice with a good signature. */
  let S: string;
  let good: HistoryEvent;
  beforeAll(() => {
    S = cloneWorkspace(T);
    ok(S, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', 'alice']);
    good = lastApprove(S, 'c1');
  });

  const base = () => ({ ws: WS_ID, id: 'c1', version: 1, sha: SHA, actor: 'alice', at: NOW });

  /** Replaces the recorded signature with alice's (trusted) signature over `msg`. */
  function withSignatureOver(msg: string, extra: (sig: Json) => void = () => {}): string {
    const ws = cloneWorkspace(S);
    rewriteHistory(ws, 'c1', (events) => {
      const e = events.find((x) => x.seq === good.seq)!;
      e.data.signature = { ...e.data.signature, armored: sshSign('alice', msg) };
      extra(e.data.signature);
    });
    return ws;
  }

  const problemKinds = (ws: string) => {
    const r = kj(ws, ['verify']);
    return { code: r.code, kinds: (r.json.problems as Json[]).map((p) => p.kind) };
  };

  it('a fresh signature over the exact message verifies (the crafting below is sound)', () => {
    expect(problemKinds(withSignatureOver(message(base())))).toEqual({ code: 0, kinds: [] });
  });

  it.each([
    ['another workspace', { ws: 'other-workspace' }],
    ['another contract', { id: 'c2' }],
    ['another version', { version: 2 }],
    ['another plan sha', { sha: 'f'.repeat(64) }],
    ['another actor', { actor: 'bob' }],
    ['another time', { at: '2026-01-30T12:00:01.000Z' }],
  ])('a signature by a trusted key over %s does not verify', (_name, change) => {
    expect(problemKinds(withSignatureOver(message({ ...base(), ...change })))).toEqual({ code: 7, kinds: ['signature_invalid'] });
  });

  it('a signature by a key that is not in the file, with a matching recorded fingerprint, does not verify', () => {
    const ws = cloneWorkspace(S);
    rewriteHistory(ws, 'c1', (events) => {
      const sig = events.find((x) => x.seq === good.seq)!.data.signature;
      sig.armored = sshSign('mallory', message(base()));
      sig.fingerprint = fingerprint('mallory');
    });
    expect(problemKinds(ws)).toEqual({ code: 7, kinds: ['signature_invalid'] });
  });

  it('tampered armored text does not verify', () => {
    const ws = cloneWorkspace(S);
    rewriteHistory(ws, 'c1', (events) => {
      const sig = events.find((x) => x.seq === good.seq)!.data.signature;
      const lines = sig.armored.split('\n');
      const l = lines[3]!;
      lines[3] = l.slice(0, 10) + (l[10] === 'A' ? 'B' : 'A') + l.slice(11);
      sig.armored = lines.join('\n');
    });
    expect(problemKinds(ws)).toEqual({ code: 7, kinds: ['signature_invalid'] });
  });

  it("a hand-edited approval plan sha (chain rehashed) no longer matches what was signed", () => {
    const ws = cloneWorkspace(S);
    rewriteHistory(ws, 'c1', (events) => {
      events.find((x) => x.seq === good.seq)!.data.plan_sha256 = 'e'.repeat(64);
    });
    expect(problemKinds(ws).kinds).toContain('signature_invalid');
  });
});

describe('hostile actor names', () => {
  it("an actor with ':' and '%' is percent-encoded in the message, so moving a ':' between fields cannot forge another approval", () => {
    const ws = cloneWorkspace(T);
    const actor = 'ev:il%';
    writeSigners(ws, [`${actor} ${pub('alice')}`]);
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), '--actor', actor]);
    expect(r.code, r.stdout).toBe(0);
    expect(kj(ws, ['verify']).code).toBe(0);
    const e = lastApprove(ws, 'c1');
    const sigFile = join(makeTempDir(), 'sig');
    writeFileSync(sigFile, e.data.signature.armored);
    const verifyOver = (msg: string) =>
      spawnSync(SSH_KEYGEN, ['-Y', 'verify', '-f', signersFile(ws), '-I', actor, '-n', 'kair-approval', '-s', sigFile], { input: msg, encoding: 'utf8' }).status;
    expect(verifyOver(message({ ws: WS_ID, id: 'c1', version: 1, sha: SHA, actor: 'ev%3Ail%25', at: NOW }))).toBe(0);
    expect(verifyOver(message({ ws: WS_ID, id: 'c1', version: 1, sha: SHA, actor, at: NOW }))).not.toBe(0);
  });

  it.each([['*'], ['alice,bob'], ['al*'], ['-I']])('actor %j is a literal name for ssh-keygen, never a pattern or an option: alice\'s line does not let it sign', (actor) => {
    const ws = cloneWorkspace(T);
    writeSigners(ws, [`alice ${pub('alice')}`]);
    const r = kj(ws, ['approve', 'c1', '--sign', '--key', key('alice'), `--actor=${actor}`]);
    expect(r.code, r.stdout).toBe(3);
    expect(r.json.error.code).toBe('SIGNATURE_INVALID');
    expect(approveEvent(ws, 'c1')).toHaveLength(0);
  });
});
