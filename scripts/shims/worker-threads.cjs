// What write-file-atomic reads of worker_threads (the thread id it puts in temp file names), in
// the bundle. The CLI runs on the main thread only, whose id is 0; loading worker_threads for it
// costs more than the write.
'use strict';
module.exports = { threadId: 0, isMainThread: true };
