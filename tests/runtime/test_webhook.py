"""The webhook server over real HTTPS on loopback, with the certificates the operator generates.

Kopf's dispatch and our handler are stood in for by `fn` (the protocol boundary: Kopf calls our
handler inside it), given the admission in flight as `call`; the end-to-end path through Kopf and
the API server is in tests/live/test_operator.py (the operator checks Kopf's route at start, see
tests/runtime/test_handoff.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import socket
import ssl
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from structlog.testing import capture_logs

from cluster import poll
from cluster.harness import free_port
from libinject.admission import admit
from libinject.engine.settings import EngineSettings
from libinject.runtime import handoff, metrics, pki, webhook

NOW = datetime.now(UTC)
Fn = Callable[..., Awaitable[Any]]


def review(pod: dict[str, Any], *, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "namespace": namespace, "operation": "CREATE", "object": pod},
    }


POD = {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "app"}]}}


async def deciding(_: dict[str, Any], *, call: handoff.Pending, **__: Any) -> None:
    """What our Kopf handler does: say how to decide for the admission in flight (here with
    unprimed caches)."""
    call.decide = functools.partial(
        admit, call.pod, namespace=call.namespace, caches=None, settings=SETTINGS
    )


SETTINGS = EngineSettings()


def write_material(directory: Path, material: pki.Material) -> tuple[Path, Path]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(material.serving.certificate)
    key.write_bytes(material.serving.key)
    return cert, key


def listen(server: webhook.WebhookServer, fn: Fn) -> AsyncGenerator[Any, None]:
    """The server's stream of client configs: an async generator, closed with aclose (Kopf's
    protocol types it as a plain async iterator). `fn` stands in for Kopf's dispatch and our
    handler; the route check the server makes at start is answered as our handler would."""

    async def dispatch(request: dict[str, Any], *, headers: dict[str, str], **_: Any) -> Any:
        call = server.in_flight.call_for(headers)
        if request["request"]["uid"] == handoff.CHECK_UID:
            await deciding(request, call=call)
        else:
            await fn(request, call=call, headers=headers)
        return {"response": {"allowed": True}}

    return cast("AsyncGenerator[Any, None]", server(cast(Any, dispatch)))


Post = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, fn: Fn, *, deadline: float = 2.0) -> AsyncIterator[Post]:
    """A running server; yields `post(body, query="")` -> (status, answer)."""
    material = pki.new_material(hosts=["127.0.0.1"], now=NOW)
    cert, key = write_material(tmp_path, material)
    port = free_port()
    server = webhook.WebhookServer(
        port=port, cert_file=cert, key_file=key, deadline=deadline, on_listening=lambda: None
    )
    stream = listen(server, fn)
    await anext(stream)
    context = ssl.create_default_context(cadata=material.bundle.decode())
    url = f"https://127.0.0.1:{port}/{webhook.HANDLER_ID}"
    try:
        async with aiohttp.ClientSession() as session:

            async def post(body: Any, query: str = "") -> tuple[int, dict[str, Any]]:
                data = body if isinstance(body, str | bytes) else json.dumps(body)
                async with session.post(url + query, data=data, ssl=context) as response:
                    answer = await response.json() if response.status == 200 else {}
                    return response.status, answer

            yield post
    finally:
        await stream.aclose()


async def serve(
    tmp_path: Path, fn: Fn, body: Any, *, deadline: float = 2.0, query: str = ""
) -> tuple[int, dict[str, Any]]:
    async with serving(tmp_path, fn, deadline=deadline) as post:
        return await post(body, query)


def patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    encoded = answer["response"].get("patch")
    return json.loads(base64.b64decode(encoded)) if encoded else []


def skipped_annotation(answer: dict[str, Any]) -> str:
    for op in patch_of(answer):
        if op["path"] == "/metadata/annotations":
            return str(op["value"]["libinject.dev/injection-skipped"])
        if op["path"] == "/metadata/annotations/libinject.dev~1injection-skipped":
            return str(op["value"])
    raise AssertionError(f"no skip annotation in {patch_of(answer)}")


def test_the_answer_carries_the_decision_and_the_requests_namespace(tmp_path: Path) -> None:
    """The handler sees the namespace of the AdmissionReview request (the pod's body names none),
    and the answer is allowed, echoes the uid and carries the engine's own patch."""
    seen: list[str] = []

    async def fn(request: dict[str, Any], **kwargs: Any) -> None:
        seen.append(kwargs["call"].namespace)
        await deciding(request, **kwargs)

    status, answer = asyncio.run(serve(tmp_path, fn, review(POD, namespace="payments")))
    assert status == 200
    assert seen == ["payments"]
    assert answer["response"]["uid"] == "u-1"
    assert answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"
    expected = admit(POD, namespace="payments", caches=None, settings=SETTINGS).result.patch
    assert patch_of(answer) == expected
    assert skipped_annotation(answer).startswith("OperatorNotReady:")


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        ("raise", "InternalError: RuntimeError: dispatch broke"),
        ("sleep", "InternalError: TimeoutError: no decision within the 0.2s"),
        ("nothing", "InternalError: KopfRouteError: kopf "),
    ],
    ids=["kopf-fails", "too-slow", "nobody-answers"],
)
def test_any_failure_admits_the_pod_and_says_why_on_it(
    tmp_path: Path, fn: str, message: str
) -> None:
    """An error in the dispatch, a handler past the deadline, or no handler at all: the pod is
    still allowed, with the reason in its skip annotation, and counted as failed-open."""

    async def failing(_: dict[str, Any], **__: Any) -> None:
        if fn == "raise":
            raise RuntimeError("dispatch broke")
        if fn == "sleep":
            await asyncio.sleep(5)

    sample = {"outcome": "failed-open", "reason": "InternalError"}
    before = metrics.REGISTRY.get_sample_value("libinject_admissions_total", sample) or 0.0
    status, answer = asyncio.run(serve(tmp_path, failing, review(POD), deadline=0.2))
    assert status == 200
    assert answer["response"]["allowed"] is True
    assert skipped_annotation(answer).startswith(message)
    assert metrics.REGISTRY.get_sample_value("libinject_admissions_total", sample) == before + 1


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "AdmissionReview"},
        {"request": {"uid": "u"}},
        {"request": {"uid": "u", "operation": "CREATE", "object": None}},
        {"request": {"uid": "u", "object": {"spec": {}}}},
        "not json at all",
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=[
        "no-request",
        "no-object",
        "object-not-a-mapping",
        "no-operation",
        "not-json",
        "nested-too-deep",
    ],
)
def test_a_body_that_is_not_an_admission_review_is_a_bad_request(tmp_path: Path, body: Any) -> None:
    """Nothing to admit and nothing to answer with: 400, and the handler is never called."""
    called: list[bool] = []

    async def fn(_: dict[str, Any], **__: Any) -> None:
        called.append(True)

    status, _ = asyncio.run(serve(tmp_path, fn, body))
    assert status == 400
    assert called == []


