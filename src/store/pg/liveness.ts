/**
 * Runner liveness on PostgreSQL: a session advisory lock per (tenant, run), taken when the run
 * starts and held on the runner's connection for the whole run. The server releases it when the
 * runner's session ends however it ends (exit, SIGKILL, a lost machine once TCP keepalive gives
 * up), so every machine sharing the database can tell a live runner from a dead one without
 * pids, hosts or boot ids. The local backend keeps its `{host, boot_id, pid, pid_start}` rules.
 */
import { kairError } from '../../domain/errors.js';
import type { RunnerLiveness } from '../port.js';
import type { PgClient, PgTarget } from './connect.js';
import { mapPgError } from './connect.js';
import { lockKey, lockParts } from './migrations.js';

export function pgRunnerLiveness(client: PgClient, target: PgTarget, tenant: string): RunnerLiveness {
  const key = (runId: string) => lockKey('kair:run', tenant, runId);
  const query = async <R extends object>(sql: string, params: unknown[]) => {
    try {
      return (await client.query<R>(sql, params)).rows;
    } catch (e) {
      throw mapPgError(e, target);
    }
  };
  return {
    async hold(runId) {
      const k = key(runId);
      const [r] = await query<{ got: boolean }>('SELECT pg_try_advisory_lock($1) AS got', [k]);
      if (!r?.got) {
        throw kairError('LOCK_BUSY', `run ${runId} is being run by another session`, { run_id: runId, backend: 'postgres', hint: 'wait for that run to end, or pause it' });
      }
      return async () => {
        await query('SELECT pg_advisory_unlock($1)', [k]);
      };
    },
    async verdict(runId) {
      const { classid, objid } = lockParts(key(runId));
      const rows = await query(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = $1::oid AND objid = $2::oid AND objsubid = 1",
        [classid, objid],
      );
      return rows.length > 0 ? 'alive' : 'dead';
    },
  };
}
