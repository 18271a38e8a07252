'use strict'
// A stub tracer's start module: says that it started and counts its starts in the process.
globalThis.libinjectStubStarts = (globalThis.libinjectStubStarts || 0) + 1
console.log('stub tracer started')
