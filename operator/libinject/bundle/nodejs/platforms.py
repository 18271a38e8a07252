"""The platforms a Node.js bundle serves, and which of a lock's packages each one installs.

Kubernetes nodes run Linux on x64 or arm64, with glibc (Debian, Ubuntu, distroless) or musl
(Alpine): four platforms, each a triple npm names with its `--os`, `--cpu` and `--libc` options
and the `os`, `cpu` and `libc` fields of package.json. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Platform:
    cpu: str  # as npm and process.arch name it: x64, arm64
    libc: str  # glibc, musl
    os: str = "linux"

    @property
    def name(self) -> str:
        return f"{self.os}-{self.cpu}-{self.libc}"

    def npm_arguments(self) -> list[str]:
        """npm's options that install this platform's packages whatever the machine is."""
        return [f"--os={self.os}", f"--cpu={self.cpu}", f"--libc={self.libc}"]

    def installs(self, entry: Mapping[str, Any]) -> bool:
        """Whether npm installs a lock entry with these os, cpu and libc fields here."""
        return (
            _allows(entry.get("os"), self.os)
            and _allows(entry.get("cpu"), self.cpu)
            and _allows(entry.get("libc"), self.libc)
        )


# linux-x64-glibc first: the most common, and what a plain npm install gives.
PLATFORMS = tuple(Platform(cpu, libc) for cpu in ("x64", "arm64") for libc in ("glibc", "musl"))


def of_cpu(cpu: str | None) -> tuple[Platform, ...]:
    """The platforms a bundle for `cpu` (npm's name) serves: glibc and musl; every platform for
    None. ValueError for a cpu no bundle is built for."""
    served = tuple(platform for platform in PLATFORMS if cpu in (None, platform.cpu))
    if not served:
        known = ", ".join(sorted({platform.cpu for platform in PLATFORMS}))
        raise ValueError(f"no Node.js bundle is built for cpu {cpu!r} (only {known})")
    return served


def _allows(values: Sequence[str] | str | None, actual: str) -> bool:
    """npm's rule for an os/cpu/libc list: `!name` excludes a value, and when any value is named
    without `!`, only those are allowed."""
    if not values:
        return True
    listed = [values] if isinstance(values, str) else list(values)
    if f"!{actual}" in listed:
        return False
    allowed = [value for value in listed if not value.startswith("!")]
    return not allowed or actual in allowed
