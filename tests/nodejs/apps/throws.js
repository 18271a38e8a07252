'use strict'
// An application that fails at start: an uncaught error, exit code 1.
console.log('hello from the application')
throw new Error('the application fails on purpose')
