"""Real traces from a real Node.js app, run from the pod spec our webhook wrote.

As test_java_traces.py does for Java: each test creates a pod through the API server, whose
webhook injects it for a Node.js policy, then the pod runner plays the kubelet and runs the app
container's command with the injected env and the mounted library. The app is
examples/apps/nodejs, Express 5 from its committed npm lock, as CommonJS (server.cjs) and as an
ES module (server.mjs), installed on first use (cluster.nodeapp) and run by Node 22 (the npm
registry's build: both tracers need 22 or later); its /facts names each tracer running in the
process, one line each. The injected NODE_OPTIONS requires the loader in the library volume,
which starts the bundle's tracer: dd-trace or OpenTelemetry's auto-instrumentations, at the
versions images/nodejs/versions lists.

Each flavor runs in the three modes, init-container, csi (the node plugin's cached copy) and
image-volume: init-container with both app forms, csi with the CommonJS one and image-volume
with the ES module one. The form changes what the tracer hooks in the process, not how the
library reaches it, so the other two pairs would add about a minute and no new path.

Never breaking the app: a csi volume whose library is not ready holds only the loaders, an image
whose tracer's start file is missing holds a loader that finds it so, and Node 20 (the machine's)
is older than the tracers support: each stands down, saying why once, and the app answers with
no tracer. `npm start` gets the tracer in the app's node process, not in npm's. An app that ships
its own dd-trace and preloads it where the webhook cannot see it (a start script) gets the
loader, which stands down; one whose pod spec shows it is skipped by the webhook. Either runs its
own tracer alone: one server span per request, none at the other receiver.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client

from cluster import harness, kubejson
from cluster.csiplugin import CSIPlugin
from cluster.libraries import NODE_VERSIONS
from cluster.nodeapp import CJS, ESM, command, image_env, node_webapp
from cluster.nodejs import SYSTEM_NODE
from cluster.podrunner import RunningPod
from cluster.registry import Registry
from cluster.testagent import TestAgent
from cluster.traced import (
    REQUESTS,
    TAGS,
    assert_continues_b3,
    attributes,
    get,
    is_server,
    library_volume,
    otlp_spans,
    root_spans,
    served_from_the_cache,
    served_from_the_image,
)
from cluster.workloads import INSTRUMENTED, SKIPPED, create_pod, env_of
from libinject.engine.languages import JAVA_LAUNCHER, NODE_LOADER

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]

MOUNT = "/opt/libinject/nodejs"
LOADER = f"--require={MOUNT}/{NODE_LOADER}"
GREETING = "hello from the app\n"
TRACER = {"ddtrace": "tracer ddtrace", "opentelemetry": "tracer opentelemetry"}  # /facts lines
DD_TRACE = f"dd-trace@{NODE_VERSIONS['ddtrace']}"  # what an app with its own tracer ships
# (mode, app form) pairs each flavor runs: every mode, every form (see the docstring).
CASES = [("init-container", CJS), ("init-container", ESM), ("csi", CJS), ("image-volume", ESM)]
CASE_IDS = [f"{mode}-{entry.rsplit('.', 1)[1]}" for mode, entry in CASES]


def node_pod(
    name: str,
    *,
    app: Path | None = None,
    command_line: list[str] | None = None,
    env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod running the Node.js web app (server.cjs, or `command_line`) from its directory
    (the image's working directory) on a free port, debug lines on."""
    port = harness.free_port()
    variables = [{"name": "PORT", "value": str(port)}, {"name": "LIBINJECT_DEBUG", "value": "true"}]
    home = app or node_webapp()
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name, **TAGS}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "example.invalid/node-webapp:1",
                    "command": command_line or command(home),
                    "workingDir": str(home),
                    "env": variables + (env or []),
                    "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}},
                }
            ]
        },
    }


def debug_lines(running: RunningPod) -> list[str]:
    """What the loader said on the app's output (LIBINJECT_DEBUG is on in every pod)."""
    return [line for line in running.output().splitlines() if line.startswith("libinject: ")]


def server_roots(traces: list[Any]) -> list[dict[str, Any]]:
    """The root spans of the requests the app served (not, say, the dns.lookup of its listen)."""
    return [span for span in root_spans(traces) if span["meta"].get("span.kind") == "server"]


