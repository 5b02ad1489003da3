// signal-exit for proper-lockfile (version 3's API: onExit(cb, opts) → remove) and
// write-file-atomic (version 4's: { onExit }), exit-only: callbacks run when the process exits
// normally, never from a signal handler. signal-exit's handlers cannot run while kair's
// synchronous code runs (a run's steps, a lock wait, a blocking read), so they only deferred
// SIGINT/SIGTERM until the command had finished; without them the signal's default action ends
// kair at once. What they would have cleaned up (a lock folder, a temp file) the next command
// recovers: a lock whose holder is dead, a temp file swept under the lock (docs/decisions/016).
// This also keeps node:assert (signal-exit 3) out of the bundle.
'use strict';
function onExit(cb) {
  if (typeof cb !== 'function') throw new TypeError('a callback must be provided for exit handler');
  const handler = (code) => cb(code, null);
  process.once('exit', handler);
  return () => process.removeListener('exit', handler);
}
module.exports = onExit;
module.exports.onExit = onExit;
