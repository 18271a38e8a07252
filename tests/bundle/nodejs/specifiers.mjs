// Every module specifier written as a string literal in the JavaScript of DIR/node_modules
// (require('x'), import ... from 'x', import('x'), export ... from 'x'), with the file Node
// resolves it to from that file, by CommonJS's rules or else by ES modules' (run with
// --experimental-import-meta-resolve): a JSON list of [file, specifier, target], paths relative
// to DIR. Specifiers that resolve to nothing (optional requires, code for other runtimes,
// strings that only look like specifiers) are left out. Usage: node specifiers.mjs DIR
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = process.argv[2]
const SPECIFIER = /(?:\brequire\s*\(\s*|\bimport\s*\(\s*|\bfrom\s*|\bimport\s+)(['"])([^'"\n]+)\1/g

function * scripts (directory) {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name)
    if (entry.isDirectory()) yield * scripts(path)
    else if (/\.[cm]?js$/.test(entry.name)) yield path
  }
}

function target (file, specifier) {
  try {
    return createRequire(file).resolve(specifier)
  } catch {}
  try {
    const url = import.meta.resolve(specifier, pathToFileURL(file).href)
    return url.startsWith('file:') ? fileURLToPath(url) : null
  } catch {
    return null
  }
}

const found = []
for (const file of scripts(join(root, 'node_modules'))) {
  for (const match of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
    const resolved = target(file, match[2])
    if (resolved && resolved.startsWith('/') && existsSync(resolved)) {
      found.push([relative(root, file), match[2], relative(root, resolved)])
    }
  }
}
console.log(JSON.stringify(found))
