/**
 * Access policy (SPEC §9.5): per actor and action, fail closed. Every change appends a row to
 * `access_policy_versions`; the policy snapshot version is max(version), 0 when none.
 */
import { kairError } from '../../domain/errors.js';
import type { Db } from '../../store/sqlite/db.js';
import { logChange } from './change-log.js';
import { CHAINS, insertChained } from '../../store/sqlite/chain.js';

export const ACCESS_DECISIONS = ['allow', 'deny', 'require-ap'] as const;
export type AccessDecisionKind = (typeof ACCESS_DECISIONS)[number];

export interface AccessRule {
  actor: string;
  action: string;
  decision: AccessDecisionKind;
}

export interface AccessRuleRow extends AccessRule {
  updated_at: string;
  updated_by: string;
}

export interface AccessDecision {
  decision: AccessDecisionKind;
  policy_snapshot_version: number;
  /** The rule that decided; absent when none matched (and the decision is deny). */
  rule?: AccessRule;
}

export interface AccessRepo {
  /** Upserts the rule and appends a version row (even when the decision is unchanged). */
  setRule(actor: string, action: string, decision: AccessDecisionKind, by: { actor: string; now: string; tenant?: string }): { rule: AccessRule; policy_snapshot_version: number };
  /** Deletes the rule and appends a `removed` version row; false when there was none. */
  removeRule(actor: string, action: string, by: { actor: string; now: string; tenant?: string }): boolean;
  /** Sorted by actor, then action. */
  listRules(): AccessRuleRow[];
  policyVersion(): number;
  /** Exact (actor, action) match; no rule → deny. */
  decide(actor: string, action: string): AccessDecision;
  /** The rules as they stood at a policy version (sorted), rebuilt from the version rows. */
  snapshot(version: number): AccessRule[];
}

export function isAccessDecision(v: string): v is AccessDecisionKind {
  return (ACCESS_DECISIONS as readonly string[]).includes(v);
}

const accessRepos = new WeakMap<Db, AccessRepo>();

/** One repository (and one set of prepared statements) per connection. */
export function accessRepo(db: Db): AccessRepo {
  let r = accessRepos.get(db);
  if (!r) accessRepos.set(db, (r = makeAccessRepo(db)));
  return r;
}

function makeAccessRepo(db: Db): AccessRepo {
  const upsert = db.prepare(
    'INSERT INTO access_policy (actor, action, decision, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (actor, action) DO UPDATE SET decision = excluded.decision, updated_at = excluded.updated_at, updated_by = excluded.updated_by',
  );
  const all = db.prepare<[], AccessRuleRow>('SELECT actor, action, decision, updated_at, updated_by FROM access_policy ORDER BY actor, action');
  const one = db.prepare<[string, string], AccessRule>('SELECT actor, action, decision FROM access_policy WHERE actor = ? AND action = ?');
  const version = db.prepare<[], { v: number }>('SELECT coalesce(max(version), 0) AS v FROM access_policy_versions');
  const del = db.prepare('DELETE FROM access_policy WHERE actor = ? AND action = ?');
  const upTo = db.prepare<[number], { actor: string; action: string; decision: AccessDecisionKind | 'removed' }>('SELECT actor, action, decision FROM access_policy_versions WHERE version <= ? ORDER BY version');

  return {
    setRule(actor, action, decision, by) {
      if (!isAccessDecision(decision)) throw kairError('USAGE_ERROR', `unknown access decision ${JSON.stringify(decision)}`, { decision });
      return db
        .transaction(() => {
          const before = one.get(actor, action);
          upsert.run(actor, action, decision, by.now, by.actor);
          const v = Number(insertChained(db, CHAINS.access_policy_versions, { changed_at: by.now, actor, action, decision }));
          logChange(db, { tenant: by.tenant ?? '', table: 'access_policy', action: decision, actor: by.actor, at: by.now, change: { decision: { from: before?.decision ?? null, to: decision }, policy_snapshot_version: v } }, { actor, action });
          return { rule: { actor, action, decision }, policy_snapshot_version: v };
        })
        .immediate();
    },
    removeRule(actor, action, by) {
      return db
        .transaction(() => {
          const before = one.get(actor, action);
          if (!before) return false;
          del.run(actor, action);
          const v = Number(insertChained(db, CHAINS.access_policy_versions, { changed_at: by.now, actor, action, decision: 'removed' }));
          logChange(db, { tenant: by.tenant ?? '', table: 'access_policy', action: 'remove', actor: by.actor, at: by.now, change: { decision: { from: before.decision, to: null }, policy_snapshot_version: v } }, { actor, action });
          return true;
        })
        .immediate();
    },
    listRules() {
      return all.all();
    },
    policyVersion() {
      return version.get()!.v;
    },
    decide(actor, action) {
      // One read transaction: the rule and the version come from the same snapshot.
      return db.transaction((): AccessDecision => {
        const rule = one.get(actor, action);
        const policy_snapshot_version = version.get()!.v;
        return rule ? { decision: rule.decision, policy_snapshot_version, rule: { actor: rule.actor, action: rule.action, decision: rule.decision } } : { decision: 'deny', policy_snapshot_version };
      })();
    },
    snapshot(v) {
      const rules = new Map<string, AccessRule>();
      for (const r of upTo.all(v)) {
        const k = `${r.actor}\u0000${r.action}`;
        if (r.decision === 'removed') rules.delete(k);
        else rules.set(k, { actor: r.actor, action: r.action, decision: r.decision });
      }
      return [...rules.values()].sort((a, b) => (a.actor < b.actor ? -1 : a.actor > b.actor ? 1 : a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
    },
  };
}
