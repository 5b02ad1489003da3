/**
 * The lifecycle and run commands alone, built as dist/kair-lifecycle.cjs: `run`, `grant` and
 * the other contract mutations load this bundle instead of kair-cmd.cjs, so they skip the
 * admin commands' code (zod through the simulation catalog, commander through help).
 */
export * as handlers from './handlers.js';
// The local store's writing half (src/store/fs/adapter-write.ts), for the context's storage port.
export { localWrites } from '../store/fs/adapter-write.js';
