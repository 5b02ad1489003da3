/** What scripts/bench-scale.mjs needs in-process to build a large workspace fast, bundled on the fly. */
export { decideGrant, decidePropose } from '../src/domain/lifecycle.js';
export { newDpc } from '../src/domain/dpc.js';
export { commitEvents, createContract, writeIndex } from '../src/store/fs/contract-writes.js';
export { indexEntry, loadContract } from '../src/store/fs/contracts.js';
export { paths, workspaceAt } from '../src/store/fs/workspace.js';
export { indexFiles, readIndexMerged } from '../src/store/fs/index-read.js';
