/**
 * Signed approvals through OpenSSH: `approve --sign` signs, `run` (under
 * `approvals.require_signed`) and `verify` check, and `verifyApprovalSignatures` tells any
 * reader (e.g. `show`) which approvals are signed and which verify. See
 * docs/decisions/019-signed-approvals.md.
 *
 * Every check is against the allowed signers file as it is now, at the time the signature says
 * it was made (`-O verify-time`), as git does: a key removed from the file stops counting, a key
 * retired with `valid-before` keeps its earlier approvals.
 */
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { sha256Hex } from '../domain/canonical.js';
import type { Contract, HistoryEvent } from '../domain/contract.js';
import { isKairError, kairError } from '../domain/errors.js';
import type { ApprovalFields, ApprovalSignature } from '../domain/signing.js';
import { SIGNING_NAMESPACE, approvalMessage, readSshSig, signatureOf, verifyTime } from '../domain/signing.js';
import { commandEnv } from '../lanes/aec/executor.js';
import { readHistory } from '../store/fs/history.js';
import { quotedPath, readInputFile } from '../store/fs/input.js';
import { paths } from '../store/fs/workspace.js';
import { makeScratchDir, removeScratchDir } from '../store/fs/temp.js';
import type { ToolResult } from '../store/ssh-keygen.js';
import { runTool } from '../store/ssh-keygen.js';
import type { Ctx } from './context.js';
import { inputLimit } from './context.js';

/** Signing may wait on an agent that asks its user to confirm; verifying never waits on anyone. */
export const SIGN_TIMEOUT_MS = 20_000;
export const VERIFY_TIMEOUT_MS = 10_000;
const GIT_TIMEOUT_MS = 5_000;

/**
 * ssh-keygen's environment: the executors' allowlist plus the agent socket. A passphrase prompt
 * is forced through an askpass program that does not exist, so a key that needs a passphrase
 * fails at once instead of opening /dev/tty (or reading our message from stdin as the passphrase).
 */
export function sshEnv(from: NodeJS.ProcessEnv): Record<string, string> {
  return { ...commandEnv(from, ['SSH_AUTH_SOCK'], {}), SSH_ASKPASS: '/nonexistent/kair-no-askpass', SSH_ASKPASS_REQUIRE: 'force' };
}

// ---- the allowed signers file

export type AllowedSigners = { ok: true; path: string; text: string; sha256: string } | { ok: false; path: string; reason: string };

/**
 * `approvals.allowed_signers_file` (relative to the workspace root), read once: a regular file
 * within the input limit (a FIFO, device or folder is refused without blocking). Its content is
 * what ssh-keygen gets (a private copy), so the sha kair records is of the file it checked.
 */
export function readAllowedSigners(ctx: Ctx): AllowedSigners {
  const setting = ctx.config.approvals.allowed_signers_file;
  const path = resolve(ctx.ws.root, setting);
  try {
    statSync(path);
  } catch {
    return { ok: false, path: setting, reason: `the allowed signers file ${quotedPath(setting)} does not exist` };
  }
  try {
    const limit = inputLimit(ctx);
    const text = readInputFile(path, {
      flag: '',
      shown: setting,
      limit,
      tooLarge: (max) => kairError('USAGE_ERROR', `the allowed signers file ${quotedPath(setting)} is larger than ${max} bytes (limits.max_input_bytes)`),
    });
    return { ok: true, path: setting, text, sha256: sha256Hex(text) };
  } catch (e) {
    if (isKairError(e)) return { ok: false, path: setting, reason: `the allowed signers file: ${e.message}` };
    throw e;
  }
}

// ---- checking one signature

export interface Verifier {
  /** null when ssh-keygen accepts `sig` for `actor` over `message`; else why not. */
  check(actor: string, message: string, sig: ApprovalSignature): string | null;
  close(): void;
}

