"""How the loader's tests run Node: the environment an injected container gets, and what a
normal run of a test app looks like.

A run is java.jvms.run_program's (only PATH and HOME of the runner's environment), its result a
java.jvms.Ran (exit code, output, the libinject lines on stderr).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from java.jvms import Ran, run_program

HELLO = "hello from the application"  # the first line of apps/hello.js and hello.mjs
# Every run keeps the real tracers offline and quiet unless a test sets where they send: traces
# to a closed port (OTEL_TRACES_EXPORTER=none would not do: dd-trace reads it too and turns its
# tracing off, and the OpenTelemetry SDK sets no tracer provider), no telemetry or remote
# configuration, no start-up report of dd-trace's (it prints one when its agent does not
# answer), no metrics or logs exporter, and only the OpenTelemetry resource detectors that read
# the machine (the cloud ones ask the network).
QUIET = {
    "DD_TRACE_STARTUP_LOGS": "false",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_TRACE_AGENT_URL": "http://127.0.0.1:9",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_NODE_RESOURCE_DETECTORS": "env,host,os,process",
}


def injected(loader: Path, **env: str) -> dict[str, str]:
    """The environment libinject gives a container (the engine's NODE_OPTIONS), with the
    loader's debug line on and `env` added over QUIET."""
    return {**QUIET, "NODE_OPTIONS": f"--require={loader}", "LIBINJECT_DEBUG": "true", **env}


def run_node(node: Path, *arguments: str, env: Mapping[str, str], timeout: float = 60) -> Ran:
    """`node arguments...` in `env` (over PATH and HOME)."""
    return run_program([str(node), *arguments], env=env, timeout=timeout)


def node_version(node: Path) -> str:
    """`node`'s version, as process.versions.node gives it (no "v")."""
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip().removeprefix("v")


def app_ran(ran: Ran, tracers: str = "none") -> Ran:
    """`ran`, once checked that hello.js or hello.mjs ran normally (exit code 0, its line once)
    with `tracers` running in its process."""
    assert ran.returncode == 0, ran.stderr
    assert ran.lines(HELLO) == [HELLO], ran.stdout
    assert ran.lines("tracers: ") == [f"tracers: {tracers}"], ran.stdout
    return ran
