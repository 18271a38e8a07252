"""The app's own copy of a package the tracer needs, through the real loader and a real bundle.

The application's copy is the one imported, so the loader checks it against the bundle's
libinject-requires.txt. An exact pin of a stable API is widened by the builder (the SDK pins
opentelemetry-api==1.45.1, a current app has 1.45.2): a newer patch or minor of the API the app
already has must not turn tracing off, while an API older than the SDK needs is still refused.
The apps are virtualenvs with the real opentelemetry-api from PyPI.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from appservers.conftest import Traced, bundle_root, starts
from cluster.apps import image_env, virtualenv
from cluster.libraries import OPENTELEMETRY, BundleFactory, host_target
from cluster.testagent import TestAgent, repeated_field
from libinject.bundle.requirements import REQUIRES_FILE

CURRENT_API = "1.45.2"  # a patch release after the 1.45.1 that SDK 1.45.1 pins
# An older minor: SDK 1.45.1 imports names from the API that 1.44 lacks (the SDK's import
# fails: test_the_older_api_really_breaks_the_sdk_when_it_is_not_refused).
OLD_API = "1.44.0"
# The app uses the API it has: a span of its own, and which copy of the API it got.
APP = """
import opentelemetry.version
from opentelemetry import trace
with trace.get_tracer("app").start_as_current_span("app-work"):
    pass
provider = trace.get_tracer_provider()
print(opentelemetry.version.__version__, opentelemetry.version.__file__)
print(type(provider).__module__ + "." + type(provider).__name__)
"""
# What the loader would have done without its refusal: the app's packages first, the bundle's
# site after them, and OpenTelemetry's auto-instrumentation started.
UNREFUSED = """
import sys
sys.path.append(sys.argv[1])
from opentelemetry.instrumentation.auto_instrumentation import initialize
initialize(swallow_exceptions=False)
print("started")
"""


def _api_app(version: str) -> Path:
    return virtualenv((f"opentelemetry-api=={version}",))


def _run(
    venv: Path, code: str, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    python = venv / "bin" / "python"
    return subprocess.run(
        [str(python), "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _start_unchecked(version: str, site: Path) -> subprocess.CompletedProcess[str]:
    """UNREFUSED in an app with this opentelemetry-api, exporting nothing."""
    venv = _api_app(version)
    env = image_env(venv) | {
        f"OTEL_{kind}_EXPORTER": "none" for kind in ("TRACES", "METRICS", "LOGS")
    }
    return _run(venv, UNREFUSED, str(site), env=env)


def _requires(site: Path, name: str) -> str:
    """The specifier the bundle's requires file gives `name`."""
    for line in (site / REQUIRES_FILE).read_text().splitlines():
        if line.split(" ", 1)[0] == name:
            return line.split(" ", 1)[1]
    raise AssertionError(f"{name} not in {site / REQUIRES_FILE}")


def test_the_bundle_widens_the_stable_api_pin_and_keeps_the_others_exact(
    bundles: BundleFactory,
) -> None:
    """The real OpenTelemetry bundle's requires file: opentelemetry-api's exact pin (from the
    SDK) became this minor or later of the same major; the SDK's own packages stay exact."""
    site = bundles("opentelemetry") / "sites" / host_target()
    api = _requires(site, "opentelemetry-api")
    assert "~=1.45" in api.split(",")
    assert "==" not in api
    assert _requires(site, "opentelemetry-semantic-conventions") == f"=={OPENTELEMETRY}"


def test_an_app_with_a_newer_patch_of_the_stable_api_is_traced(
    traced: Traced, agent: TestAgent
) -> None:
    """The FastAPI case: the app has opentelemetry-api 1.45.2, the bundled SDK was built
    against 1.45.1. The loader starts the tracer, the SDK's provider serves the app's own API
    (its copy, from its venv), and the app's span reaches the agent over OTLP."""
    venv = _api_app(CURRENT_API)
    env = traced("opentelemetry", service="api-patch", base=image_env(venv))
    result = _run(venv, APP, env=env)
    assert result.returncode == 0, result.stderr
    assert f"loaded opentelemetry {OPENTELEMETRY} from" in result.stderr
    version_line, provider = result.stdout.splitlines()
    version, where = version_line.split(" ", 1)
    assert version == CURRENT_API
    assert where.startswith(str(venv))
    assert provider == "opentelemetry.sdk.trace.TracerProvider"
    (export,) = agent.wait_for_traces(1, otlp=True)
    (resource_spans,) = repeated_field(export, "resource_spans")
    resource = {a["key"]: a["value"] for a in resource_spans["resource"]["attributes"]}
    assert resource["service.name"] == {"string_value": "api-patch"}
    assert [span["name"] for span in agent.otlp_spans()] == ["app-work"]


def test_an_app_with_an_older_minor_of_the_api_is_refused_and_runs_normally(
    traced: Traced,
) -> None:
    """opentelemetry-api 1.44.0 lacks what SDK 1.45.1 imports: the loader refuses with its
    reason (the app's version and what the tracer needs, read from the bundle), starts no
    tracer, and the app runs as without injection (its API's no-op provider)."""
    venv = _api_app(OLD_API)
    env = traced("opentelemetry", service="api-old", base=image_env(venv))
    site = bundle_root(env) / "sites" / host_target()
    result = _run(venv, APP, env=env)
    assert result.returncode == 0, result.stderr
    needs = _requires(site, "opentelemetry-api")
    assert (
        f"libinject: tracer not loaded: the application has opentelemetry-api {OLD_API} but the"
        f" tracer needs opentelemetry-api{needs} (the application runs without it)"
    ) in result.stderr
    assert starts(result.stderr) == {}
    version_line, provider = result.stdout.splitlines()
    assert version_line.split(" ", 1)[0] == OLD_API
    assert provider == "opentelemetry.trace.ProxyTracerProvider"


def test_the_older_api_really_breaks_the_sdk_when_it_is_not_refused(
    bundles: BundleFactory,
) -> None:
    """Why the refusal stays: with the bundle's site after the app's packages and no check,
    starting the auto-instrumentation over the app's opentelemetry-api 1.44.0 fails importing
    the SDK, while over 1.45.2 the same start succeeds."""
    site = bundles("opentelemetry") / "sites" / host_target()
    old = _start_unchecked(OLD_API, site)
    assert old.returncode != 0
    assert "ImportError: cannot import name" in old.stderr
    assert "opentelemetry.attributes" in old.stderr
    current = _start_unchecked(CURRENT_API, site)
    assert (current.returncode, current.stdout.strip()) == (0, "started"), current.stderr
