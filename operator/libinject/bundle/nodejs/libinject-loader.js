'use strict'
/*
 * libinject's Node.js loader: NODE_OPTIONS `--require`s it from the library volume. It checks
 * that the bundle's tracer may start in this process, then starts it. Node aborts when a
 * --require'd file throws, and the application must start with or without a tracer: so every
 * step is guarded, nothing is thrown, the exit code is left alone, and nothing is printed but
 * one stderr line with LIBINJECT_DEBUG=true. Plain CommonJS and Node's built-ins only: it runs
 * in every Node process of the container, package managers included, before any of them. So
 * the path of a process that starts the tracer is kept short: V8 compiles each function and
 * each regular expression when first used, and at this point of a start everything is first
 * used (bundle.txt's Node range comes reduced by the builder, and options are looked at as
 * text before they are parsed).
 */

const BEGUN = process.hrtime.bigint()
const fs = require('node:fs')
const path = require('node:path')

const MARK = Symbol.for('libinject.loader')
const MANIFEST = 'bundle.txt'
const KEYS = ['language', 'flavor', 'version', 'node', 'start']
// Programs that are not the application (package managers, their shims, native add-on
// builds): by the main script's name without extension, or a package directory on its path.
// npm's run-scripts start the application as a node process of its own, which is traced.
const TOOL_NAMES = new Set([
  'npm', 'npm-cli', 'npx', 'npx-cli', 'yarn', 'yarnpkg', 'pnpm', 'pnpx', 'corepack', 'node-gyp'
])
const TOOL_PACKAGES = ['npm', 'yarn', 'pnpm', 'corepack', 'node-gyp', '@yarnpkg']
const PRELOADS = new Set(['--require', '-r', '--import', '--loader', '--experimental-loader'])
const TRACER_SEGMENTS = ['dd-trace', '@opentelemetry']

class Refused extends Error {}

function main () {
  const debugging = flag(process.env.LIBINJECT_DEBUG)
  let line
  try {
    line = run(__dirname, debugging)
  } catch (error) {
    line = notLoaded(error instanceof Refused ? error.message : 'loader error: ' + describe(error))
  }
  if (debugging && line !== null && isMainThread()) debug(line)
}

/**
 * Every check in order, then the start: the debug line, or null in a worker thread (Node runs
 * --require'd files in each, its module-hooks thread included: the tracer is the main
 * thread's, and a process says what happened once). Throws Refused.
 */
function run (root, debugging) {
  if (globalThis[MARK] !== undefined) {
    throw new Refused('a libinject loader already ran in this process (one tracer)')
  }
  globalThis[MARK] = __filename
  const bundle = readBundle(root)
  const range = satisfies(process.versions.node, bundle.node)
  if (range === null) {
    throw notReady(MANIFEST + " has node '" + bundle.node + "', not a range the loader reads")
  }
  if (!range) {
    throw new Refused('Node ' + process.versions.node + ' is outside what ' + bundle.title +
      ' supports (node ' + bundle.node + ')')
  }
  const script = mainScript()
  checkProgram(script)
  checkOwnTracer(bundle.own, script, root)
  const checked = process.hrtime.bigint()
  if (!isMainThread()) return null
  const what = bundle.title + ' from ' + root
  let exported
  try {
    exported = require(bundle.start)
  } catch (error) {
    throw new Refused('failed to start ' + what + ': ' + describe(error))
  }
  if (exported === undefined || exported === false) {
    throw new Refused(what + ' did not start (its own checks declined this process)')
  }
  const hook = bundle.esmHook ? esmHook(bundle.esmHook, script) : ''
  if (!debugging) return ''
  return 'loaded ' + what + ' (checks ' + ms(checked - BEGUN) + ', tracer start ' +
    ms(process.hrtime.bigint() - checked) + ')' + hook
}

/** Asked only where it matters: requiring worker_threads costs the main thread about 2 ms on
 * Node 22, which the tracers pay anyway when they start (they load it too). */
function isMainThread () {
  return require('node:worker_threads').isMainThread
}

// --- bundle.txt ---------------------------------------------------------------------------

