"""One node_modules tree for every platform, installed by `npm ci` from a lock.

npm installs only the running machine's per-platform packages (those with `os`, `cpu` or `libc`
fields), or the platform its options name. So each platform whose packages differ is installed
on its own, and the packages only another platform got are added to the first tree: the lock
fixes every package's path, so the trees differ by exactly those.

npm skips an optional dependency it cannot fetch, or whose bytes do not match the lock's
integrity hash, and still succeeds; dd-trace's native addons are all optional dependencies. So
every tree is checked against the lock: each package the lock installs on that platform must be
there, at its locked version, or the build stops.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libinject.bundle.dedup import sizes
from libinject.bundle.nodejs import npm
from libinject.bundle.nodejs.locks import Lock
from libinject.bundle.nodejs.platforms import Platform
from libinject.bundle.stages import BundleError

_SHOWN_MISSING = 5


@dataclass(frozen=True)
class Installed:
    node_modules: Path
    downloaded: bool  # npm's cache lacked something
    plain_bytes: int  # what npm ci installs for the first platform served alone
    bytes: int  # the tree with every platform's packages
    platform_packages: dict[str, list[str]]  # package -> the platforms it is installed for


def install(
    *,
    lock: Lock,
    work: Path,
    cache: Path,
    served: tuple[Platform, ...],
    say: Callable[[str], None],
) -> Installed:
    """Installs the lock into `work/<platform>/node_modules` for each `served` platform whose
    packages differ and merges them into the first's; its node_modules."""
    wanted = {platform: lock.installed_on(platform) for platform in served}
    distinct = [p for i, p in enumerate(served) if wanted[p] not in map(wanted.get, served[:i])]
    downloaded = False
    trees: dict[Platform, Path] = {}
    for platform in distinct:
        directory = work / platform.name
        directory.mkdir()
        lock.copy_to(directory)
        downloaded |= _ci(directory, lock=lock, platform=platform, cache=cache, say=say)
        trees[platform] = directory / "node_modules"
    merged = trees[served[0]]
    plain = sizes(merged).stored
    for platform, tree in trees.items():
        if platform == served[0]:
            continue
        for path in sorted(wanted[platform]):  # parents before their nested node_modules
            if not (merged.parent / path).exists():
                shutil.copytree(tree.parent / path, merged.parent / path, symlinks=True)
        shutil.rmtree(tree.parent)
    platform_packages = {
        path.rpartition("node_modules/")[2]: [p.name for p in served if path in wanted[p]]
        for path, entry in sorted(lock.packages.items())
        if path
        and (entry.get("os") or entry.get("cpu") or entry.get("libc"))
        and any(path in wanted[p] for p in served)
    }
    return Installed(merged, downloaded, plain, sizes(merged).stored, platform_packages)


def _ci(
    directory: Path, *, lock: Lock, platform: Platform, cache: Path, say: Callable[[str], None]
) -> bool:
    """npm ci for one platform, from the cache alone when it holds everything; whether it had to
    download."""
    started = time.monotonic()
    done = npm.ci(directory, platform=platform, cache=cache, offline=True, say=say)
    if done.returncode == 0 and not missing(directory / "node_modules", lock, platform):
        say(f"{platform.name}: installed from the npm cache in {time.monotonic() - started:.1f} s")
        return False
    if done.returncode != 0 and not done.not_cached:
        raise BundleError(f"npm ci failed for {platform.name}; nothing was written:\n{done.tail()}")
    say(f"{platform.name}: downloading what the npm cache ({cache}) lacks from {npm.REGISTRY}...")
    done = npm.ci(directory, platform=platform, cache=cache, offline=False, say=say)
    if done.returncode != 0:
        raise BundleError(f"npm ci failed for {platform.name}; nothing was written:\n{done.tail()}")
    absent = missing(directory / "node_modules", lock, platform)
    if absent:
        shown = "; ".join(absent[:_SHOWN_MISSING])
        more = f"; and {len(absent) - _SHOWN_MISSING} more" if len(absent) > _SHOWN_MISSING else ""
        raise BundleError(
            f"npm ci did not install what {lock.directory} locks for {platform.name}: {shown}"
            f"{more}. npm skips an optional package it cannot download or whose bytes do not "
            "match the lock's integrity hash; nothing was written"
        )
    say(f"{platform.name}: installed in {time.monotonic() - started:.1f} s")
    return True


def missing(node_modules: Path, lock: Lock, platform: Platform) -> list[str]:
    """The packages the lock installs on `platform` that the tree lacks or holds at another
    version, e.g. `@datadog/native-appsec 11.0.3 (absent)`."""
    absent = []
    for path, version in sorted(lock.installed_on(platform).items()):
        manifest = node_modules.parent / path / "package.json"
        try:
            found = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        except (OSError, ValueError):
            found = None
        if found != version:
            name = path.rpartition("node_modules/")[2]
            absent.append(f"{name} {version} ({f'{found} installed' if found else 'absent'})")
    return absent