def test_changed_certificate_files_are_served_without_closing_the_listener(tmp_path: Path) -> None:
    """After the files change, new TLS handshakes get the new certificate from the same listener
    (no restart window); a torn write, or a certificate written before its key, keeps the old."""

    async def scenario() -> tuple[bytes, bytes, bytes, bytes]:
        old = pki.new_material(hosts=["127.0.0.1"], now=NOW)
        cert, key = write_material(tmp_path, old)
        port = free_port()
        server = webhook.WebhookServer(
            port=port,
            cert_file=cert,
            key_file=key,
            deadline=1.0,
            on_listening=lambda: None,
            file_check_seconds=0.05,
        )
        stream = listen(server, deciding)
        await anext(stream)
        task = asyncio.ensure_future(anext(stream))  # the reload loop runs inside this step
        try:
            first = await asyncio.to_thread(presented, port)
            cert.write_text("half a certificate")  # a torn write: keep serving the old chain
            await asyncio.sleep(0.3)
            torn = await asyncio.to_thread(presented, port)
            new = pki.new_material(hosts=["127.0.0.1"], now=NOW)
            # The new certificate before its key: a pair that does not match is not loaded.
            cert.write_bytes(new.serving.certificate)
            await asyncio.sleep(0.3)
            mismatched = await asyncio.to_thread(presented, port)
            key.write_bytes(new.serving.key)
            # The positive outcome is polled for (a busy machine may take a while to reload);
            # the negative ones above could only be waited out. The poll runs in a thread: the
            # server's reload loop runs on this event loop and must keep running meanwhile.
            after = await asyncio.to_thread(
                poll.until,
                lambda: der if (der := presented(port)) != first else None,
                what="the new certificate to be served",
                timeout=30,
            )
            return first, torn, mismatched, after
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stream.aclose()

    first, torn, mismatched, after = asyncio.run(scenario())
    assert torn == first
    assert mismatched == first
    assert after != first


