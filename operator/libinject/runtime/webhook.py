"""The HTTPS admission endpoint: Kopf's webhook-server protocol, with what our webhook needs.

Kopf dispatches each AdmissionReview to our `@kopf.on.mutate` handler; this server wraps that call
to give the handler what Kopf does not (the request's namespace: pods made by controllers often
carry none in their body), to enforce a deadline, and to fail open: a timeout or any error admits
the pod without a library and says why on the pod. The answer carries the engine's own patch
(name-aware list edits) rather than Kopf's diff of a deep copy of the whole pod.

Kopf only routes the call (`handoff`): it gets the pod's metadata, not the pod, and the handler
says how to decide. A small pod is decided on the event loop: handing it to a thread and back
costs more than deciding it. A large one is decided on a thread of its own, so the event loop
keeps reading and answering other reviews meanwhile, and the deadline is kept for the caller even
when the decision is not done. A thread still competes for the GIL: `libinject.engine.limits`
bounds what one decision may cost.

Certificate files are re-read when they change and swapped into the live TLS context, so rotation
never closes the listener (Kopf's server restarts it, refusing calls for a moment).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kopf
from aiohttp import web

from libinject.admission import Admission, failed
from libinject.engine.decision import Code
from libinject.runtime import logs, metrics, pki
from libinject.runtime.handoff import InFlight, Pending, check_route, route

HANDLER_ID = "mutate-pods"  # also the URL path: /mutate-pods
FILE_CHECK_SECONDS = 5.0
# The largest AdmissionReview we read. The API server decodes write requests of up to 3 MiB of
# JSON (k8s.io/apiserver's MaxRequestBodyBytes: twice etcd's default 1.5 MiB request limit, as
# JSON is larger than the protobuf it stores), so no pod it can store is larger than that; 1 MiB
# more is room for the review's envelope (userInfo) and the fields admission defaulted. A larger
# review is refused (413; failurePolicy Ignore admits the pod) and logged and counted.
MAX_REVIEW_BYTES = 4 * 1024 * 1024
# Reviews up to this size are decided on the event loop: a pod this small is decided in well under
# a millisecond, less than a round trip through a thread costs the loop.
INLINE_REVIEW_BYTES = 32 * 1024
# Threads deciding at once. Decisions hold the GIL, so more would not decide faster; a few let a
# small pod be decided while a large one is (see SWITCH_INTERVAL).
DECISION_THREADS = 4
# How long a decision thread may hold the GIL while the event loop waits for it (Python's default
# is 5 ms). A review needs the loop several times; with 5 ms each, a review answered while a large
# one is decided waits tens of milliseconds more.
SWITCH_INTERVAL = 0.001
# Of the API server's timeout (the `timeout` query parameter), the share our deadline may use.
TIMEOUT_SHARE = 2 / 3
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
log = logs.get(__name__)


class WebhookServer:
    """Serves `POST /<handler id>` over HTTPS on `port`; Kopf's `WebhookServerProtocol`."""

    def __init__(
        self,
        *,
        port: int,
        cert_file: Path,
        key_file: Path,
        deadline: float,
        on_listening: Callable[[], None],
        file_check_seconds: float = FILE_CHECK_SECONDS,
    ) -> None:
        self.port = port
        self.file_check_seconds = file_check_seconds
        self.cert_file = cert_file
        self.key_file = key_file
        self.deadline = deadline
        self.on_listening = on_listening
        self.in_flight = InFlight()  # our handler finds its admission here
        self._threads: ThreadPoolExecutor | None = None

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        await check_route(fn, webhook=HANDLER_ID, in_flight=self.in_flight)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        digest = self._digest()

        async def serve(request: web.Request) -> web.Response:
            return await self._serve(fn, request)

        app = web.Application(client_max_size=MAX_REVIEW_BYTES)
        app.router.add_post("/{id:.*}", serve)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._threads = ThreadPoolExecutor(DECISION_THREADS, thread_name_prefix="admission")
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            # reuse_port: replicas on one host (the tests' two-replica runs) share the port, and
            # the kernel spreads connections between them as a Service spreads them over pods.
            site = web.TCPSite(runner, None, self.port, ssl_context=context, reuse_port=True)
            await site.start()
            log.info("webhook listening", port=self.port, path=f"/{HANDLER_ID}")
            self.on_listening()
            # Kopf would write this into a managed configuration; ours ships in the manifests.
            yield kopf.WebhookClientConfig(url=f"https://localhost:{self.port}")
            while True:
                await asyncio.sleep(self.file_check_seconds)
                digest = self._reload_if_changed(context, digest)
        finally:
            await runner.cleanup()
            # A decision past its deadline may still run: it is not waited for.
            self._threads.shutdown(wait=False, cancel_futures=True)

    def _digest(self) -> str:
        return hashlib.sha256(self.cert_file.read_bytes() + self.key_file.read_bytes()).hexdigest()

    def _reload_if_changed(self, context: ssl.SSLContext, digest: str) -> str:
        try:
            current = self._digest()
            if current != digest:
                # Tried on a scratch context first: a certificate that does not match its key
                # (one file rewritten, not yet the other) would leave the live one unusable.
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                    self.cert_file, self.key_file
                )
                # New handshakes use the new chain; connections already open keep theirs.
                context.load_cert_chain(self.cert_file, self.key_file)
                expires = pki.expiry(self.cert_file.read_bytes())
                metrics.CERTIFICATE_EXPIRY.set(expires.timestamp())
                log.info("webhook certificate reloaded", expires=expires.isoformat())
            return current
        except (OSError, ssl.SSLError, ValueError) as error:  # a half-written pair: keep the old
            log.warning("webhook certificate not reloaded yet", reason=str(error))
            return digest

    async def _serve(self, fn: kopf.WebhookFn, request: web.Request) -> web.Response:
        started = time.perf_counter()
        timeout = api_timeout(request.query.get("timeout"))
        review, size = await _read_review(request)
        payload = review["request"]
        uid = payload["uid"]
        if payload.get("operation") != "CREATE":
            # Not ours to change (the configuration sends only CREATE): allowed as it is, with
            # no record, whatever the object is (none at all for a DELETE).
            log.debug("not a create: allowed unchanged", operation=payload.get("operation"))
            return web.json_response(review_response(review, uid=uid, admission=None))
        pod = payload.get("object")
        if not isinstance(pod, dict):
            # Not an AdmissionReview: nothing to admit, and nothing to answer it with.
            log.warning("not an AdmissionReview", reason=f"the object is a {type(pod).__name__}")
            raise web.HTTPBadRequest(reason="not an AdmissionReview: the object is not a pod")
        call = Pending(pod=pod, namespace=str(payload.get("namespace") or ""))
        deadline = self.deadline if timeout is None else min(self.deadline, timeout * TIMEOUT_SHARE)
        try:
            decided = self._decide(fn, review=review, call=call, request=request, size=size)
            admission = await asyncio.wait_for(decided, deadline)
        except TimeoutError:
            late = TimeoutError(f"no decision within the {deadline:g}s admission deadline")
            admission = failed(pod, namespace=call.namespace, error=late)
        except Exception as error:  # Kopf's own machinery failed: still never block the pod
            admission = failed(pod, namespace=call.namespace, error=error)
        response = review_response(review, uid=uid, admission=admission)
        _record(admission, seconds=time.perf_counter() - started, timeout=timeout)
        return web.json_response(response)

    async def _decide(
        self,
        fn: kopf.WebhookFn,
        *,
        review: Mapping[str, Any],
        call: Pending,
        request: web.Request,
        size: int,
    ) -> Admission:
        """Kopf routes the call to our handler, which says how to decide; a large pod is decided
        on a decision thread, off the event loop."""
        webhook = request.match_info.get("id", "")
        decide = await route(
            fn,
            review=review,
            call=call,
            webhook=webhook,
            headers=request.headers,
            in_flight=self.in_flight,
        )
        if size <= INLINE_REVIEW_BYTES:
            return decide()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, decide)


