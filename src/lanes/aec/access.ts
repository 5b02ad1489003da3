/**
 * Access policy (SPEC §9.5): per actor and action, fail closed. Every change appends a row to
 * `access_policy_versions`; the policy snapshot version is max(version), 0 when none.
 */
import { kairError } from '../../domain/errors.js';
import type { SqlExecutor } from '../../store/port.js';
import type { Db } from '../../store/sqlite/db.js';
import { isLocalDb } from './catalog.js';
import { logChange, logChangeSync } from './change-log.js';
import { CHAINS, insertChained, insertChainedSync } from '../../store/sqlite/chain.js';

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

/** Over the caller's transaction: a change and its version and change-log rows commit together. */
export interface AccessRepo {
  /** Upserts the rule and appends a version row (even when the decision is unchanged). */
  setRule(actor: string, action: string, decision: AccessDecisionKind, by: { actor: string; now: string; tenant?: string }): Promise<{ rule: AccessRule; policy_snapshot_version: number }>;
  /** Deletes the rule and appends a `removed` version row; false when there was none. */
  removeRule(actor: string, action: string, by: { actor: string; now: string; tenant?: string }): Promise<boolean>;
  /** Sorted by actor, then action. */
  listRules(): Promise<AccessRuleRow[]>;
  policyVersion(): Promise<number>;
  /** Exact (actor, action) match; no rule → deny. */
  decide(actor: string, action: string): Promise<AccessDecision>;
  /** The rules as they stood at a policy version (sorted), rebuilt from the version rows. */
  snapshot(version: number): Promise<AccessRule[]>;
}

export function isAccessDecision(v: string): v is AccessDecisionKind {
  return (ACCESS_DECISIONS as readonly string[]).includes(v);
}

const UPSERT =
  'INSERT INTO access_policy (actor, action, decision, updated_at, updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (actor, action) DO UPDATE SET decision = excluded.decision, updated_at = excluded.updated_at, updated_by = excluded.updated_by';
const ONE = 'SELECT actor, action, decision FROM access_policy WHERE actor = ? AND action = ?';
const VERSION = 'SELECT coalesce(max(version), 0) AS v FROM access_policy_versions';

const LIST = 'SELECT actor, action, decision, updated_at, updated_by FROM access_policy ORDER BY actor, action';
const decided = (rule: AccessRule | undefined, policy_snapshot_version: number): AccessDecision =>
  rule ? { decision: rule.decision, policy_snapshot_version, rule: { actor: rule.actor, action: rule.action, decision: rule.decision } } : { decision: 'deny', policy_snapshot_version };

/**
 * The policy over a raw local connection, synchronous, each change its own BEGIN IMMEDIATE
 * transaction: what in-process tests use to set up a policy. Same SQL as the port's repository.
 */
export interface LocalAccessRepo {
  setRule(actor: string, action: string, decision: AccessDecisionKind, by: { actor: string; now: string; tenant?: string }): { rule: AccessRule; policy_snapshot_version: number };
  listRules(): AccessRuleRow[];
  policyVersion(): number;
  decide(actor: string, action: string): AccessDecision;
}

function localAccessRepo(db: Db): LocalAccessRepo {
  const one = (actor: string, action: string) => db.prepare(ONE).get(actor, action) as AccessRule | undefined;
  const version = () => (db.prepare(VERSION).get() as { v: number }).v;
  return {
    setRule(actor, action, decision, by) {
      if (!isAccessDecision(decision)) throw kairError('USAGE_ERROR', `unknown access decision ${JSON.stringify(decision)}`, { decision });
      return db
        .transaction(() => {
          const before = one(actor, action);
          db.prepare(UPSERT).run(actor, action, decision, by.now, by.actor);
          const v = Number(insertChainedSync(db, CHAINS.access_policy_versions, { changed_at: by.now, actor, action, decision }));
          logChangeSync(db, { tenant: by.tenant ?? '', table: 'access_policy', action: decision, actor: by.actor, at: by.now, change: { decision: { from: before?.decision ?? null, to: decision }, policy_snapshot_version: v } }, { actor, action });
          return { rule: { actor, action, decision }, policy_snapshot_version: v };
        })
        .immediate();
    },
    listRules: () => db.prepare(LIST).all() as AccessRuleRow[],
    policyVersion: version,
    decide: (actor, action) => db.transaction(() => decided(one(actor, action), version()))(),
  };
}

/** Over the port (in the caller's transaction), or over a raw local connection (the synchronous facade above). */
export function accessRepo(sql: SqlExecutor): AccessRepo;
export function accessRepo(db: Db): LocalAccessRepo;
export function accessRepo(x: SqlExecutor | Db): AccessRepo | LocalAccessRepo {
  return isLocalDb(x) ? localAccessRepo(x) : portAccessRepo(x);
}

function portAccessRepo(sql: SqlExecutor): AccessRepo {
  const one = (actor: string, action: string) => sql.get<AccessRule>(ONE, [actor, action]);
  const version = async () => Number((await sql.get<{ v: number }>(VERSION))!.v);
  return {
    async setRule(actor, action, decision, by) {
      if (!isAccessDecision(decision)) throw kairError('USAGE_ERROR', `unknown access decision ${JSON.stringify(decision)}`, { decision });
      const before = await one(actor, action);
      await sql.run(UPSERT, [actor, action, decision, by.now, by.actor]);
      const v = Number(await insertChained(sql, CHAINS.access_policy_versions, { changed_at: by.now, actor, action, decision }));
      await logChange(sql, { tenant: by.tenant ?? '', table: 'access_policy', action: decision, actor: by.actor, at: by.now, change: { decision: { from: before?.decision ?? null, to: decision }, policy_snapshot_version: v } }, { actor, action });
      return { rule: { actor, action, decision }, policy_snapshot_version: v };
    },
    async removeRule(actor, action, by) {
      const before = await one(actor, action);
      if (!before) return false;
      await sql.run('DELETE FROM access_policy WHERE actor = ? AND action = ?', [actor, action]);
      const v = Number(await insertChained(sql, CHAINS.access_policy_versions, { changed_at: by.now, actor, action, decision: 'removed' }));
      await logChange(sql, { tenant: by.tenant ?? '', table: 'access_policy', action: 'remove', actor: by.actor, at: by.now, change: { decision: { from: before.decision, to: null }, policy_snapshot_version: v } }, { actor, action });
      return true;
    },
    listRules() {
      return sql.all<AccessRuleRow>(LIST);
    },
    policyVersion: version,
    async decide(actor, action) {
      // In the caller's transaction: the rule and the version come from the same snapshot.
      const rule = await one(actor, action);
      return decided(rule, await version());
    },
    async snapshot(v) {
      const rules = new Map<string, AccessRule>();
      for (const r of await sql.all<{ actor: string; action: string; decision: AccessDecisionKind | 'removed' }>('SELECT actor, action, decision FROM access_policy_versions WHERE version <= ? ORDER BY version', [v])) {
        const k = `${r.actor}\u0000${r.action}`;
        if (r.decision === 'removed') rules.delete(k);
        else rules.set(k, { actor: r.actor, action: r.action, decision: r.decision });
      }
      return [...rules.values()].sort((a, b) => (a.actor < b.actor ? -1 : a.actor > b.actor ? 1 : a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
    },
  };
}
