// The ES module app of bench/nodejs_startup.py: an ES module entry point, so that its imports
// go through the tracer's ES module hook, serving with server.js (imported, as ES module apps
// import CommonJS packages).
import 'node:http'
import './server.js'
