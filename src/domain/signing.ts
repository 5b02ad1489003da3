/**
 * Signed approvals, the pure part: the message an approver signs, the record an `approve` event
 * keeps, and reading the public key out of an OpenSSH signature (SSHSIG). Spawning ssh-keygen
 * is the app's business (src/app/signatures.ts).
 */
import { createHash } from 'node:crypto';

/** ssh-keygen's `-n`: a signature made for git commits or anything else never verifies here. */
export const SIGNING_NAMESPACE = 'kair-approval';

/** What an `approve` event records under `data.signature`. */
export interface ApprovalSignature {
  /** The armored OpenSSH signature (`-----BEGIN SSH SIGNATURE-----` …). */
  armored: string;
  /** The time inside the signed message (the event's own `at` is stamped separately). */
  at: string;
  /** `SHA256:…` of the public key that made the signature, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** sha256 of the allowed signers file the signature was checked against when it was made. */
  allowed_signers_sha256: string;
}

export interface ApprovalFields {
  workspace_id: string;
  contract_id: string;
  version: number;
  plan_sha256: string;
  actor: string;
  at: string;
}

/**
 * A field that may hold `:` or control characters (the workspace id comes from a hand-editable
 * config, the actor from git or the OS) is percent-encoded, so no two different approvals can
 * produce the same message by moving a `:` between fields. Ordinary names are unchanged.
 */
export function messageField(value: string): string {
  // eslint-disable-next-line no-control-regex -- controls are exactly what must not reach the message raw
  return value.replace(/[%:\u0000-\u001f\u007f-\u009f]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** `kair-approval:v1:<workspace_id>:<contract_id>:v<version>:<plan_sha256>:<actor>:<at>` */
export function approvalMessage(f: ApprovalFields): string {
  return `${SIGNING_NAMESPACE}:v1:${messageField(f.workspace_id)}:${f.contract_id}:v${f.version}:${f.plan_sha256}:${messageField(f.actor)}:${f.at}`;
}

const ARMOR = /^-----BEGIN SSH SIGNATURE-----\n([A-Za-z0-9+/=\n]+)\n-----END SSH SIGNATURE-----\n?$/;

/** Armored signatures are a few hundred bytes; anything far larger is not one of ours. */
export const MAX_ARMORED_BYTES = 16 * 1024;

export interface SshSigInfo {
  fingerprint: string;
  namespace: string;
}

/**
 * The public key and namespace inside an armored SSHSIG blob (PROTOCOL.sshsig), or null when
 * the text is not one. This checks shape only: whether the signature is good is ssh-keygen's
 * answer.
 */
export function readSshSig(armored: unknown): SshSigInfo | null {
  if (typeof armored !== 'string' || armored.length > MAX_ARMORED_BYTES) return null;
  const m = ARMOR.exec(armored);
  if (!m) return null;
  const blob = Buffer.from(m[1]!.replace(/\n/g, ''), 'base64');
  if (blob.subarray(0, 6).toString('latin1') !== 'SSHSIG') return null;
  let off = 6 + 4; // magic, uint32 version
  const str = (): Buffer | null => {
    if (off + 4 > blob.length) return null;
    const len = blob.readUInt32BE(off);
    if (off + 4 + len > blob.length) return null;
    const out = blob.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    return out;
  };
  const key = str();
  const ns = str();
  if (!key || !ns || key.length === 0) return null;
  const fingerprint = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
  return { fingerprint, namespace: ns.toString('utf8') };
}

/** ssh-keygen's `-O verify-time=` form of an ISO time: a key's valid-after/valid-before apply at signing time. */
export function verifyTime(at: string): string | null {
  const t = Date.parse(at);
  if (Number.isNaN(t)) return null;
  return new Date(t).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '').replace('T', '');
}

/** The `signature` of an approve event's data when it has the recorded shape. */
export function signatureOf(data: Record<string, unknown>): ApprovalSignature | null {
  const s = data.signature as Partial<ApprovalSignature> | undefined;
  if (!s || typeof s !== 'object') return null;
  if (typeof s.armored !== 'string' || typeof s.at !== 'string' || typeof s.fingerprint !== 'string' || typeof s.allowed_signers_sha256 !== 'string') return null;
  return s as ApprovalSignature;
}
