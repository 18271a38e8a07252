"""Fixtures for the bundle's tests: what the real ddtrace and the real OpenTelemetry release say
about the libraries they instrument, read from the packages themselves (installed from PyPI into
cached virtualenvs, each read by its own interpreter so nothing of theirs enters the tests)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from cluster.apps import virtualenv
from cluster.libraries import DDTRACE, OPENTELEMETRY

# ddtrace's table of integrations, each True when ddtrace patches it by default (others are
# False, or a setting that is off by default).
_DDTRACE_DEFAULTS = (
    "import json, ddtrace._monkey as m; "
    "print(json.dumps(sorted(k for k, v in m.PATCH_MODULES.items() if v is True)))"
)
# The release's own lists: libraries with their instrumentation, and the standard library's
# instrumentations (no library to detect) that opentelemetry-bootstrap always installs.
_OTEL_RELEASE = (
    "import json; from opentelemetry.instrumentation import bootstrap_gen as g; "
    "print(json.dumps({'libraries': g.libraries, 'default': g.default_instrumentations}))"
)


def _run_in(requirement: str, code: str) -> Any:
    python = virtualenv((requirement,)) / "bin" / "python"
    env = {"PATH": os.environ["PATH"]}  # the packages' defaults, not this runner's settings
    done = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{requirement} could not answer {code!r}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def ddtrace_defaults() -> list[str]:
    """The integrations the real ddtrace (the ddtrace flavor's version) patches by default."""
    return list(_run_in(f"ddtrace=={DDTRACE}", _DDTRACE_DEFAULTS))


@pytest.fixture(scope="session")
def otel_release_lists() -> dict[str, Any]:
    """opentelemetry-instrumentation's bootstrap_gen at the OpenTelemetry flavor's version."""
    return dict(_run_in(f"opentelemetry-instrumentation=={OPENTELEMETRY}", _OTEL_RELEASE))
