import { describe, expect, it } from 'vitest';
import { startTestPg, withQuery } from '../helpers/pg.js';

// The helper itself: a real server answers, and close() leaves nothing behind.
describe('test/helpers/pg.ts', () => {
  it('starts a server with a fresh database, and removes it all on close', async () => {
    const t = await startTestPg();
    try {
      const r = await withQuery(t.url, (c) => c.query<{ db: string; v: string }>('SELECT current_database() AS db, current_setting(\'server_version_num\') AS v'));
      expect(r.rows[0]!.db).toBe(t.database);
      expect(Number(r.rows[0]!.v)).toBeGreaterThanOrEqual(140000);
      if (t.embedded) console.log(`embedded PostgreSQL: initdb + start in ${Math.round(t.startupMs)} ms`);
    } finally {
      await t.close();
    }
    if (t.embedded) await expect(withQuery(t.adminUrl, (c) => c.query('SELECT 1'))).rejects.toThrow();
  });
});
