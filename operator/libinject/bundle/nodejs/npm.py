"""Running npm: resolving a lock, and installing exactly what a lock pins.

npm does what it does best and nothing else: it resolves versions and records each package's
integrity hash (`npm install --package-lock-only`), and installs from the lock (`npm ci`),
checking every tarball against that hash. No package's install script ever runs, no audit or
update check reaches the network, and npm's cache is the one given (so a second build reads
everything from it, with no network at all).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libinject.bundle.nodejs.platforms import Platform
from libinject.bundle.stages import BundleError

REGISTRY = "https://registry.npmjs.org/"
# --libc came with npm 10.3.0: an older npm would ignore it and install the machine's packages.
MINIMUM_NPM = (10, 3, 0)
_PROGRESS_EVERY = 10.0  # seconds between progress lines while npm runs
_TAIL = 20  # lines of npm's output shown when it fails
# Neither the audit nor the update check: no request a build does not need. Node's engines are
# the bundle's, never this machine's: the build may run on an older Node than it serves.
_COMMON = (
    "--no-audit",
    "--no-fund",
    "--no-update-notifier",
    "--engine-strict=false",
    "--ignore-scripts",
    "--omit=dev",
    "--loglevel=warn",
)


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str

    def tail(self) -> str:
        return "\n".join(self.output.strip().splitlines()[-_TAIL:])

    @property
    def not_cached(self) -> bool:
        """npm failed offline because its cache lacks something."""
        return "ENOTCACHED" in self.output


def check_version() -> str:
    """The version of the npm on PATH, which must know --libc."""
    try:
        done = subprocess.run(["npm", "--version"], capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise BundleError("npm is not on PATH: a Node.js bundle is installed by npm") from error
    found = done.stdout.strip()
    numbers = tuple(int(part) for part in re.findall(r"\d+", found)[:3])
    if done.returncode != 0 or numbers < MINIMUM_NPM:
        wanted = ".".join(map(str, MINIMUM_NPM))
        raise BundleError(f"npm {found or '?'} is too old: the bundle needs npm {wanted} or later")
    return found


def resolve_lock(directory: Path, *, cache: Path, say: Callable[[str], None]) -> None:
    """Writes directory/package-lock.json for directory/package.json, resolved against the public
    npm registry (the lock's URLs are its own, whatever registry this machine's npm configuration
    names), keeping what a lock already there pins."""
    command = [
        "npm",
        "install",
        "--package-lock-only",
        f"--registry={REGISTRY}",
        "--lockfile-version=3",
        # Each package's tarball URL is part of the lock, whatever this machine's npm says.
        "--omit-lockfile-registry-resolved=false",
        f"--cache={cache}",
        *_COMMON,
    ]
    done = _run(command, cwd=directory, label="npm install --package-lock-only", say=say)
    if done.returncode != 0:
        raise BundleError(f"npm could not resolve {directory / 'package.json'}:\n{done.tail()}")


def ci(
    directory: Path, *, platform: Platform, cache: Path, offline: bool, say: Callable[[str], None]
) -> Run:
    """`npm ci` in `directory` for `platform`: from the npm cache alone when `offline`, else
    downloading what the cache lacks."""
    command = [
        "npm",
        "ci",
        *platform.npm_arguments(),
        f"--cache={cache}",
        "--offline" if offline else "--prefer-offline",
        *_COMMON,
    ]
    return _run(command, cwd=directory, label=f"npm ci ({platform.name})", say=say)


def _run(command: list[str], *, cwd: Path, label: str, say: Callable[[str], None]) -> Run:
    """Runs npm, saying every few seconds that it still runs; its output for the caller."""
    started = time.monotonic()
    with subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        while True:
            try:
                output, _ = process.communicate(timeout=_PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:  # no output is lost: communicate() goes on
                say(f"{label}: still running, {time.monotonic() - started:.0f} s")
    return Run(process.returncode, output)
