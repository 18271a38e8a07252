"""Each of the loader's stand-downs in real Node: the application starts normally (exit code 0,
its output), no tracer starts, and stderr holds exactly one line saying why with
LIBINJECT_DEBUG=true, and nothing at all without it.

Most bundles hold a stub tracer that prints a line and counts its starts (the app reports it),
so "no tracer started" is seen, not assumed; the Node version case uses the real tracers'
bundles, the denied programs are the real npm, npx and corepack, and an own tracer is a real
package from the registry.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cluster.nodejs import npm_installed
from java.jvms import Ran, run_program
from nodejs.bundles import (
    APPS,
    FLAVORS,
    LOADER,
    LOADER_NAME,
    SDK_NODE,
    STUB,
    STUB_STARTED,
    VERSIONS,
    BundleFactory,
    app_dir,
    package,
)
from nodejs.nodes import HELLO, app_ran, injected, node_version, run_node

pytestmark = pytest.mark.network  # Node 22 to 26 and the packages from the npm registry


def not_loaded(reason: str) -> re.Pattern[str]:
    """The loader's stand-down line for `reason`, any pid."""
    line = f"libinject: tracer not loaded: {reason} (the application runs without it)"
    return re.compile(re.escape(line) + r" \[pid \d+\]")


def stood_down(node: Path, loader: Path, reason: str, *arguments: str, **env: str) -> Ran:
    """Runs `node arguments` (apps/hello.js by default) injected with `loader`, with and without
    LIBINJECT_DEBUG: the app ran normally with no tracer both times, stderr was the one line for
    `reason`, then nothing. The debug run's result."""
    arguments = arguments or (str(APPS / "hello.js"),)
    ran = app_ran(run_node(node, *arguments, env=injected(loader, **env)))
    assert not_loaded(reason).fullmatch(ran.stderr.rstrip("\n")), ran.stderr
    quiet = app_ran(run_node(node, *arguments, env=injected(loader, LIBINJECT_DEBUG="", **env)))
    assert (quiet.stdout, quiet.stderr) == (ran.stdout, "")
    return ran


def test_stub_starts_when_nothing_stands_down(node22: Path, stub_bundle: BundleFactory) -> None:
    """The control: the same stub bundle starts its tracer once, before the application runs,
    and the one line says so with the loader's own cost."""
    loader = stub_bundle()
    ran = app_ran(run_node(node22, str(APPS / "hello.js"), env=injected(loader)), "stub x1")
    assert ran.stdout.splitlines()[:2] == [STUB_STARTED, HELLO]
    line = rf"libinject: loaded {STUB} from {loader.parent} \(checks [\d.]+ ms, tracer start [\d.]+ ms\) \[pid \d+\]"
    assert re.fullmatch(line, ran.debug_line), ran.debug_line


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("app", ["hello.js", "hello.mjs"])
def test_node_older_than_the_tracer_supports(
    node20: Path, real_bundles: dict[str, Path], flavor: str, app: str
) -> None:
    """Node 20 is outside both tracers' engines range (>=22, >=22.15.0): the app, CommonJS or
    ES module, runs without one."""
    version = node_version(node20)
    loader = real_bundles[flavor]
    node_range = re.search(r"^node (.+)$", (loader.parent / "bundle.txt").read_text(), re.M)
    assert node_range is not None
    reason = (
        f"Node {version} is outside what {flavor} {VERSIONS[flavor]} "
        f"supports (node {node_range[1]})"
    )
    stood_down(node20, loader, reason, str(APPS / app))


def test_node_outside_the_range_on_each_major(node: Path, stub_bundle: BundleFactory) -> None:
    """A range that excludes this Node (everything below it) stands down on 22, 24 and 26."""
    version = node_version(node)
    below = f">=0.0.0 <{version}"
    loader = stub_bundle(node=below)
    stood_down(node, loader, f"Node {version} is outside what {STUB} supports (node {below})")