function readBundle (root) {
  let text
  try {
    text = fs.readFileSync(path.join(root, MANIFEST), 'utf8')
  } catch (error) {
    throw notReady(error.code === 'ENOENT' ? 'no ' + MANIFEST + ' in ' + root
      : 'cannot read ' + path.join(root, MANIFEST) + ' (' + describe(error) + ')')
  }
  const values = new Map()
  const own = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    const space = line.indexOf(' ')
    if (space < 0 || line[0] === '#') continue
    const key = line.slice(0, space)
    const value = line.slice(space + 1).trim()
    if (key === 'own') own.push(value)
    else values.set(key, value)
  }
  const missing = KEYS.filter((key) => !values.has(key))
  if (missing.length) throw notReady(MANIFEST + ' lacks ' + missing.join(', '))
  if (values.get('language') !== 'nodejs') {
    throw notReady(MANIFEST + ' is for ' + values.get('language') + ', not nodejs')
  }
  return {
    title: values.get('flavor') + ' ' + values.get('version'),
    node: values.get('node'),
    start: bundleFile(root, 'start', values.get('start')),
    esmHook: values.has('esm-hook') ? bundleFile(root, 'esm-hook', values.get('esm-hook')) : '',
    own
  }
}

/** The absolute path of a file bundle.txt names, once it exists inside the bundle. */
function bundleFile (root, key, relative) {
  if (path.isAbsolute(relative) || relative.split('/').includes('..')) {
    throw notReady(MANIFEST + " has " + key + " '" + relative + "', not a path in the bundle")
  }
  const file = path.join(root, relative)
  if (!fs.existsSync(file)) {
    throw new Refused('library incomplete: ' + file + ' is missing')
  }
  return file
}

// --- the program --------------------------------------------------------------------------

/** The application's main script as Node resolves it (links followed), or '' (node -e, REPL). */
function mainScript () {
  const given = process.argv[1]
  if (!given) return ''
  try {
    return fs.realpathSync.native(given)
  } catch (_) {
    return path.resolve(given)
  }
}

function checkProgram (script) {
  for (const file of new Set([process.argv[1] || '', script])) {
    if (!file) continue
    const parts = file.split('/')
    const inTool = TOOL_PACKAGES.some((tool) => parts.includes(tool) &&
      parts[parts.indexOf(tool) - 1] === 'node_modules')
    const inYarn = ('/' + file).includes('/.yarn/releases/')
    if (TOOL_NAMES.has(scriptName(parts[parts.length - 1])) || inTool || inYarn) {
      throw new Refused('a package manager or build tool, not an application: ' + file)
    }
  }
}

/** A script's file name without its .js, .cjs or .mjs. */
function scriptName (file) {
  const dot = file.lastIndexOf('.')
  return ['.js', '.cjs', '.mjs'].includes(file.slice(dot)) ? file.slice(0, dot) : file
}

// --- one tracer per process ---------------------------------------------------------------

function checkOwnTracer (names, script, root) {
  const preload = TRACER_SEGMENTS.some(given) &&
    (preloadedTracer(words(process.env.NODE_OPTIONS || ''), 'NODE_OPTIONS') ||
      preloadedTracer(process.execArgv, 'the command line'))
  if (preload) throw new Refused('the application preloads its own tracer: ' + preload)
  const from = script ? path.dirname(script) : process.cwd()
  const found = resolvable(names, from, root)
  if (found) throw new Refused('the application has its own tracer: ' + found)
}

/** `--require X`, `-r X`, `--import=X`... naming a tracer's package, as "OPTION VALUE in WHERE". */
function preloadedTracer (args, where) {
  for (let i = 0; i < args.length; i++) {
    const equals = args[i].indexOf('=')
    const option = equals > 0 ? args[i].slice(0, equals) : args[i]
    if (!PRELOADS.has(option)) continue
    const value = equals > 0 ? args[i].slice(equals + 1) : args[++i] || ''
    if (path.basename(value) === 'libinject-loader.js') continue // a loader: the mark decides
    if (value.split('/').some((part) => TRACER_SEGMENTS.includes(part))) {
      return option + ' ' + value + ' in ' + where
    }
  }
  return ''
}

/**
 * Whether `text` is anywhere in NODE_OPTIONS or the command line's options: most processes
 * give neither a tracer nor the options the loader reads, and parsing them costs more than
 * looking (every first use of code costs at this point of a process's start).
 */
function given (text) {
  return (process.env.NODE_OPTIONS || '').includes(text) ||
    process.execArgv.some((option) => option.includes(text))
}

