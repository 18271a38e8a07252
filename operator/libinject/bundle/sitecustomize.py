"""libinject's loader: starts the tracing library that libinject injected into this container.

The bundle root R (this file's directory) is first on the application's PYTHONPATH, so Python
imports this module at startup as `sitecustomize`. It finds the site directory built for this
interpreter under R/sites/<tag>, checks that the library fits the application, makes that
directory reachable to the tracer's code only (a finder last on sys.meta_path), runs the
application's own sitecustomize (ours shadows it) and starts the tracer, once per process.

It never raises and never prints unless asked: the application always runs, with or without
the tracer. Environment variables:
    LIBINJECT_DEBUG=true           one line on stderr saying what was loaded, or why not, and
                                   the pid of the process that wrote it
    LIBINJECT_START_TRACER=false   every check and the finder's set-up, but no tracer start

Python 2.7 and 3.6+ must be able to parse this file (an old application can get our
PYTHONPATH): no f-strings, no annotations (types are in comments), ASCII only. Module globals
are private: an application's `import sitecustomize` may get this module.
"""

import os as _os
import sys as _sys

_SUPPORTED = ((3, 9), (3, 14))  # CPython versions, inclusive
_PYTHON2 = _sys.version_info[0] < 3  # only to run an old application's sitecustomize
_KEEP = []  # type: list[object]
_MANIFEST = "bundle.txt"
_REQUIRES = "libinject-requires.txt"
_STARTING = "_LIBINJECT_STARTING"  # set while the tracer starts: its helper processes skip it
_MARK = "_libinject_loader"  # on sys once a loader ran in this process (fork children keep it)
_STARTED = []  # type: list[str]  # the flavor, once a tracer started here (fork children keep it)

# Programs that are never instrumented: package managers, environment tools and the tracers'
# own launchers. A script matches by file name without a version suffix (pip3.11 -> pip).
_DENIED_SCRIPTS = frozenset(
    [
        "pip",
        "pipenv",
        "pipx",
        "poetry",
        "pdm",
        "uv",
        "uvx",
        "hatch",
        "virtualenv",
        "easy_install",
        "conda",
        "mamba",
        "ddtrace-run",
        "opentelemetry-instrument",
        "opentelemetry-bootstrap",
    ]
)
# The same for `python -m <module>` (a module or any of its submodules).
_DENIED_MODULES = (
    "pip",
    "venv",
    "ensurepip",
    "virtualenv",
    "pipenv",
    "pipx",
    "poetry",
    "pdm",
    "uv",
    "conda",
    "setuptools.command.easy_install",
    "ddtrace.commands",
)

# The distributions that mean "the application ships this tracer itself".
_TRACER_DISTRIBUTIONS = {
    "ddtrace": ("ddtrace",),
    "opentelemetry": ("opentelemetry-distro", "opentelemetry-instrumentation"),
}
_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}

# PEP 440 pre-release spellings and their order (a < b < rc); post-release spellings.
_PRE_LABELS = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
_POST_LABELS = ("post", "rev", "r")
_OPERATORS = ("===", "~=", "==", "!=", "<=", ">=", "<", ">")  # longest first


class _RefusedError(Exception):
    """The tracer must not be loaded in this process; the message says why."""


# --- The steps, in order -------------------------------------------------------------------


def _main():
    # type: () -> None
    if getattr(_sys, _MARK, None) is not None:
        return  # a loader already ran in this process: another bundle root, a reload
    setattr(_sys, _MARK, __file__)
    root = _os.path.dirname(_os.path.abspath(__file__))
    app_paths = []  # type: list[str]
    loaded = None  # type: tuple[str, str, str, bool] | None
    note = ""
    try:
        app_paths = _app_paths(root)
        loaded = _prepare(root, app_paths)
    except _RefusedError as refused:
        note = _not_loaded(str(refused))
    except Exception as error:
        note = _not_loaded("loader error: " + _describe(error))
    _chain(app_paths)  # always: the application's sitecustomize must run with or without us
    if loaded is not None:
        flavor, version, site, fork_server = loaded
        if fork_server:
            note = _start_in_forks(flavor, version, site)
        else:
            note = _start(flavor, version, site)
    _debug(note)


def _app_paths(root):
    # type: (str) -> list[str]
    """sys.path at startup without any loader root: where the application's own packages and
    sitecustomize are. A second loader root (another bundle, or this one through a symlink or
    twice) would otherwise be chained to as "the application's sitecustomize" and start the
    tracer again. Only text entries: the import system skips any other object a .pth put there."""
    own = _os.path.realpath(root)
    paths = []  # type: list[str]
    for entry in _sys.path:
        if not isinstance(entry, str):
            continue
        if _os.path.realpath(entry or ".") == own:
            continue
        if _is_loader_root(entry or "."):
            _debug("skipped another libinject bundle on the path: " + entry + " (one tracer)")
            continue
        paths.append(entry)
    return paths


def _is_loader_root(entry):
    # type: (str) -> bool
    return _os.path.isfile(_os.path.join(entry, _MANIFEST)) and _os.path.isfile(
        _os.path.join(entry, "sitecustomize.py")
    )


