"""The loader in real interpreters: fresh processes of CPython 2.7 to 3.13 with PYTHONPATH set to
a bundle built here, as the webhook sets it. Each test checks what the application prints, its
exit code, and what the loader says (only with LIBINJECT_DEBUG) or does not say (without).

Stand-in dependencies are small real distributions (a dist-info directory and a module); the
tracer-start tests use ddtrace and OpenTelemetry installed with pip once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

LOADER = Path(__file__).resolve().parents[2] / "operator/libinject/bundle/sitecustomize.py"
SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")
UNSUPPORTED = ("2.7", "3.6", "3.7", "3.8")
HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"  # the tracers are installed for this one
ARCH = {"amd64": "x86_64", "arm64": "aarch64"}.get(os.uname().machine, os.uname().machine)
DEBUG = {"LIBINJECT_DEBUG": "true"}
NO_START = {"LIBINJECT_START_TRACER": "false"}
NOT_LOADED = "libinject: tracer not loaded: "
RUNS_WITHOUT = " (the application runs without it)\n"
# An application's own sitecustomize: says that it ran (tests count the lines).
APP_SITECUSTOMIZE = "import sys\nsys.stdout.write('app sitecustomize ran\\n')\n"

Interpreter = Callable[[str], Path]


def tag(version: str) -> str:
    """The site directory this (glibc) machine's CPython `version` must pick."""
    return f"cp{version.replace('.', '')}-manylinux-{ARCH}"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Bundle:
    root: Path

    def site(self, site_tag: str, requires: str = "") -> Path:
        """sites/<tag> with its libinject-requires.txt."""
        site = self.root / "sites" / site_tag
        site.mkdir(parents=True)
        (site / "libinject-requires.txt").write_text(requires)
        return site

    def link(self, site: Path, site_tag: str) -> Path:
        """A session's tracer site as sites/<tag>, without copying it."""
        (self.root / "sites").mkdir(exist_ok=True)
        linked = self.root / "sites" / site_tag
        linked.symlink_to(site, target_is_directory=True)
        return linked


def make_bundle(root: Path, *, flavor: str = "ddtrace", version: str = "4.16.0") -> Bundle:
    """A bundle root as the builder writes it: the loader and bundle.txt; sites come later."""
    root.mkdir(parents=True)
    shutil.copyfile(LOADER, root / "sitecustomize.py")
    (root / "bundle.txt").write_text(f"flavor {flavor}\nversion {version}\n")
    return Bundle(root)


def add_distribution(where: Path, name: str, version: str, code: str | None = None) -> None:
    """An installed distribution: `<name>-<version>.dist-info` as a wheel spells it, and a
    module of that name that knows its version (and says who shipped it)."""
    where.mkdir(parents=True, exist_ok=True)
    info = where / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    text = code if code is not None else f"__version__ = {version!r}\nWHERE = {str(where)!r}\n"
    (where / f"{name.lower().replace('-', '_')}.py").write_text(text)


def add_stand_in_tracer(site: Path, body: str) -> None:
    """A stand-in for ddtrace in a site: what the loader starts (ddtrace.bootstrap.sitecustomize,
    which must set `loaded`), running `body` as the tracer's own code."""
    bootstrap = site / "ddtrace" / "bootstrap"
    bootstrap.mkdir(parents=True)
    (site / "ddtrace" / "__init__.py").write_text("")
    (bootstrap / "__init__.py").write_text("")
    (bootstrap / "sitecustomize.py").write_text(f"{body}\nloaded = True\n")


def add_stand_in_otel(site: Path, name: str) -> None:
    """A stand-in for OpenTelemetry's auto-instrumentation whose initialize() says which bundle
    it came from each time it is called (a second call would be a second tracer start)."""
    package = site / "opentelemetry" / "instrumentation" / "auto_instrumentation"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f"def initialize():\n    print('tracer started from {name}')\n"
    )


