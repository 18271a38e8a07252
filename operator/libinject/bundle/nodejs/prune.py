"""What a Node.js bundle leaves out of what npm installed: files the runtime never reads.

Only files nothing loads on Linux: Node's `require` and `import` load JavaScript, JSON, native
addons and what those read (WebAssembly, data files), so every rule names a kind of file the
runtime cannot use, never a directory a module could sit in. Licence and notice files stay
(they travel with the code), and so does every package.json (module resolution reads them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# File name endings, each with why nothing loads such a file. Declarations first: `.d.ts` also
# ends in `.ts`.
SUFFIXES = (
    ((".d.ts", ".d.cts", ".d.mts"), "type declarations"),  # read by TypeScript's compiler only
    ((".map",), "source maps"),  # read only for stack traces under --enable-source-maps
    # Node refuses to strip types from files under node_modules, so none of these could run.
    ((".ts", ".cts", ".mts", ".tsx"), "TypeScript sources"),
    ((".md", ".markdown"), "documentation"),
    ((".c", ".cc", ".cpp", ".h", ".hpp"), "native sources"),  # the addons come prebuilt
)
# Directories at the top of a package (beside its package.json) that packages ship for their
# developers; only there, since a package's own code may live in a nested `doc/` (yaml does).
PACKAGE_DIRECTORIES = frozenset(
    {"test", "tests", "__tests__", "example", "examples", "benchmark", "benchmarks", ".github"}
)
# Prebuilt addons for other operating systems, in the layout node-gyp-build and prebuildify
# read (`prebuilds/<platform>[libc]-<arch>/`): a Linux process never looks there.
OTHER_SYSTEMS = re.compile(r"^(?:aix|android|darwin|freebsd|netbsd|openbsd|sunos|win32)-")
# npm's own bookkeeping: the hidden lock of node_modules and the links to packages' commands.
NPM_FILES = frozenset({".package-lock.json"})
NPM_DIRECTORIES = frozenset({".bin"})
KEPT = re.compile(r"^(?:licen[cs]e|notice|copying|authors)", re.IGNORECASE)


@dataclass
class Pruned:
    files: int = 0
    bytes: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)  # bytes per rule

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "by_rule": dict(self.by_rule.most_common()),
        }


def prune(node_modules: Path) -> Pruned:
    """Removes what the rules name under `node_modules`; what that saved."""
    pruned = Pruned()
    for directory, subdirectories, names in os.walk(node_modules):
        here = Path(directory)
        for name in list(subdirectories):
            rule = directory_rule(here, name)
            if rule is not None:
                subdirectories.remove(name)
                _remove(here / name, rule, pruned)
        for name in names:
            rule = file_rule(here, name)
            if rule is not None:
                _remove(here / name, rule, pruned)
    return pruned


def file_rule(directory: Path, name: str) -> str | None:
    """Why the file `directory/name` is left out, or None when it stays."""
    if name in NPM_FILES and directory.name == "node_modules":
        return "npm's bookkeeping"
    if KEPT.match(name) or name == "package.json":
        return None
    lowered = name.lower()
    for suffixes, rule in SUFFIXES:
        if lowered.endswith(suffixes):
            return rule
    return None


def directory_rule(directory: Path, name: str) -> str | None:
    """Why the directory `directory/name` is left out whole, or None when it is walked."""
    if name in NPM_DIRECTORIES and directory.name == "node_modules":
        return "npm's bookkeeping"
    if name in PACKAGE_DIRECTORIES and _is_package(directory):
        return "tests, examples and benchmarks"
    if (
        directory.name == "prebuilds"
        and _is_package(directory.parent)
        and OTHER_SYSTEMS.match(name)
    ):
        return "addons for other operating systems"
    return None


def _is_package(directory: Path) -> bool:
    """An installed package's own directory: node_modules/<name> or node_modules/@scope/<name>."""
    parent = directory.parent
    if parent.name.startswith("@"):
        parent = parent.parent
    return parent.name == "node_modules" and (directory / "package.json").is_file()


def _remove(path: Path, rule: str, pruned: Pruned) -> None:
    whole = path.is_dir() and not path.is_symlink()
    for file in path.rglob("*") if whole else (path,):
        if file.is_file() and not file.is_symlink():  # a link's bytes are its target's
            size = file.stat().st_size
            pruned.files += 1
            pruned.bytes += size
            pruned.by_rule[rule] += size
    if whole:
        shutil.rmtree(path)
    else:
        path.unlink()
