"""Read-only bind mounts with the `mount` and `umount` commands, and the mount table's view.

A read-only bind mount takes two steps on Linux (the first bind ignores `ro`): `mount --bind`,
then `mount -o remount,bind,ro`. If the second fails the first is undone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


class MountError(RuntimeError):
    """A mount or unmount failed; the message has the command's error."""


def bind_readonly(source: Path, target: Path) -> None:
    _run(["mount", "--bind", str(source), str(target)])
    try:
        _run(["mount", "-o", "remount,bind,ro", str(target)])
    except MountError:
        _run(["umount", str(target)])
        raise


def unmount(target: Path) -> None:
    _run(["umount", str(target)])


def is_mounted(target: Path) -> bool:
    """Whether `target` is a mount point in this process's mount namespace."""
    return str(target) in mount_points()


def mount_points(mountinfo: Path = MOUNTINFO) -> set[str]:
    """The mount points of a mount table (ours, or another process's /proc/<pid>/mountinfo)."""
    points = set()
    for line in mountinfo.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.add(_unescape(fields[4]))
    return points


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (`\\040`)."""
    out = bytearray()
    raw = field.encode()
    i = 0
    while i < len(raw):
        if raw[i] == ord("\\") and i + 3 < len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MountError(f"{' '.join(command)}: {result.stderr.strip() or result.returncode}")
