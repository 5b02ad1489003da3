/** Closing the envelopes of a run whose process died (SPEC §14: CANCELLED, with a recovery event). */
import { existsSync } from 'node:fs';
import { openDb } from '../../store/sqlite/db.js';
import type { RowAnchor } from '../../store/sqlite/chain.js';
import { envelopeAnchors } from '../../store/sqlite/chain.js';
import { envelopeRepo } from './envelopes.js';

/**
 * Cancels the run's PENDING/RUNNING envelopes; returns their ids and the anchors of the changed
 * rows (envelopes and their run rows) for the recovery event to name. Opens no database that
 * does not exist.
 */
export function cancelOpenEnvelopes(dbFile: string, runId: string, now: string): { ids: string[]; rows: RowAnchor[] } {
  if (!existsSync(dbFile)) return { ids: [], rows: [] };
  const db = openDb(dbFile);
  try {
    const repo = envelopeRepo(db);
    const open = repo.listEnvelopes({ runId, status: ['PENDING', 'RUNNING'] });
    for (const e of open) repo.cancelEnvelope(e.id, now);
    return { ids: open.map((e) => e.id), rows: open.flatMap((e) => envelopeAnchors(db, e.id)) };
  } finally {
    db.close();
  }
}
