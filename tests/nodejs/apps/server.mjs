// An ES module web application on Node's own http: answers REQUESTS requests on
// 127.0.0.1:PORT with the tracers running in its process, then closes, so that the process
// ends by itself and the tracers flush at exit.
import { createServer } from 'node:http'
import tracers from './probe.cjs'
let left = Number(process.env.REQUESTS)
const server = createServer((request, response) => {
  response.setHeader('connection', 'close')
  response.end(tracers())
  if (--left === 0) server.close()
})
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
