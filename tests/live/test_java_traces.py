"""Real traces from a real Java app, run from the pod spec our webhook wrote.

As test_traces.py does for Python (its fixtures are in conftest.py, its helpers in
cluster.traced): each test creates a pod through the API server, whose webhook injects it for a
Java policy, then the pod runner plays the kubelet and runs the app container's command, the
app's java command line, with the host's default JDK (Java 17), the injected env and the mounted
library. The app is examples/apps/java/WebApp.java, a plain Jetty 12 server both agents
instrument, built on first use with its jars from Maven Central (cluster.javaapp); its /facts
names the tracer of every agent running in the JVM, one line each. The injected
JAVA_TOOL_OPTIONS names the launcher in the library volume, which hands over to the bundle's
agent: dd-java-agent or the OpenTelemetry Java agent, at the versions images/java/versions lists.
Every trace test runs in the three modes: init-container, csi (the node plugin's cached copy)
and image-volume.

Never breaking the app: a csi volume whose library is not ready holds no agent (only the launcher
and the Node.js loader), and an image whose agent jar is cut short holds a launcher that finds it
so: both stand down. An app that starts its own agent where the webhook cannot see it (a start
script, options from a ConfigMap) gets the launcher, which stands down; one whose pod spec shows
it is skipped by the webhook. Each starts and answers, with one agent or none. The apps' own
agents are the real ones, from Maven Central (java.agents), of the other flavor than the
policy's: a second agent in the JVM would show in /facts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import harness, kubejson
from cluster.csiplugin import CSIPlugin
from cluster.javaapp import command, image_env, java_webapp
from cluster.libraries import JAVA_VERSIONS
from cluster.podrunner import RunningPod
from cluster.registry import Registry
from cluster.testagent import TestAgent
from cluster.traced import (
    MODES,
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
from java.agents import TRACERS, maven_agent
from libinject.engine.languages import JAVA_LAUNCHER, NODE_LOADER

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]

LAUNCHER = f"-javaagent:/opt/libinject/java/{JAVA_LAUNCHER}"
GREETING = "hello from the app\n"
# An app's own agent is of the flavor its policy does not give: a second agent in the JVM would
# show as a second line in /facts.
OTHER = {"ddtrace": "opentelemetry", "opentelemetry": "ddtrace"}


def java_pod(
    name: str, *, command_line: list[str] | None = None, env: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A pod running the Java web app (or `command_line`) on a free port, debug lines on."""
    port = harness.free_port()
    variables = [{"name": "PORT", "value": str(port)}, {"name": "LIBINJECT_DEBUG", "value": "true"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name, **TAGS}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "example.invalid/java-webapp:1",
                    "command": command_line or command(java_webapp()),
                    "env": variables + (env or []),
                    "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                }
            ]
        },
    }


def debug_lines(running: RunningPod) -> list[str]:
    """What the launcher said on the app's output (LIBINJECT_DEBUG is on in every pod)."""
    return [line for line in running.output().splitlines() if line.startswith("libinject: ")]


