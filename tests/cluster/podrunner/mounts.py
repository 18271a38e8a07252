"""Which volume goes where in a container, and the mountpoints that takes.

Inside an image's root file system mountpoints are simply made (the root is the pod's own copy).
On the host, for the app container, missing mountpoints are made and removed afterwards; a
process-wide count keeps a path two running pods share until the last one is done, since removing
a directory detaches whatever another mount namespace has mounted on it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cluster.podrunner.errors import ContainerConfigError
from cluster.podrunner.volumes import Volume

MAX_SYMLINKS = 40  # as the kernel's path walk


@dataclass(frozen=True)
class Mount:
    source: Path  # on the host
    target: str  # absolute, as the container sees it
    read_only: bool


def container_mounts(container: Mapping[str, Any], volumes: Mapping[str, Volume]) -> list[Mount]:
    """The container's volumeMounts, parents before children (as runtimes sort them)."""
    mounts = [_mount(entry, volumes) for entry in container.get("volumeMounts") or ()]
    return sorted(mounts, key=lambda mount: len(PurePosixPath(mount.target).parts))


def _mount(entry: Mapping[str, Any], volumes: Mapping[str, Volume]) -> Mount:
    name = str(entry["name"])
    if name not in volumes:
        raise ContainerConfigError(f"volumeMount {name!r} names no volume of the pod")
    if entry.get("subPathExpr"):
        raise ContainerConfigError(f"volumeMount {name!r}: subPathExpr is not supported")
    volume = volumes[name]
    source = volume.path
    sub_path = str(entry.get("subPath") or "")
    if sub_path:
        source = _sub_path(volume, sub_path)
    read_only = bool(entry.get("readOnly")) or volume.read_only
    return Mount(source=source, target=str(entry["mountPath"]), read_only=read_only)


def _sub_path(volume: Volume, sub_path: str) -> Path:
    relative = PurePosixPath(sub_path)
    if relative.is_absolute() or ".." in relative.parts:
        raise ContainerConfigError(f"volume {volume.name!r}: subPath {sub_path!r} leaves it")
    source = volume.path / relative
    if not source.exists():  # the kubelet makes a missing subPath as a directory
        source.mkdir(mode=0o777, parents=True)
    return source


def in_root(root: Path, path: str) -> Path:
    """`path` inside `root` with every symlink resolved inside `root` too (a securejoin): an
    image's absolute symlink must not make us write to the host's file system."""
    pending = _parts(path)
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            resolved = resolved[:-1]
            continue
        candidate = root.joinpath(*resolved, part)
        if not candidate.is_symlink():
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            raise ContainerConfigError(f"{path!r} in {root}: too many levels of symbolic links")
        link = os.readlink(candidate)
        if link.startswith("/"):
            resolved = []
        pending = _parts(link) + pending
    return root.joinpath(*resolved)


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def make_mountpoint(target: Path, *, directory: bool) -> None:
    """A directory, or an empty file for a file's bind mount, with its missing parents."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        target.mkdir()
    else:
        target.touch()


_claims: dict[Path, int] = {}
_claims_lock = threading.Lock()


class HostMountpoints:
    """Mountpoints made on the host for one pod, removed (when empty) by `release`."""

    def __init__(self) -> None:
        self._held: list[Path] = []

    def claim(self, target: Path, *, directory: bool) -> None:
        with _claims_lock:
            missing = [path for path in (*reversed(target.parents), target) if _ours(path)]
            make_mountpoint(target, directory=directory)
            for path in missing:
                _claims[path] = _claims.get(path, 0) + 1
                self._held.append(path)

    def release(self) -> None:
        """Deepest first; only what no other pod still holds, and only if empty."""
        with _claims_lock:
            for path in sorted(self._held, key=lambda path: len(path.parts), reverse=True):
                _claims[path] -= 1
                if _claims[path] == 0:
                    del _claims[path]
                    _remove_if_empty(path)
            self._held.clear()


def _ours(path: Path) -> bool:
    """Missing (we make it now) or made by a pod that still runs."""
    return path in _claims or not (path.exists() or path.is_symlink())


def _remove_if_empty(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        elif path.is_file() and path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass  # something was put there meanwhile: it is not ours to delete
