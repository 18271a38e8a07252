"""The platforms library images are built for, and what each ecosystem calls their machine.

A library image is an OCI index with one image per platform, each holding only its platform's
files (the delivery contract). One machine has four names: OCI's and Go's architecture
(`amd64`), uname's and Python wheels' (`x86_64`), npm's and Node's `process.arch` (`x64`), and
the ELF header's e_machine number its native code carries. Pure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    architecture: str  # OCI's and GOARCH's: amd64
    uname: str  # uname -m's and Python wheel tags': x86_64
    npm: str  # npm's --cpu and Node's process.arch: x64
    elf: int  # the ELF header's e_machine (64-bit little-endian code only)

    @property
    def platform(self) -> str:
        """OCI's `os/architecture`: linux/amd64."""
        return f"linux/{self.architecture}"


MACHINES = (
    Machine(architecture="amd64", uname="x86_64", npm="x64", elf=62),  # EM_X86_64
    Machine(architecture="arm64", uname="aarch64", npm="arm64", elf=183),  # EM_AARCH64
)


def by_platform(platform: str) -> Machine:
    """The machine `linux/<architecture>` names; ValueError naming the ones images are built for."""
    for machine in MACHINES:
        if machine.platform == platform:
            return machine
    known = ", ".join(machine.platform for machine in MACHINES)
    raise ValueError(f"no library images are built for platform {platform!r} (only {known})")


def node_platform(machine: str | None = None) -> str:
    """`linux/<architecture>` of this machine (or of `machine`, uname's or OCI's name for it)."""
    name = machine if machine is not None else os.uname().machine
    for known in MACHINES:
        if name in (known.uname, known.architecture):
            return known.platform
    names = ", ".join(sorted(n for m in MACHINES for n in (m.uname, m.architecture)))
    raise ValueError(f"no library images are built for machine {name!r} ({names})")
