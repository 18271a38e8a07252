"""What a Python bundle leaves out of what pip installed: files the interpreter never reads.

Python imports modules (`.py`, their bytecode, extension modules) and the data files a package
opens itself (certifi's `cacert.pem`, ddtrace's JSON tables), so every rule names a kind of file
no import reads, never a data directory. Distribution metadata (`*.dist-info`) stays whole:
`importlib.metadata` reads it for versions and entry points (OpenTelemetry finds its
instrumentations that way), and licence files travel with the code.

Debug sections of extension modules are kept, measured (`make bench`): ddtrace's own extensions
come stripped, wrapt's and charset-normalizer's do not (about 10 MiB of ddtrace's bundle, 8 of
OpenTelemetry's), and stripping the aarch64 ones needs a cross binutils that a fresh machine
does not have; rewriting ELF files by hand is not this module's job.
"""

from __future__ import annotations

from pathlib import Path

from libinject.bundle import pruning
from libinject.bundle.pruning import LICENCES, Pruned

# File name endings, each with why no import reads such a file.
SUFFIXES = (
    ((".pyi",), "type stubs"),  # read by type checkers only
    ((".c", ".cc", ".cpp", ".h", ".hpp", ".pyx", ".pxd", ".pxi"), "native sources"),  # compiled
    # The generated `_pb2` modules carry their schema; protobuf's runtime never parses these.
    ((".proto",), "protocol buffer definitions"),
    ((".md", ".rst"), "documentation"),
)
TYPING_MARKER = "py.typed"  # PEP 561's marker, for type checkers only
# A package's own test suite at its top (certifi ships one), imported by no runtime path. Only
# there, and only under this name: ddtrace's `testing` package is runtime code.
TESTS = "tests"


def prune(site: Path) -> Pruned:
    """Removes what the rules name under the site directory `site`; what that saved."""
    pruned = pruning.prune(site, file_rule=file_rule, directory_rule=directory_rule)
    pruning.remove_empty_directories(site)  # a stubs-only package (wrapt-stubs) leaves one
    return pruned


def file_rule(directory: Path, name: str) -> str | None:
    """Why the file `directory/name` is left out, or None when it stays."""
    if LICENCES.match(name) or any(part.endswith(".dist-info") for part in directory.parts):
        return None
    if name == TYPING_MARKER:
        return "type stubs"
    return pruning.by_suffix(name, SUFFIXES)


def directory_rule(directory: Path, name: str) -> str | None:
    """Why the directory `directory/name` goes whole (a `tests` package at the top of a
    package: its parent is a package and the parent's parent is not), or None when walked."""
    if name != TESTS or not (directory / "__init__.py").is_file():
        return None
    return None if (directory.parent / "__init__.py").is_file() else "tests"
