"""What a Node.js bundle leaves out of what npm installed: files the runtime never reads.

Only files nothing loads on Linux: Node's `require` and `import` load JavaScript, JSON, native
addons and what those read (WebAssembly, data files), so every rule names a kind of file the
runtime cannot use, never a directory a module could sit in. Licence and notice files stay
(they travel with the code), and so does every package.json (module resolution reads them).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import partial
from pathlib import Path

from libinject.bundle import pruning
from libinject.bundle.nodejs.prebuilds import LINUX_DIRECTORY
from libinject.bundle.pruning import LICENCES, Pruned

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


def prune(node_modules: Path, *, cpus: Collection[str]) -> Pruned:
    """Removes what the rules name under `node_modules`, in a bundle for the `cpus` (npm's
    names: x64, arm64); what that saved."""
    return pruning.prune(
        node_modules, file_rule=file_rule, directory_rule=partial(directory_rule, cpus=cpus)
    )


def file_rule(directory: Path, name: str) -> str | None:
    """Why the file `directory/name` is left out, or None when it stays."""
    if name in NPM_FILES and directory.name == "node_modules":
        return "npm's bookkeeping"
    if LICENCES.match(name) or name == "package.json":
        return None
    return pruning.by_suffix(name, SUFFIXES)


def directory_rule(directory: Path, name: str, *, cpus: Collection[str]) -> str | None:
    """Why the directory `directory/name` is left out whole, or None when it is walked."""
    if name in NPM_DIRECTORIES and directory.name == "node_modules":
        return "npm's bookkeeping"
    if name in PACKAGE_DIRECTORIES and _is_package(directory):
        return "tests, examples and benchmarks"
    if directory.name == "prebuilds" and _is_package(directory.parent):
        if OTHER_SYSTEMS.match(name):
            return "addons for other operating systems"
        linux = LINUX_DIRECTORY.match(name)
        if linux and not set(linux.group(2).split("+")) & set(cpus):
            # A node unpacks only its own platform's image, so it never loads these (32-bit
            # machines, or the other platform's in a single-platform bundle).
            return "addons for other machines"
    return None


def _is_package(directory: Path) -> bool:
    """An installed package's own directory: node_modules/<name> or node_modules/@scope/<name>."""
    parent = directory.parent
    if parent.name.startswith("@"):
        parent = parent.parent
    return parent.name == "node_modules" and (directory / "package.json").is_file()
