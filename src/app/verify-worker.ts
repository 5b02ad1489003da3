/**
 * The verify worker (dist/kair-verify-worker.cjs, started by verify-fast.ts on a long history):
 * checks and folds one stretch of the history (checkSegment) while the main thread and the other
 * workers do the others. It reads the bytes from the SharedArrayBuffer the main thread read the file into and
 * answers in shared memory, so the main thread waits with Atomics and verify stays synchronous.
 * `flags`: [0] 1 = started, 2 = done; [1] 1 = the stretch is as a writer leaves it; [2] lines;
 * [3] how many offsets follow in `kept`. The fold at the end must hash to what the checkpoint event
 * after the stretch records (the next stretch starts from that checkpoint's file). Any failure only sends
 * verify to its exact single-core path.
 */
import { workerData } from 'node:worker_threads';
import { canonicalJson, sha256Hex } from '../domain/canonical.js';
import type { Contract } from '../domain/contract.js';
import { checkSegment } from './verify-segment.js';

const data = workerData as { bytes: SharedArrayBuffer; from: number; to: number; seq: number; prev: string; state: string | null; endSha: string; flags: SharedArrayBuffer; kept: SharedArrayBuffer };
const flags = new Int32Array(data.flags);
Atomics.store(flags, 0, 1);
try {
  // The state a stretch after the first starts from is its checkpoint file's, which the main
  // thread checked hashes to what the checkpoint event records (the stretch before vouches for it).
  const state = data.state === null ? null : (JSON.parse(data.state) as Contract);
  const r = checkSegment(Buffer.from(data.bytes), data.from, data.to, { seq: data.seq, prev: data.prev, state }, null);
  const kept = new Int32Array(data.kept);
  if (r && r.state && sha256Hex(canonicalJson(r.state)) === data.endSha && r.kept.length <= kept.length) {
    kept.set(r.kept);
    flags[2] = r.lines;
    flags[3] = r.kept.length;
    flags[1] = 1;
  }
} catch {
  flags[1] = 0;
}
Atomics.store(flags, 0, 2);
Atomics.notify(flags, 0);