/** `text` split as Node splits NODE_OPTIONS: at spaces, "double quotes" with \ escapes. */
function words (text) {
  const out = []
  let word = null
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted && c === '\\' && i + 1 < text.length) {
      word += text[++i]
    } else if (c === '"') {
      quoted = !quoted
      word = word || ''
    } else if (!quoted && (c === ' ' || c === '\t' || c === '\n')) {
      if (word !== null) out.push(word)
      word = null
    } else {
      word = (word || '') + c
    }
  }
  if (word !== null) out.push(word)
  return out
}

/** The first of `names` with a package.json where require() looks from `from`, or ''. */
function resolvable (names, from, root) {
  const bundled = path.join(root, 'node_modules')
  const dirs = []
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') dirs.push(path.join(dir, 'node_modules'))
    if (path.dirname(dir) === dir) break
  }
  try {
    // NODE_PATH and the global folders. The Module class by this module's constructor, not
    // require('node:module'): loading that costs Node 22 half a millisecond.
    dirs.push(...module.constructor.globalPaths)
  } catch (_) {}
  for (const dir of dirs) {
    // Most folders up the path have no node_modules: one look rules out all of `names`.
    if (dir === bundled || !fs.existsSync(dir)) continue
    for (const name of names) {
      if (fs.existsSync(path.join(dir, name, 'package.json'))) return path.join(dir, name)
    }
  }
  return ''
}

// --- ES modules ---------------------------------------------------------------------------

// Where Node's own rules settle an entry point's module system by its extension alone.
const MODULE_EXTENSIONS = new Set(['.mjs', '.mts'])
const COMMONJS_EXTENSIONS = new Set(['.cjs', '.cts', '.json', '.node'])
// Words without which a source cannot be an ES module (static imports and exports, top-level
// await): a CommonJS entry point without them is settled without compiling it.
const MODULE_WORDS = ['import', 'export', 'await']
const COMMONJS_WRAPPER = ['exports', 'require', 'module', '__filename', '__dirname']

/**
 * The tracer's hook for ES modules, after its start (as the tracers' own ESM entries do), for an
 * application whose entry point is an ES module: the tracers document a --require for CommonJS
 * apps and their hook for ES module apps, and the hook is not free (module.register starts a
 * module-hooks thread: OpenTelemetry's made a CommonJS app start 1.14x slower on Node 22).
 * LIBINJECT_ESM_HOOK=true sets it up for every app (a CommonJS launcher that imports an ES
 * module app, or ES module libraries a CommonJS app imports), false for none. A .mjs hook goes
 * to module.register where Node has it; a CommonJS file is the tracer's own registration, which
 * picks Node's in-thread hooks where they work (dd-trace's register.js). Returns the debug
 * line's note on the hook.
 */
function esmHook (file, script) {
  try {
    const [wanted, why] = hookWanted(script)
    if (!wanted) return '; no ES module hook: ' + why
    if (file.endsWith('.mjs')) {
      const Module = require('node:module')
      if (typeof Module.register !== 'function') return '; no ES module hook: no module.register'
      // Node 26 deprecates module.register (DEP0205) and would print a warning: the loader
      // prints nothing of its own. Node counts the warning as given, for this process.
      const quiet = process.noDeprecation
      process.noDeprecation = true
      try {
        Module.register(require('node:url').pathToFileURL(file).href)
      } finally {
        process.noDeprecation = quiet
      }
    } else {
      require(file)
    }
    return '; ES module hook set: ' + why
  } catch (error) {
    return '; ES modules not hooked: ' + describe(error)
  }
}

/** [whether to set the hook up, why]: LIBINJECT_ESM_HOOK's word, else the entry point's kind. */
function hookWanted (script) {
  const choice = String(process.env.LIBINJECT_ESM_HOOK || '').trim().toLowerCase()
  if (flag(choice)) return [true, 'LIBINJECT_ESM_HOOK=' + choice]
  if (['false', '0', 'no', 'off'].includes(choice)) return [false, 'LIBINJECT_ESM_HOOK=' + choice]
  return isModuleApp(script) ? [true, 'the application is an ES module']
    : [false, 'the application is CommonJS (LIBINJECT_ESM_HOOK=true sets it)']
}

/**
 * Whether Node runs the main script as an ES module, by Node's rules: the extension; else the
 * nearest package.json's "type"; else --experimental-default-type; else the source's syntax
 * (Node 22.7+ and 20.19+ run a .js with import or export as an ES module). Without a script
 * (node -e, the REPL), --input-type decides.
 */