def _prepare(root, app_paths):
    # type: (str, list[str]) -> tuple[str, str, str, bool]
    """Steps 1 to 6: every check, then the site directory behind the finder. Returns the flavor,
    version, site directory and whether this is multiprocessing's fork server; raises
    _RefusedError when the tracer must not load."""
    _check_interpreter()
    fork_server = _check_program(root)
    site = _site_dir(root)
    flavor, version = _read_manifest(root)
    installed = _installed(app_paths)
    _check_no_own_tracer(flavor, installed)
    _check_requirements(_os.path.join(site, _REQUIRES), installed)
    # Last: the application's own copy of a package wins, as if the site ended sys.path.
    # (The protocol's types would cost the loader imports at every start.)
    _sys.meta_path.append(_BundleFinder(root, site))  # type: ignore[arg-type]
    return flavor, version, site, fork_server


def _start(flavor, version, site):
    # type: (str, str, str) -> str
    """Step 8: starts the tracer; returns the line that debugging prints."""
    what = flavor + " " + version + " from " + site
    if not _flag("LIBINJECT_START_TRACER", True):
        return "set up " + what + ", not started (LIBINJECT_START_TRACER=false)"
    previous = _os.environ.get(_STARTING)
    _os.environ[_STARTING] = "1"
    try:
        if flavor == "ddtrace":
            _start_ddtrace()
        else:
            _start_opentelemetry()
    except Exception as error:
        return _not_loaded("failed to start " + what + ": " + _describe(error))
    finally:
        if previous is None:
            _os.environ.pop(_STARTING, None)
        else:
            _os.environ[_STARTING] = previous
    _STARTED.append(flavor)
    _os.register_at_fork(after_in_child=_in_forked_child)
    return "loaded " + what


def _not_loaded(reason):
    # type: (str) -> str
    return "tracer not loaded: " + reason + " (the application runs without it)"


def _describe(error):
    # type: (BaseException) -> str
    return type(error).__name__ + ": " + str(error)


def _flag(name, default):
    # type: (str, bool) -> bool
    value = _os.environ.get(name, "").strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    return default


# --- Step 1: the interpreter ----------------------------------------------------------------


def _check_interpreter():
    # type: () -> None
    implementation = getattr(_sys, "implementation", None)  # absent on Python 2
    name = getattr(implementation, "name", "python")
    version = _sys.version_info[:2]
    if name != "cpython" or not _SUPPORTED[0] <= version <= _SUPPORTED[1]:
        full = ".".join(str(part) for part in _sys.version_info[:3])
        raise _RefusedError(
            "unsupported interpreter " + name + " " + full + " (supported: CPython 3.9 to 3.14)"
        )


# --- Step 2: programs that are never instrumented -------------------------------------------


def _check_program(root):
    # type: (str) -> bool
    """Refuses the programs that are never instrumented; returns whether this process is
    multiprocessing's fork server (checked, but the tracer starts in its children)."""
    if _os.environ.get(_STARTING):
        raise _RefusedError("started by a process that is starting the tracer (its helper)")
    kind, name = _program(_command_line())
    if kind == "code":
        return _multiprocessing_helper(name)
    if kind == "module":
        for denied in _DENIED_MODULES:
            if name == denied or name.startswith(denied + "."):
                raise _RefusedError("denied program: python -m " + name)
    elif kind == "script":
        if _script_name(name) in _DENIED_SCRIPTS:
            raise _RefusedError("denied program: " + _os.path.basename(name))
        # The tracer's own helper scripts (ddtrace's crash tracker receiver, ...) run with our
        # PYTHONPATH too: starting a second tracer in them is never right.
        if _os.path.abspath(name).startswith(root + _os.sep):
            raise _RefusedError("the program is part of the tracer bundle: " + name)
    return False


def _multiprocessing_helper(code):
    # type: (str) -> bool
    """multiprocessing starts its helper processes as `python -c <code>`. The resource tracker
    runs no application code: a tracer there costs memory (30-40 MB) for nothing. The fork
    server runs none either, but every process it forks does: True says so."""
    code = code.lstrip()
    if code.startswith("from multiprocessing.resource_tracker import"):
        raise _RefusedError("multiprocessing's resource tracker runs no application code")
    return code.startswith("from multiprocessing.forkserver import")


def _command_line():
    # type: () -> list[str]
    """The interpreter's full command line. sys.argv is no help here: during site import it
    lacks the module of `-m` (3.9 shows ['-m', ...]); sys.orig_argv exists from 3.10 on."""
    orig_argv = getattr(_sys, "orig_argv", None)
    if orig_argv:
        return list(orig_argv)
    try:
        with open("/proc/self/cmdline", "rb") as handle:
            raw = handle.read()
        return [_os.fsdecode(arg) for arg in raw.split(b"\0")[:-1]]
    except OSError:  # no /proc: a sandbox, a container that masks it
        pass
    try:
        return _runtime_argv()
    except Exception:  # no ctypes (a minimal image), or a runtime without the call
        pass
    argv = getattr(_sys, "argv", [])
    if argv[:1] == ["-m"]:
        raise _RefusedError("cannot tell which module `python -m` runs (no /proc, no ctypes)")
    command = [_sys.executable]  # no [a, *b]: Python 2 must parse this file
    command.extend(argv)
    return command


def _runtime_argv():
    # type: () -> list[str]
    """CPython 3.9's own copy of the command line, which it keeps from its start."""
    import ctypes  # noqa: PLC0415 (costs ms: only for 3.9 without /proc)

    count = ctypes.c_int()
    values = ctypes.POINTER(ctypes.c_wchar_p)()
    ctypes.pythonapi.Py_GetArgcArgv(ctypes.byref(count), ctypes.byref(values))
    return [values[index] or "" for index in range(count.value)]


