"""A policy's `tracing` block proven with the real tracers, through the webhook: the same block
for ddtrace and for OpenTelemetry, written in each one's variables. The app makes one outgoing
HTTP request (with requests, which both tracers instrument) to a server of its own that records
the headers, then exits, so each tracer flushes what it kept before the pod is done."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from cluster.apps import image_env, virtualenv
from cluster.fixtures import NamespaceFactory
from cluster.libraries import library_versions
from cluster.podrunner import PodRunner
from cluster.testagent import TestAgent
from cluster.traced import otlp_spans
from cluster.workloads import (
    ENABLED,
    PolicyFactory,
    app_pod,
    create_pod,
    policy,
    wait_until_injecting,
)

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("running_operator")]

REQUESTS = ("requests==2.32.3",)
CALL = """
import http.server, json, threading
import requests
seen = {}
class Record(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen.update({key.lower(): value for key, value in self.headers.items()})
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Record)
threading.Thread(target=server.serve_forever, daemon=True).start()
requests.get(f"http://127.0.0.1:{server.server_port}/")
print(json.dumps(seen))
"""
# Keep nothing, and speak W3C and the X-B3-* headers; keep everything, and speak one b3 header.
DROP_ALL = {"sampleRate": 0, "propagators": ["b3multi", "tracecontext"]}
KEEP_ALL = {"sampleRate": 1, "propagators": ["b3"]}
DD_KEEP_PRIORITY = 2  # USER_KEEP: a sampling rule kept the trace (USER_REJECT is -1)


def _calling_pod(name: str) -> dict[str, Any]:
    body = app_pod(name)
    body["metadata"]["labels"]["tags.datadoghq.com/service"] = name
    body["spec"]["containers"][0]["command"] = ["python", "-c", CALL]
    return body


@pytest.mark.parametrize("flavor", ["ddtrace", "opentelemetry"])
def test_sample_rate_and_propagators_with_the_real_tracers(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    library_images: Callable[..., str],
    runner: PodRunner,
    test_agent: TestAgent,
    agent: TestAgent,
    flavor: str,
) -> None:
    """sampleRate 0: the outgoing headers carry a drop decision and no span is kept (none
    reaches the OTLP receiver; ddtrace still reports its dropped traces to its agent, marked
    USER_REJECT, which the agent does not keep). sampleRate 1 with b3: the one `b3` header, sampled,
    and the spans arrive kept. The propagators replace the tracer's defaults: no x-datadog-*
    headers from ddtrace, no traceparent where only b3 is named."""
    namespace = namespaces(labels=ENABLED)
    library = {
        "language": "python",
        "flavor": flavor,
        "version": library_versions("python")[flavor],
        "image": library_images(flavor),
    }
    port = test_agent.ports["apm" if flavor == "ddtrace" else "otlp-http"]
    for name, tracing in (("dropper", DROP_ALL), ("keeper", KEEP_ALL)):
        policies(
            policy(
                f"tracing-{flavor}-{name}",
                [namespace],
                libraries=[library],
                podSelector={"matchLabels": {"app": name}},
                agent={"mode": "hostIP", "port": port},
                tracing=tracing,
            )
        )
    for name in ("dropper", "keeper"):
        wait_until_injecting(admin, namespace, probe=_calling_pod(name))
    venv = image_env(virtualenv(REQUESTS))

    def call(name: str) -> dict[str, str]:
        pod = create_pod(admin, namespace=namespace, body=_calling_pod(name))
        done = runner.run_to_completion(pod, app=venv, timeout=90)
        assert done.returncode == 0, done.output
        headers: dict[str, str] = json.loads(done.output.strip().splitlines()[-1])
        return headers

    dropped = call("dropper")
    assert dropped["x-b3-sampled"] == "0"
    flags = int(dropped["traceparent"].split("-")[3], 16)  # W3C: bit 0 is "sampled"
    assert flags & 1 == 0, dropped["traceparent"]
    assert "b3" not in dropped
    assert not any(key.startswith("x-datadog") for key in dropped)

    kept = call("keeper")
    # The single b3 header's third field: 1 (sampled) or d (debug, which is sampled too: what
    # ddtrace writes for a rule's keep, USER_KEEP).
    assert kept["b3"].split("-")[2] in ("1", "d"), kept["b3"]
    assert "traceparent" not in kept
    assert "x-b3-traceid" not in kept
    assert not any(key.startswith("x-datadog") for key in kept)

    if flavor == "ddtrace":
        # Each trace by the id its request carried (ddtrace's span ids are the low 64 bits).
        priority = {
            span["trace_id"]: span["metrics"]["_sampling_priority_v1"]
            for trace in agent.wait_for_traces(2)
            for span in trace
            if span.get("parent_id") in (0, None)
        }
        dropped_id = int(dropped["x-b3-traceid"][-16:], 16)
        kept_id = int(kept["b3"].split("-")[0][-16:], 16)
        assert priority == {dropped_id: -1, kept_id: DD_KEEP_PRIORITY}
    else:
        agent.wait_for_traces(1, otlp=True)
        services = {resource.get("service.name") for resource, _ in otlp_spans(agent)}
        assert services == {"keeper"}, "the keeper's spans arrived, and none of the dropper's"
