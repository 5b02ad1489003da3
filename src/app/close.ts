/** `kair unrequire` and `kair close`: the two lifecycle commands that take something away. */
import { existsSync } from 'node:fs';
import type { Contract } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { checkControls, decideClose, decideUnrequire } from '../domain/lifecycle.js';
import { envelopeRepo } from '../lanes/kimi/envelopes.js';
import type { RowAnchor } from '../store/sqlite/chain.js';
import { envelopeAnchors } from '../store/sqlite/chain.js';
import { openDb } from '../store/sqlite/db.js';
import { paths } from '../store/fs/workspace.js';
import type { Ctx } from './context.js';
import { mutate } from './mutate.js';

export async function unrequireControls(ctx: Ctx, id: string, controls: string[]): Promise<{ contract: Contract; removed: string[] }> {
  assertId(id);
  // Format only: a control that left the registry must still be removable.
  const names = checkControls(controls, null);
  const r = await mutate(ctx, id, 'unrequire', (c) => {
    const draft = decideUnrequire(c, names);
    return { drafts: [draft], result: draft.data.removed as string[] };
  });
  return { contract: r.contract, removed: r.result ?? [] };
}

/**
 * Cancels the contract's PENDING/RUNNING Kimi envelopes (SQLite first, then the event that
 * names the changed rows). Opens no database that does not exist.
 */
function cancelContractEnvelopes(ctx: Ctx, id: string): { ids: string[]; rows: RowAnchor[] } {
  const file = paths.db(ctx.ws);
  if (!existsSync(file)) return { ids: [], rows: [] };
  const db = openDb(file);
  try {
    const repo = envelopeRepo(db);
    const open = repo.listEnvelopes({ contractId: id, status: ['PENDING', 'RUNNING'] });
    for (const e of open) repo.cancelEnvelope(e.id, ctx.now(), 'Execution cancelled (contract closed)');
    return { ids: open.map((e) => e.id), rows: open.flatMap((e) => envelopeAnchors(db, e.id)) };
  } finally {
    db.close();
  }
}

export async function closeContract(ctx: Ctx, id: string, reason: string): Promise<{ contract: Contract; recorded: boolean; cancelled_envelopes: string[] }> {
  assertId(id);
  if (!reason.trim()) throw kairError('USAGE_ERROR', 'close needs a reason: kair close <id> "<reason>"', { argument: 'reason', hint: `kair close ${id} "why it is abandoned"` });
  let cancelled: string[] = [];
  const r = await mutate(ctx, id, 'close', (c) => {
    const draft = decideClose(c, reason);
    if (!draft) return { drafts: [] };
    const env = cancelContractEnvelopes(ctx, id);
    cancelled = env.ids;
    return { drafts: [{ ...draft, data: { ...draft.data, cancelled_envelopes: env.ids, ...(env.rows.length ? { rows: env.rows } : {}) } }] };
  });
  return { contract: r.contract, recorded: r.events.some((e) => e.type === 'close'), cancelled_envelopes: cancelled };
}
