"""A library image's single layer for one platform, written as a reproducible tar.

Contents (the delivery contract in libinject.engine.delivery):
    libinject/...   the bundle (IMAGE_LIBRARY_DIR)
    bin/busybox     a static copy program: the init container runs `busybox cp` from here
Every entry is owned by root, world-readable and dated 0, so the same inputs give the same
layer digest (and the registry stores it once). Hard links stay hard links. The layer holds its
platform's code only: a copy program for another machine, or a bundle with another machine's
native code, is refused before anything is written.
"""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

from libinject.engine.delivery import BUNDLE_MANIFEST, IMAGE_LIBRARY_DIR
from libinject.engine.platforms import Machine
from libinject.images import elf

COPY_PROGRAM = "bin/busybox"
_SHOWN = 3  # foreign files named in a refusal


def write_layer(*, bundle: Path, copy_program: Path, machine: Machine, out: Path) -> None:
    """Writes `machine`'s layer to `out`; ValueError says why the inputs cannot make one."""
    if not (bundle / BUNDLE_MANIFEST).is_file():
        raise ValueError(f"{bundle} is not a bundle (no {BUNDLE_MANIFEST}); build one first")
    if not elf.is_static(copy_program):
        raise ValueError(f"{copy_program} is not a static ELF executable (the image has no libc)")
    if elf.header(copy_program) != elf.Header(bits=64, machine=machine.elf):
        raise ValueError(f"{copy_program} is not a program for {machine.platform}")
    _check_native_code(bundle, machine)
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


def _check_native_code(bundle: Path, machine: Machine) -> None:
    found = sorted(elf.foreign(bundle, machine=machine.elf))
    if found:
        shown = ", ".join(str(path.relative_to(bundle)) for path in found[:_SHOWN])
        more = f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
        raise ValueError(
            f"{bundle} holds native code for another machine than {machine.platform} "
            f"({shown}{more}): build the bundle for {machine.platform} alone"
        )
