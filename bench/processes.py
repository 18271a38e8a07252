"""How the start-up benchmarks time processes: cases run in interleaved rounds, and a web app
timed from its start to its first answered request.

A case is a Command: what to run, in which environment and (when it matters, as for Node's
`--require` of a package name, which resolves from the working directory) where.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

TIMEOUT_NS = 60 * 10**9  # a first answer later than this is a failure


class Command(NamedTuple):
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None


Timer = Callable[[Command], int]  # one run's nanoseconds


def interleaved(
    commands: Mapping[str, Command], *, runs: int, warmup: int, timed: Timer
) -> dict[str, list[int]]:
    """Each case's times in round order (sample i of every case is from round i)."""
    timings: dict[str, list[int]] = {name: [] for name in commands}
    for run in range(warmup + runs):
        for name, command in commands.items():
            elapsed = timed(command)
            if run >= warmup:
                timings[name].append(elapsed)
    return timings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def first_answer_ns(command: Command) -> int:
    """Starts the app (told its port in PORT) and returns the nanoseconds until its first
    answered request (GET / polled every 2 ms); stops it. Its output goes to a file (a pipe
    nobody reads could fill and stall it), shown when it ends or times out unanswered."""
    port = free_port()
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter_ns()
        process = subprocess.Popen(
            command.argv,
            env={**command.env, "PORT": str(port)},
            cwd=command.cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            while process.poll() is None and time.perf_counter_ns() - started < TIMEOUT_NS:
                if answered(port):
                    return time.perf_counter_ns() - started
                time.sleep(0.002)
        finally:
            process.kill()
            process.wait()
        output.seek(0)
        said = output.read().decode(errors="replace")
    raise RuntimeError(f"no answer from {command.argv} (exit code {process.returncode}):\n{said}")


def answered(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except OSError:
        return False  # not listening yet
    finally:
        connection.close()