async def _read_review(request: web.Request) -> tuple[dict[str, Any], int]:
    """The AdmissionReview in the body, and its size; refused (413) beyond MAX_REVIEW_BYTES,
    logged and counted: the API server then admits the pod as it came (failurePolicy Ignore)."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.ADMISSIONS.labels(outcome="refused", reason=Code.POD_TOO_LARGE.value).inc()
        log.warning(
            "admission refused",
            outcome="refused",
            reason=Code.POD_TOO_LARGE.value,
            message=f"the AdmissionReview is larger than {MAX_REVIEW_BYTES} bytes",
            bytes=request.content_length,
        )
        raise
    try:
        review = json.loads(body)
        for field in ("uid", "operation"):
            if not isinstance(review["request"][field], str):
                raise TypeError(f"the request's {field} is not a string")
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        # Not an AdmissionReview (or nested deeper than any pod): nothing to admit, and nothing
        # to answer it with.
        log.warning("not an AdmissionReview", reason=repr(error))
        raise web.HTTPBadRequest(reason=f"not an AdmissionReview: {error!r}") from error
    return dict(review), len(body)


def api_timeout(text: str | None) -> float | None:
    """Seconds from the API server's `timeout` query parameter (a Go duration such as `3s`, the
    webhook's timeoutSeconds), or None when absent or unreadable."""
    if not text or _DURATION.sub("", text):
        return None
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))
    return seconds if seconds > 0 else None