def facts(port: int) -> list[str]:
    """The app's /facts: one `tracer <flavor>` line per tracer running in its process."""
    return get(port, "/facts").splitlines()


@pytest.mark.parametrize(("mode", "entry"), CASES, ids=CASE_IDS, indirect=["mode"])
def test_ddtrace_traces_carry_the_pods_service_env_and_version(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    mode: str,
    entry: str,
    request: pytest.FixtureRequest,
) -> None:
    """The webhook's pod spec alone makes an uninstrumented Express app send traces: the
    library volume (copied, the plugin's cached copy, or the image itself) holds the loader,
    which NODE_OPTIONS requires and which starts dd-trace; each request's root span, Express's,
    reaches the node's agent tagged with the pod labels' service, env and version, and the
    process runs that one tracer. In csi mode a second pod of the same version shares the one
    cached copy."""
    namespace = injecting("nodejs", "ddtrace")
    app = node_webapp()
    pod = create_pod(
        admin, namespace=namespace, body=node_pod("shop", command_line=command(app, entry=entry))
    )
    assert env_of(pod, "app")["NODE_OPTIONS"] == LOADER
    running, port = serve(pod, image_env())
    for _ in range(REQUESTS):
        assert get(port, "/") == GREETING
    assert facts(port) == [TRACER["ddtrace"]]
    # Every request's trace, the one of /facts included: it may be flushed last.
    traces = agent.wait_for_traces(REQUESTS + 1, timeout=60)
    roots = server_roots(traces)
    assert len(roots) >= REQUESTS, traces
    for span in roots:
        assert span["service"] == "checkout"
        assert span["name"] == "express.request"
        assert span["meta"]["span.kind"] == "server"
        assert span["meta"]["component"] == "express"
        assert span["meta"]["env"] == "staging"
        assert span["meta"]["version"] == "1.4.2"
    assert {urlsplit(span["meta"]["http.url"]).path for span in roots} == {"/", "/facts"}
    # Express's route names the resource (dd-trace 6.21.0 finds none for Express 5's "/").
    assert "GET /facts" in {span["resource"] for span in roots}
    said = debug_lines(running)
    assert len(said) == 1, said
    assert said[0].startswith(f"libinject: loaded ddtrace {NODE_VERSIONS['ddtrace']} from {MOUNT} ")
    if mode == "csi":
        plugin: CSIPlugin = request.getfixturevalue("csi_plugin")
        served_from_the_cache(pod, running, plugin, language="nodejs")
        second = create_pod(admin, namespace=namespace, body=node_pod("shop-2"))
        again, other_port = serve(second, image_env())
        assert facts(other_port) == [TRACER["ddtrace"]]
        served_from_the_cache(second, again, plugin, language="nodejs")
        assert len(plugin.cached()) == 1, plugin.cached()  # one copy per node
        assert plugin.pulls() == 1
        assert len({record["digest"] for record in plugin.records()}) == 1
        assert len(plugin.records()) == 2
    if mode == "image-volume":
        served_from_the_image(pod, running, language="nodejs")


