// signal-exit 3's API for proper-lockfile, in the bundle: onExit(cb, opts) → remove. It is
// served by signal-exit 4, which the bundle already holds for write-file-atomic; version 3
// loads node:assert to check its one argument. One copy also means one set of signal handlers.
'use strict';
// `signal-exit-4` is resolved by scripts/build.mjs to the copy write-file-atomic requires.
const { onExit } = require('signal-exit-4');
module.exports = function signalExit(cb, opts) {
  if (typeof cb !== 'function') throw new TypeError('a callback must be provided for exit handler');
  return onExit(cb, opts);
};
