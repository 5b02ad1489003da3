/**
 * SLO waivers (`kair aec waiver add|list`): an append-only table whose every row is entered in
 * the change log, with its actor, in the same transaction. A waiver only ever ends by expiring.
 */
import type { Waiver } from '../../domain/aec/slo.js';
import type { Db } from '../../store/sqlite/db.js';
import { rowSha } from '../../store/sqlite/chain.js';
import { changeLog, logChange, rowKey } from './change-log.js';

interface Row extends Waiver {
  tenant_id: string;
}

export interface WaiverView extends Waiver {
  /** The row is what its change-log entry recorded (false: written outside kair; never honoured). */
  logged: boolean;
}

export function addWaiver(db: Db, w: { tenant: string; until: string; reason: string; actor: string; now: string }): Waiver {
  return db
    .transaction((): Waiver => {
      const n = (db.prepare('SELECT count(*) AS n FROM slo_waivers').get() as { n: number }).n;
      const id = `waiver-${n + 1}`;
      db.prepare('INSERT INTO slo_waivers (id, tenant_id, until, reason, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)').run(id, w.tenant, w.until, w.reason, w.now, w.actor);
      logChange(db, { tenant: w.tenant, table: 'slo_waivers', action: 'waive', actor: w.actor, at: w.now, change: { until: w.until, reason: w.reason } }, { id });
      return { id, until: w.until, reason: w.reason, created_at: w.now, created_by: w.actor };
    })
    .immediate();
}

/** Every waiver, oldest first, each with whether the change log vouches for it. */
export function listWaivers(db: Db): WaiverView[] {
  const logged = new Map<string, string>();
  for (const e of changeLog(db, { table: 'slo_waivers' })) logged.set(e.row_key, e.row_sha256);
  return (db.prepare('SELECT * FROM slo_waivers ORDER BY created_at, rowid').all() as Row[]).map((r) => ({
    id: r.id,
    until: r.until,
    reason: r.reason,
    created_at: r.created_at,
    created_by: r.created_by,
    logged: logged.get(rowKey('slo_waivers', r as unknown as Record<string, unknown>)) === rowSha(r as unknown as Record<string, unknown>),
  }));
}