def presented(port: int) -> bytes:
    """The DER certificate the server shows in a fresh handshake."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def counted(counter: Any) -> float:
    """The sum of a counter over all its labels."""
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def filled(size: int) -> dict[str, Any]:
    """A pod whose review is about `size` bytes long (an annotation pads it)."""
    padding = size - len(json.dumps(review(POD))) - 40
    return {**POD, "metadata": {"generateName": "web-", "annotations": {"pad": "x" * padding}}}


@pytest.mark.parametrize("operation", ["UPDATE", "CONNECT", "DELETE"])
def test_other_operations_are_allowed_unchanged_and_unrecorded(
    tmp_path: Path, operation: str
) -> None:
    """Only a CREATE is ours to decide. Any other review is allowed with no patch and counted
    nowhere (before, Kopf's handler filter left it unanswered and the pod got an InternalError
    skip record); a DELETE carries no object at all, a CONNECT an options object."""
    called: list[bool] = []

    async def fn(request: dict[str, Any], **kwargs: Any) -> None:
        called.append(True)
        await deciding(request, **kwargs)

    body = review(POD)
    body["request"]["operation"] = operation
    if operation == "DELETE":
        body["request"].update(object=None, oldObject=POD)
    if operation == "CONNECT":
        body["request"]["object"] = {"kind": "PodExecOptions", "command": ["sh"]}
    before = counted(metrics.ADMISSIONS)
    status, answer = asyncio.run(serve(tmp_path, fn, body))
    assert status == 200
    assert answer["response"] == {"uid": "u-1", "allowed": True}
    assert called == []
    assert counted(metrics.ADMISSIONS) == before


def test_kopf_routes_the_call_with_the_pods_names_only(tmp_path: Path) -> None:
    """Kopf deep-copies the object it gets, on the event loop: it gets what names the pod, and
    the handler decides for the whole pod it reads from the admission in flight."""
    seen: list[Any] = []

    async def fn(request: dict[str, Any], **kwargs: Any) -> None:
        seen.append((request["request"]["object"], kwargs["call"].pod))
        await deciding(request, **kwargs)

    pod = {"apiVersion": "v1", "kind": "Pod", **POD}
    asyncio.run(serve(tmp_path, fn, review(pod)))
    assert seen == [
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}}, pod)
    ]


def test_a_review_is_answered_while_another_is_still_being_decided(tmp_path: Path) -> None:
    """A large pod is decided off the event loop: while its decision is still running (held
    until the second answer is in), another review is read, decided (on the event loop: it is
    small) and answered. Before, every decision ran on the event loop and every other review
    waited for it."""
    started, release = threading.Event(), threading.Event()
    order: list[str] = []
    threads: dict[str, str] = {}
    large = {
        "metadata": {"generateName": "large-"},
        "spec": {"containers": [{"name": f"c{n}", "image": "i"} for n in range(2000)]},
    }
    assert len(json.dumps(review(large))) > webhook.INLINE_REVIEW_BYTES

    def decide_large() -> Any:
        threads["large"] = threading.current_thread().name
        started.set()
        release.wait(30)
        admission = admit(large, namespace="shop", caches=None, settings=SETTINGS)
        order.append("large decided")
        return admission

    def decide_small(pod: Mapping[str, Any]) -> Any:
        threads["small"] = threading.current_thread().name
        return admit(pod, namespace="shop", caches=None, settings=SETTINGS)

    async def fn(request: dict[str, Any], *, call: handoff.Pending, **_: Any) -> None:
        if "large-" in json.dumps(request):
            call.decide = decide_large
        else:
            call.decide = functools.partial(decide_small, call.pod)

    async def scenario() -> tuple[int, int]:
        async with serving(tmp_path, fn, deadline=60) as post:
            in_flight = asyncio.ensure_future(post(review(large)))
            await asyncio.to_thread(started.wait, 30)
            small_status, _ = await post(review(POD))
            order.append("small answered")
            release.set()
            large_status, _ = await in_flight
            return small_status, large_status

    assert asyncio.run(scenario()) == (200, 200)
    assert order == ["small answered", "large decided"]
    assert threads["small"] == threading.main_thread().name
    assert threads["large"].startswith("admission")


def test_a_review_the_api_server_can_send_is_read_whole(tmp_path: Path) -> None:
    """A review of 3 MiB (the API server's own request limit) is read and decided. aiohttp's
    default limit of 1 MiB answered 413, and the pod went through with no record at all."""
    status, answer = asyncio.run(serve(tmp_path, deciding, review(filled(3 * 1024 * 1024))))
    assert status == 200
    assert skipped_annotation(answer).startswith("OperatorNotReady:")


def test_a_review_over_the_limit_is_refused_logged_and_counted(tmp_path: Path) -> None:
    """Beyond MAX_REVIEW_BYTES the body is not read (413: the API server admits the pod as it
    came, failurePolicy Ignore), and the refusal is in the log and the metrics."""
    called: list[bool] = []

    async def fn(request: dict[str, Any], **kwargs: Any) -> None:
        called.append(True)

    sample = {"outcome": "refused", "reason": "PodTooLarge"}
    before = metrics.REGISTRY.get_sample_value("libinject_admissions_total", sample) or 0.0
    body = review(filled(webhook.MAX_REVIEW_BYTES + 1024))
    with capture_logs() as lines:
        status, _ = asyncio.run(serve(tmp_path, fn, body))
    assert status == 413
    assert called == []
    assert metrics.REGISTRY.get_sample_value("libinject_admissions_total", sample) == before + 1
    (refused,) = [line for line in lines if line["event"] == "admission refused"]
    assert refused["reason"] == "PodTooLarge"
    assert refused["log_level"] == "warning"


def test_an_answer_after_the_api_servers_timeout_is_logged_and_counted(tmp_path: Path) -> None:
    """The API server says how long it waits (`?timeout=`). A replica starved of CPU (here: its
    event loop held for 3x that) answers after it: the pod went on with no record, so the late
    answer is logged (`admission answered late`, seconds and timeout) and counted."""

    async def starved(request: dict[str, Any], **kwargs: Any) -> None:
        time.sleep(0.3)  # holds the event loop, as a process starved of CPU does
        await deciding(request, **kwargs)

    before = counted(metrics.ADMISSIONS_LATE)
    with capture_logs() as lines:
        status, _ = asyncio.run(serve(tmp_path, starved, review(POD), query="?timeout=0.1s"))
    assert status == 200
    assert counted(metrics.ADMISSIONS_LATE) == before + 1
    (late,) = [line for line in lines if line["event"] == "admission answered late"]
    assert late["timeout"] == 0.1
    assert late["seconds"] >= 0.3
    assert late["log_level"] == "warning"


def test_an_answer_in_time_is_not_late(tmp_path: Path) -> None:
    before = counted(metrics.ADMISSIONS_LATE)
    with capture_logs() as lines:
        status, _ = asyncio.run(serve(tmp_path, deciding, review(POD), query="?timeout=30s"))
    assert status == 200
    assert counted(metrics.ADMISSIONS_LATE) == before
    assert [line for line in lines if line["event"] == "admission answered late"] == []


def test_the_deadline_stays_inside_the_api_servers_timeout(tmp_path: Path) -> None:
    """With a webhook timeout shorter than the configured deadline, the pod is still answered
    (and its skip recorded) before the API server stops waiting: 2/3 of its timeout."""

    async def slow(_: dict[str, Any], **__: Any) -> None:
        await asyncio.sleep(5)

    status, answer = asyncio.run(
        serve(tmp_path, slow, review(POD), deadline=2.0, query="?timeout=0.3s")
    )
    assert status == 200
    message = "InternalError: TimeoutError: no decision within the 0.2s admission deadline"
    assert skipped_annotation(answer).startswith(message)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3s", 3.0),
        ("30s", 30.0),
        ("1m0s", 60.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        (None, None),
        ("", None),
        ("3", None),
        ("-1s", None),
        ("0s", None),
        ("3s; rm", None),
    ],
)
def test_the_api_servers_timeout_is_read_as_a_go_duration(
    text: str | None, seconds: float | None
) -> None:
    assert webhook.api_timeout(text) == seconds
