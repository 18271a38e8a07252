"""Fixtures for the app-server tests: stock apps from PyPI run with a real bundle on PYTHONPATH,
exactly as the webhook sets it, and their spans counted at the test agent.

`traced(flavor, service)` gives the environment an injected container gets (the bundle root first
on PYTHONPATH, the agent's address, the service tags) with LIBINJECT_DEBUG on, so that every
process the app starts says on stderr whether the loader started a tracer in it.
`loader_lines(stderr)` reads those lines back by pid: the tests count tracer starts per process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.libraries import BundleFactory
from cluster.testagent import TestAgent

Traced = Callable[..., dict[str, str]]
_LINE = re.compile(r"^libinject: (?P<message>.*) \[pid (?P<pid>\d+)\]$", re.MULTILINE)


def loader_lines(stderr: str) -> dict[int, list[str]]:
    """The loader's debug lines by the pid that wrote them, in order."""
    found: dict[int, list[str]] = {}
    for match in _LINE.finditer(stderr):
        found.setdefault(int(match["pid"]), []).append(match["message"])
    return found


def starts(stderr: str) -> dict[int, int]:
    """How many times the loader started a tracer, per pid (only pids that started one)."""
    counted = {
        pid: sum(message.startswith("loaded ") for message in messages)
        for pid, messages in loader_lines(stderr).items()
    }
    return {pid: count for pid, count in counted.items() if count}


@pytest.fixture
def traced(bundles: BundleFactory, agent: TestAgent) -> Traced:
    """The environment of an injected container for `flavor`, on top of `base` (the app image's
    own, e.g. cluster.apps.image_env of its virtualenv); nothing of the test runner's."""

    def environment(
        flavor: str, *, service: str, base: dict[str, str] | None = None
    ) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            **(base or {}),
            "PYTHONPATH": str(bundles(flavor)),
            "LIBINJECT_DEBUG": "true",
        }
        if flavor == "ddtrace":
            env |= {
                "DD_TRACE_AGENT_URL": agent.url,
                "DD_SERVICE": service,
                "DD_ENV": "test",
                "DD_VERSION": "1.0",
                "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
                "DD_REMOTE_CONFIGURATION_ENABLED": "false",
            }
        else:
            env |= {
                "OTEL_EXPORTER_OTLP_ENDPOINT": agent.otlp_http_url,
                "OTEL_SERVICE_NAME": service,
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,service.version=1.0",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans leave soon after they end
            }
        return env

    return environment


def bundle_root(env: dict[str, str]) -> Path:
    """The bundle root a `traced` environment puts first on PYTHONPATH."""
    return Path(env["PYTHONPATH"].split(os.pathsep)[0])


def service_name(resource_spans: dict[str, Any]) -> str:
    """The service.name of one OTLP resource_spans entry ("" without one)."""
    attributes = resource_spans.get("resource", {}).get("attributes", [])
    for attribute in attributes:
        if attribute["key"] == "service.name":
            value = attribute["value"]
            return str(value.get("string_value", value.get("stringValue", "")))
    return ""