def facts(port: int) -> list[str]:
    """The app's /facts: one `tracer <flavor> <class>` line per agent running in its JVM."""
    return get(port, "/facts").splitlines()


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_ddtrace_traces_carry_the_pods_service_env_and_version(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    mode: str,
    request: pytest.FixtureRequest,
) -> None:
    """The webhook's pod spec alone makes an uninstrumented Jetty app send traces: the library
    volume (copied, the plugin's cached copy, or the image itself) holds the launcher, which
    JAVA_TOOL_OPTIONS names and which hands over to dd-java-agent; each request's root span
    reaches the node's agent tagged with the pod labels' service, env and version, and the
    JVM runs that one agent. In csi mode a second pod of the same version shares the one cached
    copy."""
    namespace = injecting("java", "ddtrace")
    pod = create_pod(admin, namespace=namespace, body=java_pod("shop"))
    assert env_of(pod, "app")["JAVA_TOOL_OPTIONS"] == LAUNCHER
    running, port = serve(pod, image_env())
    for _ in range(REQUESTS):
        assert get(port, "/") == GREETING
    assert facts(port) == [TRACERS["ddtrace"]]
    # Every request's trace, the one of /facts included: it may be flushed last.
    traces = agent.wait_for_traces(REQUESTS + 1, timeout=60)
    roots = root_spans(traces)
    assert len(roots) >= REQUESTS
    for span in roots:
        assert span["service"] == "checkout"
        assert span["meta"]["span.kind"] == "server"
        assert span["meta"]["component"] == "jetty-server"
        assert span["meta"]["env"] == "staging"
        assert span["meta"]["version"] == "1.4.2"
    assert {span["resource"] for span in roots} == {"GET /", "GET /facts"}
    version = JAVA_VERSIONS["ddtrace"]
    assert f"libinject: loaded ddtrace {version} from /opt/libinject/java " in running.output()
    if mode == "csi":
        plugin: CSIPlugin = request.getfixturevalue("csi_plugin")
        served_from_the_cache(pod, running, plugin, language="java")
        second = create_pod(admin, namespace=namespace, body=java_pod("shop-2"))
        again, other_port = serve(second, image_env())
        assert facts(other_port) == [TRACERS["ddtrace"]]
        served_from_the_cache(second, again, plugin, language="java")
        assert len(plugin.cached()) == 1, plugin.cached()  # one copy per node
        assert plugin.pulls() == 1
        assert len({record["digest"] for record in plugin.records()}) == 1
        assert len(plugin.records()) == 2
    if mode == "image-volume":
        served_from_the_image(pod, running, language="java")


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_opentelemetry_spans_carry_the_service_and_kubernetes_attributes(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    mode: str,
    request: pytest.FixtureRequest,
) -> None:
    """The OpenTelemetry flavor's launcher hands over to the OpenTelemetry Java agent: Jetty's
    server spans arrive over OTLP/HTTP at the receiver with service.name from the pod label and
    the pod's namespace, name, uid and container as resource attributes. In csi mode the agent
    is the plugin's cached copy; in image-volume mode the image's."""
    namespace = injecting("java", "opentelemetry")
    pod = create_pod(admin, namespace=namespace, body=java_pod("shop-otel"))
    running, port = serve(pod, image_env())
    for _ in range(REQUESTS):
        assert get(port, "/") == GREETING
    assert facts(port) == [TRACERS["opentelemetry"]]
    # Every request's trace, the one of /facts included: it may be flushed last.
    agent.wait_for_traces(REQUESTS + 1, timeout=60, otlp=True)
    server = [(resource, span) for resource, span in otlp_spans(agent) if is_server(span)]
    assert len(server) >= REQUESTS, running.output()
    assert {span["name"] for _, span in server} == {"GET"}
    assert {attributes(span)["url.path"] for _, span in server} == {"/", "/facts"}
    resource = server[0][0]
    assert resource["service.name"] == "checkout"
    assert resource["service.version"] == "1.4.2"
    assert resource["deployment.environment.name"] == "staging"
    assert resource["k8s.namespace.name"] == namespace
    assert resource["k8s.pod.name"] == "shop-otel"
    assert resource["k8s.pod.uid"] == pod["metadata"]["uid"]
    assert resource["k8s.container.name"] == "app"
    version = JAVA_VERSIONS["opentelemetry"]
    assert f"libinject: loaded opentelemetry {version} from /opt/libinject/java " in (
        running.output()
    )
    if mode == "csi":
        plugin: CSIPlugin = request.getfixturevalue("csi_plugin")
        served_from_the_cache(pod, running, plugin, language="java")
        assert len(plugin.cached()) == 1
    if mode == "image-volume":
        served_from_the_image(pod, running, language="java")


