"""One container as a process on this host: started through unshare(1) and launch.py, its
output (stdout and stderr together) in a file, stopped the way the kubelet stops it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from cluster import harness, poll
from cluster.podrunner.errors import PodRunnerError

LAUNCHER = Path(__file__).with_name("launch.py")
GONE_TIMEOUT = 10.0  # after SIGKILL, for the kernel to tear the namespaces down


class ContainerProcess:
    def __init__(self, *, name: str, spec: dict[str, Any], directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.spec_file = directory / "spec.json"
        self.log = directory / "output.log"
        self.spec_file.write_text(json.dumps(spec, indent=1))
        self._popen: subprocess.Popen[bytes] | None = None
        self._output: str | None = None

    def start(self) -> ContainerProcess:
        # -I -S: the launcher needs the standard library alone, and none of this process's
        # PYTHON* settings.
        command = [_unshare(), "--mount", "--uts", "--propagation", "private", "--",
                   sys.executable, "-I", "-S", str(LAUNCHER), str(self.spec_file)]  # fmt: skip
        with self.log.open("wb") as output:
            self._popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={},  # the container's environment is in the spec, nothing leaks from ours
                start_new_session=True,  # its own process group, signalled as a whole
                # Between fork and exec; the pod runner starts no threads, so the
                # fork-with-threads hazard does not apply. The container dies with the tests.
                preexec_fn=harness.die_with_parent,  # noqa: PLW1509
            )
        return self

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"container {self.name!r} was not started")
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The container's exit code (128 + the signal that ended it), None while it runs."""
        code = None if self._popen is None else self._popen.poll()
        return None if code is None else _container_code(code)

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; TimeoutError if it still runs after `timeout` seconds."""
        if self._popen is None:
            raise RuntimeError(f"container {self.name!r} was not started")
        try:
            return _container_code(self._popen.wait(timeout))
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"container {self.name!r} still runs after {timeout}s") from None

    def stop(self, *, grace: float) -> int | None:
        """SIGTERM to the container's process, SIGKILL to the container after `grace` seconds;
        returns (the exit code) once no process of the container remains."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            self._signal(signal.SIGTERM)  # the launcher relays it to the container's process
            try:
                popen.wait(grace)
            except subprocess.TimeoutExpired:
                self._kill_container()
        # The launcher exits after the container's init, whose exit the kernel completes only
        # once the rest of its PID namespace is gone: this only waits out the last zombies.
        poll.until(
            lambda: not group_members(popen.pid),
            what=f"the processes of container {self.name!r} to end",
            timeout=GONE_TIMEOUT,
        )
        return self.returncode

    def kill(self) -> None:
        """SIGKILL to the container, with no SIGTERM first (a process killed from outside)."""
        if self._popen is not None and self._popen.poll() is None:
            self._kill_container()

    def _kill_container(self) -> None:
        """SIGKILL to every process of the container but the launcher, which then reaps the
        container's init and exits with 137 as a runtime reports it. (Killing the launcher too
        would leave init to this machine's PID 1, which reaps only now and then.)"""
        assert self._popen is not None
        for pid in group_members(self._popen.pid):
            if pid != self._popen.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        try:
            self._popen.wait(GONE_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Before the launcher is reaped: until then its id, the group's, is not reused.
            self._signal(signal.SIGKILL, group=True)
            self._popen.wait()

    def output(self) -> str:
        """stdout and stderr as written so far (kept once the directory is removed)."""
        if self._output is not None:
            return self._output
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def keep_output(self) -> None:
        """Reads the output into memory before the pod's directory goes."""
        self._output = self.output()

    def _signal(self, number: int, *, group: bool = False) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self._popen.pid, number)
            else:
                self._popen.send_signal(number)


def _container_code(code: int) -> int:
    """A launcher ended by a signal (only ever SIGKILL as a last resort) reports as a container
    would: 128 + the signal."""
    return code if code >= 0 else 128 - code


def _unshare() -> str:
    # Found here, by our PATH: the child's environment is empty, so its own search would not be.
    found = shutil.which("unshare")
    if found is None:
        raise PodRunnerError("the pod runner needs unshare(1) from util-linux on PATH")
    return found


def group_members(group: int) -> list[int]:
    """Processes of process group `group`, zombies included, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        # Fields after the command (which may hold spaces and parentheses): state ppid pgrp ...
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == group:
            members.append(int(entry.name))
    return members