/** One verifier per command: the signers' copy and its private temp folder are made once. */
export function makeVerifier(ctx: Ctx, signers: AllowedSigners = readAllowedSigners(ctx)): Verifier {
  let dir: string | undefined;
  const folder = () => {
    if (dir === undefined) {
      // A private folder outside the workspace: read-only commands (verify, show) write nothing
      // into .kair/, and ssh-keygen must read the signature from a file (stdin is the message).
      dir = makeScratchDir('kair-sig-');
      if (signers.ok) writeFileSync(join(dir, 'allowed_signers'), signers.text, { mode: 0o600 });
    }
    return dir;
  };
  let n = 0;
  return {
    check(actor, message, sig) {
      const info = readSshSig(sig.armored);
      if (!info) return 'the recorded signature is not an armored OpenSSH signature';
      if (info.namespace !== SIGNING_NAMESPACE) return `the signature is for namespace ${JSON.stringify(info.namespace.slice(0, 40))}, not ${SIGNING_NAMESPACE}`;
      if (info.fingerprint !== sig.fingerprint) return `the recorded fingerprint ${JSON.stringify(sig.fingerprint.slice(0, 60))} is not that of the key that made the signature (${info.fingerprint})`;
      const when = verifyTime(sig.at);
      if (!when) return 'the recorded signing time is not a time';
      if (!signers.ok) return signers.reason;
      const d = folder();
      const sigFile = join(d, `sig-${n++}`);
      writeFileSync(sigFile, sig.armored.endsWith('\n') ? sig.armored : `${sig.armored}\n`, { mode: 0o600 });
      const r = runTool('ssh-keygen', ['-Y', 'verify', '-f', join(d, 'allowed_signers'), '-I', actor, '-n', SIGNING_NAMESPACE, '-s', sigFile, '-O', `verify-time=${when}`], {
        input: message,
        env: sshEnv(ctx.env),
        cwd: d,
        timeoutMs: VERIFY_TIMEOUT_MS,
      });
      rmSync(sigFile, { force: true });
      if (r.ok) return null;
      return r.kind === 'failed' ? `ssh-keygen rejects it for ${JSON.stringify(actor.slice(0, 80))} in ${quotedPath(signers.path)}: ${r.reason}` : r.reason;
    },
    close() {
      if (dir !== undefined) removeScratchDir(dir);
      dir = undefined;
    },
  };
}

// ---- the approvals of a history

export interface ApprovalEvent {
  event: HistoryEvent;
  /** The contract version the approval was given in (rewinds move it). */
  version: number;
}

export function approveEvents(events: Iterable<HistoryEvent>): ApprovalEvent[] {
  const out: ApprovalEvent[] = [];
  let version = 1;
  for (const e of events) {
    if (e.type === 'rewind' && typeof e.data.version === 'number') version = e.data.version;
    if (e.type === 'approve') out.push({ event: e, version });
  }
  return out;
}

/** The message an approve event's signature must be over: every field from history and config, none from the signature but its time. */
export function messageFor(ctx: Ctx, contractId: string, a: ApprovalEvent, sig: ApprovalSignature): string {
  const fields: ApprovalFields = {
    workspace_id: ctx.config.workspace_id,
    contract_id: contractId,
    version: a.version,
    plan_sha256: String(a.event.data.plan_sha256),
    actor: a.event.actor,
    at: sig.at,
  };
  return approvalMessage(fields);
}

export interface ApprovalSignatureCheck {
  seq: number;
  actor: string;
  plan_sha256: string;
  signed: boolean;
  verified: boolean;
  /** Why a signed approval does not verify. */
  reason?: string;
  fingerprint?: string;
}

/** Whether one approve event is signed and whether its signature verifies (spawns ssh-keygen once when signed). */
export function verifyApprovalSignature(ctx: Ctx, contractId: string, a: ApprovalEvent, verifier: Verifier): ApprovalSignatureCheck {
  const base = { seq: a.event.seq, actor: a.event.actor, plan_sha256: String(a.event.data.plan_sha256) };
  if (a.event.data.signature === undefined) return { ...base, signed: false, verified: false };
  const sig = signatureOf(a.event.data);
  if (!sig) return { ...base, signed: true, verified: false, reason: 'the recorded signature lacks armored, at, fingerprint or allowed_signers_sha256' };
  const reason = verifier.check(a.event.actor, messageFor(ctx, contractId, a, sig), sig);
  return { ...base, signed: true, verified: reason === null, fingerprint: sig.fingerprint, ...(reason === null ? {} : { reason }) };
}