@pytest.mark.parametrize(("mode", "entry"), CASES, ids=CASE_IDS, indirect=["mode"])
def test_opentelemetry_spans_carry_the_service_and_kubernetes_attributes(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    mode: str,
    entry: str,
    request: pytest.FixtureRequest,
) -> None:
    """The OpenTelemetry flavor's loader starts the auto-instrumentations' SDK from the OTEL_*
    variables the webhook wrote: the app's HTTP server spans, named by Express's route, arrive
    over OTLP/HTTP at the receiver with service.name from the pod label and the pod's
    namespace, name, uid and container as resource attributes. In csi mode the library is the
    plugin's cached copy; in image-volume mode the image's."""
    namespace = injecting("nodejs", "opentelemetry")
    app = node_webapp()
    body = node_pod("shop-otel", command_line=command(app, entry=entry))
    pod = create_pod(admin, namespace=namespace, body=body)
    assert env_of(pod, "app")["NODE_OPTIONS"] == LOADER
    running, port = serve(pod, image_env())
    for _ in range(REQUESTS):
        assert get(port, "/") == GREETING
    assert facts(port) == [TRACER["opentelemetry"]]
    # Every request's trace, the one of /facts included: it may be flushed last.
    agent.wait_for_traces(REQUESTS + 1, timeout=60, otlp=True)
    server = [(resource, span) for resource, span in otlp_spans(agent) if is_server(span)]
    assert len(server) >= REQUESTS, running.output()
    assert {span["name"] for _, span in server} == {"GET /", "GET /facts"}
    assert {attributes(span)["http.route"] for _, span in server} == {"/", "/facts"}
    resource = server[0][0]
    assert resource["service.name"] == "checkout"
    assert resource["service.version"] == "1.4.2"
    assert resource["deployment.environment.name"] == "staging"
    assert resource["k8s.namespace.name"] == namespace
    assert resource["k8s.pod.name"] == "shop-otel"
    assert resource["k8s.pod.uid"] == pod["metadata"]["uid"]
    assert resource["k8s.container.name"] == "app"
    version = NODE_VERSIONS["opentelemetry"]
    said = debug_lines(running)
    assert len(said) == 1, said
    assert said[0].startswith(f"libinject: loaded opentelemetry {version} from {MOUNT} ")
    if mode == "csi":
        plugin: CSIPlugin = request.getfixturevalue("csi_plugin")
        served_from_the_cache(pod, running, plugin, language="nodejs")
        assert len(plugin.cached()) == 1
    if mode == "image-volume":
        served_from_the_image(pod, running, language="nodejs")


@pytest.mark.parametrize("mode", ["csi"], indirect=True)
def test_a_library_not_ready_in_csi_mode_leaves_the_app_running_without_a_tracer(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    registry: Registry,
    csi_plugin: CSIPlugin,
    agent: TestAgent,
) -> None:
    """The policy names an image the registry does not have: the plugin cannot pull it and
    publishes its not-ready volume instead, which holds the loader (and the Java launcher) but
    no bundle. The Node process that NODE_OPTIONS points at that loader (Node aborts when a
    --require file is missing) starts and serves normally, with no tracer, and says why once;
    nothing reaches the agent."""
    missing = f"{registry.address}/libinject/nodejs-ddtrace:{NODE_VERSIONS['ddtrace']}-missing"
    namespace = injecting("nodejs", "ddtrace", image=missing)
    pod = create_pod(admin, namespace=namespace, body=node_pod("not-ready"))
    assert env_of(pod, "app")["NODE_OPTIONS"] == LOADER
    running, port = serve(pod, image_env())
    assert get(port, "/") == GREETING
    assert facts(port) == []
    (record,) = csi_plugin.records()
    assert record["digest"] == "empty"
    assert running.process is not None
    volume = Path(f"/proc/{running.process.pid}/root{MOUNT}")
    assert sorted(path.name for path in volume.iterdir()) == sorted([JAVA_LAUNCHER, NODE_LOADER])
    said = debug_lines(running)
    assert len(said) == 1, said
    assert said[0].startswith(
        f"libinject: tracer not loaded: library not ready: no bundle.txt in {MOUNT} "
    )
    assert agent.traces() == []


def _without_start_file(bundle: Path) -> None:
    """dd-trace's start file gone, as from a copy cut short."""
    (bundle / "node_modules" / "dd-trace" / "init.js").unlink()


def test_an_image_missing_its_start_file_leaves_the_app_running_without_a_tracer(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    odd_image: Callable[..., str],
) -> None:
    """A library image whose bundle.txt names a start file it lacks: the init container copies
    it, the loader finds the file missing and stands down, saying so, and the app starts and
    serves with no tracer."""
    image = odd_image("no-start", _without_start_file, language="nodejs")
    namespace = injecting("nodejs", "ddtrace", image=image)
    pod = create_pod(admin, namespace=namespace, body=node_pod("incomplete"))
    running, port = serve(pod, image_env())
    assert get(port, "/") == GREETING
    assert facts(port) == []
    said = debug_lines(running)
    assert len(said) == 1, said
    missing = f"{MOUNT}/node_modules/dd-trace/init.js is missing"
    assert said[0].startswith(f"libinject: tracer not loaded: library incomplete: {missing} "), said