@pytest.mark.parametrize("mode", ["csi"], indirect=True)
def test_a_library_not_ready_in_csi_mode_leaves_the_app_running_without_an_agent(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    registry: Registry,
    csi_plugin: CSIPlugin,
) -> None:
    """The policy names an image the registry does not have: the plugin cannot pull it and
    publishes its not-ready volume instead, which holds the launcher (and the Node.js loader)
    but no agent. The JVM that JAVA_TOOL_OPTIONS points at that launcher starts and serves
    normally, with no agent, and says why once."""
    missing = f"{registry.address}/libinject/java-ddtrace:{JAVA_VERSIONS['ddtrace']}-missing"
    namespace = injecting("java", "ddtrace", image=missing)
    pod = create_pod(admin, namespace=namespace, body=java_pod("not-ready"))
    running, port = serve(pod, image_env())
    assert get(port, "/") == GREETING
    assert facts(port) == []
    (record,) = csi_plugin.records()
    assert record["digest"] == "empty"
    assert running.process is not None
    volume = Path(f"/proc/{running.process.pid}/root/opt/libinject/java")
    assert sorted(path.name for path in volume.iterdir()) == sorted([JAVA_LAUNCHER, NODE_LOADER])
    said = debug_lines(running)
    assert len(said) == 1, said
    assert said[0].startswith(
        "libinject: tracer not loaded: library not ready: no bundle.txt in /opt/libinject/java"
    )


def _truncated_agent(bundle: Path) -> None:
    """The agent jar cut short, as by an interrupted copy."""
    agent = bundle / "dd-java-agent.jar"
    with agent.open("r+b") as jar:
        jar.truncate(agent.stat().st_size // 2)


def test_an_image_with_an_incomplete_agent_leaves_the_app_running_without_it(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    odd_image: Callable[..., str],
) -> None:
    """A library image whose agent jar is shorter than its bundle.txt says: the init container
    copies it, the launcher finds the size wrong and stands down, saying so, and the JVM (which
    would abort on a broken -javaagent jar) starts and serves with no agent."""
    image = odd_image("truncated", _truncated_agent, language="java")
    namespace = injecting("java", "ddtrace", image=image)
    pod = create_pod(admin, namespace=namespace, body=java_pod("incomplete"))
    running, port = serve(pod, image_env())
    assert get(port, "/") == GREETING
    assert facts(port) == []
    said = debug_lines(running)
    assert len(said) == 1, said
    assert said[0].startswith(
        "libinject: tracer not loaded: library incomplete: dd-java-agent.jar has "
    ), said


def _script_starts_the_agent(admin: client.ApiClient, namespace: str, jar: Path) -> dict[str, Any]:
    """The app's start script, from a ConfigMap: the command the webhook reads is `sh`."""
    script = f"exec {' '.join(_with_agent(jar))}\n"
    _configmap(admin, namespace, {"start.sh": script})
    pod = java_pod("scripted", command_line=["sh", "/app/start.sh"])
    container = pod["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": "app", "mountPath": "/app", "readOnly": True}]
    pod["spec"]["volumes"] = [{"name": "app", "configMap": {"name": "app"}}]
    return pod


def _configmap_sets_the_options(
    admin: client.ApiClient, namespace: str, jar: Path
) -> dict[str, Any]:
    """JDK_JAVA_OPTIONS read from a ConfigMap (valueFrom): the webhook sees no value."""
    _configmap(admin, namespace, {"java-options": f"-javaagent:{jar}"})
    source = {"configMapKeyRef": {"name": "app", "key": "java-options"}}
    return java_pod("configured", env=[{"name": "JDK_JAVA_OPTIONS", "valueFrom": source}])