/** Every approve event of a contract's history, checked (what `kair show` and `kair verify` print). */
export function verifyApprovalSignatures(ctx: Ctx, contractId: string, events: HistoryEvent[] = readHistory(paths.history(ctx.ws, contractId)).events): ApprovalSignatureCheck[] {
  const list = approveEvents(events);
  if (!list.some((a) => a.event.data.signature !== undefined)) return list.map((a) => ({ seq: a.event.seq, actor: a.event.actor, plan_sha256: String(a.event.data.plan_sha256), signed: false, verified: false }));
  const verifier = makeVerifier(ctx);
  try {
    return list.map((a) => verifyApprovalSignature(ctx, contractId, a, verifier));
  } finally {
    verifier.close();
  }
}

/**
 * The valid approvals of the current plan, each with its approve event (the snapshot's approvals
 * are appended in the order of the approve events). null when the two cannot be paired.
 */
function currentApprovals(c: Contract, events: HistoryEvent[]): ApprovalEvent[] | null {
  const list = approveEvents(events);
  if (list.length !== c.approvals.length) return null;
  const out: ApprovalEvent[] = [];
  c.approvals.forEach((ap, i) => {
    const a = list[i]!;
    if (ap.valid && ap.plan_sha256 === c.plan_sha256 && a.event.actor === ap.actor && a.event.data.plan_sha256 === ap.plan_sha256 && a.version === c.version) out.push(a);
  });
  return out;
}

/** Actors with a valid approval of the current plan that carries a signature (verified or not: no ssh-keygen). */
export function signedApprovers(c: Contract, events: HistoryEvent[]): string[] {
  return [...new Set((currentApprovals(c, events) ?? []).filter((a) => a.event.data.signature !== undefined).map((a) => a.event.actor))].sort();
}

/**
 * Actors with a valid approval of the current plan whose signature verifies now: what `run`
 * counts under `approvals.require_signed`. Nothing is cached: each call asks ssh-keygen again,
 * once per signed approval, so a key removed from the file stops counting at the next run.
 */
export function verifiedApprovers(ctx: Ctx, c: Contract, events: HistoryEvent[] = readHistory(paths.history(ctx.ws, c.id)).events): { approvers: string[]; rejected: { actor: string; reason: string }[] } {
  const current = currentApprovals(c, events);
  if (!current) return { approvers: [], rejected: [{ actor: '*', reason: 'the approvals of the snapshot do not match the approve events of history' }] };
  const signed = current.filter((a) => a.event.data.signature !== undefined);
  const approvers = new Set<string>();
  const rejected: { actor: string; reason: string }[] = [];
  if (signed.length === 0) return { approvers: [], rejected };
  const verifier = makeVerifier(ctx);
  try {
    for (const a of signed) {
      if (approvers.has(a.event.actor)) continue;
      const r = verifyApprovalSignature(ctx, c.id, a, verifier);
      if (r.verified) approvers.add(a.event.actor);
      else rejected.push({ actor: a.event.actor, reason: r.reason ?? 'not verified' });
    }
  } finally {
    verifier.close();
  }
  return { approvers: [...approvers].sort(), rejected: rejected.filter((r) => !approvers.has(r.actor)) };
}

// ---- signing

export type SigningKey = { kind: 'file'; path: string; source: string } | { kind: 'literal'; publicKey: string; source: string };

const expandHome = (p: string) => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p);

/**
 * `--key PATH`, else git's `user.signingKey` (a path, `~/…`, or `key::<public key>` for a key
 * held by ssh-agent). A key file must be a regular file: ssh-keygen would block on a FIFO.
 */