def test_library_not_ready(node22: Path, tmp_path: Path) -> None:
    """The CSI plugin's "library not ready" volume holds the loader alone: Node starts the app
    (a missing --require file would abort it) and the line names the directory."""
    shutil.copyfile(LOADER, tmp_path / LOADER_NAME)
    stood_down(node22, tmp_path / LOADER_NAME, f"library not ready: no bundle.txt in {tmp_path}")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"node": None}, "library not ready: bundle.txt lacks node"),
        ({"start": None, "version": None}, "library not ready: bundle.txt lacks version, start"),
        ({"language": "java"}, "library not ready: bundle.txt is for java, not nodejs"),
        (
            {"node": "latest"},
            "library not ready: bundle.txt has node 'latest', not a range the loader reads",
        ),
        (  # an npm range the builder did not reduce (libinject.bundle.nodejs.engines)
            {"node": ">=22"},
            "library not ready: bundle.txt has node '>=22', not a range the loader reads",
        ),
        (
            {"start": "../start.js"},
            "library not ready: bundle.txt has start '../start.js', not a path in the bundle",
        ),
        (
            {"esm-hook": "/hook.mjs"},
            "library not ready: bundle.txt has esm-hook '/hook.mjs', not a path in the bundle",
        ),
    ],
    ids=[
        *("no-node", "no-start", "java-bundle", "bad-range", "npm-range"),
        *("start-outside", "hook-outside"),
    ],
)
def test_incomplete_bundle_txt(
    node22: Path, stub_bundle: BundleFactory, overrides: dict[str, str | None], reason: str
) -> None:
    """A bundle.txt without a key the loader needs, another language's, or one naming a file
    outside the bundle is not ready."""
    stood_down(node22, stub_bundle(overrides=overrides), reason)


def test_start_module_missing(node22: Path, stub_bundle: BundleFactory) -> None:
    """bundle.txt names a start file the volume lacks (an image cut short)."""
    loader = stub_bundle()
    start = loader.parent / "node_modules" / "stub" / "start.js"
    start.unlink()
    stood_down(node22, loader, f"library incomplete: {start} is missing")


def test_start_module_cut_short(node22: Path, stub_bundle: BundleFactory, tmp_path: Path) -> None:
    """A start file cut short does not compile: its SyntaxError is caught and named."""
    cut = tmp_path / "cut.js"
    text = (APPS / "stub-start.js").read_text()
    cut.write_text(text[: text.index("console.log(") + len("console.log(")])
    loader = stub_bundle(start=cut)
    reason = f"failed to start {STUB} from {loader.parent}: SyntaxError: Unexpected end of input"
    stood_down(node22, loader, reason)


def test_start_module_that_throws(node22: Path, stub_bundle: BundleFactory, tmp_path: Path) -> None:
    """A tracer that throws while it starts: the error is caught and named."""
    failing = tmp_path / "failing.js"
    failing.write_text("throw new TypeError('the tracer fails on purpose')\n")
    loader = stub_bundle(start=failing)
    reason = f"failed to start {STUB} from {loader.parent}: TypeError: the tracer fails on purpose"
    stood_down(node22, loader, reason)


def test_tracer_that_declines(node22: Path, stub_bundle: BundleFactory, tmp_path: Path) -> None:
    """A start file that exports nothing: the tracer's own checks declined the process (as
    dd-trace's init.js does past its newest supported Node), so its ES module hook is not
    registered either, and the line says it did not start."""
    declining = tmp_path / "declining.js"
    declining.write_text("module.exports = undefined\n")
    hook = tmp_path / "hook.mjs"
    hook.write_text("console.log('hook registered')\n")
    loader = stub_bundle(start=declining, overrides={"esm-hook": "hook.mjs"})
    shutil.copyfile(hook, loader.parent / "hook.mjs")
    reason = f"{STUB} from {loader.parent} did not start (its own checks declined this process)"
    assert "hook registered" not in stood_down(node22, loader, reason).stdout


# --- Programs that are not the application ------------------------------------------------


def tool_env(loader: Path, node: Path, debug: str = "true") -> dict[str, str]:
    """An injected environment whose PATH finds `node` first (the tools' `#!/usr/bin/env node`)."""
    return injected(loader, PATH=f"{node.parent}:/usr/bin:/bin", LIBINJECT_DEBUG=debug)


@pytest.mark.parametrize("tool", ["npm", "npx", "corepack"])
def test_package_managers(node22: Path, stub_bundle: BundleFactory, tool: str) -> None:
    """The machine's npm, npx and corepack (/usr/bin links into their packages), run by Node 22
    with NODE_OPTIONS set: each answers --version, no tracer starts, and the line names it."""
    loader = stub_bundle()
    program = shutil.which(tool)
    assert program is not None, f"{tool} is not installed"
    ran = run_program([program, "--version"], env=tool_env(loader, node22))
    assert ran.returncode == 0, ran.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", ran.stdout), ran.stdout
    reason = f"a package manager or build tool, not an application: {program}"
    assert not_loaded(reason).fullmatch(ran.stderr.rstrip("\n")), ran.stderr
    quiet = run_program([program, "--version"], env=tool_env(loader, node22, debug=""))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, ran.stdout, "")


