'use strict'
// The web app of bench/nodejs_startup.py: Node's own http (which both tracers instrument), one
// route, listening on 127.0.0.1:PORT. Each request first checks that the tracer the case names
// in BENCH_TRACER runs in this process (dd-trace's global tracer, the OpenTelemetry API's
// registered provider, or none): a case that ran without its tracer, or with one it should not
// have, fails (exit code 3, the reason on stderr) instead of timing the wrong thing.
const http = require('node:http')

function tracer () {
  if (global._ddtrace) return 'dd-trace'
  const api = globalThis[Symbol.for('opentelemetry.js.api.1')]
  return api && api.trace ? 'opentelemetry' : 'none'
}

const server = http.createServer((request, response) => {
  const found = tracer()
  if (found !== process.env.BENCH_TRACER) {
    process.stderr.write(`tracer ${found} runs, the case wants ${process.env.BENCH_TRACER}\n`)
    process.exit(3)
  }
  response.end('hello\n')
})
server.listen(Number(process.env.PORT), '127.0.0.1')
