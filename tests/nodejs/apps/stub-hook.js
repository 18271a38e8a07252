'use strict'
// A stub tracer's ES module hook, a CommonJS registration as dd-trace's register.js is: says
// that the loader set it up.
console.log('stub ES module hook set')