@pytest.mark.parametrize(
    ("flavor", "own_agent", "where"),
    [
        ("ddtrace", _script_starts_the_agent, "on the command line"),
        ("opentelemetry", _configmap_sets_the_options, "in JDK_JAVA_OPTIONS"),
    ],
    ids=["start-script", "options-from-a-configmap"],
)
def test_an_agent_the_webhook_cannot_see_is_the_only_one(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    flavor: str,
    own_agent: Callable[[client.ApiClient, str, Path], dict[str, Any]],
    where: str,
) -> None:
    """An app that starts its own agent (the other flavor than its policy's) from a start
    script, or with JDK_JAVA_OPTIONS from a ConfigMap, is injected: nothing in its pod spec
    shows the agent. The launcher finds the agent in the running JVM's command line or options
    and stands down, saying where: the JVM runs the app's agent alone (one tracer in /facts),
    whose spans, one server span per request, reach its receiver."""
    namespace = injecting("java", flavor)
    own, jar = OTHER[flavor], maven_agent(OTHER[flavor])
    body = _own_receiver(own_agent(admin, namespace, jar), flavor=own, agent=agent)
    pod = create_pod(admin, namespace=namespace, body=body)
    assert env_of(pod, "app")["JAVA_TOOL_OPTIONS"] == LAUNCHER
    running, port = serve(pod, image_env())
    assert facts(port) == [TRACERS[own]]
    said = debug_lines(running)
    reason = f"the application starts its own agent: -javaagent:{jar} {where}"
    assert len(said) == 1, said
    assert said[0].startswith(f"libinject: tracer not loaded: {reason}"), said
    _one_server_span_per_request(agent, port, flavor=own)


@pytest.mark.parametrize(
    "where", ["JAVA_TOOL_OPTIONS", "command"], ids=["java-tool-options", "command"]
)
def test_an_agent_in_the_pod_spec_gets_no_launcher(
    admin: client.ApiClient,
    injecting: Callable[..., str],
    serve: Callable[..., tuple[RunningPod, int]],
    agent: TestAgent,
    where: str,
) -> None:
    """A container whose pod spec starts dd-java-agent (in JAVA_TOOL_OPTIONS or its command) is
    skipped by the webhook for an OpenTelemetry policy, and the annotation says why: no library
    volume, no launcher. The app runs its own agent alone and its spans arrive."""
    namespace = injecting("java", "opentelemetry")
    jar = maven_agent("ddtrace")
    if where == "command":
        body = java_pod("own-agent", command_line=_with_agent(jar))
    else:
        option = {"name": "JAVA_TOOL_OPTIONS", "value": f"-javaagent:{jar}"}
        body = java_pod("own-agent", env=[option])
    pod = create_pod(
        admin, namespace=namespace, body=_own_receiver(body, flavor="ddtrace", agent=agent)
    )
    assert pod["metadata"]["labels"][INSTRUMENTED] == "false"
    skipped = pod["metadata"]["annotations"][SKIPPED]
    assert f"app: OwnTracer: it starts its own tracer: {where} has -javaagent:{jar}" in skipped
    assert library_volume("java") not in {v["name"] for v in pod["spec"].get("volumes") or ()}
    assert LAUNCHER not in env_of(pod, "app").get("JAVA_TOOL_OPTIONS", "")
    running, port = serve(pod, image_env())
    assert facts(port) == [TRACERS["ddtrace"]]
    assert debug_lines(running) == []
    _one_server_span_per_request(agent, port, flavor="ddtrace")


def _with_agent(jar: Path) -> list[str]:
    """The app's java command line with `-javaagent:<jar>` before the class path."""
    java, *rest = command(java_webapp())
    return [java, f"-javaagent:{jar}", *rest]


def _own_receiver(pod: dict[str, Any], *, flavor: str, agent: TestAgent) -> dict[str, Any]:
    """The pod with the address of the receiver for its own agent (of `flavor`) in its env: the
    app's own setting, as the webhook gives an address to its policy's flavor only."""
    if flavor == "ddtrace":
        receiver = {"name": "DD_TRACE_AGENT_URL", "value": agent.url}
    else:
        receiver = {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": agent.otlp_http_url}
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
    """tracing.propagators [b3] reaches dd-trace-java in its own spelling, "b3single" (to it "b3"
    alone means the X-B3-* headers, and "b3 single header" is three list items): a request
    carrying one b3 header is continued, its server span the caller's span's child in the
    caller's trace."""
    namespace = injecting("java", "ddtrace", tracing={"propagators": ["b3"]})
    pod = create_pod(admin, namespace=namespace, body=java_pod("b3"))
    _, port = serve(pod, image_env())
    assert_continues_b3(port, agent, answer=GREETING)
