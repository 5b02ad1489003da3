/**
 * Who may act: `run.allowed_actors` (who may run, resume or roll back a contract) and
 * `policy.admins` (who may change the access policy, the simulation catalog and SLO waivers).
 *
 * Both rest on the declared actor (`--actor`, `KAIR_ACTOR`, git, `$USER`): they are guardrails
 * against the wrong person acting by mistake, not authentication. Signed approvals are what
 * proves who approved. Pure: the caller supplies the config, the contract and the proposer.
 */
import type { Config } from './config.js';
import type { Contract } from './contract.js';
import { validApprovers } from './contract.js';
import { kairError } from './errors.js';

/** Anyone (the default of both keys). */
export const ANY_ACTOR = '*';
/** The actor who proposed the contract (the actor of its first history event). */
export const PROPOSER = '@proposer';
/** The actors of the valid approvals of the current plan. */
export const APPROVERS = '@approvers';
/** The `@` words `run.allowed_actors` understands; any other `@…` entry is a config error. */
export const ACTOR_GROUPS: readonly string[] = [PROPOSER, APPROVERS];

/** The commands `run.allowed_actors` governs. */
export type RunCommand = 'run' | 'resume' | 'rollback';

/**
 * Throws NOT_OWNER (exit 3) unless `actor` is named by `run.allowed_actors`, directly, by `*`,
 * as the proposer (`@proposer`) or as a valid approver of the current plan (`@approvers`).
 * `proposer` is asked only when the list has `@proposer` and nothing else matched: finding it
 * reads history, and the default list (`["*"]`) must cost nothing.
 */
export function assertMayRun(config: Config, c: Contract, actor: string, proposer: () => string, command: RunCommand = 'run'): void {
  const allowed = config.run.allowed_actors;
  if (allowed.includes(ANY_ACTOR) || allowed.includes(actor)) return;
  if (allowed.includes(APPROVERS) && validApprovers(c).includes(actor)) return;
  if (allowed.includes(PROPOSER) && proposer() === actor) return;
  throw kairError(
    'NOT_OWNER',
    `${q(actor)} may not ${command} ${c.id}: run.allowed_actors is ${JSON.stringify(allowed)}; act as one of them (--actor), or have an admin add ${q(actor)} to run.allowed_actors in .kair/config.json`,
    { contract_id: c.id, actor, command, allowed_actors: allowed, hint: `run as an actor run.allowed_actors names, or add ${q(actor)} to run.allowed_actors` },
  );
}

/** What an admin-only command changes, for the message. */
export type AdminAction = string;

/** Throws NOT_ADMIN (exit 3) unless `policy.admins` has `*` or names `actor`. */
export function assertAdmin(config: Config, actor: string, what: AdminAction): void {
  assertAdminIn(config.policy.admins, actor, what);
}

/**
 * The same rule on an admin list read from a config file that may be invalid (`config set` must
 * work on one). A list that is not a list of names lets nobody in (fail closed); the file can
 * still be fixed by hand.
 */
export function assertAdminIn(admins: unknown, actor: string, what: AdminAction): void {
  const list = Array.isArray(admins) && admins.every((a) => typeof a === 'string') ? (admins as string[]) : null;
  if (list && (list.includes(ANY_ACTOR) || list.includes(actor))) return;
  const shown = list ? JSON.stringify(list) : 'not a list of names';
  throw kairError(
    'NOT_ADMIN',
    `${q(actor)} is not an admin and may not ${what}: policy.admins is ${shown}; ask one of them, or act as one (--actor)`,
    {
      actor,
      action: what,
      admins: list,
      hint: list ? `ask an actor policy.admins names (${list.join(', ') || 'none'}) to do it` : 'fix policy.admins in .kair/config.json by hand',
    },
  );
}

/** An actor quoted in a message: escaped, at most 80 characters. */
const q = (v: string): string => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
