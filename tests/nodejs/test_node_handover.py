"""The handover to the real tracers on Node 22, 24 and 26: a web app on Node's own http, written
as CommonJS and as an ES module, injected with the loader of a real bundle (dd-trace, or
OpenTelemetry's auto-instrumentations), answers its requests with the tracer running in its
process, and each request's server span reaches the trace test agent (Datadog's API, or OTLP
over HTTP) with the service's name. An app that ships and starts its own dd-trace ends with
exactly one tracer: one server span per request, none from the bundle's tracer. And the app's
exit code is its own: an app that exits 3, or throws at start, ends the same with the loader.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from appservers.conftest import service_name
from cluster import harness
from cluster.registry import spawn, stop
from cluster.testagent import TestAgent, repeated_field
from java.jvms import Ran
from nodejs.bundles import FLAVORS, VERSIONS, app_dir, package
from nodejs.nodes import HELLO, QUIET, app_ran, injected, run_node

pytestmark = pytest.mark.network  # Node and the tracers from the npm registry (cached after)

REQUESTS = 3
SERVICE = "node-app"
TRACER = {"ddtrace": "dd-trace", "opentelemetry": "opentelemetry"}  # as apps/probe.cjs names it


def traced_env(loader: Path, flavor: str, agent: TestAgent, **env: str) -> dict[str, str]:
    """The injected environment with `flavor`'s tracer sending to the test agent."""
    sending = (
        {"DD_TRACE_AGENT_URL": agent.url, "DD_SERVICE": SERVICE, "DD_ENV": "test"}
        if flavor == "ddtrace"
        else {
            "OTEL_EXPORTER_OTLP_ENDPOINT": agent.otlp_http_url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": SERVICE,
        }
    )
    return injected(loader, **sending, **env)


def serve(node: Path, app: Path, env: dict[str, str], log: Path) -> tuple[list[str], str]:
    """Runs the web app `app` until it answered REQUESTS GET requests (one connection each, so
    one trace each) and ended by itself: the answers (the tracers it runs) and its output."""
    port = harness.free_port()
    full = {"PATH": "/usr/bin:/bin", **env, "PORT": str(port), "REQUESTS": str(REQUESTS)}
    process = spawn(app.name, [str(node), str(app)], log=log, env=full, cwd=app.parent)
    try:
        harness.wait_until(process, lambda: "listening" in log.read_text(errors="replace"))
        answers = []
        for _ in range(REQUESTS):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=30) as answer:
                answers.append(answer.read().decode())
        code = process.popen.wait(timeout=60)  # the app closes: the tracer flushes at exit
    finally:
        stop(process)
    output = log.read_text(errors="replace")
    assert code == 0, output
    return answers, output


def server_spans(agent: TestAgent, flavor: str) -> list[tuple[str, str]]:
    """(service, name) of every server span the test agent holds for `flavor`'s protocol."""
    if flavor == "ddtrace":
        return [
            (span["service"], span["name"])
            for trace in agent.traces()
            for span in trace
            if span.get("meta", {}).get("span.kind") == "server"
        ]
    return [
        (service_name(resource), span["name"])
        for request in agent.otlp_traces()
        for resource in repeated_field(request, "resource_spans")
        for scope in repeated_field(resource, "scope_spans")
        for span in scope.get("spans", [])
        if span.get("kind") in ("SPAN_KIND_SERVER", 2)
    ]


def arrived(agent: TestAgent, flavor: str) -> list[tuple[str, str]]:
    """The server spans once REQUESTS traces arrived (a flush at exit may come in parts)."""
    agent.wait_for_traces(REQUESTS, otlp=flavor == "opentelemetry")
    return server_spans(agent, flavor)


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("app", ["server.js", "server.mjs"])
def test_tracer_traces_the_web_app(
    node: Path,
    real_bundles: dict[str, Path],
    apps: Path,
    agent: TestAgent,
    tmp_path: Path,
    flavor: str,
    app: str,
) -> None:
    """CommonJS and ES module apps alike: the tracer runs in the app's process, the loader says
    it loaded it, and each request has one server span with the service's name."""
    loader = real_bundles[flavor]
    env = traced_env(loader, flavor, agent)
    answers, output = serve(node, apps / app, env, tmp_path / "app.log")
    assert answers == [TRACER[flavor]] * REQUESTS, output
    loaded = f"libinject: loaded {flavor} {VERSIONS[flavor]} from {loader.parent} (checks "
    lines = [line for line in output.splitlines() if line.startswith("libinject: ")]
    assert len(lines) == 1, output
    assert lines[0].startswith(loaded), output
    spans = arrived(agent, flavor)
    name = "web.request" if flavor == "ddtrace" else "GET"
    assert spans == [(SERVICE, name)] * REQUESTS, output


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("app", ["hello.js", "hello.mjs"])
def test_nothing_printed_but_the_line(
    node: Path, real_bundles: dict[str, Path], apps: Path, flavor: str, app: str
) -> None:
    """With the real tracer started (and its ES module hook registered), stderr holds the
    loader's line and nothing else, and nothing at all without LIBINJECT_DEBUG: no warning of
    Node's about the hook (Node 26 deprecates module.register)."""
    env = injected(real_bundles[flavor])
    ran = app_ran(run_node(node, str(apps / app), env=env), TRACER[flavor])
    assert ran.stderr == ran.debug_line + "\n"
    quiet = run_node(node, str(apps / app), env={**env, "LIBINJECT_DEBUG": ""})
    app_ran(quiet, TRACER[flavor])
    assert (quiet.stdout, quiet.stderr) == (ran.stdout, "")