def _program(argv):
    # type: (list[str]) -> tuple[str, str]
    """What the interpreter runs: ("module", name) for -m, ("script", path) for a script,
    ("code", text) for -c, ("", "") for stdin or the REPL. argv[0] is the interpreter itself."""
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return ("script", argv[index + 1]) if index + 1 < len(argv) else ("", "")
        if arg == "-" or not arg.startswith("-"):
            return ("script", arg) if arg != "-" else ("", "")
        if arg.startswith("--"):
            index += 2 if arg == "--check-hash-based-pycs" else 1  # the only one with a value
            continue
        found, index = _short_options(argv, index)
        if found is not None:
            return found
    return ("", "")


def _short_options(argv, index):
    # type: (list[str], int) -> tuple[tuple[str, str] | None, int]
    """Reads one cluster of short options (-Im pip, -X dev, -c code); returns what it ends
    the options with, if anything, and the index of the next argument."""
    arg = argv[index]
    for position in range(1, len(arg)):
        option, rest = arg[position], arg[position + 1 :]
        if option in "mcXW":  # options that take a value: here or in the next argument
            value = rest or (argv[index + 1] if index + 1 < len(argv) else "")
            if option == "m":
                return ("module", value), index
            if option == "c":
                return ("code", value), index
            return None, index + (1 if rest else 2)
    return None, index + 1


def _script_name(path):
    # type: (str) -> str
    """pip3.11 -> pip, easy_install-3.8 -> easy_install, pip.py -> pip."""
    name = _os.path.basename(path)
    if name.endswith(".py"):
        name = name[:-3]
    return name.rstrip("0123456789.").rstrip("-_")


# --- Step 3: the site directory for this interpreter ----------------------------------------


def _site_dir(root):
    # type: (str) -> str
    if not _sys.platform.startswith("linux"):
        raise _RefusedError("unsupported operating system " + _sys.platform)
    # Free-threaded builds (3.13t) need their own wheels: a `t` tag that no bundle builds yet.
    threading = "t" if "t" in getattr(_sys, "abiflags", "") else ""
    python = "cp" + str(_sys.version_info[0]) + str(_sys.version_info[1]) + threading
    machine = _os.uname()[4]
    tag = python + "-" + _libc() + "-" + _ARCHES.get(machine, machine)
    site = _os.path.join(root, "sites", tag)
    if not _os.path.isdir(site):
        try:
            built = ", ".join(sorted(_os.listdir(_os.path.join(root, "sites")))) or "none"
        except OSError:
            built = "none"
        problem = "no build for this interpreter/platform/arch: " + tag
        raise _RefusedError(problem + " (the bundle has " + built + ")")
    return site


def _libc():
    # type: () -> str
    """musllinux or manylinux. The interpreter's multiarch triplet is free to read, but CPython
    before 3.11 (and some 3.11 and 3.12 builds) calls itself "-linux-gnu" on musl too: only
    "musl" is trusted, and glibc is confirmed by asking the C library (a call, no file read)."""
    multiarch = getattr(_sys.implementation, "_multiarch", "") or ""
    if "musl" in multiarch:
        return "musllinux"
    try:
        libc = _os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):  # musl knows no such name
        libc = ""
    return "manylinux" if libc.startswith("glibc") else "musllinux"


def _read_manifest(root):
    # type: (str) -> tuple[str, str]
    values = {}  # type: dict[str, str]
    for line in _read_lines(_os.path.join(root, _MANIFEST)):
        key, _, value = line.strip().partition(" ")
        values[key] = value.strip()
    flavor = values.get("flavor", "")
    if flavor not in _TRACER_DISTRIBUTIONS:
        raise _RefusedError(_MANIFEST + " names no known flavor (flavor " + repr(flavor) + ")")
    return flavor, values.get("version", "(unknown version)")


# --- Steps 4 and 5: what the application already has ----------------------------------------


def _read_lines(path):
    # type: (str) -> list[str]
    problem = ""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except (OSError, ValueError) as error:
        problem = _describe(error)
    # Raised out here: `raise ... from` would not parse on Python 2.
    raise _RefusedError("unreadable " + _os.path.basename(path) + ": " + problem)


def _installed(paths):
    # type: (list[str]) -> dict[str, tuple[str, str]]
    """Distributions on the application's sys.path by normalized name: (version, metadata
    path). One directory listing per entry and no metadata parsing (importlib.metadata costs
    tens of milliseconds); the first entry on sys.path wins, as imports do."""
    found = {}  # type: dict[str, tuple[str, str]]
    for entry in paths:
        try:
            names = _os.listdir(entry or ".")
        except OSError:  # a zip file, a missing directory
            continue
        for name in names:
            if not name.endswith("-info"):  # the cheap test first: most names are modules
                continue
            distribution = _distribution(entry, name)
            if distribution is not None and distribution[0] not in found:
                found[distribution[0]] = distribution[1:]
    return found


def _distribution(entry, name):
    # type: (str, str) -> tuple[str, str, str] | None
    """(name, version, path) from a dist-info or egg-info name: `Foo_Bar-1.2.dist-info`,
    `foo-1.2-py3.11.egg-info`, or `foo.egg-info` (a develop install: no version in the name)."""
    if name.endswith(".dist-info"):
        stem = name[: -len(".dist-info")]
    elif name.endswith(".egg-info"):
        stem = name[: -len(".egg-info")]
    else:
        return None
    project, _, rest = stem.partition("-")
    return _normalize(project), rest.split("-")[0], _os.path.join(entry, name)


