"""Every interpreter, platform and arch a Python bundle serves, and how pip is told about each.

The loader picks its directory by the same tag (`cp311-manylinux-x86_64`), so the two must agree:
the tag is built here and nowhere else on the build side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from libinject.engine.platforms import by_platform

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


class Platform(StrEnum):
    MANYLINUX = "manylinux"  # glibc
    MUSLLINUX = "musllinux"  # musl (Alpine)


class Arch(StrEnum):
    X86_64 = "x86_64"
    AARCH64 = "aarch64"


# The oldest libc each platform's wheels may need: glibc 2.17 (manylinux2014) and musl 1.2,
# as dd-trace-py's own image does, so the bundle runs on every distribution those cover.
_PIP_PLATFORMS = {
    Platform.MANYLINUX: ("manylinux2014_{arch}", "manylinux_2_17_{arch}"),
    Platform.MUSLLINUX: ("musllinux_1_1_{arch}", "musllinux_1_2_{arch}"),
}


@dataclass(frozen=True, order=True)
class Target:
    python: str  # "3.11"
    platform: Platform
    arch: Arch

    @property
    def tag(self) -> str:
        """The site directory's name, e.g. cp311-manylinux-x86_64."""
        return f"cp{self.python.replace('.', '')}-{self.platform}-{self.arch}"

    def pip_arguments(self) -> list[str]:
        """pip's flags that resolve wheels for this target instead of the running interpreter."""
        platforms = [p.format(arch=self.arch) for p in _PIP_PLATFORMS[self.platform]]
        return [
            "--only-binary=:all:",  # required by pip with --platform: no builds for other targets
            *(f"--platform={platform}" for platform in platforms),
            f"--python-version={self.python}",
            "--implementation=cp",
        ]

    def markers(self) -> dict[str, str]:
        """PEP 508 environment markers as this target's interpreter would report them."""
        return {
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": str(self.arch),
            "platform_release": "",
            "platform_version": "",
        }


def all_targets() -> list[Target]:
    return [
        Target(python, platform, arch)
        for python in PYTHONS
        for platform in Platform
        for arch in Arch
    ]


def for_platform(platform: str) -> list[Target]:
    """The targets an image for `platform` (linux/amd64) serves: its machine's, every Python and
    C library. ValueError for a platform no image is built for."""
    machine = by_platform(platform)
    return [target for target in all_targets() if target.arch == machine.uname]


def parse_tag(tag: str) -> Target:
    """The Target a tag names; ValueError for anything not in the matrix."""
    for target in all_targets():
        if target.tag == tag:
            return target
    known = ", ".join(t.tag for t in all_targets()[:2])
    raise ValueError(f"unknown target {tag!r} (tags look like {known}, ...)")
