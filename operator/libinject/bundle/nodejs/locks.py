"""The lock of one Node.js flavor release, committed beside the image's definition:
`images/nodejs/locks/<flavor>-<version>/` holds the package.json naming the flavor's package at
its exact version, and npm's own package-lock.json for it (every package's version, tarball URL
and integrity hash), like requirements.lock.

A bundle is built only from a lock that pins every package with an integrity hash. `libinject
lock nodejs` writes a lock npm resolved from the registry, and never replaces a lock with
different content: it resolves again from the committed lock, and what npm would change is
reported, not written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libinject.api.types import Flavor
from libinject.bundle.nodejs import npm
from libinject.bundle.nodejs.flavors import FLAVORS
from libinject.bundle.nodejs.platforms import Platform
from libinject.bundle.stages import BundleError

PACKAGE_JSON = "package.json"
PACKAGE_LOCK = "package-lock.json"
_SHOWN_DIFFERENCES = 5


@dataclass(frozen=True)
class Lock:
    directory: Path
    manifest: bytes  # package.json
    text: bytes  # package-lock.json
    packages: dict[str, dict[str, Any]]  # the lock's "packages": install path -> entry

    def version_of(self, name: str) -> str:
        return str(self.packages.get(f"node_modules/{name}", {}).get("version", ""))

    def installed_on(self, platform: Platform) -> dict[str, str]:
        """Install path -> version of every package npm ci installs on `platform`: those the
        root's dependencies reach through packages of this platform (npm leaves out a package of
        another platform and, with it, what only that package needed)."""
        reached: dict[str, str] = {}
        waiting = [""]
        while waiting:
            path = waiting.pop()
            entry = self.packages[path]
            for dependency in _dependencies(entry):
                found = resolve(path, dependency, self.packages)
                if found is None or found in reached:
                    continue
                target = self.packages[found]
                if target.get("dev") or target.get("link") or not platform.installs(target):
                    continue
                reached[found] = str(target.get("version"))
                waiting.append(found)
        return reached

    def copy_to(self, directory: Path) -> None:
        (directory / PACKAGE_JSON).write_bytes(self.manifest)
        (directory / PACKAGE_LOCK).write_bytes(self.text)


def resolve(path: str, dependency: str, packages: dict[str, dict[str, Any]]) -> str | None:
    """Where Node finds `dependency` for the package at install path `path` (the lock's paths are
    the tree's): in its own node_modules, then in each enclosing one up to the top."""
    prefix = path
    while True:
        candidate = (
            f"{prefix}/node_modules/{dependency}" if prefix else f"node_modules/{dependency}"
        )
        if candidate in packages:
            return candidate
        if not prefix:
            return None
        prefix = prefix.rpartition("/node_modules/")[0]


def _dependencies(entry: dict[str, Any]) -> list[str]:
    """What a package needs installed beside it (npm installs peers too, unless optional)."""
    optional_peers = {
        name
        for name, meta in (entry.get("peerDependenciesMeta") or {}).items()
        if meta.get("optional")
    }
    peers = [name for name in entry.get("peerDependencies") or {} if name not in optional_peers]
    return [*(entry.get("dependencies") or {}), *(entry.get("optionalDependencies") or {}), *peers]


def lock_path(locks: Path, flavor: Flavor, version: str) -> Path:
    return locks / f"{flavor}-{version}"


def manifest(flavor: Flavor, version: str) -> bytes:
    """The package.json of a flavor release's lock: its packages at exact versions."""
    document = {
        "name": f"libinject-nodejs-{flavor}",
        "version": version,
        "private": True,
        "description": f"The packages of libinject's Node.js {flavor} bundle {version}. "
        "Written by `libinject lock nodejs`; do not edit by hand.",
        "dependencies": FLAVORS[flavor].packages(version),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def read(locks: Path, flavor: Flavor, version: str) -> Lock:
    """The committed lock of this release, which must be this flavor's and pin every package."""
    directory = lock_path(locks, flavor, version)
    if not (directory / PACKAGE_LOCK).is_file():
        raise BundleError(
            f"no lock for {flavor} {version} ({directory}); check the release and write one with "
            f"`libinject lock nodejs --flavor {flavor} --version {version} --locks {locks}`"
        )
    return _checked(directory, flavor=flavor, version=version)


def write(
    *, flavor: Flavor, version: str, locks: Path, cache: Path, say: Callable[[str], None]
) -> dict[str, object]:
    """Resolves the release with npm and writes its lock (or finds the same lock already there);
    a report of what was locked."""
    npm.check_version()
    path = lock_path(locks, flavor, version)
    locks.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=locks, prefix=f".{path.name}-") as work:
        fresh = Path(work) / path.name
        fresh.mkdir()
        (fresh / PACKAGE_JSON).write_bytes(manifest(flavor, version))
        if path.exists():
            # npm keeps what a lock pins: resolving from the committed one changes nothing
            # unless the lock no longer fits its package.json or was edited.
            _check_manifest(path, flavor=flavor, version=version)
            shutil.copyfile(path / PACKAGE_LOCK, fresh / PACKAGE_LOCK)
        say(f"resolving {flavor} {version} with npm against {npm.REGISTRY}...")
        npm.resolve_lock(fresh, cache=cache, say=say)
        lock = _checked(fresh, flavor=flavor, version=version)
        changed = _store(fresh, path)
    say(f"{path} {'written' if changed else 'already holds this lock'}")
    tracer = FLAVORS[flavor].tracer
    return {
        "lock": str(path),
        "tracer": f"{tracer}@{lock.version_of(tracer)}",
        "integrity": lock.packages[f"node_modules/{tracer}"]["integrity"],
        "packages": len(lock.packages) - 1,
        "changed": changed,
    }


def _store(fresh: Path, path: Path) -> bool:
    """Moves the fresh lock into place unless the same one is there; refuses to replace a
    different one."""
    if not path.exists():
        fresh.rename(path)  # atomic: a lock directory is complete or absent
        return True
    if (path / PACKAGE_LOCK).read_bytes() == (fresh / PACKAGE_LOCK).read_bytes():
        return False
    old, new = _packages(path / PACKAGE_LOCK), _packages(fresh / PACKAGE_LOCK)
    raise BundleError(
        f"{path / PACKAGE_LOCK} is not what npm resolves from it ({differences(old, new)}): the "
        "lock is left as it is; remove it to lock the release afresh"
    )


def differences(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> str:
    """The first few packages two locks pin differently, said briefly."""
    said = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        name = path.removeprefix("node_modules/") or "the root"
        if before is None or after is None:
            said.append(f"{name} {'added' if before is None else 'removed'}")
        elif before.get("version") != after.get("version"):
            said.append(f"{name} {before.get('version')} -> {after.get('version')}")
        else:
            fields = sorted(
                k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
            )
            said.append(f"{name}: {', '.join(fields)} differ")
    more = len(said) - _SHOWN_DIFFERENCES
    return "; ".join(said[:_SHOWN_DIFFERENCES]) + (f"; and {more} more" if more > 0 else "")


def _checked(directory: Path, *, flavor: Flavor, version: str) -> Lock:
    _check_manifest(directory, flavor=flavor, version=version)
    lock_file = directory / PACKAGE_LOCK
    packages = _packages(lock_file)
    problem = unpinned(packages, tracer=FLAVORS[flavor].tracer, version=version)
    if problem:
        raise BundleError(f"{lock_file} does not pin the release: {problem}")
    return Lock(
        directory, (directory / PACKAGE_JSON).read_bytes(), lock_file.read_bytes(), packages
    )


def _check_manifest(directory: Path, *, flavor: Flavor, version: str) -> None:
    path = directory / PACKAGE_JSON
    if not path.is_file() or path.read_bytes() != manifest(flavor, version):
        raise BundleError(
            f"{path} is not the package.json `libinject lock nodejs` writes for {flavor} "
            f"{version}: the lock is another release's or was edited"
        )


def _packages(lock_file: Path) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads(lock_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError(f"{lock_file} is not an npm lock: {error}") from error
    if not isinstance(document, dict):
        document = {}
    packages, version = document.get("packages"), document.get("lockfileVersion")
    if (
        not isinstance(packages, dict)
        or "" not in packages
        or not isinstance(version, int)
        or version < 2
    ):
        raise BundleError(f"{lock_file} is not an npm lock of version 2 or later (no packages)")
    return packages


def unpinned(packages: dict[str, dict[str, Any]], *, tracer: str, version: str) -> str | None:
    """Why a lock's packages do not pin the release (None when they do): the tracer at the
    flavor's version, and every package it installs with a version, a URL and an integrity hash
    npm checks (a package bundled inside another's tarball comes with that one)."""
    found = packages.get(f"node_modules/{tracer}", {}).get("version")
    if found != version:
        return f"it installs {tracer} {found or '(none)'}, not {version}"
    for path, entry in sorted(packages.items()):
        if not path or entry.get("link") or entry.get("inBundle") or entry.get("dev"):
            continue
        missing = [key for key in ("version", "resolved", "integrity") if not entry.get(key)]
        if missing:
            return f"{path} has no {', '.join(missing)}: npm would install it unchecked"
    return None
