/**
 * Who may change the policy: `policy.admins` (names, or `*` for anyone). A stand-in for the
 * shared `assertAdmin` until that lands (docs/decisions/022): same config key, same refusal.
 */
import type { Config } from '../domain/config.js';
import { kairError } from '../domain/errors.js';

export function isAdmin(admins: readonly string[], actor: string): boolean {
  return admins.includes('*') || admins.includes(actor);
}

export function assertAdminOf(admins: unknown, actor: string, what: string): void {
  const list = Array.isArray(admins) && admins.every((a) => typeof a === 'string') ? (admins as string[]) : null;
  // An unreadable admin list lets nobody in (fail closed); the file can still be edited by hand.
  if (list && isAdmin(list, actor)) return;
  throw kairError('NOT_ADMIN', `${actor} may not ${what}: only policy.admins may (${list ? list.join(', ') || 'nobody' : 'policy.admins is not a list of names'})`, {
    actor,
    admins: list,
    hint: list ? 'run it as one of policy.admins (--actor NAME), or ask an admin to add you to policy.admins' : 'fix policy.admins in .kair/config.json by hand',
  });
}

export function assertAdmin(config: Config, actor: string, what = 'change the access policy'): void {
  assertAdminOf(config.policy.admins, actor, what);
}
