"""The real tools the image and tracing tests stand on: crane, a local registry, Debian's static
busybox and Datadog's trace test agent, each used the way those tests use it."""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cluster import testagent
from cluster.registry import Registry
from cluster.testagent import TestAgent
from libinject.images.elf import is_static

pytestmark = pytest.mark.live

TCP_LISTEN = "0A"  # the state column of /proc/net/tcp{,6}

# A Datadog tracer's request: a v0.4 payload (a list of traces, each a list of spans) in
# msgpack, with the headers the test agent's checks expect of a tracer.
DATADOG_CLIENT = """
import json, sys, urllib.request
import msgpack
url, trace_id = sys.argv[1], int(sys.argv[2])
span = {
    "trace_id": trace_id, "span_id": trace_id + 1, "parent_id": 0,
    "name": "web.request", "service": "shop", "resource": "GET /cart", "type": "web",
    "start": 1_700_000_000_000_000_000, "duration": 1_500_000, "error": 0,
    "meta": {"env": "test", "version": "1.2.3"}, "metrics": {"_sampling_priority_v1": 1.0},
}
body = msgpack.packb([[span]])
request = urllib.request.Request(
    url + "/v0.4/traces", data=body, method="PUT",
    headers={
        "Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "1",
        "Datadog-Meta-Lang": "python", "Datadog-Meta-Tracer-Version": "4.16.0",
    },
)
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.dumps({"status": response.status, "body": json.loads(response.read())}))
"""

# An OpenTelemetry SDK's export: one ExportTraceServiceRequest in protobuf, over OTLP/HTTP or
# OTLP/gRPC.
OTLP_CLIENT = """
import json, sys, urllib.request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
transport, target, trace_id = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
span = Span(
    trace_id=trace_id, span_id=trace_id[:8], name="GET /cart", kind=Span.SPAN_KIND_SERVER,
    start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_001_500_000,
)
resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="shop"))])
export = ExportTraceServiceRequest(
    resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[span])])]
)
if transport == "http":
    request = urllib.request.Request(
        target + "/v1/traces", data=export.SerializeToString(), method="POST",
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        print(json.dumps({"status": response.status}))
else:
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
    with grpc.insecure_channel(target) as channel:
        reply = TraceServiceStub(channel).Export(export, timeout=10)
    print(json.dumps({"status": "OK", "rejected": reply.partial_success.rejected_spans}))
"""


def run_client(code: str, *args: str) -> dict[str, Any]:
    """Runs a client snippet with the test agent venv's interpreter; its one line of JSON."""
    result = subprocess.run(
        [str(testagent.python()), "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def listeners(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port` (IPv4 and IPv6; an IPv6
    socket bound to an IPv4-mapped address, as gRPC binds 127.0.0.1, counts as that IPv4)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            hex_address, hex_port = local.split(":")
            if state == TCP_LISTEN and int(hex_port, 16) == port:
                # Each 32-bit word is in the host's (little-endian) byte order.
                words = range(0, len(hex_address), 8)
                raw = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in words)
                address = ipaddress.ip_address(raw)
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                    address = address.ipv4_mapped
                found.add(str(address))
    return found


def port_is_free(port: int) -> bool:
    """Nothing listens on `port`, connecting is refused, and a new server can listen on it
    (with SO_REUSEADDR, as servers do: connections the old one closed linger in TIME-WAIT)."""
    if listeners(port):
        return False
    with socket.socket() as client:
        if client.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(("127.0.0.1", port))
            server.listen()
        except OSError:
            return False
    return True


def layer_files() -> dict[str, bytes]:
    return {
        "etc/app.conf": b"greeting = hello\n",
        "opt/lib/blob.bin": bytes(range(256)) * 64,
        "opt/lib/empty": b"",
        "usr/bin/run.sh": b"#!/bin/sh\necho run\n",
    }