def _normalize(name):
    # type: (str) -> str
    """PEP 503: lowercase, every run of `-`, `_` and `.` becomes one `-`."""
    name = name.lower().replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name


def _version_of(found):
    # type: (tuple[str, str]) -> str
    """The version from the directory name, else from the metadata file's Version: header."""
    version, path = found
    if version:
        return version
    if _os.path.isdir(path):  # an egg-info file is itself the PKG-INFO
        path = _os.path.join(path, "METADATA" if path.endswith(".dist-info") else "PKG-INFO")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break  # the headers end at the first blank line
                if line.lower().startswith("version:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _check_no_own_tracer(flavor, installed):
    # type: (str, dict[str, tuple[str, str]]) -> None
    for name in _TRACER_DISTRIBUTIONS[flavor]:
        if name in installed:
            where = _os.path.dirname(installed[name][1])
            raise _RefusedError(
                "the application ships its own tracer: "
                + name
                + " "
                + _version_of(installed[name])
                + " in "
                + where
                + " (never two tracers)"
            )


def _check_requirements(path, installed):
    # type: (str, dict[str, tuple[str, str]]) -> None
    """Each distribution the tracer needs that the application has too must be a version the
    tracer accepts: the application's copy is the one that will be imported."""
    for line in _read_lines(path):
        name, _, specifier = line.strip().partition(" ")
        if not name or name not in installed:
            continue
        version = _version_of(installed[name])
        problem = ""
        try:
            if not _satisfies(version, specifier.strip()):
                problem = "the application has " + name + " " + version
                problem += " but the tracer needs " + name + specifier.strip()
        except ValueError as error:
            problem = name + ": " + str(error)
        if problem:
            raise _RefusedError(problem)


# --- PEP 440 versions and specifiers (the subset the loader needs, without imports) ---------


class _Version:
    """A parsed PEP 440 version; pre is (0 for a, 1 for b, 2 for rc, number)."""

    __slots__ = ("dev", "epoch", "local", "post", "pre", "release")

    def __init__(  # noqa: PLR0917 (keyword-only arguments do not parse on Python 2)
        self,
        epoch,  # type: int
        release,  # type: tuple[int, ...]
        pre,  # type: tuple[int, int] | None
        post,  # type: int | None
        dev,  # type: int | None
        local,  # type: tuple[tuple[int, int, str], ...] | None
    ):
        # type: (...) -> None
        self.epoch = epoch
        self.release = release
        self.pre = pre
        self.post = post
        self.dev = dev
        self.local = local

    def key(self, local=True):
        # type: (bool) -> tuple[object, ...]
        """Sorts as PEP 440 orders versions; local=False compares the public version only."""
        release = self.release
        while release and release[-1] == 0:  # 1.0 == 1.0.0
            release = release[:-1]
        if self.pre is None and self.post is None and self.dev is not None:
            pre = (-1, 0)  # 1.0.dev0 sorts before 1.0a0
        else:
            pre = self.pre if self.pre is not None else (3, 0)  # a final release after its rcs
        post = (-1,) if self.post is None else (self.post,)
        dev = (1, 0) if self.dev is None else (0, self.dev)
        own_local = (self.local or ()) if local else ()
        return (self.epoch, release, pre, post, dev, own_local)

    def is_prerelease(self):
        # type: () -> bool
        return self.pre is not None or self.dev is not None


def _parse_version(text):
    # type: (str) -> _Version | None
    """PEP 440's permissive spelling (v1.0, 1.0-RC1, 1.0.post-2, 1!2.0+local.7); None if
    it is not a version."""
    text = text.strip().lower()
    text = text[1:] if text.startswith("v") else text
    text, plus, local_text = text.partition("+")
    local = _parse_local(local_text) if plus else None
    epoch = 0
    if "!" in text:
        epoch_text, _, text = text.partition("!")
        if not _digits(epoch_text):
            return None
        epoch = int(epoch_text)
    tokens = _tokens(text)
    if not tokens or tokens[0][0] or not _digits(tokens[0][1]) or (plus and local is None):
        return None
    release = [int(tokens[0][1])]
    index = 1
    while index < len(tokens) and tokens[index][0] == "." and _digits(tokens[index][1]):
        release.append(int(tokens[index][1]))
        index += 1
    pre, index = _suffix(tokens, index, tuple(_PRE_LABELS))
    if index < len(tokens) and tokens[index][0] == "-" and _digits(tokens[index][1]):
        post = ("post", int(tokens[index][1]))  # type: tuple[str, int] | None
        index += 1  # 1.0-1 is 1.0.post1
    else:
        post, index = _suffix(tokens, index, _POST_LABELS)
    dev, index = _suffix(tokens, index, ("dev",))
    if index != len(tokens):
        return None
    return _Version(
        epoch,
        tuple(release),
        None if pre is None else (_PRE_LABELS[pre[0]], pre[1]),
        None if post is None else post[1],
        None if dev is None else dev[1],
        local,
    )


def _tokens(text):
    # type: (str) -> list[tuple[str, str]] | None
    """(separator, run) pairs, each run all digits or all letters, each separator one of
    `.-_` or empty; None for any other character or two separators in a row."""
    tokens = []  # type: list[tuple[str, str]]
    index = 0
    while index < len(text):
        separator = ""
        if text[index] in ".-_":
            separator = text[index]
            index += 1
        start = index
        kind = _kind(text[index]) if index < len(text) else ""
        while index < len(text) and kind and _kind(text[index]) == kind:
            index += 1
        if index == start:
            return None
        tokens.append((separator, text[start:index]))
    return tokens


def _kind(char):
    # type: (str) -> str
    if "0" <= char <= "9":
        return "digit"
    if "a" <= char <= "z":
        return "letter"
    return ""


def _digits(text):
    # type: (str) -> bool
    return bool(text) and all("0" <= char <= "9" for char in text)


def _suffix(tokens, index, labels):
    # type: (list[tuple[str, str]], int, tuple[str, ...]) -> tuple[tuple[str, int] | None, int]
    """A pre, post or dev segment at `index`: a label, then an optional number."""
    if index >= len(tokens) or tokens[index][1] not in labels:
        return None, index
    label = tokens[index][1]
    if index + 1 < len(tokens) and _digits(tokens[index + 1][1]):
        return (label, int(tokens[index + 1][1])), index + 2
    return (label, 0), index + 1


def _parse_local(text):
    # type: (str) -> tuple[tuple[int, int, str], ...] | None
    """Local segments sort numbers above words, numbers by value: 1.0+7 > 1.0+abc."""
    parts = text.replace("-", ".").replace("_", ".").split(".")
    local = []  # type: list[tuple[int, int, str]]
    for part in parts:
        if not part or not all(_kind(char) for char in part):
            return None
        local.append((1, int(part), "") if _digits(part) else (0, 0, part))
    return tuple(local)


def _satisfies(version_text, specifiers):
    # type: (str, str) -> bool
    """Whether an installed version meets a comma-separated specifier set (empty: any).
    Pre-releases count, as for an installed distribution. ValueError if unreadable."""
    version = _parse_version(version_text)
    if version is None:
        raise ValueError("unreadable version " + repr(version_text))
    for text in specifiers.split(","):
        clause = text.strip()
        if clause and not _matches(version, version_text, clause):
            return False
    return True


def _matches(version, version_text, clause):
    # type: (_Version, str, str) -> bool
    operator = ""
    for candidate in _OPERATORS:
        if clause.startswith(candidate):
            operator = candidate
            break
    target = clause[len(operator) :].strip()
    if operator == "===":  # arbitrary equality: the text itself
        return version_text.lower() == target.lower()
    if operator in ("==", "!=") and target.endswith(".*"):
        return _prefix_match(version, target[:-2]) == (operator == "==")
    spec = _parse_version(target)
    if not operator or spec is None or (spec.local is not None and operator not in ("==", "!=")):
        raise ValueError("unreadable requirement " + repr(clause))
    return _compare(operator, version, spec)


def _compare(operator, version, spec):
    # type: (str, _Version, _Version) -> bool
    if operator in ("==", "!="):
        # ==1.0 accepts 1.0+anything; ==1.0+abc only itself.
        equal = version.key(local=spec.local is not None) == spec.key()
        return equal == (operator == "==")
    if operator == ">=":
        return version.key() >= spec.key()
    if operator == "<=":
        return version.key(local=False) <= spec.key()
    if operator == "<":
        # <1.0 excludes 1.0's own pre-releases (1.0rc1) unless it names one itself.
        bound = spec if spec.is_prerelease() else _Version(*_with_dev0(spec))
        return version.key() < bound.key()
    if operator == ">":
        return _greater(version, spec)
    return _compatible(version, spec)  # ~=


def _with_dev0(spec):
    # type: (_Version) -> tuple[int, tuple[int, ...], None, int | None, int, None]
    return spec.epoch, spec.release, None, spec.post, 0, None


def _greater(version, spec):
    # type: (_Version, _Version) -> bool
    """>V excludes V's post-releases and local versions unless V is a post- or dev-release."""
    if version.key(local=False) <= spec.key():
        return False
    if spec.dev is not None or spec.post is not None:
        return True
    same = version.key()[:2] == spec.key()[:2] and version.pre == spec.pre
    return not same


def _compatible(version, spec):
    # type: (_Version, _Version) -> bool
    """~=1.4.5 is >=1.4.5 and ==1.4.*."""
    if len(spec.release) < 2:
        raise ValueError("~= needs two release numbers")
    prefix = ".".join(str(part) for part in spec.release[:-1])
    if spec.epoch:
        prefix = str(spec.epoch) + "!" + prefix
    return version.key() >= spec.key() and _prefix_match(version, prefix)


def _prefix_match(version, prefix_text):
    # type: (_Version, str) -> bool
    """==1.2.*: the release starts with 1.2 (zero-padded); pre, post, dev and local ignored."""
    prefix = _parse_version(prefix_text)
    plain = prefix is not None and prefix.pre is None and prefix.post is None
    if prefix is None or not plain or prefix.dev is not None or prefix.local is not None:
        raise ValueError("unreadable prefix " + repr(prefix_text))
    release = version.release + (0,) * max(0, len(prefix.release) - len(version.release))
    return version.epoch == prefix.epoch and release[: len(prefix.release)] == prefix.release


# --- Step 6: the bundle's packages, for the tracer only ------------------------------------

# Methods by which one finder asks another (ddtrace's module watchdog asks every finder on
# sys.meta_path itself): such frames are the import system's, not the importer's.
_FINDER_METHODS = frozenset(["find_spec", "_find_spec", "find_module", "find_distributions"])
_STDLIB = _os.path.dirname(_os.__file__) + _os.sep


class _BundleFinder:
    """Finds the bundle's modules and distributions for imports made by code inside the bundle
    (the tracer, this loader), and for no one else.

    The site directory is not on sys.path: an application's `try: import requests` must not
    find the tracer's copy. This finder is the last on sys.meta_path, so the application's own
    copy of a package wins, as it would if the site ended sys.path. Modules the tracer has
    imported are in sys.modules, which every import reads before any finder: those are shared,
    since a process has one module table (two copies of one name would split their state)."""

    def __init__(self, root, site):
        # type: (str, str) -> None
        self._site = site
        # A frame names its file as the import found it: through the root as given and, when
        # that is a symlink, through its target.
        self._inside = tuple({root + _os.sep, _os.path.realpath(root) + _os.sep})
        self._packages = None  # type: frozenset[str] | None

    def find_spec(self, fullname, path=None, target=None):  # noqa: ARG002 (the protocol's)
        # type: (str, object, object) -> object
        """The module from the site directory, wherever its parent package was found: a
        namespace package (opentelemetry) may have portions in the application's paths."""
        if not self._asked_by_tracer():
            return None
        import _frozen_importlib_external  # noqa: PLC0415 (already loaded)

        where = _os.path.join(self._site, *fullname.split(".")[:-1])
        return _frozen_importlib_external.PathFinder.find_spec(fullname, [where])

    def find_distributions(self, *args, **kwargs):
        # type: (object, object) -> object
        """The bundle's distributions (entry points, versions) for importlib.metadata."""
        if not self._asked_by_tracer():
            return iter(())
        from importlib import metadata  # noqa: PLC0415 (only when metadata is read)

        asked = args[0] if args else kwargs.get("context")
        context = metadata.DistributionFinder.Context
        name = getattr(asked, "name", None) if isinstance(asked, context) else None
        return metadata.MetadataPathFinder.find_distributions(context(name=name, path=[self._site]))

    def _asked_by_tracer(self):
        # type: () -> bool
        """Whether the code that asked lives in the bundle. Frames that act for their caller
        are passed over: the import system's and the standard library's (import_module,
        pkgutil.resolve_name, entry points), and the application's own copy of a package the
        bundle has too (the tracer reads its entry points through the app's
        opentelemetry-api when the app has one). The first other frame decides."""
        frame = _sys._getframe(2)  # inspect costs an import; this is what it calls
        while True:
            filename = frame.f_code.co_filename
            acting = frame.f_code.co_name in _FINDER_METHODS or _in_stdlib(filename)
            if not acting and filename.startswith(self._inside):
                return True
            if not acting and not self._shared(frame.f_globals.get("__name__")):
                return False
            if frame.f_back is None:
                return False
            frame = frame.f_back

    def _shared(self, module):
        # type: (object) -> bool
        """Whether `module` belongs to a top-level package that the bundle also has."""
        if self._packages is None:
            names = _os.listdir(self._site)
            self._packages = frozenset(name.partition(".")[0] for name in names)
        return isinstance(module, str) and module.partition(".")[0] in self._packages


def _in_stdlib(filename):
    # type: (str) -> bool
    if filename.startswith("<frozen "):  # frozen modules: importlib's bootstrap, runpy, os...
        return True
    if not filename.startswith(_STDLIB):
        return False
    return _os.sep + "site-packages" + _os.sep not in filename[len(_STDLIB) - 1 :]


# --- Step 7: the application's own sitecustomize --------------------------------------------


def _chain(app_paths):
    # type: (list[str]) -> None
    """Runs the sitecustomize the application had (ours shadows it), as site.py would have:
    its errors are printed the way site.py prints them and the interpreter goes on; only
    SystemExit and KeyboardInterrupt go through, as they would have without us."""
    try:
        if _PYTHON2:
            _chain_python2(app_paths)
            return
        import _frozen_importlib  # noqa: PLC0415 (already loaded: importlib.util costs ms)
        import _frozen_importlib_external  # noqa: PLC0415

        spec = _frozen_importlib_external.PathFinder.find_spec("sitecustomize", app_paths)
    except Exception as error:
        _debug("could not look for the application's sitecustomize: " + _describe(error))
        return
    if spec is None or spec.loader is None:
        return
    ours = _sys.modules.get("sitecustomize")
    try:
        module = _frozen_importlib.module_from_spec(spec)
        _sys.modules["sitecustomize"] = module  # as an import does: it may replace itself
        spec.loader.exec_module(module)
    except Exception as error:
        _restore(ours)
        if not (isinstance(error, ImportError) and error.name == "sitecustomize"):
            _site_error(error, "Error in sitecustomize; set PYTHONVERBOSE for traceback:")


def _chain_python2(app_paths):
    # type: (list[str]) -> None
    import imp  # noqa: PLC0415 (Python 2 only)

    try:
        handle, path, description = imp.find_module("sitecustomize", app_paths)
    except ImportError:
        return
    ours = _sys.modules.pop("sitecustomize", None)  # else imp would reload ours in place
    # Python 2 sets a module's globals to None when the module object is freed, and
    # sys.modules held the only reference: the rest of this run would fail silently.
    _KEEP.append(ours)
    try:
        # typeshed's file protocol wants settable attributes; a real file is what imp wants.
        imp.load_module("sitecustomize", handle, path, description)  # type: ignore[arg-type]
    except ImportError:
        _restore(ours)
    except Exception as error:
        _restore(ours)
        _site_error(error, "'import sitecustomize' failed; use -v for traceback")
    finally:
        if handle is not None:
            handle.close()


def _restore(module):
    # type: (object) -> None
    if module is not None:
        _sys.modules["sitecustomize"] = module  # type: ignore[assignment]
    else:
        _sys.modules.pop("sitecustomize", None)


def _site_error(error, headline):
    # type: (Exception, str) -> None
    """site.py's own report of a failing sitecustomize (the application would see it too)."""
    if _sys.flags.verbose:
        _sys.excepthook(type(error), error, _sys.exc_info()[2])
    elif _PYTHON2:
        _sys.stderr.write(headline + "\n")
    else:
        _sys.stderr.write(headline + "\n" + type(error).__name__ + ": " + str(error) + "\n")


def _debug(message):
    # type: (str) -> None
    """One stderr line with LIBINJECT_DEBUG. The pid tells apart the processes of one app (a
    server's workers, multiprocessing's children) that share its stderr."""
    if _flag("LIBINJECT_DEBUG", False):
        _sys.stderr.write("libinject: " + message + " [pid " + str(_os.getpid()) + "]\n")


# --- Step 8: starting the tracer ------------------------------------------------------------


def _start_ddtrace():
    # type: () -> None
    """What `ddtrace-run` does, in this process: it puts ddtrace/bootstrap on PYTHONPATH so that
    ddtrace/bootstrap/sitecustomize.py runs; importing that module runs the same code (it is
    `import ddtrace.auto`). Without its directory on sys.path it chains only to the
    `sitecustomize` already in sys.modules, so the application's does not run twice."""
    if not getattr(_imported("ddtrace.bootstrap.sitecustomize"), "loaded", False):
        raise RuntimeError("ddtrace's bootstrap failed (DD_TRACE_DEBUG=true says why)")


_OTEL_AUTO = "opentelemetry.instrumentation.auto_instrumentation"
_OTEL_DISABLED = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"  # entry-point names, or "*" for all
_DJANGO = "django"  # the module, and the entry-point name of OpenTelemetry's instrumentation
_OTEL_DJANGO = "opentelemetry.instrumentation.django"


def _start_opentelemetry():
    # type: () -> None
    """What `opentelemetry-instrument` does: its sitecustomize calls initialize(), which loads
    the distro, the configurator (the SDK's providers) and the instrumentations. Django's
    comes later, at the application's django.setup() (_instrument_django_at_setup says why)."""
    # The bundle holds the OTLP/HTTP exporter only (grpcio is large and clashes with apps); the
    # SDK's default protocol is gRPC, which would fail the start. A protocol the user set stands.
    _os.environ.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    initialize = getattr(_imported(_OTEL_AUTO), "initialize")  # noqa: B009 (a dynamic module)
    code = getattr(initialize, "__code__", None)
    user_disabled = _os.environ.get(_OTEL_DISABLED)
    defer_django = not _otel_disabled(user_disabled, _DJANGO)
    if defer_django:
        _os.environ[_OTEL_DISABLED] = (user_disabled + "," if user_disabled else "") + _DJANGO
    try:
        if code is not None and "swallow_exceptions" in code.co_varnames:
            initialize(swallow_exceptions=False)  # so that a failure reaches our report
        else:
            initialize()
    finally:  # the application and its child processes see the user's own value
        if user_disabled is None:
            _os.environ.pop(_OTEL_DISABLED, None)
        else:
            _os.environ[_OTEL_DISABLED] = user_disabled
    if defer_django:
        _instrument_django_at_setup()


def _imported(name):
    # type: (str) -> object
    """The module `name`, imported by the tracer's code (this file is part of the bundle)."""
    __import__(name)
    return _sys.modules[name]


def _otel_disabled(value, name):
    # type: (str | None, str) -> bool
    """Whether OTEL_PYTHON_DISABLED_INSTRUMENTATIONS (as OpenTelemetry splits it) disables the
    instrumentation `name`."""
    names = [entry.strip() for entry in (value or "").split(",")]
    return name in names or "*" in names


def _instrument_django_at_setup():
    # type: () -> None
    """OpenTelemetry's Django instrumentation reads Django's settings when it starts and, when
    they cannot be read yet, configures Django with defaults. At interpreter start they never
    can: manage.py, wsgi.py and asgi.py set DJANGO_SETTINGS_MODULE later, and Django would then
    run without the application's settings (no ALLOWED_HOSTS, DEBUG off). So it starts when
    the application's django.setup() returns: settings loaded, the request handler and its
    middleware (where the instrumentation adds its own) not built yet."""
    try:
        register = getattr(_imported("wrapt"), "register_post_import_hook")  # noqa: B009
        register(_wrap_django_setup, _DJANGO)
    except Exception as error:
        _debug("django not instrumented: " + _describe(error))


def _wrap_django_setup(django):
    # type: (object) -> None
    """Runs when the application imports django: its setup() instruments Django once done."""
    try:
        import functools  # noqa: PLC0415 (only for Django applications)

        original = getattr(django, "setup")  # noqa: B009 (a dynamic module)

        @functools.wraps(original)
        def setup(*args, **kwargs):
            # type: (*object, **object) -> object
            result = original(*args, **kwargs)  # the application's errors are its own
            _instrument_django()
            return result

        setattr(django, "setup", setup)  # noqa: B010 (a dynamic module)
    except Exception as error:
        _debug("django not instrumented: " + _describe(error))


def _instrument_django():
    # type: () -> None
    """Instruments Django unless already done (django.setup() may run more than once); never
    raises into the application."""
    try:
        instrumentor = getattr(_imported(_OTEL_DJANGO), "DjangoInstrumentor")()  # noqa: B009
        if instrumentor.is_instrumented_by_opentelemetry:
            return
        instrumentor.instrument()
        if not instrumentor.is_instrumented_by_opentelemetry:  # a dependency conflict, logged
            _debug("django not instrumented: OpenTelemetry refused this Django version")
            return
    except Exception as error:
        _debug("django not instrumented: " + _describe(error))
        return
    _debug("instrumented django at django.setup(), with the application's settings")


# --- Step 9: the processes forked from this one --------------------------------------------

_FLUSH_AT_EXIT = []  # type: list[bool]  # set once multiprocessing flushes at a child's exit
_OTEL_PROVIDERS = (
    ("opentelemetry.trace", "get_tracer_provider"),
    ("opentelemetry.metrics", "get_meter_provider"),
    ("opentelemetry._logs", "get_logger_provider"),
)


def _start_in_forks(flavor, version, site):
    # type: (str, str, str) -> str
    """multiprocessing's fork server: the tracer starts in each process it forks (they run the
    application's code), right after the fork, and never in the server itself."""

    def start_in_child():
        # type: () -> None
        if _STARTED:  # a process forked by one of those children: it has its parent's
            return
        _debug(_start(flavor, version, site))
        if _STARTED:
            _flush_at_multiprocessing_exit()

    _os.register_at_fork(after_in_child=start_in_child)
    return "multiprocessing's fork server: " + flavor + " starts in each process it forks"


def _in_forked_child():
    # type: () -> None
    """A forked child has the parent's tracer, threads restarted by the tracer's own hooks. Two
    things the tracers leave out are done here: OpenTelemetry's exporter would send on the
    parent's keep-alive connections (two processes writing to one socket corrupt each other's
    requests), and multiprocessing's children end with os._exit, which skips atexit: the
    spans still buffered would be lost."""
    try:
        if _STARTED[0] == "opentelemetry":
            _close_exporter_connections()
        _flush_at_multiprocessing_exit()
    except Exception as error:
        _debug("forked child: " + _describe(error))


def _close_exporter_connections():
    # type: () -> None
    """Closes the pooled connections of every requests session the OpenTelemetry providers
    hold (the OTLP/HTTP exporters'), in this child only: closing a socket that another process
    shares only drops this process's handle. The session opens new ones as it needs them. The
    sessions are found by walking the providers' objects, not by attribute names, which the
    SDK has moved between releases."""
    requests = _sys.modules.get("requests")
    if requests is None:
        return
    session_type = getattr(requests, "Session")  # noqa: B009 (a dynamic module)
    todo = []  # type: list[object]
    for module_name, getter in _OTEL_PROVIDERS:
        module = _sys.modules.get(module_name)
        if module is not None:
            todo.append(getattr(module, getter)())
    seen = set()  # type: set[int]
    while todo and len(seen) < 10000:  # a bound: the providers' graph is a few hundred objects
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, session_type):
            item.close()
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif type(item).__module__.startswith("opentelemetry."):
            todo.extend(getattr(item, "__dict__", {}).values())
            todo.extend(getattr(item, slot, None) for slot in _slots(type(item)))


