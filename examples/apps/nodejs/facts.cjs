'use strict'
// What the trace tests check besides the spans: one line per tracer running in this process.
// dd-trace keeps its tracer in a global of its own; an OpenTelemetry SDK registers its tracer
// provider in the API's global (the key every 1.x API shares).
module.exports = function facts () {
  let lines = ''
  if (global._ddtrace) lines += 'tracer ddtrace\n'
  const api = globalThis[Symbol.for('opentelemetry.js.api.1')]
  if (api && api.trace) lines += 'tracer opentelemetry\n'
  return lines
}
