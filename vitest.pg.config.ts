/**
 * The PostgreSQL pass: the behaviour suites that must hold on both backends, run with
 * KAIR_TEST_BACKEND=postgres (`npm run test:pg`). The workspace helpers (test/helpers/cli.ts)
 * then make every workspace a tenant of a real PostgreSQL started for each test file
 * (test/setup/pg-backend.ts, test/helpers/pg.ts; KAIR_TEST_DATABASE_URL points it at an existing
 * server instead). Same sources as the local pass: nothing here is a copy of a test.
 */
import { defineConfig } from 'vitest/config';

/** lifecycle, run with both lanes, AT-AGENT-01..13, concurrency, crash, tamper, and the harness's own check. */
export const PG_PASS_SUITES = [
  'test/e2e/pg-harness.test.ts',
  'test/e2e/lifecycle.test.ts',
  'test/e2e/run.test.ts',
  'test/acceptance/aec/*.test.ts',
  'test/e2e/concurrency.test.ts',
  'test/e2e/contention.test.ts',
  'test/e2e/aec-concurrency-crash.test.ts',
  // SIGKILL at the use cases' failpoints. test/crash/ (a kill at every file operation, through an
  // fs preload) is about the local files and has no PostgreSQL counterpart yet.
  'test/e2e/crash.test.ts',
  'test/e2e/tamper-files.test.ts',
  'test/e2e/tamper-sqlite.test.ts',
];

export default defineConfig({
  test: {
    include: PG_PASS_SUITES,
    env: { KAIR_TEST_BACKEND: 'postgres' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/setup/temp-guard.ts'],
    setupFiles: ['test/setup/cleanup.ts', 'test/setup/pg-backend.ts'],
  },
});