def _slots(kind):
    # type: (type) -> list[str]
    """The slot attributes of a class and its bases (frozen dataclasses of the SDK use them)."""
    names = []  # type: list[str]
    for base in kind.__mro__:
        slots = base.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return names


def _flush_at_multiprocessing_exit():
    # type: () -> None
    """Registers, once per process line, a flush that multiprocessing runs last when a child it
    started ends (its other exit handlers first). A child's start clears the finalizers it
    inherited and then runs the after-fork callbacks: the flush is registered from one."""
    util = _sys.modules.get("multiprocessing.util")
    if util is None or _FLUSH_AT_EXIT:
        return  # not a multiprocessing child, or the callback came with the fork
    _FLUSH_AT_EXIT.append(True)
    register = getattr(util, "register_after_fork")  # noqa: B009 (a dynamic module)
    finalize = getattr(util, "Finalize")  # noqa: B009
    register(_flush, lambda flush: finalize(None, flush, exitpriority=-1000))


def _flush():
    # type: () -> None
    """Sends what the tracer still buffers; never raises (it runs as a process ends)."""
    try:
        if _STARTED[0] == "ddtrace":
            getattr(_sys.modules["ddtrace"], "tracer").flush()  # noqa: B009
            return
        for module_name, getter in _OTEL_PROVIDERS:
            module = _sys.modules.get(module_name)
            flush = getattr(getattr(module, getter)(), "force_flush", None) if module else None
            if flush is not None:
                flush()
    except Exception as error:
        _debug("could not flush at the end of a multiprocessing child: " + _describe(error))


if __name__ == "sitecustomize":  # not when imported by another name (the tests' helpers)
    try:  # noqa: SIM105 (contextlib costs an import, and Python 2 has no suppress)
        _main()
    except Exception:  # the last guard: the loader never stops the application
        pass
