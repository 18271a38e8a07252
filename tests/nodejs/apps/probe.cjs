'use strict'
// The tracers running in this process, as the application sees them: dd-trace's global tracer,
// the OpenTelemetry API's registered tracer provider, and how often a stub tracer started.
module.exports = function tracers () {
  const found = []
  if (global._ddtrace) found.push('dd-trace')
  const otel = globalThis[Symbol.for('opentelemetry.js.api.1')]
  if (otel && otel.trace) found.push('opentelemetry')
  if (globalThis.libinjectStubStarts) found.push('stub x' + globalThis.libinjectStubStarts)
  return found.join(' ') || 'none'
}