def write_layer(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as layer:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            layer.addfile(info, io.BytesIO(data))


def test_crane_round_trips_an_image_through_the_registry(
    crane: Path, registry: Registry, tmp_path: Path
) -> None:
    """crane builds an image from a bare layer tar (no base image) and pushes it to the local
    registry over plain http, the registry lists the tag, and `crane export` of the pushed image
    gives back exactly the files of the layer, byte for byte."""
    files = layer_files()
    write_layer(tmp_path / "layer.tar", files)
    reference = f"{registry.address}/services/x:y"

    subprocess.run(
        [str(crane), "append", "-f", str(tmp_path / "layer.tar"), "-t", reference],
        check=True,
        capture_output=True,
    )

    with urllib.request.urlopen(f"{registry.url}/v2/services/x/tags/list", timeout=10) as tags:
        assert json.load(tags) == {"name": "services/x", "tags": ["y"]}
    subprocess.run(
        [str(crane), "export", reference, str(tmp_path / "export.tar")],
        check=True,
        capture_output=True,
    )
    with tarfile.open(tmp_path / "export.tar") as exported:
        regular = [member for member in exported.getmembers() if member.isfile()]
        contents = {}
        for member in regular:
            handle = exported.extractfile(member)
            assert handle is not None
            contents[member.name] = handle.read()
    assert contents == files


def test_crane_reports_the_pinned_version(crane: Path) -> None:
    """The crane the tests run is the release versions.py pins (stamped at build time)."""
    from cluster import versions  # noqa: PLC0415 (only this test needs it)

    output = subprocess.run([str(crane), "version"], check=True, capture_output=True, text=True)
    assert output.stdout.strip() == versions.CRANE


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount namespaces need root")
def test_busybox_copies_inside_an_empty_root(busybox: Path, tmp_path: Path) -> None:
    """Debian's busybox is statically linked (no ELF interpreter; `file` agrees) and so runs
    `busybox cp` in a root that holds nothing but itself: no loader, no libc, no /proc."""
    assert is_static(busybox)
    described = subprocess.run(["file", "-L", str(busybox)], check=True, capture_output=True)
    assert b"statically linked" in described.stdout
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    (root / "data").mkdir()
    payload = os.urandom(100_000)
    (root / "data" / "in").write_bytes(payload)

    subprocess.run(
        ["unshare", "--mount", "chroot", str(root), "/bin/busybox", "cp", "/data/in", "/data/out"],
        check=True,
        capture_output=True,
    )

    assert (root / "data" / "out").read_bytes() == payload
    everything = sorted(str(path.relative_to(root)) for path in root.rglob("*"))
    assert everything == ["bin", "bin/busybox", "data", "data/in", "data/out"]


def test_test_agent_receives_a_datadog_trace(agent: TestAgent) -> None:
    """A tracer's msgpack v0.4 payload PUT to the agent endpoint passes the test agent's checks
    (200 with sampling rates) and is read back span for span, with the request's headers."""
    trace_id = 0x1234_5678_9ABC

    reply = run_client(DATADOG_CLIENT, agent.url, str(trace_id))

    assert reply["status"] == 200
    assert "rate_by_service" in reply["body"]
    (trace,) = agent.wait_for_traces(1, timeout=10)
    (span,) = trace
    assert span["trace_id"] == trace_id
    assert (span["service"], span["name"], span["resource"]) == ("shop", "web.request", "GET /cart")
    assert span["meta"]["env"] == "test"
    assert span["meta"]["version"] == "1.2.3"
    (request,) = agent.requests()
    assert request["method"] == "PUT"
    assert request["url"].endswith("/v0.4/traces")
    assert request["headers"]["Datadog-Meta-Lang"] == "python"
    assert request["headers"]["X-Datadog-Trace-Count"] == "1"
    assert agent.otlp_traces() == []


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_test_agent_receives_an_otlp_trace(agent: TestAgent, transport: str) -> None:
    """A protobuf ExportTraceServiceRequest sent over OTLP/HTTP (/v1/traces) or OTLP/gRPC
    (TraceService.Export) is read back from the OTLP side, decoded, with its resource's
    service.name; the Datadog side stays empty."""
    trace_id = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    target = agent.otlp_http_url if transport == "http" else agent.otlp_grpc_address

    reply = run_client(OTLP_CLIENT, transport, target, trace_id.hex())

    assert reply["status"] in {200, "OK"}
    assert reply.get("rejected", 0) == 0
    (export,) = agent.wait_for_traces(1, timeout=10, otlp=True)
    (resource_spans,) = export["resource_spans"]
    assert resource_spans["resource"]["attributes"] == [
        {"key": "service.name", "value": {"string_value": "shop"}}
    ]
    (span,) = agent.otlp_spans()
    assert base64.b64decode(span["trace_id"]) == trace_id
    assert (span["name"], span["kind"]) == ("GET /cart", "SPAN_KIND_SERVER")
    assert agent.traces() == []


def test_clear_forgets_what_the_agent_received(agent: TestAgent) -> None:
    """`clear` empties both sides, so each test sees only its own traces."""
    run_client(DATADOG_CLIENT, agent.url, "42")
    run_client(OTLP_CLIENT, "http", agent.otlp_http_url, "0af7651916cd43dd8448eb211c80319c")
    agent.wait_for_traces(1, timeout=10)
    agent.wait_for_traces(1, timeout=10, otlp=True)

    agent.clear()

    assert (agent.traces(), agent.otlp_traces(), agent.requests()) == ([], [], [])


def test_services_listen_on_loopback_only(registry: Registry, test_agent: TestAgent) -> None:
    """Every port of the registry and the test agent (APM, OTLP/HTTP, OTLP/gRPC) is bound to
    127.0.0.1 and nothing else: no 0.0.0.0, no IPv6 wildcard."""
    assert listeners(registry.port) == {"127.0.0.1"}
    for name, port in test_agent.ports.items():
        assert listeners(port) == {"127.0.0.1"}, name


def test_stopping_a_service_frees_its_ports(tmp_path: Path) -> None:
    """Leaving a Registry or a TestAgent stops its whole process group and frees its ports at
    once, so a next one (or anything else) can bind them."""
    with Registry(tmp_path / "registry") as registry:
        ports = [registry.port]
        assert registry.process is not None
        groups = [registry.process.popen.pid]
    with TestAgent(tmp_path / "agent") as agent:
        ports += agent.ports.values()
        assert agent.process is not None
        groups.append(agent.process.popen.pid)

    for port in ports:
        assert port_is_free(port), port
    for group in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)
