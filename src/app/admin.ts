/**
 * `policy.admins` read from a config file that may be invalid (`config set` must work on one):
 * the validated config goes through the shared `assertAdmin` of domain/actors.ts.
 */
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
