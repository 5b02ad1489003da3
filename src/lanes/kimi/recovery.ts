/** Closing the envelopes of a run whose process died (SPEC §14: CANCELLED, with a recovery event). */
import type { ExecutionStore } from '../../store/port.js';
import type { RowAnchor } from '../../store/sqlite/chain.js';
import { envelopeAnchors } from '../../store/sqlite/chain.js';
import { envelopeRepo } from './envelopes.js';

/**
 * Cancels the run's PENDING/RUNNING envelopes in one transaction; returns their ids and the
 * anchors of the changed rows (envelopes and their run rows) for the recovery event to name.
 */
export async function cancelOpenEnvelopes(store: ExecutionStore, runId: string, now: string): Promise<{ ids: string[]; rows: RowAnchor[] }> {
  return store.transaction(async (sql) => {
    const repo = envelopeRepo(sql);
    const open = await repo.listEnvelopes({ runId, status: ['PENDING', 'RUNNING'] });
    const rows: RowAnchor[] = [];
    for (const e of open) await repo.cancelEnvelope(e.id, now);
    for (const e of open) rows.push(...(await envelopeAnchors(sql, e.id)));
    return { ids: open.map((e) => e.id), rows };
  });
}
