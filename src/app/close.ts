/** `kair unrequire` and `kair close`: the two lifecycle commands that take something away. */
import type { Contract } from '../domain/contract.js';
import { kairError } from '../domain/errors.js';
import { assertId } from '../domain/ids.js';
import { checkControls, decideClose, decideUnrequire } from '../domain/lifecycle.js';
import { envelopeRepo } from '../lanes/kimi/envelopes.js';
import type { RowAnchor } from '../store/sqlite/chain.js';
import { envelopeAnchors } from '../store/sqlite/chain.js';
import type { ExecutionStore } from '../store/port.js';
import { hasExecutionStore, withExecution } from './db.js';
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
 * Cancels the contract's PENDING/RUNNING Kimi envelopes in one transaction (SQLite first, then
 * the event that names the changed rows).
 */
function cancelContractEnvelopes(ctx: Ctx, store: ExecutionStore, id: string): Promise<{ ids: string[]; rows: RowAnchor[] }> {
  return store.transaction(async (sql) => {
    const repo = envelopeRepo(sql);
    const open = await repo.listEnvelopes({ contractId: id, status: ['PENDING', 'RUNNING'] });
    const rows: RowAnchor[] = [];
    for (const e of open) await repo.cancelEnvelope(e.id, ctx.now(), 'Execution cancelled (contract closed)');
    for (const e of open) rows.push(...(await envelopeAnchors(sql, e.id)));
    return { ids: open.map((e) => e.id), rows };
  });
}

export async function closeContract(ctx: Ctx, id: string, reason: string): Promise<{ contract: Contract; recorded: boolean; cancelled_envelopes: string[] }> {
  assertId(id);
  if (!reason.trim()) throw kairError('USAGE_ERROR', 'close needs a reason: kair close <id> "<reason>"', { argument: 'reason', hint: `kair close ${id} "why it is abandoned"` });
  let cancelled: string[] = [];
  const r = await mutate(ctx, id, 'close', async (c) => {
    const draft = decideClose(c, reason);
    if (!draft) return { drafts: [] };
    // Opens no database that does not exist.
    const env = hasExecutionStore(ctx) ? await withExecution(ctx, (store) => cancelContractEnvelopes(ctx, store, id)) : { ids: [], rows: [] };
    cancelled = env.ids;
    return { drafts: [{ ...draft, data: { ...draft.data, cancelled_envelopes: env.ids, ...(env.rows.length ? { rows: env.rows } : {}) } }] };
  });
  return { contract: r.contract, recorded: r.events.some((e) => e.type === 'close'), cancelled_envelopes: cancelled };
}
