/**
 * `kair unlock <id>|--index|--propose --force`: removes a lock whose holder kair cannot prove dead by itself
 * (a holder on another host). A live holder on this host is never removed; a dead one would have
 * been recovered by the next command anyway. Removing a contract's lock is recorded in its history.
 */
import type { Contract } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import type { Holder } from '../store/fs/lock.js';
import { INDEX_LOCK, PROPOSE_LOCK, breakLock, contractLock, lockBusy, lockHolder } from '../store/fs/lock.js';
import { contractExists } from '../store/fs/contracts.js';
import { paths } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';
import { lockWho, mutate } from './mutate.js';

export interface UnlockResult {
  lock: string;
  /** The record of the holder whose lock was removed (null: none, or a lock without a record). */
  removed: Holder | null;
  /** Whether a lock folder was there and removed. */
  found: boolean;
  /** The contract after its `unlock` event, when a contract's lock was removed. */
  contract?: Contract;
}

export async function unlock(ctx: Ctx, target: { id?: string; index: boolean; propose?: boolean }, force: boolean): Promise<UnlockResult> {
  // Exactly one lock: a contract's, the index's, or propose's (which serialises creating contracts).
  if ([target.id !== undefined, target.index, target.propose === true].filter(Boolean).length !== 1) {
    throw kairError('USAGE_ERROR', 'name one lock to remove: `kair unlock <id> --force`, `kair unlock --index --force` or `kair unlock --propose --force`', { argument: 'id', flag: target.index ? '--index' : '--propose' });
  }
  if (target.id !== undefined) assertId(target.id);
  const name = target.id !== undefined ? contractLock(target.id) : target.index ? INDEX_LOCK : PROPOSE_LOCK;
  const what = target.id !== undefined ? `kair unlock ${target.id} --force` : target.index ? 'kair unlock --index --force' : 'kair unlock --propose --force';
  if (!force) {
    throw kairError('USAGE_ERROR', `unlock removes a lock another process may still hold: add --force (\`${what}\`) once you know its holder is gone`, { flag: '--force' });
  }
  const locks = paths.locks(ctx.ws);
  void ctx.config; // an invalid config fails the command before the lock is touched, as in mutate
  const guarded = target.id !== undefined && contractExists(ctx.ws, target.id);
  if (target.id !== undefined && !guarded && !lockHolder(locks, name).exists) {
    throw kairError('CONTRACT_NOT_FOUND', `no contract ${JSON.stringify(target.id)} in this workspace (see \`kair list\`)`, { contract_id: target.id });
  }
  const r = breakLock(locks, name, lockWho(ctx), true);
  if (!r.removed) {
    if (r.reason === 'gone') return { lock: name, removed: null, found: false };
    if (r.verdict === 'live') {
      const h = r.holder!;
      throw kairError('LOCK_BUSY', `${name} is held by pid ${h.pid} on ${h.host} (actor ${h.actor}, command ${h.command}, since ${h.since}), which is alive: unlock never removes a live holder's lock; wait for it to finish`, { lock: name, holder: h });
    }
    throw lockBusy(name, r.holder, r.verdict, 0);
  }
  if (!guarded) return { lock: name, removed: r.holder, found: true };
  const m = await mutate(ctx, target.id!, 'unlock', (c) => ({ drafts: [{ type: 'unlock', state: c.state, data: { lock: name, holder: r.holder } }] }));
  return { lock: name, removed: r.holder, found: true, contract: m.contract };
}
