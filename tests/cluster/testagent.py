"""Datadog's trace test agent (PyPI: ddapm-test-agent), the receiver of the tracers under test.

It stands in for the Datadog agent (traces on /v0.4/traces and the like) and for an OpenTelemetry
collector (OTLP over HTTP on /v1/traces, and over gRPC), and hands back what it received:
  - APM port, /test/session/traces: Datadog traces, each a list of span dicts;
  - OTLP HTTP port, /test/session/traces: the OTLP export requests, one dict each (protobuf
    ones decoded with MessageToDict and proto field names: resource_spans, trace_id in base64;
    JSON ones as sent); gRPC exports are forwarded to the HTTP port and show up there too;
  - /test/session/requests: the raw trace and OTLP requests (headers, base64 body, url, method);
  - /test/session/clear: forgets everything received.

It pins its own grpcio, protobuf and opentelemetry-proto, so it gets a venv of its own, built from
tests/cluster/testagent.lock (a `pip freeze`) into <cache root>/venvs/ddapm-test-agent-<version>-
<digest of the lock>/: in a temporary directory renamed into place, under a lock file, reused when
present. A renamed venv's entry-point scripts name the old path, so everything in it runs as
`<venv>/bin/python -m ...`. The tests use that interpreter as a real client too (msgpack,
opentelemetry-proto, grpcio).

Every server binds 127.0.0.1 only (`--host`; 127.0.0.1 is also its default since 1.69).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import build, harness, poll
from cluster.registry import spawn, stop
from tools.gobuild import BuildError, cache_root

LOCK = Path(__file__).with_name("testagent.lock")
PACKAGE = "ddapm-test-agent"
HOST = "127.0.0.1"


def version() -> str:
    """The test agent's version, as pinned in the lock file."""
    found = re.search(rf"^{PACKAGE}==(\S+)$", LOCK.read_text(), re.MULTILINE)
    if found is None:
        raise BuildError(f"{LOCK} pins no {PACKAGE}")
    return found.group(1)


def venv() -> Path:
    """The test agent's venv, built from the lock file when the cache lacks it."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:8]
    target = cache_root() / "venvs" / f"{PACKAGE}-{version()}-{digest}"
    if not target.is_dir():
        with build.locked(target.parent / ".lock"):
            if not target.is_dir():  # another run may have built it while we waited
                _create(target)
    return target


def python() -> Path:
    """The venv's interpreter: runs the agent, and test clients that need its packages."""
    return venv() / "bin" / "python"


def _create(target: Path) -> None:
    started = time.monotonic()
    build.say(f"creating {target.name} from {LOCK.name} into {target}")
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as work:
        directory = Path(work) / "venv"
        # From the base interpreter, not through the dev venv (venv does that by itself).
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
        install = [str(directory / "bin" / "python"), "-m", "pip", "install", "--no-input"]
        build.run(
            [*install, "--progress-bar=off", "--disable-pip-version-check", "-r", str(LOCK)],
            cwd=Path(work),
            label=f"{target.name}: pip install",
            unit="lines of output",
        )
        directory.rename(target)  # atomic: a half-installed venv is never cached
    build.say(f"created {target.name} in {build.elapsed(started)}")


