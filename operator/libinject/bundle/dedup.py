"""Identical files across a bundle's site directories, stored once (hard links).

Most of a library is the same pure-Python source for every interpreter, platform and arch;
only native extensions and compiled bytecode differ. Hard links, not symlinks: a file's path
stays inside its own site directory, so code that resolves `__file__` finds its neighbours.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Sizes:
    """Bytes of regular files under a tree: every path counted, and each inode once."""

    files: int
    apparent: int  # what a copy that does not keep hard links takes
    stored: int  # what the tree takes on disk and in an image layer

    def as_dict(self) -> dict[str, int]:
        return {"files": self.files, "apparent_bytes": self.apparent, "stored_bytes": self.stored}


def link_identical(root: Path) -> int:
    """Replaces every file under `root` that equals an earlier one (same bytes and mode) by a
    hard link to it; returns how many were linked."""
    first: dict[tuple[int, int, str], Path] = {}
    linked = 0
    for path in _files(root):
        stat = path.stat()
        key = (stat.st_size, stat.st_mode, _digest(path))
        original = first.setdefault(key, path)
        if original != path and not os.path.samefile(original, path):
            temporary = path.with_name(path.name + ".libinject-link")
            os.link(original, temporary)
            temporary.replace(path)  # atomic: the path is never missing
            linked += 1
    return linked


def sizes(root: Path) -> Sizes:
    seen: set[tuple[int, int]] = set()
    files = apparent = stored = 0
    for path in _files(root):
        stat = path.stat()
        files += 1
        apparent += stat.st_size
        if (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            stored += stat.st_size
    return Sizes(files, apparent, stored)


def _files(root: Path) -> Iterator[Path]:
    """Regular files, in a stable order (so the kept copy is always the same one)."""
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield path


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
