"""Real traces from a real app, run from the pod spec our webhook wrote.

Each test creates a pod through the API server (the operator's webhook injects it), then the pod
runner plays the kubelet: it pulls the library image from the local registry, runs the copy init
container chrooted into it, and runs the app container's command (a Flask app, from a ConfigMap)
with the host's Python, the injected env and the mounted library. Traces go to Datadog's trace
test agent, which also serves as the OTLP receiver.

The trace tests run in the three injection modes: `init-container` (the copy above), `csi`, where
the webhook adds a CSI inline volume instead and the pod runner publishes it through the real
node plugin (`libinject csi`, cluster.csiplugin) as the kubelet would: the app reads the library
from the plugin's node cache, one copy for every pod of that version; and `image-volume`, where the
library image itself is the pod's read-only volume (the pod runner unpacks it as the kubelet's
image volume would).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import harness, kubejson
from cluster.apps import FLASK, WEBAPP, image_env, virtualenv
from cluster.csiplugin import CSIPlugin, mounts_under
from cluster.libraries import DDTRACE, OPENTELEMETRY, host_target
from cluster.podrunner import PodRunner, RunningPod
from cluster.podrunner.csi import target_path
from cluster.testagent import TestAgent
from cluster.traced import (
    MODES,
    REQUESTS,
    TAGS,
    get,
    is_server,
    library_volume,
    otlp_spans,
    root_spans,
    served_from_the_cache,
    served_from_the_image,
)
from cluster.workloads import create_pod

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]

# What the apps' images pin: an older wrapt that ddtrace accepts, a bytecode older than ddtrace
# needs on 3.11, and a ddtrace of their own (another release than the bundle's).
OLD_WRAPT = "wrapt==1.17.2"
OLD_BYTECODE = "bytecode==0.13.0"
OWN_DDTRACE = "ddtrace==4.15.0"
PYTHON_38 = Path("/root/.pyenv/versions/3.8.18/bin/python3.8")
LIBRARY_VOLUME = library_volume("python")


@pytest.fixture
def instrumented(admin: client.ApiClient, injecting: Callable[..., str]) -> Callable[..., str]:
    """A fresh opted-in namespace whose Python pods get `flavor`'s image from the local registry
    (or `image`), holding the Flask app in the ConfigMap `webapp`; returns the namespace."""

    def make(flavor: str, image: str = "") -> str:
        namespace = injecting("python", flavor, image=image)
        _configmap(admin, namespace)
        return namespace

    return make


def webapp_pod(
    name: str, *, command: list[str] | None = None, debug: bool = True
) -> dict[str, Any]:
    port = harness.free_port()
    env = [{"name": "PORT", "value": str(port)}]
    if debug:
        env.append({"name": "LIBINJECT_DEBUG", "value": "true"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name, **TAGS}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "example.invalid/webapp:1",
                    "command": command or ["python", "/app/webapp.py"],
                    "env": env,
                    "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}},
                    "volumeMounts": [{"name": "code", "mountPath": "/app", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "code", "configMap": {"name": "webapp"}}],
        },
    }


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_ddtrace_traces_carry_the_pods_service_env_and_version(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    mode: str,
    request: pytest.FixtureRequest,
) -> None:
    """The webhook's pod spec alone makes an uninstrumented Flask app send traces: the init
    container copied the bundle (or, in csi mode, the plugin published its node cache's copy),
    PYTHONPATH loaded it, and each request's span reaches the node's agent (status.hostIP + the
    policy's port) tagged with the pod labels' service, env and version. The process got the
    pod's uid as DD_ENTITY_ID (ddtrace puts it on its DogStatsD metrics; trace payloads carry
    no entity id of their own). In csi mode a second pod of the same version shares the one
    cached copy."""
    namespace = instrumented("ddtrace")
    pod = create_pod(admin, namespace=namespace, body=webapp_pod("shop"))
    running, port = serve(pod, image_env(virtualenv(FLASK)))
    for _ in range(REQUESTS):
        assert get(port, "/") == "hello from the app\n"
    facts = json.loads(get(port, "/facts"))
    traces = agent.wait_for_traces(REQUESTS, timeout=30)
    roots = root_spans(traces)
    assert len(roots) >= REQUESTS
    for span in roots:
        assert span["service"] == "checkout"
        assert span["name"] == "flask.request"
        assert span["meta"]["env"] == "staging"
        assert span["meta"]["version"] == "1.4.2"
    assert facts["entity_id"] == pod["metadata"]["uid"]
    assert facts["ddtrace"].startswith("/opt/libinject/python/sites/")
    assert f"loaded ddtrace {DDTRACE}" in running.output()
    if mode == "csi":
        plugin: CSIPlugin = request.getfixturevalue("csi_plugin")
        assert facts["ddtrace"].startswith(
            served_from_the_cache(pod, running, plugin, language="python") + "/"
        )
        second = create_pod(admin, namespace=namespace, body=webapp_pod("shop-2"))
        again, other_port = serve(second, image_env(virtualenv(FLASK)))
        assert json.loads(get(other_port, "/facts"))["ddtrace"] == facts["ddtrace"]
        served_from_the_cache(second, again, plugin, language="python")
        assert len(plugin.cached()) == 1, plugin.cached()  # one copy per node
        assert plugin.pulls() == 1
        assert len({record["digest"] for record in plugin.records()}) == 1
        assert len(plugin.records()) == 2
    if mode == "image-volume":
        assert facts["ddtrace"].startswith(
            served_from_the_image(pod, running, language="python") + "/"
        )


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_opentelemetry_spans_carry_the_service_and_kubernetes_attributes(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    mode: str,
    request: pytest.FixtureRequest,
) -> None:
    """The OpenTelemetry flavor auto-instruments the same app: spans arrive over OTLP/HTTP at
    the receiver with service.name from the pod label and the pod's namespace, name, uid and
    container as resource attributes. In csi mode the SDK is the plugin's cached copy."""
    namespace = instrumented("opentelemetry")
    pod = create_pod(admin, namespace=namespace, body=webapp_pod("shop-otel"))
    running, port = serve(pod, image_env(virtualenv(FLASK)))
    for _ in range(REQUESTS):
        get(port, "/")
    agent.wait_for_traces(REQUESTS, timeout=30, otlp=True)
    server = [(resource, span) for resource, span in otlp_spans(agent) if is_server(span)]
    assert len(server) >= REQUESTS, running.output()
    resource = server[0][0]
    assert resource["service.name"] == "checkout"
    assert resource["service.version"] == "1.4.2"
    assert resource["deployment.environment.name"] == "staging"
    assert resource["k8s.namespace.name"] == namespace
    assert resource["k8s.pod.name"] == "shop-otel"
    assert resource["k8s.pod.uid"] == pod["metadata"]["uid"]
    assert resource["k8s.container.name"] == "app"
    assert f"loaded opentelemetry {OPENTELEMETRY}" in running.output()
    if mode == "csi":
        plugin: CSIPlugin = request.getfixturevalue("csi_plugin")
        mount_path = served_from_the_cache(pod, running, plugin, language="python")
        assert json.loads(get(port, "/facts"))["otel_sdk"].startswith(mount_path + "/")
        assert len(plugin.cached()) == 1
    if mode == "image-volume":
        mount_path = served_from_the_image(pod, running, language="python")
        assert json.loads(get(port, "/facts"))["otel_sdk"].startswith(mount_path + "/")


@pytest.mark.parametrize("mode", ["csi"], indirect=True)
def test_the_csi_plugin_leaves_no_mount_behind(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    runner: PodRunner,
    csi_plugin: CSIPlugin,
) -> None:
    """The plugin's mounts stay inside its private directory and go with it: while a pod runs
    its volume is mounted under the kubelet root; once the pod is done it is unpublished and
    the pod's directories are gone; once the plugin is stopped nothing at all is mounted under
    that directory (nor is it one itself) in our mount table."""
    namespace = instrumented("ddtrace")
    command = ["python", "-c", "import os; print(sorted(os.listdir('/opt/libinject/python')))"]
    pod = create_pod(admin, namespace=namespace, body=webapp_pod("listing", command=command))
    target = target_path(csi_plugin.kubelet_root, pod["metadata"]["uid"], LIBRARY_VOLUME)
    with runner.start(pod, app=image_env(virtualenv(FLASK))) as running:
        assert str(target) in mounts_under(csi_plugin.kubelet_root)
        assert running.wait(60) == 0, running.output()
    assert "sitecustomize.py" in running.output()
    assert mounts_under(csi_plugin.kubelet_root) == []
    assert list((csi_plugin.kubelet_root / "pods").iterdir()) == []
    assert csi_plugin.records() == []
    directory = csi_plugin.root
    assert mounts_under(directory, itself=True) == [str(directory)]
    csi_plugin.stop()
    assert mounts_under(directory, itself=True) == []


def _configmap(admin: client.ApiClient, namespace: str) -> None:
    body = {"metadata": {"name": "webapp"}, "data": {"webapp.py": WEBAPP.read_text()}}
    client.CoreV1Api(admin).create_namespaced_config_map(namespace, kubejson.body(body))


def test_the_apps_own_dependency_versions_win_over_the_bundles(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
) -> None:
    """An app that pins an older wrapt than the bundle's (still one ddtrace accepts) keeps its
    own copy: the bundle's site directory is searched after the app's packages, by a finder,
    never from sys.path. The tracer runs on the app's wrapt and traces still arrive."""
    namespace = instrumented("ddtrace")
    pod = create_pod(admin, namespace=namespace, body=webapp_pod("pinned"))
    venv = virtualenv((*FLASK, OLD_WRAPT))
    _, port = serve(pod, image_env(venv))
    get(port, "/")
    facts = json.loads(get(port, "/facts"))
    assert facts["wrapt"].startswith(str(venv))
    assert facts["wrapt_version"] == OLD_WRAPT.split("==")[1]
    assert facts["ddtrace"].startswith("/opt/libinject/python/sites/")
    assert not [entry for entry in facts["sys_path"] if "/opt/libinject/python/sites" in entry]
    assert agent.wait_for_traces(1, timeout=30)


def test_an_app_that_ships_ddtrace_runs_once_with_its_own_copy(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
) -> None:
    """An app that pip-installed another ddtrace and starts with ddtrace-run keeps it: the
    loader sees the app's ddtrace and stands down, so each request makes exactly one trace,
    sent by the app's tracer version, never two tracers."""
    namespace = instrumented("ddtrace")
    pod = create_pod(
        admin,
        namespace=namespace,
        body=webapp_pod("own-tracer", command=["ddtrace-run", "python", "/app/webapp.py"]),
    )
    venv = virtualenv((*FLASK, OWN_DDTRACE))
    running, port = serve(pod, image_env(venv))
    facts = json.loads(get(port, "/facts"))
    agent.wait_for_traces(2, timeout=30)  # the readiness probe's request and /facts
    agent.clear()
    for _ in range(REQUESTS):
        get(port, "/")
    agent.wait_for_traces(REQUESTS, timeout=30)
    time.sleep(2)  # a second tracer would flush its copies within its 1 s interval
    assert len(agent.traces()) == REQUESTS
    versions = {_header(r, "Datadog-Meta-Tracer-Version") for r in _trace_requests(agent)}
    assert versions == {OWN_DDTRACE.split("==")[1]}
    assert facts["ddtrace"].startswith(str(venv))
    assert "the application ships its own tracer" in running.output()


def test_an_app_with_a_dependency_too_old_for_the_tracer_runs_without_it(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
) -> None:
    """bytecode 0.13 is older than ddtrace needs on Python 3.11 (>=0.14): the loader refuses,
    says why once with debugging on, and the app serves normally, uninstrumented."""
    namespace = instrumented("ddtrace")
    pod = create_pod(admin, namespace=namespace, body=webapp_pod("old-dependency"))
    running, port = serve(pod, image_env(virtualenv((*FLASK, OLD_BYTECODE))))
    assert get(port, "/") == "hello from the app\n"
    assert json.loads(get(port, "/facts"))["ddtrace"] is None
    assert "the application has bytecode 0.13.0 but the tracer needs" in running.output()
    time.sleep(2)  # a tracer would have flushed by now
    assert agent.traces() == []


@pytest.mark.parametrize(
    ("command", "expected", "reason"),
    [
        (["pip", "--version"], "pip ", "denied program: pip"),
        (["python", "-m", "pip", "--version"], "pip ", "denied program: python -m pip"),
        (
            [str(PYTHON_38), "-c", "print('old python ok')"],
            "old python ok",
            "unsupported interpreter",
        ),
    ],
    ids=["pip", "python-m-pip", "python-3.8"],
)
def test_denied_programs_and_unsupported_interpreters_run_normally(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    runner: PodRunner,
    command: list[str],
    expected: str,
    reason: str,
) -> None:
    """pip (by name or `-m pip`) is never instrumented, and Python 3.8 is outside 3.9-3.14:
    each runs as if nothing were injected, exits 0, and the loader says why on stderr."""
    namespace = instrumented("ddtrace")
    pod = create_pod(
        admin, namespace=namespace, body=webapp_pod(f"run-{Path(command[0]).name}", command=command)
    )
    done = runner.run_to_completion(pod, app=image_env(virtualenv(FLASK)), timeout=60)
    assert done.returncode == 0, done.output
    assert expected in done.output
    assert reason in done.output


def _header(request: dict[str, Any], name: str) -> str | None:
    """A request header, whatever the case the agent recorded it in."""
    found = {key.lower(): value for key, value in request["headers"].items()}
    return found.get(name.lower())


def _trace_requests(agent: TestAgent) -> list[dict[str, Any]]:
    return [r for r in agent.requests() if "/traces" in r["url"] and "/v1/" not in r["url"]]


def _without_this_interpreter(bundle: Path) -> None:
    (bundle / "sites" / host_target()).rename(bundle / "sites" / "cp39-musllinux-aarch64")


def _with_a_broken_tracer(bundle: Path) -> None:
    package = bundle / "sites" / host_target() / "ddtrace"
    (package / "__init__.py").write_text("this is not python (a truncated download)\n")
    for compiled in (package / "__pycache__").glob("__init__.*"):
        compiled.unlink()


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_without_this_interpreter, "no build for this interpreter/platform/arch"),
        (_with_a_broken_tracer, "failed to start ddtrace"),
    ],
    ids=["no-build-for-this-interpreter", "broken-tracer"],
)
def test_a_bundle_that_cannot_serve_the_app_leaves_it_running_normally(
    admin: client.ApiClient,
    instrumented: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    odd_image: Callable[[str, Callable[[Path], None]], str],
    spoil: Callable[[Path], None],
    reason: str,
) -> None:
    """A bundle without a build for the app's interpreter, or with a tracer that fails on
    import: the app starts and serves as if nothing were injected; the loader says why."""
    image = odd_image(spoil.__name__.strip("_").replace("_", "-"), spoil)
    namespace = instrumented("ddtrace", image)
    pod = create_pod(admin, namespace=namespace, body=webapp_pod("unserved"))
    running, port = serve(pod, image_env(virtualenv(FLASK)))
    assert get(port, "/") == "hello from the app\n"
    assert reason in running.output()
