'use strict'
// The web app as CommonJS: Express on 127.0.0.1:$PORT. "/" answers a greeting; "/facts" names
// the tracers running in this process (facts.cjs). server.mjs is the same app as an ES module.
const express = require('express')
const facts = require('./facts.cjs')

const app = express()
app.get('/', (request, response) => response.type('text/plain').send('hello from the app\n'))
app.get('/facts', (request, response) => response.type('text/plain').send(facts()))
const port = Number(process.env.PORT || 8080)
app.listen(port, '127.0.0.1', () => console.log('listening on ' + port))
