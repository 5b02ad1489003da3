/**
 * The PostgreSQL pass (vitest.pg.config.ts, `npm run test:pg`): every test file gets its own
 * database on a real server (test/helpers/pg.ts: an embedded server per file, or
 * KAIR_TEST_DATABASE_URL), whose URL every spawned CLI reads from KAIR_DATABASE_URL; the
 * workspace helpers (test/helpers/cli.ts, KAIR_TEST_BACKEND=postgres) make each workspace a new
 * tenant there. The databases cloned workspaces got are dropped at the end of the file.
 */
import { afterAll, beforeAll } from 'vitest';
import { pgClones } from '../helpers/cli.js';
import { usePg, withQuery } from '../helpers/pg.js';

if (process.env.KAIR_TEST_BACKEND !== 'postgres') throw new Error('test/setup/pg-backend.ts runs only with KAIR_TEST_BACKEND=postgres (vitest.pg.config.ts sets it)');

const pgt = usePg();
beforeAll(() => {
  process.env.KAIR_DATABASE_URL = pgt.current.url;
});
// Registered after usePg, so it runs before usePg's own afterAll stops the server.
afterAll(async () => {
  delete process.env.KAIR_DATABASE_URL;
  if (!pgt.current) return;
  for (const name of pgClones.splice(0)) await withQuery(pgt.current.adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}, 60_000);
