'use strict'
// A CommonJS application: says hello, then which tracers run in its process.
const tracers = require('./probe.cjs')
console.log('hello from the application')
console.log('tracers: ' + tracers())