def test_node_20_runs_the_app_without_a_tracer(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
) -> None:
    """The machine's Node 20 is older than dd-trace 6 supports (engines `>=22`): the injected
    loader stands down, naming the version and the range, and the app starts and serves on
    Node 20 with no tracer; nothing reaches the agent."""
    namespace = injecting("nodejs", "ddtrace")
    body = node_pod("old-node", command_line=command(node_webapp(), node=SYSTEM_NODE))
    pod = create_pod(admin, namespace=namespace, body=body)
    assert env_of(pod, "app")["NODE_OPTIONS"] == LOADER
    running, port = serve(pod, image_env(node=SYSTEM_NODE))
    assert get(port, "/") == GREETING
    assert facts(port) == []
    said = debug_lines(running)
    assert len(said) == 1, said
    assert said[0].startswith("libinject: tracer not loaded: Node 20."), said
    assert "is outside what ddtrace 6.21.0 supports (node >=22.0.0)" in said[0], said
    assert agent.traces() == []


def test_npm_start_traces_the_app_and_not_npm(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
) -> None:
    """The container runs `npm start` (the app's package.json script `node server.cjs`), and
    NODE_OPTIONS reaches both processes: the loader stands down in npm's, naming it, and starts
    dd-trace in the app's, whose requests each make one trace."""
    namespace = injecting("nodejs", "ddtrace")
    pod = create_pod(
        admin, namespace=namespace, body=node_pod("npm", command_line=["npm", "start"])
    )
    running, port = serve(pod, image_env())
    assert facts(port) == [TRACER["ddtrace"]]
    said = debug_lines(running)
    assert len(said) == 2, said
    assert said[0].startswith("libinject: tracer not loaded: a package manager or build tool, "), (
        said
    )
    assert said[1].startswith(f"libinject: loaded ddtrace {NODE_VERSIONS['ddtrace']} from {MOUNT} ")
    _one_server_span_per_request(agent, port, flavor="ddtrace")


def _start_script(
    admin: client.ApiClient, namespace: str, app: Path, *, preload: list[str], entry: str
) -> dict[str, Any]:
    """The app's start script, from a ConfigMap: the command the webhook reads is `sh`."""
    node, script = command(app, entry=entry)
    _configmap(admin, namespace, {"start.sh": f"exec {' '.join([node, *preload, script])}\n"})
    pod = node_pod("scripted", app=app, command_line=["sh", "/start/start.sh"])
    container = pod["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": "start", "mountPath": "/start", "readOnly": True}]
    pod["spec"]["volumes"] = [{"name": "start", "configMap": {"name": "app"}}]
    return pod


@pytest.mark.parametrize(
    ("flavor", "preload", "entry"),
    [
        ("opentelemetry", ["--require", "dd-trace/init"], CJS),
        ("ddtrace", ["--import", "dd-trace/initialize.mjs"], ESM),
    ],
    ids=["require-cjs", "import-esm"],
)
def test_a_tracer_the_webhook_cannot_see_is_the_only_one(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    flavor: str,
    preload: list[str],
    entry: str,
) -> None:
    """An app that ships its own dd-trace in its node_modules and preloads it from a start
    script (`--require` for CommonJS, `--import` for an ES module) is injected: nothing in its
    pod spec shows the tracer. The loader, which NODE_OPTIONS runs first, finds the preload on
    the process's command line and stands down, saying so: the process runs the app's dd-trace
    alone (one tracer in /facts, one server span per request, none over OTLP)."""
    namespace = injecting("nodejs", flavor)
    app = node_webapp(own=(DD_TRACE,))
    body = _start_script(admin, namespace, app, preload=preload, entry=entry)
    pod = create_pod(admin, namespace=namespace, body=_own_receiver(body, agent=agent))
    assert env_of(pod, "app")["NODE_OPTIONS"] == LOADER
    running, port = serve(pod, image_env())
    assert facts(port) == [TRACER["ddtrace"]]
    said = debug_lines(running)
    reason = f"the application preloads its own tracer: {' '.join(preload)} in the command line"
    assert len(said) == 1, said
    assert said[0].startswith(f"libinject: tracer not loaded: {reason} "), said
    _one_server_span_per_request(agent, port, flavor="ddtrace")


