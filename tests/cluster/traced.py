"""What the live trace tests share (tests/live/test_traces.py for Python, test_java_traces.py for
Java): an app's answers, where a pod's library came from, and what reached the trace agent.

The pods carry TAGS, the unified service tags the webhook turns into each flavor's service, env
and version; every pod's app reads its port from the PORT variable of its first container.
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.request
from http import HTTPStatus
from typing import Any

from cluster import poll
from cluster.csiplugin import CSIPlugin
from cluster.podrunner import RunningPod
from cluster.podrunner.csi import target_path
from cluster.testagent import TestAgent, repeated_field
from libinject.api.types import Language
from libinject.engine.delivery import object_name
from libinject.engine.settings import LibrarySettings

TAGS = {
    "tags.datadoghq.com/service": "checkout",
    "tags.datadoghq.com/env": "staging",
    "tags.datadoghq.com/version": "1.4.2",
}
REQUESTS = 3
MODES = ["init-container", "csi", "image-volume"]
CSI_DRIVER = LibrarySettings().csi_driver


def library_volume(language: str) -> str:
    """The name of the volume (and mount) the webhook gives a pod for `language`'s library."""
    return object_name(Language(language))


def port_of(pod: dict[str, Any]) -> int:
    env = pod["spec"]["containers"][0]["env"]
    return int(next(e["value"] for e in env if e["name"] == "PORT"))


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


def get_as_sent(port: int, path: str, *, headers: dict[str, str]) -> str:
    """GET with these headers, their names as written: urllib would send `b3` as `B3`, which
    dd-trace-java 1.56 does not read (HTTP/2 clients, and Zipkin's, send it in lower case)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    assert response.status == HTTPStatus.OK, f"GET {path}: {response.status} {body}"
    return body


# A caller's trace, as one b3 header (trace id, span id, sampled): an app whose tracer reads that
# header continues the trace, and its server span is the caller's span's child.
B3_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
B3_SPAN_ID = "00f067aa0ba902b7"
B3_HEADER = {"b3": f"{B3_TRACE_ID}-{B3_SPAN_ID}-1"}


def assert_continues_b3(port: int, agent: TestAgent, *, answer: str) -> None:
    """The app on `port` continues the caller's trace of B3_HEADER: its server span, and only
    that span, is the caller's span's child in the caller's trace."""
    assert get_as_sent(port, "/", headers=B3_HEADER) == answer
    continued = poll.until(
        lambda: continued_b3(agent.traces()), what="the span continuing the b3 trace", timeout=60
    )
    assert [span["meta"]["span.kind"] for span in continued] == ["server"]


def continued_b3(traces: list[Any]) -> list[dict[str, Any]]:
    """The Datadog spans that continue B3_HEADER's trace: Datadog ids are its low 64 bits, which
    an agent may hand back as signed 64-bit integers."""
    trace_id, parent = int(B3_TRACE_ID[-16:], 16), int(B3_SPAN_ID, 16)
    return [
        span
        for trace in traces
        for span in trace
        if (span.get("trace_id") or 0) % 2**64 == trace_id and span.get("parent_id") == parent
    ]


def answers(port: int) -> bool:
    try:
        get(port, "/")
    except (urllib.error.URLError, ConnectionError):
        return False
    return True


def served_from_the_image(pod: dict[str, Any], running: RunningPod, *, language: str) -> str:
    """Checks the pod got the library image as a read-only image volume and no copy container,
    and that the app's loader ran from under the library's mountPath; returns that path."""
    spec = pod["spec"]
    assert not spec.get("initContainers")
    volume = next(v for v in spec["volumes"] if v["name"] == library_volume(language))
    assert f"/libinject/{language}-" in volume["image"]["reference"]
    mount_path = _library_mount(pod, language=language, read_only=True)
    assert loaded_from(running.output(), mount_path), running.output()
    return mount_path


def served_from_the_cache(
    pod: dict[str, Any], running: RunningPod, plugin: CSIPlugin, *, language: str
) -> str:
    """Checks the pod got the CSI volume and no copy container, and that its app sees, at the
    library's mountPath, the plugin's cached directory itself (same device and inode, looked at
    through the container's own mount namespace); returns the mountPath."""
    spec = pod["spec"]
    assert not spec.get("initContainers")
    name = library_volume(language)
    volume = next(v for v in spec["volumes"] if v["name"] == name)
    assert volume["csi"]["driver"] == CSI_DRIVER
    assert volume["csi"]["readOnly"] is True
    mount_path = _library_mount(pod, language=language)
    target = str(target_path(plugin.kubelet_root, pod["metadata"]["uid"], name))
    records = [record for record in plugin.records() if record["target_path"] == target]
    assert len(records) == 1, plugin.records()
    cached = os.stat(plugin.library(records[0]["digest"]))
    assert running.process is not None
    seen = os.stat(f"/proc/{running.process.pid}/root{mount_path}")
    assert (seen.st_dev, seen.st_ino) == (cached.st_dev, cached.st_ino)
    return mount_path


def loaded_from(output: str, mount_path: str) -> bool:
    """Whether the loader's debug line says it loaded the tracer from under `mount_path` (Python:
    `from <mount>/sites/...`, Java: `from <mount> [pid N]`)."""
    return re.search(rf"libinject: loaded .* from {re.escape(mount_path)}[/ ]", output) is not None


def _library_mount(pod: dict[str, Any], *, language: str, read_only: bool = False) -> str:
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    mount = next(m for m in mounts if m["name"] == library_volume(language))
    if read_only:
        assert mount["readOnly"] is True
    return str(mount["mountPath"])


def otlp_spans(agent: TestAgent) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource attributes, span) for every span received over OTLP."""
    pairs = []
    for request in agent.otlp_traces():
        for resource_spans in repeated_field(request, "resource_spans"):
            resource = attributes(resource_spans.get("resource", {}))
            for scope in repeated_field(resource_spans, "scope_spans"):
                pairs += [(resource, span) for span in scope.get("spans", [])]
    return pairs


def attributes(message: dict[str, Any]) -> dict[str, Any]:
    """OTLP key/value attributes as a plain dict (string, int and bool values)."""
    plain = {}
    for attribute in message.get("attributes", []):
        value = attribute.get("value", {})
        plain[attribute["key"]] = next(iter(value.values()), None)
    return plain


def is_server(span: dict[str, Any]) -> bool:
    return span.get("kind") in (2, "SPAN_KIND_SERVER")


def root_spans(traces: list[Any]) -> list[dict[str, Any]]:
    """The root span of each Datadog trace."""
    return [span for trace in traces for span in trace if span.get("parent_id") in (0, None)]
