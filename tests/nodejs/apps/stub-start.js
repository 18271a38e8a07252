'use strict'
// A stub tracer's start module: says that it started and counts its starts in the process. It
// loads worker_threads, as both real tracers do when they start (test_node_handover.py checks
// it): what the loader's own use of that module costs is then the tracer's, as in a real process.
require('node:worker_threads')
globalThis.libinjectStubStarts = (globalThis.libinjectStubStarts || 0) + 1
console.log('stub tracer started')