@pytest.fixture(scope="module")
def own_tracer_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test apps with dd-trace (the bundle's version) in their own node_modules."""
    return app_dir(tmp_path_factory.mktemp("own") / "app", own=(package("ddtrace"),))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_app_with_its_own_dd_trace_runs_one_tracer(
    node: Path,
    real_bundles: dict[str, Path],
    own_tracer_app: Path,
    agent: TestAgent,
    tmp_path: Path,
    flavor: str,
) -> None:
    """The app requires and inits its own dd-trace: the loader stands down naming it, the app
    sees dd-trace alone, and the agent gets one Datadog server span per request and no OTLP
    span (a second tracer would add its own per request)."""
    loader = real_bundles[flavor]
    env = traced_env(loader, flavor, agent, OWN_DD_TRACE="1")
    env |= {
        "DD_TRACE_AGENT_URL": agent.url,
        "DD_SERVICE": SERVICE,
        "OTEL_EXPORTER_OTLP_ENDPOINT": agent.otlp_http_url,
    }
    answers, output = serve(node, own_tracer_app / "server.js", env, tmp_path / "app.log")
    assert answers == ["dd-trace"] * REQUESTS, output
    own = own_tracer_app / "node_modules" / "dd-trace"
    assert f"libinject: tracer not loaded: the application has its own tracer: {own} " in output
    assert arrived(agent, "ddtrace") == [(SERVICE, "web.request")] * REQUESTS
    assert server_spans(agent, "opentelemetry") == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_tracers_load_worker_threads_when_they_start(
    node: Path, real_bundles: dict[str, Path], flavor: str
) -> None:
    """Preloaded by hand from the bundle (no loader), each tracer's start loads worker_threads;
    without it nothing in a plain process does. So the loader's own use of that module (to
    start the tracer in the main thread only) costs a real process nothing the tracer would
    not: the stub tracer of bench/nodejs_startup.py loads it as well, and the loader's own
    cost there leaves it out. Were a tracer to stop loading it, this fails and the bench's stub
    must change."""
    probe = "console.log(process.moduleLoadList.includes('NativeModule worker_threads'))"
    plain = run_node(node, "-e", probe, env=dict(QUIET))
    manifest = dict(
        line.split(" ", 1)
        for line in (real_bundles[flavor].parent / "bundle.txt").read_text().splitlines()
    )
    start = real_bundles[flavor].parent / manifest["start"]
    by_hand = run_node(node, f"--require={start}", "-e", probe, env=dict(QUIET))
    assert (plain.returncode, by_hand.returncode) == (0, 0), by_hand.stderr
    assert (plain.stdout, by_hand.stdout) == ("false\n", "true\n")


# --- Exit codes -----------------------------------------------------------------------------


def plain_and_injected(node: Path, script: Path, loader: Path) -> tuple[Ran, Ran]:
    """`script` run without libinject and with the loader of a real bundle."""
    plain = run_node(node, str(script), env=dict(QUIET))
    return plain, run_node(node, str(script), env=injected(loader))


def error_report(stderr: str, app: Path) -> list[str]:
    """What Node printed of an uncaught error, less the loader's line and the stack frames
    outside the app's directory (Node's own; a tracer that wraps Module._compile adds its own)."""
    return [
        line
        for line in stderr.splitlines()
        if not line.startswith("libinject: ")
        and (not line.startswith("    at ") or str(app) in line)
    ]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_exit_code_is_the_apps(
    node: Path, real_bundles: dict[str, Path], apps: Path, flavor: str
) -> None:
    """An app that sets exit code 3 ends with 3, the tracer started."""
    plain, ran = plain_and_injected(node, apps / "exits.js", real_bundles[flavor])
    assert (plain.returncode, ran.returncode) == (3, 3), ran.stderr
    assert ran.stdout == plain.stdout == f"{HELLO}\n"
    assert ran.debug_line.startswith(f"libinject: loaded {flavor} ")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_app_that_throws_fails_the_same(
    node: Path, real_bundles: dict[str, Path], apps: Path, flavor: str
) -> None:
    """An app that throws at start fails as it does without libinject: exit code 1, the same
    output and the same error report on stderr: the source line, the error, the app's frames
    (the loader's line and Node's own frames aside)."""
    plain, ran = plain_and_injected(node, apps / "throws.js", real_bundles[flavor])
    assert (plain.returncode, ran.returncode) == (1, 1)
    assert ran.stdout == plain.stdout == f"{HELLO}\n"
    assert "Error: the application fails on purpose" in plain.stderr
    report = error_report(plain.stderr, apps)
    assert error_report(ran.stderr, apps) == report
    assert f"    at Object.<anonymous> ({apps / 'throws.js'}:4:7)" in report
    assert ran.debug_line.startswith(f"libinject: loaded {flavor} ")