export function resolveSigningKey(ctx: Ctx, flag: string | undefined): SigningKey {
  let value = flag;
  let source = '--key';
  if (value === undefined) {
    source = "git's user.signingKey";
    const r = runTool('git', ['config', '--get', 'user.signingKey'], { input: '', env: stringEnv(ctx.env), cwd: ctx.ws.root, timeoutMs: GIT_TIMEOUT_MS });
    if (!r.ok) {
      const why = r.kind === 'unavailable' ? 'git is not on PATH to read user.signingKey' : r.kind === 'timeout' ? r.reason : "git's user.signingKey is not set";
      throw kairError('USAGE_ERROR', `approve --sign needs a key: ${why}; give --key PATH`, { flag: '--key', hint: 'give the SSH key to sign with: kair approve <id> --sign --key ~/.ssh/id_ed25519 (or set it once: git config user.signingKey ~/.ssh/id_ed25519)' });
    }
    value = r.stdout.trim();
    if (value.startsWith('key::')) return { kind: 'literal', publicKey: value.slice(5).trim(), source };
  }
  if (value === '') throw kairError('USAGE_ERROR', `${source} is empty; give --key PATH`, { flag: '--key' });
  const path = resolve(ctx.cwd, expandHome(value));
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw kairError('USAGE_ERROR', `--key ${quotedPath(value)}${source === '--key' ? '' : ` (from ${source})`}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { flag: '--key', path: value, hint: 'give the path of your SSH private key, or of its .pub when the key is in ssh-agent' });
  }
  if (!st.isFile()) throw kairError('USAGE_ERROR', `--key ${quotedPath(value)} is not a regular file`, { flag: '--key', path: value, hint: 'give the path of your SSH private key, or of its .pub when the key is in ssh-agent' });
  return { kind: 'file', path, source };
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function signingFailed(key: SigningKey, r: Exclude<ToolResult, { ok: true }>): Error {
  if (r.kind === 'unavailable') {
    return kairError('SIGNING_UNAVAILABLE', 'approve --sign needs ssh-keygen (OpenSSH 8.2 or later), which is not on PATH; nothing was recorded', { hint: 'install OpenSSH (e.g. `apt install openssh-client`) or approve without --sign' });
  }
  const shown = key.kind === 'file' ? quotedPath(key.path) : `the key in ${key.source}`;
  return kairError('SIGNING_FAILED', `ssh-keygen could not sign with ${shown}: ${r.reason}; nothing was recorded`, {
    key: key.kind === 'file' ? key.path : key.source,
    reason: r.reason,
    hint: 'a key with a passphrase must be loaded into ssh-agent first (`ssh-add KEY`); check that --key names an SSH key',
  });
}

/** Signs `fields` with `key`; the signature is checked against `signers` before it is returned. */
export function signApproval(ctx: Ctx, key: SigningKey, fields: ApprovalFields, signers: AllowedSigners, timeoutMs = SIGN_TIMEOUT_MS): ApprovalSignature {
  const message = approvalMessage(fields);
  // Before signing: an agent that asks its user to confirm is not asked for nothing.
  if (!signers.ok) throw signatureInvalid(fields.actor, signers.reason, signers.path);
  let tmp: string | undefined;
  try {
    let keyPath: string;
    if (key.kind === 'literal') {
      tmp = makeScratchDir('kair-key-');
      keyPath = join(tmp, 'key.pub');
      writeFileSync(keyPath, `${key.publicKey}\n`, { mode: 0o600 });
    } else keyPath = key.path;
    const r = runTool('ssh-keygen', ['-Y', 'sign', '-n', SIGNING_NAMESPACE, '-f', keyPath], { input: message, env: sshEnv(ctx.env), cwd: ctx.ws.root, timeoutMs });
    if (!r.ok) throw signingFailed(key, r);
    const armored = r.stdout.endsWith('\n') ? r.stdout : `${r.stdout}\n`;
    const info = readSshSig(armored);
    if (!info) throw signingFailed(key, { ok: false, kind: 'failed', reason: 'ssh-keygen printed no armored signature' });
    const sig: ApprovalSignature = { armored, at: fields.at, fingerprint: info.fingerprint, allowed_signers_sha256: signers.sha256 };
    const verifier = makeVerifier(ctx, signers);
    try {
      const reason = verifier.check(fields.actor, message, sig);
      if (reason !== null) throw signatureInvalid(fields.actor, reason, signers.path, info.fingerprint);
    } finally {
      verifier.close();
    }
    return sig;
  } finally {
    if (tmp) removeScratchDir(tmp);
  }
}

export function signatureInvalid(actor: string, reason: string, file: string, fingerprint?: string): Error {
  return kairError('SIGNATURE_INVALID', `the signature${fingerprint ? ` by ${fingerprint}` : ''} does not verify for ${JSON.stringify(actor.slice(0, 80))}: ${reason}; nothing was approved`, {
    actor,
    allowed_signers_file: file,
    ...(fingerprint ? { fingerprint } : {}),
    hint: `add a line \`<actor> <public key>\` for this key to ${quotedPath(file)} (git's allowed_signers format), then approve again with --sign`,
  });
}