function isModuleApp (script) {
  if (!script) return optionValue('--input-type') === 'module'
  const extension = path.extname(script)
  if (MODULE_EXTENSIONS.has(extension)) return true
  if (COMMONJS_EXTENSIONS.has(extension)) return false
  const type = packageType(path.dirname(script))
  if (type) return type === 'module'
  return optionValue('--experimental-default-type') === 'module' || moduleSyntax(script)
}

/** The last value given to `option` (`--option=value` or `--option value`), or ''. */
function optionValue (option) {
  if (!given(option)) return ''
  const args = words(process.env.NODE_OPTIONS || '').concat(process.execArgv)
  let value = ''
  for (let i = 0; i < args.length; i++) {
    if (args[i] === option) value = args[++i] || ''
    else if (args[i].startsWith(option + '=')) value = args[i].slice(option.length + 1)
  }
  return value
}

/** The "type" of the package.json nearest to `dir` ('module', 'commonjs'), or '' without one. */
function packageType (dir) {
  for (; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json')
    if (fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
      try {
        const type = JSON.parse(fs.readFileSync(file, 'utf8')).type
        return type === 'module' || type === 'commonjs' ? type : ''
      } catch (_) {
        return '' // Node refuses to run the app anyway
      }
    }
    if (path.basename(dir) === 'node_modules' || path.dirname(dir) === dir) return ''
  }
}

/**
 * Whether `file` fails to compile as CommonJS because it is written as an ES module, as Node's
 * own detection decides (an unreadable or otherwise broken file fails either way: the hook
 * changes nothing for it).
 */
function moduleSyntax (file) {
  let source
  try {
    source = fs.readFileSync(file, 'utf8')
  } catch (_) {
    return false
  }
  if (!MODULE_WORDS.some((word) => source.includes(word))) return false
  try {
    require('node:vm').compileFunction(source.replace(/^#!.*/, ''), COMMONJS_WRAPPER)
    return false
  } catch (error) {
    return error instanceof SyntaxError
  }
}

// --- the Node versions the tracer supports -------------------------------------------------

/**
 * Whether `version` (x.y.z) is in `range`, bundle.txt's `node`: the tracer's engines range as
 * the bundle builder reduces it (libinject.bundle.nodejs.engines), sets `>=LOW` or
 * `>=LOW <HIGH` joined by ' || '. null when `range` is not in that form. A pre-release Node is
 * in no range, as in npm's semver for ranges without pre-release bounds.
 */
function satisfies (version, range) {
  const sets = range.split(' || ').map(bounds)
  if (sets.includes(null)) return null
  const v = triple(version)
  return v !== null && sets.some(([low, high]) =>
    compare(v, low) >= 0 && (high === undefined || compare(v, high) < 0))
}

/** '>=LOW' or '>=LOW <HIGH' as [low, high]; null in any other form. */
function bounds (set) {
  const words = set.split(' ')
  if (words.length > 2 || !words[0].startsWith('>=') || (words[1] && words[1][0] !== '<')) {
    return null
  }
  const low = triple(words[0].slice(2))
  const high = words.length > 1 ? triple(words[1].slice(1)) : undefined
  return low === null || high === null ? null : [low, high]
}

/** 'x.y.z' as three numbers written as npm writes them; null for anything else. */
function triple (text) {
  const parts = text.split('.')
  const numbers = parts.map(Number)
  const plain = parts.length === 3 &&
    numbers.every((n, i) => Number.isSafeInteger(n) && n >= 0 && String(n) === parts[i])
  return plain ? numbers : null
}

function compare (a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1
  return 0
}

// --- the debug line -----------------------------------------------------------------------

function notReady (what) {
  return new Refused('library not ready: ' + what)
}

function notLoaded (reason) {
  return 'tracer not loaded: ' + reason + ' (the application runs without it)'
}

function describe (error) {
  try {
    const first = String(error && error.message !== undefined ? error.message : error)
      .split('\n')[0]
    return (error && error.name ? error.name + ': ' : '') + first
  } catch (_) {
    return 'an unprintable error'
  }
}

function ms (nanoseconds) {
  return (Number(nanoseconds) / 1e6).toFixed(2) + ' ms'
}

function flag (value) {
  return ['true', '1', 'yes', 'on'].includes(String(value || '').trim().toLowerCase())
}

/** One stderr line; the pid tells apart the processes (npm and its scripts) sharing a log. */
function debug (line) {
  try {
    process.stderr.write('libinject: ' + line + ' [pid ' + process.pid + ']\n')
  } catch (_) {}
}

try {
  main()
} catch (_) {} // nothing the loader does is worth a failed start

module.exports = { satisfies }
