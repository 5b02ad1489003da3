/** Closing the envelopes of a run whose process died (SPEC §14: CANCELLED, with a recovery event). */
import { existsSync } from 'node:fs';
import { openDb } from '../../store/sqlite/db.js';
import { envelopeRepo } from './envelopes.js';

/** Cancels the run's PENDING/RUNNING envelopes; returns their ids. Opens no database that does not exist. */
export function cancelOpenEnvelopes(dbFile: string, runId: string, now: string): string[] {
  if (!existsSync(dbFile)) return [];
  const db = openDb(dbFile);
  try {
    const repo = envelopeRepo(db);
    const open = repo.listEnvelopes({ runId, status: ['PENDING', 'RUNNING'] });
    for (const e of open) repo.cancelEnvelope(e.id, now);
    return open.map((e) => e.id);
  } finally {
    db.close();
  }
}