@pytest.mark.parametrize(
    "script",
    ["node_modules/node-gyp/bin/node-gyp.js", ".yarn/releases/yarn-4.9.1.cjs", "bin/pnpm.cjs"],
)
def test_build_tools_by_path(
    node22: Path, stub_bundle: BundleFactory, tmp_path: Path, script: str
) -> None:
    """node-gyp (run by npm for native add-ons), a yarn release checked into a project and
    pnpm's entry, known by their path: the hello app under those names is not traced."""
    program = tmp_path / "project" / script
    program.parent.mkdir(parents=True)
    shutil.copyfile(APPS / "hello.js", program)
    shutil.copyfile(APPS / "probe.cjs", program.parent / "probe.cjs")
    reason = f"a package manager or build tool, not an application: {program}"
    stood_down(node22, stub_bundle(), reason, str(program))


def test_npm_run_script_traces_the_app_not_npm(
    node22: Path, stub_bundle: BundleFactory, tmp_path: Path
) -> None:
    """`npm start` with NODE_OPTIONS set: npm stands down, and the node process its script
    starts (NODE_OPTIONS is inherited) is the application and gets the tracer, once."""
    app = app_dir(tmp_path / "app")
    (app / "package.json").write_text(json.dumps({"scripts": {"start": "node hello.js"}}))
    loader = stub_bundle()
    npm = shutil.which("npm")
    assert npm is not None
    ran = run_program([npm, "start", "--prefix", str(app)], env=tool_env(loader, node22))
    assert ran.returncode == 0, ran.stderr
    assert ran.lines("tracers: ") == ["tracers: stub x1"]
    lines = ran.debug_lines
    assert len(lines) == 2, ran.stderr
    assert not_loaded(f"a package manager or build tool, not an application: {npm}").fullmatch(
        lines[0]
    )
    assert lines[1].startswith(f"libinject: loaded {STUB} from {loader.parent} ")
    assert re.findall(r"\[pid (\d+)\]", lines[0]) != re.findall(r"\[pid (\d+)\]", lines[1])


# --- One tracer per process ---------------------------------------------------------------


@pytest.mark.parametrize("own", ["dd-trace", "@opentelemetry/sdk-node"])
@pytest.mark.parametrize("where", [".", "src"])
def test_application_ships_its_own_tracer(
    node22: Path, stub_bundle: BundleFactory, tmp_path: Path, own: str, where: str
) -> None:
    """An app whose node_modules holds dd-trace or the OpenTelemetry Node SDK (real packages
    from the registry), found from its main script's directory and up, as require() would."""
    spec = package("ddtrace") if own == "dd-trace" else SDK_NODE
    app = app_dir(tmp_path / "app", own=(spec,))
    main = app / where / "hello.js"
    if where != ".":
        main.parent.mkdir()
        shutil.copyfile(APPS / "hello.js", main)
        shutil.copyfile(APPS / "probe.cjs", main.parent / "probe.cjs")
    reason = f"the application has its own tracer: {app / 'node_modules' / own}"
    stood_down(node22, stub_bundle(), reason, str(main))


def test_own_tracer_on_node_path(node22: Path, stub_bundle: BundleFactory, tmp_path: Path) -> None:
    """An app whose dd-trace is found only through NODE_PATH (a folder its main script is not
    under), as require() would find it: the loader stands down naming that folder's copy."""
    shared = app_dir(tmp_path / "shared", own=(package("ddtrace"),)) / "node_modules"
    reason = f"the application has its own tracer: {shared / 'dd-trace'}"
    stood_down(node22, stub_bundle(), reason, NODE_PATH=str(shared))


@pytest.mark.parametrize("where", ["NODE_OPTIONS", "the command line"])
@pytest.mark.parametrize(("option", "entry"), [("-r", "init.js"), ("--import", "initialize.mjs")])
def test_application_preloads_its_own_tracer(
    node22: Path, stub_bundle: BundleFactory, where: str, option: str, entry: str
) -> None:
    """An app that starts dd-trace itself (its --require entry, or its --import one, which Node
    runs after every --require, the loader's included), in NODE_OPTIONS before the loader or on
    node's command line, from a directory its main script does not resolve from: that tracer
    runs, alone."""
    preload = npm_installed((package("ddtrace"),)) / "node_modules" / "dd-trace" / entry
    loader = stub_bundle()
    hello = str(APPS / "hello.js")
    if where == "NODE_OPTIONS":
        env = injected(loader, NODE_OPTIONS=f"{option} {preload} --require={loader}")
        ran = run_node(node22, hello, env=env)
    else:
        ran = run_node(node22, option, str(preload), hello, env=injected(loader))
    app_ran(ran, "dd-trace")
    reason = f"the application preloads its own tracer: {option} {preload} in {where}"
    assert not_loaded(reason).fullmatch(ran.debug_line), ran.stderr


