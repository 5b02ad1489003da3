import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // A private TMPDIR for the run that must be empty at the end; every file's temp folders removed.
    globalSetup: ['test/setup/temp-guard.ts'],
    setupFiles: ['test/setup/cleanup.ts'],
  },
});
