/**
 * SLO waivers (`kair aec waiver add|list`): an append-only table whose every row is entered in
 * the change log, with its actor, in the same transaction. A waiver only ever ends by expiring.
 */
import type { Waiver } from '../../domain/aec/slo.js';
import type { SqlExecutor } from '../../store/port.js';
import { rowSha } from '../../store/sqlite/chain.js';
import { changeLog, logChange, rowKey } from './change-log.js';

interface Row extends Waiver {
  tenant_id: string;
}

export interface WaiverView extends Waiver {
  /** The row is what its change-log entry recorded (false: written outside kair; never honoured). */
  logged: boolean;
}

/** In the caller's transaction (the waiver and its change-log entry commit together). */
export async function addWaiver(sql: SqlExecutor, w: { tenant: string; until: string; reason: string; actor: string; now: string }): Promise<Waiver> {
  const n = Number((await sql.get<{ n: number }>('SELECT count(*) AS n FROM slo_waivers'))!.n);
  const id = `waiver-${n + 1}`;
  await sql.run('INSERT INTO slo_waivers (id, tenant_id, until, reason, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)', [id, w.tenant, w.until, w.reason, w.now, w.actor]);
  await logChange(sql, { tenant: w.tenant, table: 'slo_waivers', action: 'waive', actor: w.actor, at: w.now, change: { until: w.until, reason: w.reason } }, { id });
  return { id, until: w.until, reason: w.reason, created_at: w.now, created_by: w.actor };
}

/** Every waiver, oldest first, each with whether the change log vouches for it. */
export async function listWaivers(sql: SqlExecutor): Promise<WaiverView[]> {
  const logged = new Map<string, string>();
  for (const e of await changeLog(sql, { table: 'slo_waivers' })) logged.set(e.row_key, e.row_sha256);
  return (await sql.all<Row>('SELECT * FROM slo_waivers ORDER BY created_at, rowid')).map((r) => ({
    id: r.id,
    until: r.until,
    reason: r.reason,
    created_at: r.created_at,
    created_by: r.created_by,
    logged: logged.get(rowKey('slo_waivers', r as unknown as Record<string, unknown>)) === rowSha(r as unknown as Record<string, unknown>, { dialect: sql.dialect, table: 'slo_waivers' }),
  }));
}
