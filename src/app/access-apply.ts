/**
 * `kair access apply --file policy.json [--dry-run]`: the access policy made declarative. The
 * file names every rule; rules not in it are removed, each change is one change-log entry with
 * the actor, and the whole apply is one SQLite transaction (all or nothing).
 */
import { kairError } from '../domain/errors.js';
import { parseJsonInput } from '../domain/json-input.js';
import type { AccessDecisionKind, AccessRule } from '../lanes/aec/access.js';
import { ACCESS_DECISIONS, accessRepo } from '../lanes/aec/access.js';
import { readInputFile } from '../store/fs/input.js';
import { assertAdmin } from '../domain/actors.js';
import type { Ctx } from './context.js';
import { inputLimit } from './context.js';
import { inTransaction, readOnlyTransaction } from './db.js';

const NAME = /^[^\s]{1,200}$/;

export interface PolicyDiff {
  added: AccessRule[];
  removed: AccessRule[];
  changed: { actor: string; action: string; from: AccessDecisionKind; to: AccessDecisionKind }[];
  unchanged: number;
}

export interface ApplyResult extends PolicyDiff {
  dry_run: boolean;
  policy_snapshot_version: number;
}

type Problem = { path: string; message: string };

/** The rules of a policy file, or every problem with its JSON path. */
export function parsePolicy(text: string, shown: string): AccessRule[] {
  const parsed = parseJsonInput(text);
  const fail = (problems: Problem[]) => {
    throw kairError('USAGE_ERROR', `--file ${shown}: ${problems.length === 1 ? `${problems[0]!.path}: ${problems[0]!.message}` : `${problems.length} problems:\n  - ${problems.map((p) => `${p.path}: ${p.message}`).join('\n  - ')}`}`, {
      flag: '--file',
      problems,
      hint: 'a policy file is {"rules": [{"actor": "alice", "action": "invoice:send", "decision": "allow"}]}',
    });
  };
  if (!parsed.ok) return fail([{ path: '(root)', message: parsed.message }]);
  const v = parsed.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail([{ path: '(root)', message: 'expected an object with "rules"' }]);
  const problems: Problem[] = [];
  for (const k of Object.keys(v)) if (k !== 'rules' && k !== '$schema') problems.push({ path: k, message: 'unknown key' });
  const rules = (v as { rules?: unknown }).rules;
  if (!Array.isArray(rules)) return fail([...problems, { path: 'rules', message: 'expected an array' }]);
  const out: AccessRule[] = [];
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    const at = `rules[${i}]`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return void problems.push({ path: at, message: 'expected an object' });
    const o = r as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['actor', 'action', 'decision'].includes(k)) problems.push({ path: `${at}.${k}`, message: 'unknown key' });
    for (const k of ['actor', 'action'] as const) {
      if (typeof o[k] !== 'string' || !NAME.test(o[k])) problems.push({ path: `${at}.${k}`, message: 'expected 1 to 200 characters without spaces' });
    }
    if (typeof o.decision !== 'string' || !(ACCESS_DECISIONS as readonly string[]).includes(o.decision)) problems.push({ path: `${at}.decision`, message: `expected one of ${ACCESS_DECISIONS.join(', ')}` });
    if (typeof o.actor === 'string' && typeof o.action === 'string') {
      const key = `${o.actor}\u0000${o.action}`;
      const first = seen.get(key);
      if (first !== undefined) problems.push({ path: at, message: `duplicates rules[${first}] (${o.actor} ${o.action})` });
      else seen.set(key, i);
    }
    out.push({ actor: o.actor as string, action: o.action as string, decision: o.decision as AccessDecisionKind });
  });
  if (problems.length) return fail(problems);
  return out;
}

export function diffPolicy(current: readonly AccessRule[], wanted: readonly AccessRule[]): PolicyDiff {
  const key = (r: AccessRule) => `${r.actor}\u0000${r.action}`;
  const now = new Map(current.map((r) => [key(r), r]));
  const want = new Map(wanted.map((r) => [key(r), r]));
  const d: PolicyDiff = { added: [], removed: [], changed: [], unchanged: 0 };
  for (const r of wanted) {
    const c = now.get(key(r));
    if (!c) d.added.push({ actor: r.actor, action: r.action, decision: r.decision });
    else if (c.decision !== r.decision) d.changed.push({ actor: r.actor, action: r.action, from: c.decision, to: r.decision });
    else d.unchanged++;
  }
  for (const r of current) if (!want.has(key(r))) d.removed.push({ actor: r.actor, action: r.action, decision: r.decision });
  const order = (a: { actor: string; action: string }, b: { actor: string; action: string }) => (a.actor === b.actor ? (a.action < b.action ? -1 : a.action > b.action ? 1 : 0) : a.actor < b.actor ? -1 : 1);
  d.added.sort(order);
  d.removed.sort(order);
  d.changed.sort(order);
  return d;
}

export async function applyPolicy(ctx: Ctx, file: string, shown: string, dryRun: boolean): Promise<ApplyResult> {
  const wanted = parsePolicy(readInputFile(file, { flag: '--file', shown, limit: inputLimit(ctx), tooLarge: (max) => kairError('USAGE_ERROR', `--file ${shown}: larger than ${max} bytes (limits.max_input_bytes)`, { flag: '--file' }) }), shown);
  const actor = ctx.actor();
  // A dry run shows what an admin's apply would do; it checks no role and writes nothing.
  if (dryRun) {
    return readOnlyTransaction(
      ctx,
      () => ({ dry_run: true, ...diffPolicy([], wanted), policy_snapshot_version: 0 }),
      async (sql) => {
        const repo = accessRepo(sql);
        return { dry_run: true, ...diffPolicy(await repo.listRules(), wanted), policy_snapshot_version: await repo.policyVersion() };
      },
    );
  }
  assertAdmin(ctx.config, actor, 'change the access policy');
  // One transaction: the whole file applies or none of it.
  return inTransaction(ctx, async (sql): Promise<ApplyResult> => {
    const repo = accessRepo(sql);
    const d = diffPolicy(await repo.listRules(), wanted);
    const by = { actor, now: ctx.now(), tenant: ctx.config.workspace_id };
    for (const r of d.removed) await repo.removeRule(r.actor, r.action, by);
    for (const r of [...d.changed.map((c) => ({ actor: c.actor, action: c.action, decision: c.to })), ...d.added]) await repo.setRule(r.actor, r.action, r.decision, by);
    return { dry_run: false, ...d, policy_snapshot_version: await repo.policyVersion() };
  });
}
