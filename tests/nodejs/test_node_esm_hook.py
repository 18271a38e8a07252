"""Which apps get the tracer's ES module hook: those whose entry point Node runs as an ES module,
by Node's own rules (extension, the nearest package.json's "type", the source's syntax,
--input-type), or every app with LIBINJECT_ESM_HOOK=true, none with false. The tracers document
a --require for CommonJS apps and the hook for ES module apps, and the hook costs a CommonJS app
start-up time (bench/nodejs_startup.py): so a CommonJS app starts as a preload by hand would.

The stub bundle's hook is a CommonJS registration (as dd-trace's register.js) that prints a
line: "set up" is seen in the app's output, not assumed. The real tracers' hooks are tested by
test_node_handover.py (an ES module app's spans) and tests/live.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nodejs.bundles import APPS, STUB, BundleFactory
from nodejs.nodes import app_ran, injected, run_node

pytestmark = pytest.mark.network  # Node 22 from the npm registry (cached after)

HOOK_SET = "stub ES module hook set"  # apps/stub-hook.js's line
COMMONJS = "no ES module hook: the application is CommonJS (LIBINJECT_ESM_HOOK=true sets it)"
MODULE = "ES module hook set: the application is an ES module"
ESM_SOURCE = (APPS / "hello.mjs").read_text()
CJS_SOURCE = (APPS / "hello.js").read_text()
# CommonJS whose text holds the words an ES module starts with: in a comment and in a string.
CJS_WITH_WORDS = (
    "// import x from 'y'; export default x\nconst s = `\nawait import('z')`\n" + CJS_SOURCE
)


@pytest.fixture
def hooked(stub_bundle: BundleFactory) -> Path:
    """A stub bundle whose esm-hook is apps/stub-hook.js. Returns the loader's path."""
    return stub_bundle(hook=APPS / "stub-hook.js")


def app(root: Path, *, name: str, source: str, package_type: str | None = None) -> Path:
    """`source` as `root`/app/`name`, beside the probe, under a package.json with `package_type`
    (none without one: the nearest package.json above is the test directory's, and there is
    none up to /)."""
    folder = root / "app"
    folder.mkdir()
    shutil.copyfile(APPS / "probe.cjs", folder / "probe.cjs")
    if package_type is not None:
        (folder / "package.json").write_text(json.dumps({"name": "app", "type": package_type}))
    (folder / name).write_text(source)
    return folder / name


def hook_note(line: str) -> str:
    """The debug line's note on the hook: what follows the loader's cost, before the pid."""
    head = f"libinject: loaded {STUB} from "
    assert line.startswith(head), line
    return line.split(" ms); ", 1)[1].rsplit(" [pid ", 1)[0]


@pytest.mark.parametrize(
    ("name", "source", "package_type", "note"),
    [
        pytest.param("main.js", CJS_SOURCE, None, COMMONJS, id="js"),
        pytest.param("main.cjs", CJS_SOURCE, "module", COMMONJS, id="cjs-in-module-package"),
        pytest.param("main.js", CJS_WITH_WORDS, None, COMMONJS, id="js-with-import-words"),
        pytest.param("main.js", CJS_SOURCE, "commonjs", COMMONJS, id="js-commonjs-package"),
        pytest.param("main.mjs", ESM_SOURCE, None, MODULE, id="mjs"),
        pytest.param("main.js", ESM_SOURCE, "module", MODULE, id="js-module-package"),
        pytest.param("main.js", ESM_SOURCE, None, MODULE, id="js-esm-syntax"),
        pytest.param(
            "main.js",
            "await Promise.resolve()\n" + ESM_SOURCE,
            None,
            MODULE,
            id="js-top-level-await",
        ),
        pytest.param(
            "main.js", "#!/usr/bin/env node\n" + ESM_SOURCE, None, MODULE, id="js-esm-with-hashbang"
        ),
    ],
)
def test_hook_follows_the_entry_points_module_system(
    node22: Path,
    hooked: Path,
    tmp_path: Path,
    name: str,
    source: str,
    package_type: str | None,
    note: str,
) -> None:
    """Each entry point runs normally with the stub tracer; the hook is set up exactly for those
    Node runs as ES modules, and the debug line says which and why."""
    entry = app(tmp_path, name=name, source=source, package_type=package_type)
    ran = app_ran(run_node(node22, str(entry), env=injected(hooked)), "stub x1")
    assert ran.lines(HOOK_SET) == ([HOOK_SET] if note == MODULE else []), ran.stdout
    assert hook_note(ran.debug_line) == note