def review_response(
    review: Mapping[str, Any], *, uid: str, admission: Admission | None
) -> dict[str, Any]:
    """Always allowed; the patch is the engine's (none when the pod is left as it came, or when
    there was nothing to decide: `admission` None)."""
    answer: dict[str, Any] = {"uid": uid, "allowed": True}
    if admission is not None and admission.result.patch:
        encoded = json.dumps(admission.result.patch, separators=(",", ":")).encode()
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(encoded).decode("ascii")
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": answer,
    }


def outcome(admission: Admission) -> str:
    """injected (patched in a library), skipped (patched in why not), unchanged (nothing to
    patch: a reinvocation of an injected pod, an excluded namespace) or failed-open."""
    if admission.error is not None:
        return "failed-open"
    if not admission.result.patch:
        return "unchanged"
    return "injected" if admission.result.decision.injected else "skipped"


def _record(admission: Admission, *, seconds: float, timeout: float | None) -> None:
    decision = admission.result.decision
    kind = outcome(admission)
    metrics.ADMISSIONS.labels(outcome=kind, reason=decision.reason.code.value).inc()
    metrics.ADMISSION_SECONDS.observe(seconds)
    fields: dict[str, Any] = {
        "pod": decision.pod,
        "namespace": decision.namespace,
        "outcome": kind,
        "reason": decision.reason.code.value,
        "message": decision.reason.message,
        "policies": sorted({injected.policy for injected in decision.injected}),
        "ms": round(seconds * 1000, 3),
        "timeout": timeout,  # the API server's, for this call
    }
    if timeout is not None and seconds > timeout:
        # The API server stopped waiting before we answered: the pod went on as it came, with
        # no record on it. Counted from when our handler got the request: time spent queued before
        # that (a starved process) is not seen, so this is a lower bound.
        metrics.ADMISSIONS_LATE.labels(outcome=kind).inc()
        log.warning("admission answered late", seconds=round(seconds, 3), **fields)
    if admission.error is not None:
        log.error("admission failed open", error=repr(admission.error), **fields)
    elif decision.reason.code is Code.NAMESPACE_EXCLUDED:
        log.debug("admission", **fields)
    else:
        log.info("admission", **fields)
