// Starts a Node.js bundle's tracer as the loader does, with its ESM hook registered first, then
// imports an ES module, makes one span and requires each PACKAGE given from the bundle. Prints
// what happened as JSON: the span's trace id and whether it records (OpenTelemetry), and the
// native addons the process loaded, relative to the bundle.
// Usage: node start.mjs BUNDLE [PACKAGE...]
import { readFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { pathToFileURL } from 'node:url'

const [root, ...packages] = process.argv.slice(2)
const manifest = Object.fromEntries(
  readFileSync(`${root}/bundle.txt`, 'utf8').trim().split('\n').map(line => line.split(' '))
)
register(pathToFileURL(`${root}/${manifest['esm-hook']}`))
const require = createRequire(import.meta.url)
const tracer = require(`${root}/${manifest.start}`)
await import('node:http') // through the hook: a hook that fails to load fails this import

let span = {}
if (manifest.flavor === 'ddtrace') {
  const probe = tracer.startSpan('probe')
  span = { traceId: probe.context().toTraceId() }
  probe.finish()
} else {
  const api = require(`${root}/node_modules/@opentelemetry/api`)
  const probe = api.trace.getTracer('probe').startSpan('probe')
  span = { traceId: probe.spanContext().traceId, recording: probe.isRecording() }
  probe.end()
}
for (const name of packages) require(`${root}/node_modules/${name}`)
const natives = Object.keys(require.cache)
  .filter(path => path.endsWith('.node'))
  .map(path => path.slice(root.length + 1))
console.log(`libinject-probe ${JSON.stringify({ span, natives })}`)
