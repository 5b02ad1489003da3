/**
 * Everything the read path does not need (zod, commander, the lock library, atomic writes),
 * built as a second bundle (dist/kair-cmd.cjs) that the first one requires on demand.
 */
export * as handlers from './handlers.js';
export { helpText } from './help.js';
export { completion } from './completion.js';
export * as aecHandlers from './aec-handlers.js';
export * as commandsHandlers from './commands-handlers.js';
// The local store's writing half (src/store/fs/adapter-write.ts), for the context's storage port.
export { localWrites } from '../store/fs/adapter-write.js';
export * as transferHandlers from './transfer-handlers.js';
