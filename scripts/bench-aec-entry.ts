/** What scripts/bench-aec.mjs needs in-process, bundled on the fly with esbuild. */
export { dispatchStep } from '../src/lanes/aec/dispatcher.js';
export { ledgerRepo } from '../src/lanes/aec/ledger.js';
export { paths, workspaceAt } from '../src/store/fs/workspace.js';
export { openDb } from '../src/store/sqlite/db.js';
export { CHAINS, chainExistingRows } from '../src/store/sqlite/chain.js';
