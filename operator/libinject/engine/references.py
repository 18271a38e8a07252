"""Image references: one grammar for every reference libinject writes or serves.

A policy's `image`, the operator's `registry` (the prefix of every default image) and what the
CSI plugin agrees to pull are all held to the same grammar, the one container runtimes parse
(the distribution reference grammar, without IPv6 hosts, ASCII only):
`[host[:port]/]path[/path...][:tag][@sha256:<64 hex>]`. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LENGTH = 512
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = rf"{_PATH_PART}(?:/{_PATH_PART})*"
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")  # the only digest a reference may carry
# re.ASCII: Python's \w and [0-9] classes would otherwise take other scripts' letters and digits,
# which no runtime accepts.
_REFERENCE = re.compile(
    rf"(?:(?P<host>{_HOST})/)?(?P<path>{_PATH})"
    rf"(?::(?P<tag>\w[\w.-]{{0,127}}))?(?:@(?P<digest>{DIGEST.pattern}))?",
    re.ASCII,
)
_PREFIX = re.compile(rf"(?P<host>{_HOST})(?:/(?P<path>{_PATH}))?", re.ASCII)


class ReferenceError(ValueError):
    """Not an image reference (or prefix) of the grammar; the message says what is expected."""


@dataclass(frozen=True)
class Reference:
    host: str  # "" when the reference names no registry
    path: str
    tag: str  # "" when none
    digest: str  # "" when none

    @property
    def repository(self) -> str:
        """`host/path`: what a repository allow-list compares."""
        return f"{self.host}/{self.path}" if self.host else self.path


def parse(value: str) -> Reference:
    """The parts of `value`, or ReferenceError."""
    found = _REFERENCE.fullmatch(value) if len(value) <= MAX_LENGTH else None
    if found is None:
        raise ReferenceError(
            f"{value[:80]!r} is not an image reference ([host[:port]/]lowercase/path, optional "
            ":tag that is not empty, optional @sha256:<64 lowercase hex>)"
        )
    host, path, tag, digest = found.group("host", "path", "tag", "digest")
    return Reference(host or "", path, tag or "", digest or "")


def within(repository: str, prefix: str) -> bool:
    """Whether `repository` (`host/path`) is under `prefix` by whole path segments, as an
    allow-list compares: `reg/libinject` holds `reg/libinject/x`, never `reg/libinjectx`."""
    return repository.startswith(prefix.rstrip("/") + "/")


def check_prefix(value: str) -> str:
    """`host[:port][/path]`, what default images are built under (the operator's `registry`,
    to which `/<language>-<flavor>:<version>` is added); returned as given, or ReferenceError."""
    if len(value) > MAX_LENGTH or _PREFIX.fullmatch(value) is None:
        raise ReferenceError(
            f"{value[:80]!r} is not a registry and repository prefix (host[:port][/lowercase/path],"
            " no tag or digest)"
        )
    return value