def run(
    python: Path,
    args: Sequence[str],
    *,
    pythonpath: Sequence[Path],
    cwd: Path,
    env: dict[str, str] | None = None,
) -> Result:
    """A fresh interpreter in a clean environment (nothing of the test runner's), PYTHONPATH
    as the webhook sets it: the bundle root first, the application's own entries after."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(str(path) for path in pythonpath),
        "PYTHONDONTWRITEBYTECODE": "1",  # the session's tracer sites stay as pip left them
        **(env or {}),
    }
    with subprocess.Popen(
        [str(python), *args],
        env=environment,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        stdout, stderr = process.communicate(timeout=120)
    # The loader's lines end with the pid of the process that wrote them: this one's is taken
    # off, so that a line from any other process (a helper, a child) still shows its pid.
    own = f" [pid {process.pid}]\n"
    return Result(process.returncode, stdout, stderr.replace(own, "\n"))


def code(*lines: str) -> list[str]:
    return ["-c", "\n".join(lines)]


# --- Interpreters ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_each_interpreter_picks_its_own_site_for_the_tracer_only(
    version: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """Every supported CPython finds sites/cpXY-manylinux-<arch> among all the bundle's sites.
    The tracer (code inside the bundle) imports from it; the application cannot: the site is
    not on sys.path, and a module the tracer did not import is not found for the app."""
    bundle = make_bundle(tmp_path / "bundle")
    for other in SUPPORTED:
        site = bundle.site(tag(other))
        (site / "libinject_probe.py").write_text(f"TAG = {tag(other)!r}\n")
        (site / "libinject_private.py").write_text("")
        add_stand_in_tracer(site, "import libinject_probe\nprint(libinject_probe.TAG)")
    app = tmp_path / "app"
    app.mkdir()
    probe = code(
        "import sys",
        "print(any('sites' in str(entry) for entry in sys.path))",
        "try:\n    import libinject_private\nexcept ImportError as error:\n    print(type(error).__name__)",
    )
    result = run(app_python(version), probe, pythonpath=[bundle.root, app], cwd=tmp_path, env=DEBUG)
    site = bundle.root / "sites" / tag(version)
    assert result.stdout.splitlines() == [tag(version), "False", "ModuleNotFoundError"]
    assert result.stderr == f"libinject: loaded ddtrace 4.16.0 from {site}\n"
    assert result.returncode == 0


@pytest.mark.parametrize("version", UNSUPPORTED)
def test_unsupported_interpreters_run_the_app_untouched(
    version: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """Python 2.7 and 3.6 to 3.8 parse the loader without error, run the application with its
    exit code, add nothing to sys.path, print nothing, and with debugging say why."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag(version))  # present: the refusal is the interpreter's, not a missing build
    app = code("import sys", "print(sys.path[-1].endswith('site-packages'))", "sys.exit(3)")
    python = app_python(version)
    quiet = run(python, app, pythonpath=[bundle.root], cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (3, "True\n", "")
    loud = run(python, app, pythonpath=[bundle.root], cwd=tmp_path, env=DEBUG)
    name = "python" if version == "2.7" else "cpython"
    assert loud.returncode == 3
    assert loud.stderr.startswith(f"{NOT_LOADED}unsupported interpreter {name} {version}.")
    assert loud.stderr.endswith(" (supported: CPython 3.9 to 3.14)" + RUNS_WITHOUT)


# --- Programs that are never instrumented ---------------------------------------------------


@pytest.mark.parametrize("version", ["3.9", "3.12"])  # 3.9 has no sys.orig_argv
def test_python_m_pip_is_never_instrumented(
    version: str, base_python: Interpreter, tmp_path: Path
) -> None:
    """`python -m pip` works as always and gets no tracer, although a build for it exists."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag(version))
    result = run(
        base_python(version), ["-m", "pip", "--version"], pythonpath=[bundle.root], cwd=tmp_path
    )
    assert result.returncode == 0
    assert result.stdout.startswith("pip ")
    assert result.stderr == ""
    result = run(
        base_python(version),
        ["-X", "utf8", "-m", "pip", "--version"],
        pythonpath=[bundle.root],
        cwd=tmp_path,
        env=DEBUG,
    )
    assert result.stderr == NOT_LOADED + "denied program: python -m pip" + RUNS_WITHOUT


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_a_script_named_pip_is_never_instrumented(
    version: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """A console script called pip3.11 (run through its shebang, as a shell runs it) is denied
    by name with its version suffix; its exit code is kept."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag(version))
    script = tmp_path / "bin" / "pip3.11"
    script.parent.mkdir()
    script.write_text(f"#!{app_python(version)}\nimport sys\nprint('fake pip')\nsys.exit(4)\n")
    script.chmod(0o755)
    result = run(script, [], pythonpath=[bundle.root], cwd=tmp_path, env=DEBUG)
    assert (result.returncode, result.stdout) == (4, "fake pip\n")
    assert result.stderr == NOT_LOADED + "denied program: pip3.11" + RUNS_WITHOUT


def test_the_tracers_own_helper_processes_are_never_instrumented(
    app_python: Interpreter, tmp_path: Path
) -> None:
    """A script inside the bundle (like ddtrace's crash-tracker receiver, which inherits our
    PYTHONPATH) and any process started while the tracer starts get no second tracer."""
    bundle = make_bundle(tmp_path / "bundle")
    site = bundle.site(tag(HOST))
    (site / "helper.py").write_text("print('helper ran')\n")
    python = app_python(HOST)
    helper = run(
        python, [str(site / "helper.py")], pythonpath=[bundle.root], cwd=tmp_path, env=DEBUG
    )
    assert helper.stdout == "helper ran\n"
    assert helper.stderr.startswith(NOT_LOADED + "the program is part of the tracer bundle: ")
    child = run(
        python,
        code("print('child ran')"),
        pythonpath=[bundle.root],
        cwd=tmp_path,
        env={**DEBUG, "_LIBINJECT_STARTING": "1"},
    )
    assert child.stdout == "child ran\n"
    assert "started by a process that is starting the tracer" in child.stderr


# --- The bundle and what the application already has ----------------------------------------


def test_no_build_for_this_interpreter_refuses(app_python: Interpreter, tmp_path: Path) -> None:
    """A bundle without this interpreter's tag (here: only musl on the other arch) loads
    nothing, and debugging names the tag wanted and the tags there are."""
    other = f"cp{HOST.replace('.', '')}-musllinux-{'aarch64' if ARCH == 'x86_64' else 'x86_64'}"
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(other)
    result = run(
        app_python(HOST),
        code("print('app ran')"),
        pythonpath=[bundle.root],
        cwd=tmp_path,
        env=DEBUG,
    )
    assert result.stdout == "app ran\n"
    assert result.stderr == (
        f"{NOT_LOADED}no build for this interpreter/platform/arch: {tag(HOST)} "
        f"(the bundle has {other}){RUNS_WITHOUT}"
    )


@pytest.mark.parametrize(
    ("flavor", "distribution"),
    [
        ("ddtrace", "ddtrace"),
        ("opentelemetry", "opentelemetry-distro"),
        ("opentelemetry", "opentelemetry-instrumentation"),
    ],
)
def test_an_app_that_ships_the_tracer_keeps_its_own(
    flavor: str, distribution: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """When the application has the tracer's distribution, ours is not added at all (never
    two tracers): its own copy is the one imported."""
    bundle = make_bundle(tmp_path / "bundle", flavor=flavor)
    add_distribution(bundle.site(tag(HOST)), distribution, "9.9.9")
    app = tmp_path / "app"
    add_distribution(app, distribution, "3.1.0")
    module = distribution.replace("-", "_")
    result = run(
        app_python(HOST),
        code(f"import {module}", f"print({module}.__version__)"),
        pythonpath=[bundle.root, app],
        cwd=tmp_path,
        env=DEBUG,
    )
    assert result.stdout == "3.1.0\n"
    assert result.stderr == (
        f"{NOT_LOADED}the application ships its own tracer: {distribution} 3.1.0 in {app} "
        f"(never two tracers){RUNS_WITHOUT}"
    )


@pytest.mark.parametrize(
    ("install", "requires", "problem"),
    [
        ("wrapt-1.10.0", "wrapt >=1.14,<3", "wrapt 1.10.0 but the tracer needs wrapt>=1.14,<3"),
        (
            "wrapt-2.2.0",
            "wrapt !=2.2.0,<3,>=1",
            "wrapt 2.2.0 but the tracer needs wrapt!=2.2.0,<3,>=1",
        ),
        (
            "Typing_Extensions-4.0.0",
            "typing-extensions >=4.6",
            "typing-extensions 4.0.0 but the tracer needs typing-extensions>=4.6",
        ),
        ("envier-0.7.0", "envier ~=0.6.1", "envier 0.7.0 but the tracer needs envier~=0.6.1"),
        (
            "bytecode-0.13.0",
            "bytecode >=0.14.0,<1",
            "bytecode 0.13.0 but the tracer needs bytecode>=0.14.0,<1",
        ),
    ],
)
def test_an_app_dependency_the_tracer_cannot_use_refuses(
    install: str, requires: str, problem: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """The application's copy of a dependency would be imported in place of the bundle's: if
    the tracer's requirement rejects its version (names normalized, every operator), nothing
    is loaded and debugging names the package, the app's version and the requirement."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag(HOST), requires=f"unrelated >=1\n{requires}\n")
    app = tmp_path / "app"
    name, version = install.split("-")
    add_distribution(app, name, version)
    result = run(
        app_python(HOST),
        code("import sys", "print(any('sites' in p for p in sys.path))"),
        pythonpath=[bundle.root, app],
        cwd=tmp_path,
        env=DEBUG,
    )
    assert result.stdout == "False\n"
    assert result.stderr == f"{NOT_LOADED}the application has {problem}{RUNS_WITHOUT}"


def test_an_egg_info_version_is_read_from_pkg_info(app_python: Interpreter, tmp_path: Path) -> None:
    """A develop install (`wrapt.egg-info` without a version in its name) is judged by the
    Version in its PKG-INFO."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag(HOST), requires="wrapt >=1.14\n")
    app = tmp_path / "app"
    (app / "wrapt.egg-info").mkdir(parents=True)
    (app / "wrapt.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 1.1\nName: wrapt\nVersion: 1.10.0\n"
    )
    result = run(
        app_python(HOST), code("pass"), pythonpath=[bundle.root, app], cwd=tmp_path, env=DEBUG
    )
    problem = "the application has wrapt 1.10.0 but the tracer needs wrapt>=1.14"
    assert result.stderr == NOT_LOADED + problem + RUNS_WITHOUT


def test_a_newer_app_dependency_wins(app_python: Interpreter, tmp_path: Path) -> None:
    """An application dependency that meets the requirement is the one the tracer imports,
    although the bundle has its own copy: the bundle's site is searched after the app's paths.
    A package only the bundle has reaches the tracer, and metadata of the bundle's
    distributions is the tracer's only: the application's importlib.metadata does not see it."""
    bundle = make_bundle(tmp_path / "bundle")
    site = bundle.site(tag(HOST), requires="wrapt >=1.14\n")
    add_distribution(site, "wrapt", "1.17.0")
    add_distribution(site, "envier", "0.6.1")  # only the bundle has this one
    add_stand_in_tracer(
        site,
        "import envier, wrapt\n"
        "from importlib import metadata\n"
        "print('tracer', wrapt.__version__, envier.__version__, metadata.version('envier'))",
    )
    app = tmp_path / "app"
    add_distribution(app, "wrapt", "2.0.0")
    probe = code(
        "import wrapt",
        "from importlib import metadata",
        "try:\n    metadata.version('envier')\nexcept metadata.PackageNotFoundError:\n    print('app', wrapt.__version__, 'no envier')",
    )
    result = run(app_python(HOST), probe, pythonpath=[bundle.root, app], cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["tracer 2.0.0 0.6.1 0.6.1", "app 2.0.0 no envier"]


# --- One loader per process ------------------------------------------------------------------


def test_two_loader_roots_start_one_tracer(app_python: Interpreter, tmp_path: Path) -> None:
    """Two bundles on PYTHONPATH, one of them also through a symlink and twice: the first
    loader starts its tracer once, skips every other loader root (no loader chains into
    another as "the app's sitecustomize"), and the app's own sitecustomize runs once."""
    roots = []
    for name in ("first", "second"):
        bundle = make_bundle(tmp_path / name, flavor="opentelemetry", version="0.66b1")
        add_stand_in_otel(bundle.site(tag(HOST)), name)
        roots.append(bundle.root)
    linked = tmp_path / "first-link"
    linked.symlink_to(roots[0], target_is_directory=True)
    app = tmp_path / "app"
    app.mkdir()
    (app / "sitecustomize.py").write_text(APP_SITECUSTOMIZE)
    path = [roots[0], linked, roots[0], roots[1], app]
    # The stand-in has no wrapt for the loader's Django hook: Django is left out, as a user can.
    env = {**DEBUG, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "django"}
    result = run(app_python(HOST), code("print('app ran')"), pythonpath=path, cwd=tmp_path, env=env)
    assert result.stdout.splitlines() == [
        "app sitecustomize ran",
        "tracer started from first",
        "app ran",
    ]
    assert result.stderr.splitlines() == [
        f"libinject: skipped another libinject bundle on the path: {roots[1]} (one tracer)",
        f"libinject: loaded opentelemetry 0.66b1 from {roots[0] / 'sites' / tag(HOST)}",
    ]


def test_a_second_run_of_the_loader_in_one_process_does_nothing(
    app_python: Interpreter, tmp_path: Path
) -> None:
    """The loader run again in the same process (an app that reloads `sitecustomize`, or
    executes a loader found elsewhere) neither starts the tracer nor chains again."""
    bundle = make_bundle(tmp_path / "bundle", flavor="opentelemetry", version="0.66b1")
    add_stand_in_otel(bundle.site(tag(HOST)), "bundle")
    app = tmp_path / "app"
    app.mkdir()
    (app / "sitecustomize.py").write_text(APP_SITECUSTOMIZE)
    probe = code(
        "import runpy",
        f"runpy.run_path({str(bundle.root / 'sitecustomize.py')!r}, run_name='sitecustomize')",
        "print('app ran')",
    )
    result = run(app_python(HOST), probe, pythonpath=[bundle.root, app], cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "app sitecustomize ran",
        "tracer started from bundle",
        "app ran",
    ]


def test_a_non_text_sys_path_entry_keeps_the_app_sitecustomize(
    base_python: Interpreter, tmp_path: Path
) -> None:
    """A .pth file may put any object on sys.path (the import system skips what is not text):
    the loader must skip it too, still set the tracer up and run the app's sitecustomize."""
    venv = tmp_path / "venv"
    subprocess.run([str(base_python(HOST)), "-m", "venv", "--without-pip", str(venv)], check=True)
    (next(venv.glob("lib/python*/site-packages")) / "odd.pth").write_text(
        "import sys; sys.path.extend([42, None, b'/bytes'])\n"
    )
    bundle = make_bundle(tmp_path / "bundle")
    site = bundle.site(tag(HOST))
    app = tmp_path / "app"
    app.mkdir()
    (app / "sitecustomize.py").write_text(APP_SITECUSTOMIZE)
    result = run(
        venv / "bin" / "python",
        code("print('app ran')"),
        pythonpath=[bundle.root, app],
        cwd=tmp_path,
        env={**DEBUG, **NO_START},
    )
    assert result.stdout.splitlines() == ["app sitecustomize ran", "app ran"]
    assert result.stderr == (
        f"libinject: set up ddtrace 4.16.0 from {site}, not started "
        "(LIBINJECT_START_TRACER=false)\n"
    )


def without_proc(python: Path) -> list[str]:
    """A command line that runs `python` in a private mount namespace where /proc is an empty
    file system (as in a sandbox that masks it); `exec` keeps the pid (root only: unshare)."""
    script = 'mount -t tmpfs none /proc && exec "$0" "$@"'
    return ["unshare", "-m", "sh", "-c", script, str(python)]


@pytest.mark.parametrize("version", SUPPORTED)
def test_without_proc_a_denied_program_is_still_denied(
    version: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """Without /proc the loader still reads the command line (sys.orig_argv from 3.10; 3.9's
    runtime keeps its own copy): `python -m pip` is denied and a plain program is set up."""
    bundle = make_bundle(tmp_path / "bundle")
    site = bundle.site(tag(version))
    (tmp_path / "pip").mkdir()
    (tmp_path / "pip" / "__main__.py").write_text("print('pip ran')\n")
    command = without_proc(app_python(version))
    denied = run(
        Path(command[0]),
        [*command[1:], "-m", "pip"],
        pythonpath=[bundle.root, tmp_path],
        cwd=tmp_path,
        env=DEBUG,
    )
    assert denied.stdout == "pip ran\n"
    assert denied.stderr == NOT_LOADED + "denied program: python -m pip" + RUNS_WITHOUT
    allowed = run(
        Path(command[0]),
        [*command[1:], "-c", "print('app ran')"],
        pythonpath=[bundle.root],
        cwd=tmp_path,
        env={**DEBUG, **NO_START},
    )
    assert allowed.stdout == "app ran\n"
    assert allowed.stderr.startswith(f"libinject: set up ddtrace 4.16.0 from {site}, not started")


def test_without_proc_or_ctypes_an_unknown_module_is_not_traced(
    app_python: Interpreter, tmp_path: Path
) -> None:
    """CPython 3.9 without /proc and without ctypes has only sys.argv, where `-m` has lost its
    module's name: the loader cannot rule out pip, so it stands down and says why."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag("3.9"))
    no_ctypes = tmp_path / "no-ctypes"
    no_ctypes.mkdir()
    (no_ctypes / "ctypes.py").write_text("raise ImportError('no ctypes in this image')\n")
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "__main__.py").write_text("print('tool ran')\n")
    command = without_proc(app_python("3.9"))
    result = run(
        Path(command[0]),
        [*command[1:], "-m", "tool"],
        pythonpath=[bundle.root, no_ctypes, tmp_path],
        cwd=tmp_path,
        env=DEBUG,
    )
    assert result.stdout == "tool ran\n"
    assert result.stderr == (
        NOT_LOADED
        + "cannot tell which module `python -m` runs (no /proc, no ctypes)"
        + RUNS_WITHOUT
    )


# --- The application's own sitecustomize ----------------------------------------------------


@pytest.mark.parametrize(
    ("version", "case"),
    [
        ("2.7", "unsupported interpreter"),
        ("3.8", "unsupported interpreter"),
        (HOST, "no build"),
        (HOST, "set up, not started"),
        ("3.9", "set up, not started"),
    ],
)
def test_the_apps_sitecustomize_runs_exactly_once(
    version: str, case: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """Ours shadows the application's sitecustomize, so ours runs it: once, whether the tracer
    was refused or not, under the name `sitecustomize` as if site.py had imported it."""
    bundle = make_bundle(tmp_path / "bundle")
    if case != "no build":
        bundle.site(tag(version))
    app = tmp_path / "app"
    app.mkdir()
    (app / "sitecustomize.py").write_text(APP_SITECUSTOMIZE)
    result = run(
        app_python(version),
        code("import sitecustomize", "print(sitecustomize.__file__)", "raise SystemExit(6)"),
        pythonpath=[bundle.root, app],
        cwd=tmp_path,
        env={**DEBUG, **NO_START},
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "app sitecustomize ran"
    assert lines[1].startswith(str(app / "sitecustomize.py"))  # .py, or .pyc on 2.7
    assert len(lines) == 2
    assert result.returncode == 6
    assert case.split(",", maxsplit=1)[0] in result.stderr


@pytest.mark.parametrize("version", ["2.7", "3.9", HOST])
def test_a_failing_app_sitecustomize_is_reported_as_site_py_does(
    version: str, app_python: Interpreter, tmp_path: Path
) -> None:
    """An exception in the application's sitecustomize prints what Python itself prints for
    it (the same bytes as without the loader) and the application still runs."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag(version))
    app = tmp_path / "app"
    app.mkdir()
    (app / "sitecustomize.py").write_text("raise RuntimeError('boom')\n")
    python = app_python(version)
    alone = run(python, code("print('app ran')"), pythonpath=[app], cwd=tmp_path, env=NO_START)
    ours = run(
        python, code("print('app ran')"), pythonpath=[bundle.root, app], cwd=tmp_path, env=NO_START
    )
    assert ours == alone
    assert ours.stdout == "app ran\n"
    assert "sitecustomize" in ours.stderr


# --- Broken bundles -------------------------------------------------------------------------


def test_a_bundle_without_its_manifest_leaves_the_app_running(
    app_python: Interpreter, tmp_path: Path
) -> None:
    """No bundle.txt, or one naming no known flavor: nothing is loaded, the exit code stands,
    nothing is printed unless debugging."""
    bundle = make_bundle(tmp_path / "bundle")
    bundle.site(tag(HOST))
    (bundle.root / "bundle.txt").unlink()
    app = code("import sys", "sys.exit(5)")
    quiet = run(app_python(HOST), app, pythonpath=[bundle.root], cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (5, "", "")
    loud = run(app_python(HOST), app, pythonpath=[bundle.root], cwd=tmp_path, env=DEBUG)
    assert loud.returncode == 5
    assert loud.stderr.startswith(NOT_LOADED + "unreadable bundle.txt: FileNotFoundError: ")
    (bundle.root / "bundle.txt").write_text("flavor nosuchtracer\n")
    loud = run(app_python(HOST), app, pythonpath=[bundle.root], cwd=tmp_path, env=DEBUG)
    assert loud.stderr == (
        f"{NOT_LOADED}bundle.txt names no known flavor (flavor 'nosuchtracer'){RUNS_WITHOUT}"
    )


def test_a_truncated_tracer_leaves_the_app_running(
    ddtrace_site: tuple[Path, str], app_python: Interpreter, tmp_path: Path
) -> None:
    """A tracer package cut short (ddtrace/__init__.py ends mid-statement): the start fails,
    the application runs with its exit code, and debugging says what failed."""
    site, version = ddtrace_site
    bundle = make_bundle(tmp_path / "bundle")
    copy = bundle.root / "sites" / tag(HOST)
    shutil.copytree(site, copy, copy_function=os.link, symlinks=True)
    init = copy / "ddtrace" / "__init__.py"
    text = init.read_text()
    cut = text.index("(", len(text) // 2) + 1
    init.unlink()  # a new file: the session's copy is linked, not shared
    init.write_text(text[:cut])
    with pytest.raises(SyntaxError):
        compile(text[:cut], str(init), "exec")
    app = code("import sys", "print('app ran')", "sys.exit(9)")
    quiet = run(app_python(HOST), app, pythonpath=[bundle.root], cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (9, "app ran\n", "")
    loud = run(app_python(HOST), app, pythonpath=[bundle.root], cwd=tmp_path, env=DEBUG)
    assert loud.returncode == 9
    assert loud.stderr.startswith(
        f"{NOT_LOADED}failed to start ddtrace {version} from {copy}: SyntaxError"
    )


# --- Real tracers ---------------------------------------------------------------------------

DDTRACE_PROBE = code(
    "import sys",
    "from ddtrace.trace import tracer",
    "boot = sys.modules.get('ddtrace.bootstrap.sitecustomize')",
    "print(tracer.enabled, getattr(boot, 'loaded', None))",
    "sys.exit(7)",
)


def test_ddtrace_really_starts_and_says_nothing(
    ddtrace_site: tuple[Path, str], app_python: Interpreter, tmp_path: Path
) -> None:
    """ddtrace 4.16.0 starts as ddtrace-run starts it (its bootstrap ran and succeeded, the
    tracer is enabled), the exit code stands, and nothing is printed without debugging."""
    site, version = ddtrace_site
    bundle = make_bundle(tmp_path / "bundle", version=version)
    linked = bundle.link(site, tag(HOST))
    quiet = run(app_python(HOST), DDTRACE_PROBE, pythonpath=[bundle.root], cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (7, "True True\n", "")
    loud = run(app_python(HOST), DDTRACE_PROBE, pythonpath=[bundle.root], cwd=tmp_path, env=DEBUG)
    assert loud.stderr == f"libinject: loaded ddtrace {version} from {linked}\n"


def test_ddtrace_is_not_started_when_asked_not_to(
    ddtrace_site: tuple[Path, str], app_python: Interpreter, tmp_path: Path
) -> None:
    """LIBINJECT_START_TRACER=false (the benchmark's switch): every check and the finder's
    set-up, but ddtrace is not imported."""
    site, version = ddtrace_site
    bundle = make_bundle(tmp_path / "bundle", version=version)
    linked = bundle.link(site, tag(HOST))
    result = run(
        app_python(HOST),
        code("import sys", f"print('ddtrace' in sys.modules, {str(linked)!r} in sys.path)"),
        pythonpath=[bundle.root],
        cwd=tmp_path,
        env={**NO_START, **DEBUG},
    )
    assert result.stdout == "False False\n"
    assert result.stderr == (
        f"libinject: set up ddtrace {version} from {linked}, not started "
        "(LIBINJECT_START_TRACER=false)\n"
    )


def test_ddtrace_runs_the_apps_sitecustomize_once(
    ddtrace_site: tuple[Path, str], app_python: Interpreter, tmp_path: Path
) -> None:
    """ddtrace's bootstrap chains to the next sitecustomize itself; with ours having run the
    application's already, it finds that one in sys.modules: it runs once, before the app."""
    site, version = ddtrace_site
    bundle = make_bundle(tmp_path / "bundle", version=version)
    bundle.link(site, tag(HOST))
    app = tmp_path / "app"
    app.mkdir()
    (app / "sitecustomize.py").write_text(APP_SITECUSTOMIZE)
    result = run(app_python(HOST), DDTRACE_PROBE, pythonpath=[bundle.root, app], cwd=tmp_path)
    assert (result.returncode, result.stderr) == (7, "")
    assert result.stdout.splitlines() == ["app sitecustomize ran", "True True"]


OTEL_PROBE = code(
    "import sys, sitecustomize",
    "from opentelemetry import trace",
    "from opentelemetry.sdk.trace import TracerProvider",
    "print(type(trace.get_tracer_provider()).__name__)",
    "print(isinstance(trace.get_tracer_provider(), TracerProvider))",
    "sys.exit(8)",
)


def test_opentelemetry_really_starts_and_says_nothing(
    otel_site: tuple[Path, str], app_python: Interpreter, tmp_path: Path
) -> None:
    """The OpenTelemetry distro starts as opentelemetry-instrument starts it: the SDK's
    TracerProvider is the global one (OTLP over HTTP, the exporter the bundle has), the
    application's sitecustomize ran once, and nothing is printed without debugging."""
    site, version = otel_site
    bundle = make_bundle(tmp_path / "bundle", flavor="opentelemetry", version=version)
    linked = bundle.link(site, tag(HOST))
    app = tmp_path / "app"
    app.mkdir()
    (app / "sitecustomize.py").write_text(APP_SITECUSTOMIZE)
    quiet = run(app_python(HOST), OTEL_PROBE, pythonpath=[bundle.root, app], cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (8, "")
    assert quiet.stdout.splitlines() == ["app sitecustomize ran", "TracerProvider", "True"]
    loud = run(app_python(HOST), OTEL_PROBE, pythonpath=[bundle.root, app], cwd=tmp_path, env=DEBUG)
    assert loud.stderr == f"libinject: loaded opentelemetry {version} from {linked}\n"


# What an app could import of the site: each top-level name, first whether the tracer had
# already imported it (shared through sys.modules), then whether an import finds it.
REACHABLE_PROBE = """
import os, sys
from importlib import metadata
site = sys.argv[1]
names = sorted({n[:-3] if n.endswith('.py') else n for n in os.listdir(site)
                if not n.endswith(('-info', '.txt', '.pth')) and not n.startswith('__')})
for name in names:
    if name in sys.modules:
        continue
    try:
        __import__(name)
        print('app imported', name)
    except ImportError:
        pass
for info in os.listdir(site):
    if info.endswith('.dist-info'):
        try:
            metadata.version(info.split('-')[0])
            print('app sees metadata of', info)
        except metadata.PackageNotFoundError:
            pass
"""


@pytest.mark.parametrize("flavor", ["ddtrace", "opentelemetry"])
def test_the_bundles_packages_are_the_tracers_not_the_apps(
    flavor: str,
    ddtrace_site: tuple[Path, str],
    otel_site: tuple[Path, str],
    app_python: Interpreter,
    tmp_path: Path,
) -> None:
    """With the real tracer started, the application imports none of the bundle's packages
    that the tracer did not import itself (`try: import x` behaves as without us), and sees
    none of the bundle's distributions' metadata. (What the tracer imported is in sys.modules:
    shared, as one process has one module table.)"""
    site, version = ddtrace_site if flavor == "ddtrace" else otel_site
    bundle = make_bundle(tmp_path / "bundle", flavor=flavor, version=version)
    linked = bundle.link(site, tag(HOST))
    result = run(
        app_python(HOST),
        ["-c", REACHABLE_PROBE, str(linked)],
        pythonpath=[bundle.root],
        cwd=tmp_path,
        env={
            **DEBUG,
            "DD_TRACE_AGENT_URL": "http://127.0.0.1:9",
            "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        },
    )
    assert result.stderr == f"libinject: loaded {flavor} {version} from {linked}\n"
    assert (result.returncode, result.stdout) == (0, "")
