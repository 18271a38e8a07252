"""A control plane started by hand (`python -m cluster up|down|status`), for debugging and the demo.

`up` builds what is missing (with progress), then starts a supervisor process that owns the
control plane and outlives the command; it prints the kubeconfig once everything is ready. The
supervisor stops the control plane on SIGTERM or SIGINT, and its children die with it even if it
is killed. `down` stops the companions the demo left running (see below), then asks the
supervisor to stop and waits. The state lives in $LIBINJECT_CLUSTER_DIR (default:
<tmp>/libinject-cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cluster import build, harness, poll

READY_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0  # the harness gives each of five components 15 s to stop


def state_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "libinject-cluster"
    return Path(os.environ.get("LIBINJECT_CLUSTER_DIR", default))


def _pid_file(directory: Path) -> Path:
    return directory / "supervisor.pid"


def running_pid(directory: Path) -> int | None:
    """The supervisor's pid if one is alive for `directory`."""
    try:
        pid = int(_pid_file(directory).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def up(directory: Path) -> int:
    kubeconfig = ensure_running(directory)
    print(kubeconfig)
    _say(f"explore it: KUBECONFIG={kubeconfig} {build.binaries()['kubectl']} get nodes")
    _say("stop it: make cluster-down")
    return 0


def ensure_running(directory: Path) -> Path:
    """Starts a supervised control plane in `directory` unless one runs; its admin kubeconfig."""
    build.binaries()  # in the foreground, so a cold build shows its progress
    if running_pid(directory) is not None:
        _say(f"already running in {directory} (supervisor pid {running_pid(directory)})")
        return directory / "admin.kubeconfig"
    _stop_companions(directory)  # left by a demo whose control plane died
    shutil.rmtree(directory, ignore_errors=True)  # leftovers of a supervisor that died
    directory.mkdir(parents=True)
    _say(f"starting etcd, kube-apiserver, controller-manager, scheduler and kwok in {directory}")
    log = directory / "supervisor.log"
    with log.open("wb") as output:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "cluster", "serve", str(directory)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command and its terminal
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
    started = time.monotonic()

    def ready() -> bool:
        if supervisor.poll() is not None:
            raise harness.StartupError(
                f"the control plane did not start; {log}:\n{log.read_text()}"
            )
        return (directory / "ready").exists()

    try:
        poll.until(ready, what="the control plane", timeout=READY_TIMEOUT, interval=0.2)
    except TimeoutError:
        supervisor.kill()
        raise
    _say(f"ready in {time.monotonic() - started:.1f}s")
    return directory / "admin.kubeconfig"


def serve(directory: Path) -> int:
    """The supervisor: runs the control plane until SIGTERM or SIGINT."""
    # Both arrive as KeyboardInterrupt, also during start-up, which then stops what it started.
    # (Blocking them instead would leak the blocked mask into every component it spawns.) SIGINT
    # is set too: a shell starts background jobs with it ignored, and Python then leaves it so.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    directory.mkdir(parents=True, exist_ok=True)
    _pid_file(directory).write_text(str(os.getpid()))
    try:
        with harness.ControlPlane(directory, nodes=2):
            (directory / "ready").touch()
            while True:
                signal.pause()
    except KeyboardInterrupt:
        _say("stopping")
    _pid_file(directory).unlink()
    return 0


# Companions: processes the demo leaves running with the control plane (the operator, the
# registry, the trace agent), each recorded in <state dir>/companions/<name>.json with its pid,
# the pid's start time (so a reused pid is never mistaken for it) and its ports. A second demo
# reuses them on those ports; `down` stops them before the control plane.


def _companion_file(directory: Path, name: str) -> Path:
    return directory / "companions" / f"{name}.json"


def record_companion(directory: Path, name: str, *, pid: int, ports: dict[str, int]) -> None:
    """Records a companion started in its own process group (it leads the group)."""
    path = _companion_file(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "started": _start_time(pid), "ports": ports}
    path.write_text(json.dumps(record))


def companion_ports(directory: Path, name: str) -> dict[str, int]:
    """The ports last recorded for `name` (running or not); empty if none were."""
    try:
        return dict(json.loads(_companion_file(directory, name).read_text())["ports"])
    except (FileNotFoundError, ValueError, KeyError):
        return {}


def companion_pid(directory: Path, name: str) -> int | None:
    """The companion's pid while the recorded process is alive."""
    try:
        record = json.loads(_companion_file(directory, name).read_text())
        pid, started = int(record["pid"]), record["started"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return pid if started is not None and _start_time(pid) == started else None


def stop_companion(directory: Path, name: str) -> None:
    """Stops the recorded companion and its process group (if alive); keeps its ports."""
    pid = companion_pid(directory, name)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    try:
        poll.until(lambda: not runs(pid), what=f"the {name} to stop", timeout=STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _say(f"{name} stopped")


def _stop_companions(directory: Path) -> None:
    """Newest first: the operator, started last, would only log errors once the rest is gone."""
    records = sorted(
        (directory / "companions").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for record in records:
        stop_companion(directory, record.stem)


def runs(pid: int) -> bool:
    """Whether the process `pid` runs (an unreaped zombie does not: this machine's pid 1 may be
    slow to reap the orphans a demo leaves)."""
    return _start_time(pid) is not None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None
    if no such process runs (a zombie counts as gone: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] == "Z" else fields[19]


def down(directory: Path) -> int:
    _stop_companions(directory)  # first: the operator would only log errors without a server
    pid = running_pid(directory)
    if pid is None:
        _say(f"no control plane is running in {directory}")
    else:
        os.kill(pid, signal.SIGTERM)
        try:
            poll.until(
                lambda: running_pid(directory) != pid,
                what="the supervisor to stop",
                timeout=STOP_TIMEOUT,
                interval=0.2,
            )
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)  # its children die with it (PR_SET_PDEATHSIG)
        _say("stopped")
    shutil.rmtree(directory, ignore_errors=True)
    return 0


def status(directory: Path) -> int:
    pid = running_pid(directory)
    if pid is None:
        _say(f"no control plane is running in {directory}")
        return 1
    print(directory / "admin.kubeconfig")
    return 0


def _say(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)
