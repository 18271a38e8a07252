"""`libinject run` as a real process on the test host, against the local control plane.

It runs the way the Deployment runs it (the operator's ServiceAccount token, its namespace, the
generated certificates in the shared Secret), except that the API server reaches it on loopback
(manifests/overlays/local). Replicas started on the same webhook port share it (SO_REUSEPORT).
cluster.imageoperator runs it from its image instead; `Operator` is what both offer the tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from cluster import harness, poll, runtime

NAMESPACE = "libinject-system"
READY_TIMEOUT = 60.0


class Operator(ABC):
    """A running operator replica, however it runs: its probes, metrics, log and end."""

    name: str
    webhook_port: int
    probe_port: int

    @abstractmethod
    def alive(self) -> bool:
        """Started and not exited."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """How it names itself to its peers (POD_ID; runtime.main)."""

    @abstractmethod
    def output(self) -> str:
        """Its log so far."""

    @abstractmethod
    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Sends `sig` and waits for the exit code."""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Self:
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            return self.probe("/readyz")[0] == 200

        poll.until(ready, what=f"{self.name} /readyz", timeout=timeout)
        return self

    def probe(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.probe_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics by its full name with labels, e.g.
        `libinject_admissions_total{outcome="injected",reason="Injected"}`."""
        status, text = self.probe("/metrics")
        assert status == 200, f"/metrics answered {status}"
        samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
        return {name: float(value) for name, value in samples}

    def log_lines(self) -> list[dict[str, object]]:
        text = self.output()
        complete = text[: text.rfind("\n") + 1]  # a line still being written is not read yet
        return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


@dataclass
class OperatorProcess(Operator):
    kubeconfig: Path
    directory: Path
    webhook_port: int
    name: str = "operator"
    probe_port: int = field(default_factory=harness.free_port)
    detached: bool = False  # outlives the caller (the demo's operator); else dies with it
    extra_args: tuple[str, ...] = ()
    popen: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    @property
    def identity(self) -> str:
        assert self.popen is not None
        return f"{socket.gethostname()}-{self.popen.pid}"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> OperatorProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            str(runtime.libinject()),
            "run",
            "--webhook-host=127.0.0.1",
            f"--webhook-port={self.webhook_port}",
            f"--probe-port={self.probe_port}",
            f"--cert-dir={self.directory / self.name}-tls",
            "--log-format=json",
            *self.extra_args,
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "POD_NAMESPACE": NAMESPACE}
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=self.detached,
                preexec_fn=None if self.detached else harness.die_with_parent,  # noqa: PLW1509
            )
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Sends `sig` and waits; one that outlasts `timeout` is killed, and the error raised."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise
