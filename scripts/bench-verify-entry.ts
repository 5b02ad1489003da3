/** What scripts/bench-verify.mjs needs in-process to grow a long history fast, bundled on the fly. */
export { decideGrant, decidePropose } from '../src/domain/lifecycle.js';
export { newDpc } from '../src/domain/dpc.js';
export { commitEvents, createContract, writeIndex } from '../src/store/fs/contract-writes.js';
export { indexEntry, loadContract } from '../src/store/fs/contracts.js';
export { workspaceAt } from '../src/store/fs/workspace.js';
