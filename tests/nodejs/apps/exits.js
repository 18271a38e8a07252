'use strict'
// An application that ends with exit code 3 after saying hello.
console.log('hello from the application')
process.exitCode = 3