@pytest.mark.parametrize(
    ("entry", "word", "note"),
    [
        ("hello.js", "true", "ES module hook set: LIBINJECT_ESM_HOOK=true"),
        ("hello.js", " On ", "ES module hook set: LIBINJECT_ESM_HOOK=on"),
        ("hello.mjs", "false", "no ES module hook: LIBINJECT_ESM_HOOK=false"),
        ("hello.mjs", "", MODULE),  # empty: the entry point decides
        ("hello.js", "maybe", COMMONJS),  # not a yes or a no: the entry point decides
    ],
)
def test_the_variable_overrides_the_entry_point(
    node22: Path, hooked: Path, entry: str, word: str, note: str
) -> None:
    """LIBINJECT_ESM_HOOK=true sets the hook up for a CommonJS app (a CommonJS launcher of an
    ES module app), false leaves it out of an ES module app; anything else decides by the entry
    point."""
    env = injected(hooked, LIBINJECT_ESM_HOOK=word)
    ran = app_ran(run_node(node22, str(APPS / entry), env=env), "stub x1")
    assert ran.lines(HOOK_SET) == ([HOOK_SET] if note.startswith("ES module hook set") else [])
    assert hook_note(ran.debug_line) == note


# An app with neither import, export nor await: its module system is whatever Node runs it as.
NEUTRAL_SOURCE = (
    "const load = process.getBuiltinModule('node:module').createRequire(process.argv[1])\n"
    "console.log('hello from the application')\n"
    "console.log('tracers: ' + load('./probe.cjs')())\n"
)


@pytest.mark.parametrize(("default_type", "hook"), [(None, False), ("module", True)])
def test_default_type_decides_a_neutral_script(
    node22: Path, hooked: Path, tmp_path: Path, default_type: str | None, hook: bool
) -> None:
    """Node 22's --experimental-default-type=module runs a .js outside any typed package as an
    ES module even with no module syntax to detect: the hook follows the flag."""
    entry = app(tmp_path, name="main.js", source=NEUTRAL_SOURCE)
    flags = [f"--experimental-default-type={default_type}"] if default_type else []
    ran = app_ran(run_node(node22, *flags, str(entry), env=injected(hooked)), "stub x1")
    assert ran.lines(HOOK_SET) == ([HOOK_SET] if hook else [])
    assert hook_note(ran.debug_line) == (MODULE if hook else COMMONJS)


@pytest.mark.parametrize(("input_type", "hook"), [(None, False), ("module", True)])
def test_eval_follows_input_type(
    node22: Path, hooked: Path, input_type: str | None, hook: bool
) -> None:
    """`node -e` has no entry point: --input-type=module makes it an ES module, as Node runs
    it."""
    code = f"console.log('hello from the application'); console.log('tracers: ' + require({str(APPS / 'probe.cjs')!r})())"
    if input_type:
        code = (
            f"import {{ createRequire }} from 'node:module'\n"
            f"const require = createRequire({str(APPS / 'x.js')!r})\n" + code
        )
    flags = [f"--input-type={input_type}"] if input_type else []
    ran = app_ran(run_node(node22, *flags, "-e", code, env=injected(hooked)), "stub x1")
    assert ran.lines(HOOK_SET) == ([HOOK_SET] if hook else [])
    assert hook_note(ran.debug_line) == (MODULE if hook else COMMONJS)
