"""Starts one container; run as `unshare --mount --uts -- python -I -S launch.py SPEC.json`.

This file is a script, not part of the package: it imports the standard library alone, so it
starts fast and runs under any Python. unshare(1) gave it a private mount namespace (mounts made
here never reach the host's mount table; they vanish when the last process in it exits) and its
own hostname. Here it makes a PID namespace too, so the container is a process tree the kernel
ends as a whole:

    launcher (host side; relays signals, exits with the container's status)
      └─ init, PID 1 of the container (mounts, hostname; relays signals, reaps orphans)
           └─ the container's process (chroot, user, working directory, exec)

When init exits the kernel kills everything left in the namespace; if the launcher dies, init is
killed with it (PR_SET_PDEATHSIG). The exit status is the container's: its code, or 128 + the
signal that ended it (137 for SIGKILL), as Kubernetes reports it. A setup failure prints
`podrunner: ...` and exits 128, as a runtime's start error.

The spec (JSON): hostname, root (a directory to chroot into, or null for the host's file
system), readOnlyRoot, mounts [{source, target, readOnly}] with targets as host paths,
proc (where to mount the namespace's /proc, or null), uid, gid, groups, workingDir, argv, env.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
from typing import Any

CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
START_ERROR = 128
RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGUSR2)  # fmt: skip

libc = ctypes.CDLL(None, use_errno=True)


def main(spec_path: str) -> None:
    with open(spec_path) as handle:
        spec = json.load(handle)
    try:
        # unshare(1) already makes the new namespace's mounts private; this holds whatever it did.
        _mount(None, "/", flags=MS_REC | MS_PRIVATE)
        _check(libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    except OSError as error:
        _fail(error)
    init = os.fork()
    if init == 0:
        _init(spec)
    _relay_signals(init)
    os._exit(_exit_code(os.waitpid(init, 0)[1]))


def _init(spec: dict[str, Any]) -> None:
    """PID 1: prepares the container, starts its process, reaps until that process exits."""
    try:
        _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "prctl(PR_SET_PDEATHSIG)")
        socket.sethostname(spec["hostname"])
        _mount_all(spec)
    except OSError as error:
        _fail(error)
    process = os.fork()
    if process == 0:
        _exec(spec)
    _relay_signals(process)
    while True:
        pid, status = os.wait()  # orphans of the container are reparented here
        if pid == process:
            os._exit(_exit_code(status))


def _mount_all(spec: dict[str, Any]) -> None:
    root = spec["root"]
    if root:
        _mount(root, root, flags=MS_BIND)  # its own mount, so it can be made read-only below
    for mount in spec["mounts"]:
        _mount(mount["source"], mount["target"], flags=MS_BIND)
        if mount["readOnly"]:
            _mount(None, mount["target"], flags=MS_BIND | MS_REMOUNT | MS_RDONLY)
    if spec["proc"]:
        # Mounted by PID 1 of the new namespace, it lists the container's processes alone.
        _mount("proc", spec["proc"], kind="proc", flags=MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if root and spec["readOnlyRoot"]:
        # Last: only the root's own mount turns read-only, the volumes on it stay as they are.
        _mount(None, root, flags=MS_BIND | MS_REMOUNT | MS_RDONLY)


def _exec(spec: dict[str, Any]) -> None:
    argv = spec["argv"]
    steps = (
        (f"chroot {spec['root']}", lambda: os.chroot(spec["root"]) if spec["root"] else None),
        (f"groups {spec['groups']}", lambda: os.setgroups(spec["groups"])),
        (f"gid {spec['gid']}", lambda: os.setgid(spec["gid"])),
        (f"uid {spec['uid']}", lambda: os.setuid(spec["uid"])),
        (f"working directory {spec['workingDir']}", lambda: os.chdir(spec["workingDir"])),
        (f"exec {argv[0]}", lambda: _execute(argv, spec["env"])),
    )
    for what, step in steps:
        try:
            step()
        except OSError as error:
            _fail(f"{what}: {error.strerror or error}")


def _execute(argv: list[str], env: dict[str, str]) -> None:
    # Python ignores these; an ignored signal would stay ignored across exec.
    for ignored in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(ignored, signal.SIG_DFL)
    os.execvpe(argv[0], argv, env)


def _relay_signals(pid: int) -> None:
    def relay(number: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # it has just exited
            os.kill(pid, number)

    for number in RELAYED:
        signal.signal(number, relay)


def _mount(source: str | None, target: str, *, kind: str | None = None, flags: int) -> None:
    encoded = [None if value is None else value.encode() for value in (source, target, kind)]
    _check(libc.mount(*encoded, flags, None), f"mount {source} on {target} (flags {flags:#x})")


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _fail(message: object) -> None:
    print(f"podrunner: {message}", file=sys.stderr, flush=True)
    os._exit(START_ERROR)


if __name__ == "__main__":
    main(sys.argv[1])