@pytest.mark.parametrize("where", ["NODE_OPTIONS", "command"], ids=["node-options", "command"])
def test_a_tracer_in_the_pod_spec_gets_no_loader(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    where: str,
) -> None:
    """A container whose pod spec preloads the app's own dd-trace (in NODE_OPTIONS or its
    command) is skipped by the webhook for an OpenTelemetry policy, and the annotation says
    why: no library volume, no loader. The app runs its own tracer alone and its spans
    arrive, one server span per request."""
    namespace = injecting("nodejs", "opentelemetry")
    app = node_webapp(own=(DD_TRACE,))
    if where == "command":
        node, script = command(app)
        body = node_pod(
            "own-tracer", app=app, command_line=[node, "--require", "dd-trace/init", script]
        )
    else:
        preload = {"name": "NODE_OPTIONS", "value": "--require dd-trace/init"}
        body = node_pod("own-tracer", app=app, env=[preload])
    pod = create_pod(admin, namespace=namespace, body=_own_receiver(body, agent=agent))
    assert pod["metadata"]["labels"][INSTRUMENTED] == "false"
    skipped = pod["metadata"]["annotations"][SKIPPED]
    assert (
        f"app: OwnTracer: it starts its own tracer: {where} has --require dd-trace/init" in skipped
    )
    assert library_volume("nodejs") not in {v["name"] for v in pod["spec"].get("volumes") or ()}
    assert NODE_LOADER not in env_of(pod, "app").get("NODE_OPTIONS", "")
    running, port = serve(pod, image_env())
    assert facts(port) == [TRACER["ddtrace"]]
    assert debug_lines(running) == []
    _one_server_span_per_request(agent, port, flavor="ddtrace")


def _own_receiver(pod: dict[str, Any], *, agent: TestAgent) -> dict[str, Any]:
    """The pod with the address of the Datadog agent for the app's own dd-trace in its env: the
    app's own setting, as the webhook gives an address to its policy's flavor only."""
    receiver = {"name": "DD_TRACE_AGENT_URL", "value": agent.url}
    pod["spec"]["containers"][0]["env"].append(receiver)
    return pod


def _one_server_span_per_request(agent: TestAgent, port: int, *, flavor: str) -> None:
    """Once the traces of the app's first two requests (serve's first answer, then /facts)
    arrived, REQUESTS more requests make REQUESTS server spans at `flavor`'s receiver, and none
    reach the other's."""
    otlp = flavor == "opentelemetry"
    agent.wait_for_traces(2, timeout=60, otlp=otlp)
    agent.clear()
    for _ in range(REQUESTS):
        assert get(port, "/") == GREETING
    received = agent.wait_for_traces(REQUESTS, timeout=60, otlp=otlp)
    if otlp:
        assert len([span for _, span in otlp_spans(agent) if is_server(span)]) == REQUESTS
        assert agent.traces() == []
    else:
        server = [s for trace in received for s in trace if s["meta"].get("span.kind") == "server"]
        assert len(server) == REQUESTS, received
        assert len(root_spans(received)) == REQUESTS
        assert agent.otlp_traces() == []


def _configmap(admin: client.ApiClient, namespace: str, data: dict[str, str]) -> None:
    body = {"metadata": {"name": "app"}, "data": data}
    client.CoreV1Api(admin).create_namespaced_config_map(namespace, kubejson.body(body))


def test_ddtrace_continues_a_trace_from_the_b3_header_the_policy_names(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
) -> None:
    """tracing.propagators [b3] reaches dd-trace-js in its own spelling, "b3 single header" (to it
    "b3" alone has meant the X-B3-* headers): a request carrying one b3 header is continued, its
    server span the caller's span's child in the caller's trace."""
    namespace = injecting("nodejs", "ddtrace", tracing={"propagators": ["b3"]})
    pod = create_pod(admin, namespace=namespace, body=node_pod("b3"))
    _, port = serve(pod, image_env())
    assert_continues_b3(port, agent, answer=GREETING)