@dataclass
class TestAgent(harness.Service):
    """The test agent on loopback `ports` (free ones when not given); a context manager, or
    call start and stop.

    Its log and snapshot directory live in `directory` (a temporary one when not given). A
    `detached` one outlives this process (the demo's).
    """

    __test__ = False  # not a test class, though pytest sees it imported into test modules

    directory: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: harness.Process | None = None
    _temporary: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    detached: bool = False

    @property
    def url(self) -> str:
        """The Datadog agent endpoint (DD_TRACE_AGENT_URL)."""
        return f"http://{HOST}:{self._port('apm')}"

    @property
    def otlp_http_url(self) -> str:
        """The OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT); traces go to /v1/traces."""
        return f"http://{HOST}:{self._port('otlp-http')}"

    @property
    def otlp_grpc_address(self) -> str:
        """host:port of the OTLP/gRPC server (plain text)."""
        return f"{HOST}:{self._port('otlp-grpc')}"

    def start(self) -> None:
        interpreter = python()  # first: building the venv must not eat the start-up time
        if self.directory is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="libinject-test-agent-")
            self.directory = Path(self._temporary.name)
        snapshots = self.directory / "snapshots"
        snapshots.mkdir(parents=True, exist_ok=True)
        self.ports = self.ports or {
            name: harness.free_port() for name in ("apm", "otlp-http", "otlp-grpc")
        }
        self.process = spawn(
            "ddapm-test-agent",
            [
                str(interpreter),
                "-m",
                "ddapm_test_agent.agent",
                f"--host={HOST}",
                f"--port={self.ports['apm']}",
                f"--otlp-http-port={self.ports['otlp-http']}",
                f"--otlp-grpc-port={self.ports['otlp-grpc']}",
                "--web-ui-port=0",
                "--agent-url=",  # never forward to a real agent
                f"--snapshot-dir={snapshots}",
            ],
            log=self.directory / "test-agent.log",
            # Its settings also come from the environment (DD_*, HOST, PORT, SNAPSHOT_*...):
            # none of the caller's.
            env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
            cwd=self.directory,
            detached=self.detached,
        )
        try:
            harness.wait_until(self.process, self._ready)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = self.directory = None

    def traces(self) -> list[Any]:
        """The Datadog traces received since the last clear: each a list of span dicts."""
        return list(self._json(f"{self.url}/test/session/traces"))

    def otlp_traces(self) -> list[dict[str, Any]]:
        """The OTLP trace export requests received (over HTTP or gRPC) since the last clear."""
        return list(self._json(f"{self.otlp_http_url}/test/session/traces"))

    def otlp_spans(self) -> list[dict[str, Any]]:
        """Every span of `otlp_traces()`, in order (either JSON spelling of the fields)."""
        return [
            span
            for request in self.otlp_traces()
            for resource in repeated_field(request, "resource_spans")
            for scope in repeated_field(resource, "scope_spans")
            for span in scope.get("spans", [])
        ]

    def requests(self) -> list[dict[str, Any]]:
        """The raw trace requests (Datadog and OTLP) since the last clear, oldest first: dicts
        of headers, body (base64), url and method."""
        return list(reversed(self._json(f"{self.url}/test/session/requests")))

    def clear(self) -> None:
        """Forgets everything received."""
        self._get(f"{self.url}/test/session/clear")

    def wait_for_traces(
        self, count: int, timeout: float = 30.0, *, otlp: bool = False
    ) -> list[Any]:
        """Waits until `count` traces arrived and returns them: Datadog traces, or with `otlp`
        the OTLP export requests once they hold spans of `count` distinct trace ids."""

        def enough() -> list[Any]:
            if otlp:
                ids = {span.get("trace_id", span.get("traceId")) for span in self.otlp_spans()}
                return self.otlp_traces() if len(ids) >= count else []
            traces = self.traces()
            return traces if len(traces) >= count else []

        kind = "OTLP traces" if otlp else "traces"
        return poll.until(enough, what=f"{count} {kind} at the test agent", timeout=timeout)

    def answers(self) -> bool:
        """Whether a test agent serves every endpoint on `ports` now."""
        try:
            return self._ready()
        except (OSError, ValueError):
            return False

    def _port(self, name: str) -> int:
        if name not in self.ports:
            raise RuntimeError("the test agent has not been started")
        return self.ports[name]

    def _ready(self) -> bool:
        with socket.create_connection((HOST, self.ports["otlp-grpc"]), timeout=5):
            pass
        self._json(f"{self.url}/info")
        self._json(f"{self.otlp_http_url}/test/session/traces")
        return True

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bytes(response.read())

    def _json(self, url: str) -> Any:
        return json.loads(self._get(url))


def repeated_field(message: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A repeated field of an OTLP dict under its proto name or its JSON (lowerCamel) name."""
    camel = re.sub(r"_(\w)", lambda match: match.group(1).upper(), name)
    return list(message.get(name, message.get(camel, [])))
