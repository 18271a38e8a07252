// The web app as an ES module: the same as server.cjs, with Express imported rather than
// required (what the tracers' ES module hooks are for).
import express from 'express'
import facts from './facts.cjs'

const app = express()
app.get('/', (request, response) => response.type('text/plain').send('hello from the app\n'))
app.get('/facts', (request, response) => response.type('text/plain').send(facts()))
const port = Number(process.env.PORT || 8080)
app.listen(port, '127.0.0.1', () => console.log('listening on ' + port))
