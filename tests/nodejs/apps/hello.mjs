// An ES module application: says hello, then which tracers run in its process.
import tracers from './probe.cjs'
console.log('hello from the application')
console.log('tracers: ' + tracers())
