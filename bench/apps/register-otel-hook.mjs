// OpenTelemetry's ES module hook set up by hand as its ESM notes show for Node 20.6 and later:
// module.register() from a file the app preloads with --import (the faster way than
// --experimental-loader, which runs the same hook through Node's older loader path).
import { register } from 'node:module'
register('@opentelemetry/instrumentation/hook.mjs', import.meta.url)