def test_own_tracer_from_the_working_directory(
    node22: Path, stub_bundle: BundleFactory, tmp_path: Path
) -> None:
    """Without a main script (node -e), the app's packages are where it runs: its own dd-trace
    there stands the loader down."""
    app = app_dir(tmp_path / "app", own=(package("ddtrace"),))
    done = subprocess.run(
        [node22, "-e", "console.log('hello from the application')"],
        env={"PATH": "/usr/bin:/bin", **injected(stub_bundle())},
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"{HELLO}\n"), done.stderr
    reason = f"the application has its own tracer: {app / 'node_modules' / 'dd-trace'}"
    assert not_loaded(reason).fullmatch(done.stderr.rstrip("\n")), done.stderr


def test_loader_named_twice(node22: Path, stub_bundle: BundleFactory) -> None:
    """NODE_OPTIONS naming the same loader twice: Node runs the file once, one start."""
    loader = stub_bundle()
    env = injected(loader, NODE_OPTIONS=f"--require={loader} --require={loader}")
    ran = app_ran(run_node(node22, str(APPS / "hello.js"), env=env), "stub x1")
    assert ran.debug_line.startswith(f"libinject: loaded {STUB} from {loader.parent} ")


def test_two_bundles(node22: Path, stub_bundle: BundleFactory) -> None:
    """Two bundles' loaders in one process: the first starts its tracer, the second says so and
    starts none."""
    first, second = stub_bundle(), stub_bundle()
    env = injected(first, NODE_OPTIONS=f"--require={first} --require={second}")
    ran = app_ran(run_node(node22, str(APPS / "hello.js"), env=env), "stub x1")
    assert len(ran.debug_lines) == 2, ran.stderr
    assert ran.debug_lines[0].startswith(f"libinject: loaded {STUB} from {first.parent} ")
    reason = "a libinject loader already ran in this process (one tracer)"
    assert not_loaded(reason).fullmatch(ran.debug_lines[1])


def test_worker_threads_say_nothing(node22: Path, stub_bundle: BundleFactory) -> None:
    """Node runs --require'd files in worker threads too: the tracer starts in the main thread
    only, and the process has one line."""
    script = (
        "const { Worker } = require('node:worker_threads');"
        "new Worker('console.log(`worker: ${globalThis.libinjectStubStarts || 0}`)', { eval: true })"
        ".on('exit', () => console.log(`main: ${globalThis.libinjectStubStarts}`))"
    )
    loader = stub_bundle()
    ran = run_node(node22, "-e", script, env=injected(loader))
    assert ran.returncode == 0, ran.stderr
    assert ran.lines("worker: ") == ["worker: 0"]
    assert ran.lines("main: ") == ["main: 1"]
    assert ran.debug_line.startswith(f"libinject: loaded {STUB} from {loader.parent} ")


def test_stand_down_loads_no_module_of_its_own(node22: Path, tmp_path: Path) -> None:
    """Standing down, the loader adds no module to the process but itself: every other file
    module loaded is the app's (require.cache), the rest is Node's built-ins."""
    shutil.copyfile(LOADER, tmp_path / LOADER_NAME)
    script = "console.log(JSON.stringify(Object.keys(require.cache)))"
    ran = run_node(node22, "-e", script, env=injected(tmp_path / LOADER_NAME))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == [str(tmp_path / LOADER_NAME)]


def test_on_every_major(node: Path, stub_bundle: BundleFactory, tmp_path: Path) -> None:
    """On 22, 24 and 26: the stub starts, and an app shipping its own dd-trace stands down."""
    loader = stub_bundle()
    app_ran(run_node(node, str(APPS / "hello.mjs"), env=injected(loader)), "stub x1")
    app = app_dir(tmp_path / "app", own=(package("ddtrace"),))
    reason = f"the application has its own tracer: {app / 'node_modules' / 'dd-trace'}"
    stood_down(node, loader, reason, str(app / "hello.mjs"))
