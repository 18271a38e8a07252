"""What an ELF file's header says: which machine its code is for, and whether it needs a loader.

A platform's library image must hold no other machine's code (a node pulls only what it runs),
and its copy program must run in an image with no libc. Both are read from the header and the
program headers, never from file names. Pure reads of the files' first bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_MAGIC = b"\x7fELF"
_CLASSES = {1: 32, 2: 64}  # EI_CLASS
_BYTE_ORDERS = {1: "<", 2: ">"}  # EI_DATA
_PT_INTERP = 3  # the program header naming the dynamic loader


@dataclass(frozen=True)
class Header:
    bits: int  # 32 or 64
    machine: int  # e_machine: 62 x86-64, 183 AArch64, 3 i386, 40 ARM, ...


def header(path: Path) -> Header | None:
    """The ELF header of `path`, or None when it is not an ELF file."""
    with path.open("rb") as handle:
        start = handle.read(20)
    if len(start) < 20 or start[:4] != _MAGIC:
        return None
    bits, order = _CLASSES.get(start[4]), _BYTE_ORDERS.get(start[5])
    if bits is None or order is None:
        return None
    (machine,) = struct.unpack_from(f"{order}H", start, 18)
    return Header(bits=bits, machine=machine)


def is_static(path: Path) -> bool:
    """A 64-bit little-endian ELF whose program headers name no interpreter (PT_INTERP): it runs
    with no libc or loader around it."""
    with path.open("rb") as handle:
        start = handle.read(64)
        if len(start) < 64 or start[:6] != _MAGIC + b"\x02\x01":
            return False
        (offset,) = struct.unpack_from("<Q", start, 0x20)  # e_phoff
        size, count = struct.unpack_from("<HH", start, 0x36)  # e_phentsize, e_phnum
        handle.seek(offset)
        table = handle.read(size * count)
    if len(table) < size * count:
        return False
    kinds = {struct.unpack_from("<I", table, index * size)[0] for index in range(count)}
    return _PT_INTERP not in kinds


def foreign(root: Path, *, machine: int) -> Iterator[Path]:
    """Every regular file under `root` that is ELF code for another machine than `machine` (or
    32-bit code): what a node of that machine could never load. Links are not followed."""
    for directory, _, files in os.walk(root):
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            found = header(path)
            if found is not None and (found.bits, found.machine) != (64, machine):
                yield path
