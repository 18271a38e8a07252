"""Which platforms the native addons of an installed tree are prebuilt for.

Native addons come in two shapes on npm. Most of Datadog's ship every platform's build inside
the package, in the directory layout their loader (node-gyp-build) reads:
`prebuilds/linux<libc>-<arch>/*.node` (node-gyp-build 3), or `prebuilds/linux-<arch>/` with
the C library as a tag in the file's name, `name.musl.node` (node-gyp-build 4; a file without
that tag is the glibc build). Others publish one package per platform, selected by its `os`,
`cpu` and `libc` fields and named as optional dependencies of the package that loads it
(oxc-parser and its @oxc-parser/binding-linux-x64-gnu, ...). Both are read here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libinject.bundle.nodejs.locks import resolve
from libinject.bundle.nodejs.platforms import PLATFORMS, Platform

LINUX_DIRECTORY = re.compile(r"^linux(glibc|musl)?-([\w+]+)$")
# The Node ABI a build is for, where it is not Node-API (ABI-stable): `node-127.node`
# (node-gyp-build 3) or the tag `abi127` (node-gyp-build 4).
_ABI = re.compile(r"(?:^node-|\.abi)(\d+)(?:\.|$)")


@dataclass(frozen=True)
class Coverage:
    package: str
    platforms: frozenset[Platform]
    # "napi" (Node-API: any Node), the Node ABIs of its builds (127 is Node 22, 137 Node 24),
    # or "unstated" where the file name says neither
    abi: tuple[str, ...]
    via: tuple[str, ...] = ()  # the per-platform packages it loads its addon from
    served: tuple[Platform, ...] = PLATFORMS  # the platforms the bundle is for

    @property
    def missing(self) -> list[str]:
        return [p.name for p in self.served if p not in self.platforms]

    def as_dict(self, *, needed: bool) -> dict[str, object]:
        return {
            "covers": [p.name for p in self.served if p in self.platforms],
            "missing": self.missing,
            "abi": list(self.abi),
            "needed": needed,
            **({"via": list(self.via)} if self.via else {}),
        }


def coverage(
    node_modules: Path,
    packages: dict[str, dict[str, Any]],
    *,
    served: tuple[Platform, ...] = PLATFORMS,
) -> dict[str, Coverage]:
    """Every native package of the tree (by name) and which of the `served` platforms its addons
    cover; `packages` is the lock's (install path -> entry), which names each package's optional
    dependencies."""
    found: dict[str, Coverage] = {}
    for path, entry in sorted(packages.items()):
        directory = node_modules.parent / path
        if not path or not directory.is_dir() or _per_platform(entry):
            continue  # a per-platform package counts for the package that loads it
        own = _bundled(directory, served)
        per_platform = _platform_packages(path, entry, packages, node_modules=node_modules)
        if own is None and not per_platform:
            continue
        platforms = set(own.platforms) if own else set()
        abis = set(own.abi) if own else set()
        for dependency, platform_entry in per_platform.items():
            platforms |= {p for p in served if p.installs(platform_entry)}
            abis |= _abis((node_modules.parent / dependency).rglob("*.node"))
        name = _name(path)
        via = tuple(sorted(_name(dependency) for dependency in per_platform))
        covered = Coverage(name, frozenset(platforms), tuple(sorted(abis)), via, served)
        found.setdefault(name, covered)
    return found


def _bundled(package: Path, served: tuple[Platform, ...]) -> Coverage | None:
    """The Linux builds a package ships in its own prebuilds/ directory, if any."""
    prebuilds = package / "prebuilds"
    platforms: set[Platform] = set()
    addons: list[Path] = []
    if prebuilds.is_dir():
        for directory in prebuilds.iterdir():
            match = LINUX_DIRECTORY.match(directory.name)
            if not match or not directory.is_dir():
                continue
            for addon in directory.glob("*.node"):
                addons.append(addon)
                libc = match.group(1) or ("musl" if "musl" in addon.name.split(".") else "glibc")
                platforms |= {Platform(cpu, libc) for cpu in match.group(2).split("+")}
    addons_elsewhere = [p for p in package.rglob("*.node") if prebuilds not in p.parents]
    if not addons and not addons_elsewhere:
        return None
    return Coverage(
        package.name,
        frozenset(platforms & set(served)),
        tuple(sorted(_abis(addons))),
        served=served,
    )


def _platform_packages(
    path: str, entry: dict[str, Any], packages: dict[str, dict[str, Any]], *, node_modules: Path
) -> dict[str, dict[str, Any]]:
    """The installed per-platform packages among a package's optional dependencies: install
    path -> lock entry."""
    found = {}
    for dependency in entry.get("optionalDependencies") or {}:
        where = resolve(path, dependency, packages)
        if where and _per_platform(packages[where]) and (node_modules.parent / where).is_dir():
            found[where] = packages[where]
    return found


def _per_platform(entry: dict[str, Any]) -> bool:
    return bool(entry.get("os") or entry.get("cpu") or entry.get("libc"))


def _name(path: str) -> str:
    return path.rpartition("node_modules/")[2]


def _abis(addons: Iterable[Path]) -> set[str]:
    found = set()
    for addon in addons:
        if "napi" in re.split(r"[.-]", addon.name):
            found.add("napi")
        else:
            match = _ABI.search(addon.name)
            found.add(match.group(1) if match else "unstated")  # Node-API builds by napi-rs
    return found
