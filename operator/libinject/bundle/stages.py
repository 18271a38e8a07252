"""One site directory per target, installed from wheels by pip and cached by what it holds.

A stage is what `pip install --target` gives for one interpreter, platform and arch, minus the
excluded distributions, plus the requirements file the loader reads and bytecode compiled by a
real interpreter of that version when this machine has one. Stages are cached under the cache
directory by a digest of everything that shapes them, and renamed into place when complete, so
a failed or interrupted install is never reused.
"""

from __future__ import annotations

import csv
import functools
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from libinject.bundle import pruning, requirements, siteprune
from libinject.bundle.dedup import sizes
from libinject.bundle.flavors import Recipe
from libinject.bundle.pruning import Pruned
from libinject.bundle.targets import Target

# Bump when the stage's layout or what siteprune leaves out changes, so old caches are not reused.
STAGE_FORMAT = 2
STAGE_REPORT = "stage.json"
_PYTHON_EXCLUDED = "require a different python version"  # pip's words for a Requires-Python miss


class BundleError(Exception):
    """A bundle could not be built; the message says which step and why."""


class UnsupportedTargetError(BundleError):
    """The release does not support this target's Python (its Requires-Python excludes it)."""


@dataclass(frozen=True)
class Stage:
    target: Target
    site: Path  # the site-packages directory
    plain_bytes: int  # what pip installed, before exclusions and bytecode
    removed: tuple[str, ...]  # excluded distributions that pip had installed
    pruned: Pruned  # files the interpreter never reads, left out
    bytecode: bool  # compiled by a real interpreter of the target's version


def stage(*, recipe: Recipe, target: Target, cache: Path) -> Stage:
    directory = cache / "stages" / f"{target.tag}-{_digest(recipe, target)}"
    if not directory.is_dir():
        directory.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory.parent, prefix=".partial-") as work:
            _build(recipe=recipe, target=target, work=Path(work))
            try:
                (Path(work) / "stage").rename(directory)
            except OSError:  # another build finished the same stage first: theirs is as good
                if not directory.is_dir():
                    raise
    report = json.loads((directory / STAGE_REPORT).read_text())
    return Stage(
        target=target,
        site=directory / "site",
        plain_bytes=report["plain_bytes"],
        removed=tuple(report["removed"]),
        pruned=Pruned.from_dict(report["pruned"]),
        bytecode=report["bytecode"],
    )


@functools.cache
def interpreter(python: str) -> Path | None:
    """A working CPython of this version on this machine: python3.X on PATH or a pyenv install.

    Each candidate is run once to check its version: a pyenv shim for a version that is not
    selected is on PATH but fails."""
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [
        shutil.which(f"python{python}"),
        *glob.glob(f"{root}/versions/{python}.*/bin/python{python}"),
    ]
    for candidate in filter(None, candidates):
        probe = [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        result = subprocess.run(probe, capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip() == python:
            return Path(candidate)
    return None


def _build(*, recipe: Recipe, target: Target, work: Path) -> None:
    site = work / "stage" / "site"
    _pip_install(recipe=recipe, target=target, site=site)
    plain_bytes = sizes(site).stored
    removed = [name for name in recipe.excluded if _uninstall(site, name)]
    shutil.rmtree(site / "bin", ignore_errors=True)  # launchers with this machine's shebang
    pruned = siteprune.prune(site)
    requirements.write(site, markers=target.markers(), stable=recipe.stable_apis)
    bytecode = _compile(site, python=target.python)
    report = {
        "plain_bytes": plain_bytes,
        "removed": removed,
        "pruned": pruned.as_dict(),
        "bytecode": bytecode,
    }
    (work / "stage" / STAGE_REPORT).write_text(json.dumps(report))


def _pip_install(*, recipe: Recipe, target: Target, site: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # bytecode is compiled by the target's own interpreter, or not at all
        "--no-warn-script-location",
        f"--target={site}",
        *target.pip_arguments(),
        *recipe.requirements,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        excluded = _python_excluded(lines, recipe)
        if excluded:  # the pinned release itself is not for this Python: a fact, not a failure
            raise UnsupportedTargetError(f"{target.tag}: {excluded}")
        tail = "\n".join(lines[-15:])
        raise BundleError(f"{target.tag}: pip could not install {recipe.requirements}:\n{tail}")


def _python_excluded(lines: list[str], recipe: Recipe) -> str:
    """pip's reason when it skipped a pinned release for its Requires-Python, else ''."""
    pinned = [
        requirement.split("==", 1)[1] for requirement in recipe.requirements if "==" in requirement
    ]
    for line in lines:
        if _PYTHON_EXCLUDED in line:
            for version in pinned:
                match = re.search(rf"(^|[ ;:]){re.escape(version)} Requires-Python ([^;]+)", line)
                if match:
                    return f"release {version} requires Python {match.group(2).strip()}"
    return ""


def _uninstall(site: Path, name: str) -> bool:
    """Removes one distribution by its RECORD; False if pip had not installed it."""
    wanted = canonicalize_name(name)
    for info in site.glob("*.dist-info"):
        if canonicalize_name(info.name.split("-")[0]) != wanted:
            continue
        with (info / "RECORD").open(newline="") as handle:
            paths = [site / row[0] for row in csv.reader(handle) if row]
        for path in paths:
            path.unlink(missing_ok=True)
        shutil.rmtree(info, ignore_errors=True)
        pruning.remove_empty_directories(site)
        return True
    return False


def _compile(site: Path, *, python: str) -> bool:
    """Bytecode for the target's interpreter, or none when this machine lacks that version.

    The library is mounted read-only in the app, so an interpreter could never write its own
    bytecode there and would compile every module at every start. Unchecked-hash bytecode stays
    valid when the copy step changes file times.
    """
    binary = interpreter(python)
    if binary is None:
        return False
    compile_bytecode(binary, site)
    return True


def compile_bytecode(binary: Path, path: Path, *, recurse: bool = True) -> None:
    """Unchecked-hash bytecode for every module under `path` (only its own files unless
    `recurse`). Files that do not compile for this version (code for other versions) are
    skipped and fail only if imported, exactly as without bytecode.

    The same module's bytecode must come out byte for byte the same in the four platform sites
    of one interpreter, so that it is stored once: each module's recorded file name is relative
    to `path` (`-s`; an import replaces it with the real path anyway); one process compiles
    the files in compileall's sorted order (with worker processes, marshal's reference flags
    depend on what else each worker had compiled; one process is also no slower here); and
    string hashing is fixed, since a frozenset constant is written in its iteration order."""
    flags = [
        "-qq",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(path),
        *([] if recurse else ["-l"]),
    ]
    command = [str(binary), "-m", "compileall", *flags, str(path)]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(command, capture_output=True, env=environment, check=False)


def _digest(recipe: Recipe, target: Target) -> str:
    """Everything that shapes a stage; the interpreter's presence too, since it adds bytecode."""
    shape = {
        "format": STAGE_FORMAT,
        "requirements": recipe.requirements,
        "excluded": recipe.excluded,
        "stable_apis": recipe.stable_apis,
        "pip": target.pip_arguments(),
        "bytecode": interpreter(target.python) is not None,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
