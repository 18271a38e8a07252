"""The webhook server over real HTTPS on loopback, with the certificates the operator generates.

Kopf's dispatch is stood in for by `fn` (the protocol boundary: Kopf calls our handler inside it);
the end-to-end path through Kopf and the API server is in tests/live/test_operator.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from cluster import poll
from cluster.harness import free_port
from libinject.admission import admit
from libinject.engine.settings import EngineSettings
from libinject.runtime import metrics, pki, webhook

NOW = datetime.now(UTC)
Fn = Callable[..., Awaitable[Any]]


def review(pod: dict[str, Any], *, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "namespace": namespace, "operation": "CREATE", "object": pod},
    }


POD = {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "app"}]}}


async def deciding(*_: Any, **__: Any) -> None:
    """What our Kopf handler does: decide for the pending pod (here with unprimed caches)."""
    call = webhook.pending()
    call.admission = admit(call.pod, namespace=call.namespace, caches=None, settings=SETTINGS)


SETTINGS = EngineSettings()


def write_material(directory: Path, material: pki.Material) -> tuple[Path, Path]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(material.serving.certificate)
    key.write_bytes(material.serving.key)
    return cert, key


def listen(server: webhook.WebhookServer, fn: Fn) -> AsyncGenerator[Any, None]:
    """The server's stream of client configs: an async generator, closed with aclose (Kopf's
    protocol types it as a plain async iterator)."""
    return cast("AsyncGenerator[Any, None]", server(fn))


async def serve(
    tmp_path: Path, fn: Fn, body: Any, *, deadline: float = 2.0
) -> tuple[int, dict[str, Any]]:
    material = pki.new_material(hosts=["127.0.0.1"], now=NOW)
    cert, key = write_material(tmp_path, material)
    port = free_port()
    server = webhook.WebhookServer(
        port=port, cert_file=cert, key_file=key, deadline=deadline, on_listening=lambda: None
    )
    stream = listen(server, fn)
    await anext(stream)
    try:
        context = ssl.create_default_context(cadata=material.bundle.decode())
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{port}/{webhook.HANDLER_ID}"
            data = body if isinstance(body, str) else json.dumps(body)
            async with session.post(url, data=data, ssl=context) as response:
                answer = await response.json() if response.status == 200 else {}
                return response.status, answer
    finally:
        await stream.aclose()


def patch_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    encoded = answer["response"].get("patch")
    return json.loads(base64.b64decode(encoded)) if encoded else []


def skipped_annotation(answer: dict[str, Any]) -> str:
    for op in patch_of(answer):
        if op["path"] == "/metadata/annotations":
            return str(op["value"]["libinject.dev/injection-skipped"])
    raise AssertionError(f"no skip annotation in {patch_of(answer)}")


def test_the_answer_carries_the_decision_and_the_requests_namespace(tmp_path: Path) -> None:
    """The handler sees the namespace of the AdmissionReview request (the pod's body names none),
    and the answer is allowed, echoes the uid and carries the engine's own patch."""
    seen: list[str] = []

    async def fn(request: dict[str, Any], **kwargs: Any) -> None:
        seen.append(webhook.pending().namespace)
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
        ("nothing", "InternalError: LookupError: no handler answered"),
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
        {"request": {"uid": "u", "object": None}},
        "not json at all",
    ],
    ids=["no-request", "no-object", "object-not-a-mapping", "not-json"],
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
