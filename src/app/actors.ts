/**
 * The workspace side of domain/actors.ts: the proposer read from history, the actor and config
 * taken from the context. `run`, `resume` (and `rollback`) call `assertMayRunHere`; every
 * command that changes the catalog, the access policy or the SLO waivers calls `assertAdminHere`
 * before it opens the database, so a refusal writes nothing.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { RunCommand } from '../domain/actors.js';
import { assertAdmin, assertMayRun } from '../domain/actors.js';
import type { Contract } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { paths } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';

/** The actor of a contract's first history event (its `propose`), reading only the first line. */
export function proposerOf(ctx: Ctx, id: string): string {
  const fd = openSync(paths.history(ctx.ws, id), 'r');
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(4096);
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      const nl = buf.subarray(0, n).indexOf(10);
      chunks.push(Buffer.from(buf.subarray(0, nl === -1 ? n : nl)));
      pos += n;
      if (nl !== -1 || n === 0) break;
    }
    const actor = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { actor?: unknown }).actor;
    if (typeof actor === 'string') return actor;
  } catch {
    // fall through: an unreadable first event names nobody
  } finally {
    closeSync(fd);
  }
  throw kairError('INTEGRITY_FAILED', `the first history event of ${id} names no actor; run \`kair verify ${id}\``, { contract_id: id, hint: `kair verify ${id}` });
}

/** NOT_OWNER unless `run.allowed_actors` lets the current actor run `c`. Call it under the contract's lock. */
export function assertMayRunHere(ctx: Ctx, c: Contract, command: RunCommand): void {
  assertMayRun(ctx.config, c, ctx.actor(), () => proposerOf(ctx, c.id), command);
}

/** NOT_ADMIN unless `policy.admins` names the current actor; `what` completes "may not …". */
export function assertAdminHere(ctx: Ctx, what: string): void {
  assertAdmin(ctx.config, ctx.actor(), what);
}
