"""The library image's single layer, written as a reproducible tar.

Contents (the delivery contract in libinject.engine.delivery):
    libinject/...   the bundle (IMAGE_LIBRARY_DIR)
    bin/busybox     a static copy program: the init container runs `busybox cp` from here
Every entry is owned by root, world-readable and dated 0, so the same inputs give the same
layer digest (and the registry stores it once). Hard links stay hard links.
"""

from __future__ import annotations

import stat
import struct
import tarfile
from pathlib import Path

from libinject.engine.delivery import BUNDLE_MANIFEST, IMAGE_LIBRARY_DIR

COPY_PROGRAM = "bin/busybox"
_PT_INTERP = 3  # the program header naming the dynamic loader


def write_layer(*, bundle: Path, copy_program: Path, out: Path) -> None:
    if not (bundle / BUNDLE_MANIFEST).is_file():
        raise ValueError(f"{bundle} is not a bundle (no {BUNDLE_MANIFEST}); build one first")
    if not is_static_elf(copy_program):
        raise ValueError(f"{copy_program} is not a static ELF executable (the image has no libc)")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as layer:
        layer.add(str(copy_program), arcname=COPY_PROGRAM, filter=_executable)
        layer.add(str(bundle), arcname=IMAGE_LIBRARY_DIR.lstrip("/"), filter=_normalized)


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    executable = info.mode & stat.S_IXUSR or info.isdir()
    info.mode = 0o755 if executable else 0o644
    return info


def _executable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info = _normalized(info)
    info.mode = 0o755
    return info


def is_static_elf(path: Path) -> bool:
    """A 64-bit little-endian ELF (x86_64, aarch64) whose program headers name no interpreter
    (PT_INTERP): it runs with no libc or loader around it."""
    with path.open("rb") as handle:
        header = handle.read(64)
        if len(header) < 64 or header[:6] != b"\x7fELF\x02\x01":
            return False
        (offset,) = struct.unpack_from("<Q", header, 0x20)  # e_phoff
        size, count = struct.unpack_from("<HH", header, 0x36)  # e_phentsize, e_phnum
        handle.seek(offset)
        table = handle.read(size * count)
    if len(table) < size * count:
        return False
    kinds = {struct.unpack_from("<I", table, index * size)[0] for index in range(count)}
    return _PT_INTERP not in kinds
