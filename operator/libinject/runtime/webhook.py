"""The HTTPS admission endpoint: Kopf's webhook-server protocol, with what our webhook needs.

Kopf dispatches each AdmissionReview to our `@kopf.on.mutate` handler; this server wraps that call
to give the handler what Kopf does not (the request's namespace: pods made by controllers often
carry none in their body), to enforce a deadline, and to fail open: a timeout or any error admits
the pod without a library and says why on the pod. The answer carries the engine's own patch
(name-aware list edits) rather than Kopf's diff of a deep copy of the whole pod.

Certificate files are re-read when they change and swapped into the live TLS context, so rotation
never closes the listener (Kopf's server restarts it, refusing calls for a moment).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from kopf._cogs.structs import reviews  # the protocol's types; public only via this module

from libinject.admission import Admission, failed
from libinject.engine.decision import Code
from libinject.runtime import logs, metrics, pki

HANDLER_ID = "mutate-pods"  # also the URL path: /mutate-pods
FILE_CHECK_SECONDS = 5.0
log = logs.get(__name__)


@dataclass
class Pending:
    """One admission in flight: what the handler needs and what it decided."""

    pod: Mapping[str, Any]
    namespace: str
    admission: Admission | None = None


_pending: ContextVar[Pending] = ContextVar("libinject_pending_admission")


def pending() -> Pending:
    """The admission the current handler call is for (set by the server around Kopf's call)."""
    return _pending.get()


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

    async def __call__(self, fn: reviews.WebhookFn) -> AsyncIterator[reviews.WebhookClientConfig]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        digest = self._digest()

        async def serve(request: web.Request) -> web.Response:
            return await self._serve(fn, request)

        app = web.Application()
        app.router.add_post("/{id:.*}", serve)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            # reuse_port: replicas on one host (the tests' two-replica runs) share the port, and
            # the kernel spreads connections between them as a Service spreads them over pods.
            site = web.TCPSite(runner, None, self.port, ssl_context=context, reuse_port=True)
            await site.start()
            log.info("webhook listening", port=self.port, path=f"/{HANDLER_ID}")
            self.on_listening()
            # Kopf would write this into a managed configuration; ours ships in the manifests.
            yield reviews.WebhookClientConfig(url=f"https://localhost:{self.port}")
            while True:
                await asyncio.sleep(self.file_check_seconds)
                digest = self._reload_if_changed(context, digest)
        finally:
            await runner.cleanup()

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

    async def _serve(self, fn: reviews.WebhookFn, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            review = json.loads(await request.text())
            payload = review["request"]
            pod, uid = payload["object"], payload["uid"]
            if not isinstance(pod, dict):
                raise TypeError(f"the object is a {type(pod).__name__}, not a pod")
        except (ValueError, KeyError, TypeError) as error:
            # Not an AdmissionReview: nothing to admit, and nothing to answer it with.
            log.warning("not an AdmissionReview", reason=repr(error))
            raise web.HTTPBadRequest(reason=f"not an AdmissionReview: {error!r}") from error
        call = Pending(pod=pod, namespace=str(payload.get("namespace") or ""))
        token = _pending.set(call)
        try:
            await asyncio.wait_for(
                fn(review, webhook=request.match_info.get("id"), headers=dict(request.headers)),
                self.deadline,
            )
        except TimeoutError:
            late = TimeoutError(f"no decision within the {self.deadline}s admission deadline")
            call.admission = failed(pod, namespace=call.namespace, error=late)
        except Exception as error:  # Kopf's own machinery failed: still never block the pod
            call.admission = failed(pod, namespace=call.namespace, error=error)
        finally:
            _pending.reset(token)
        admission = call.admission or failed(
            pod, namespace=call.namespace, error=LookupError("no handler answered")
        )
        response = review_response(review, uid=uid, admission=admission)
        _record(admission, seconds=time.perf_counter() - started)
        return web.json_response(response)


def review_response(review: Mapping[str, Any], *, uid: str, admission: Admission) -> dict[str, Any]:
    """Always allowed; the patch is the engine's (empty when the pod is left as it came)."""
    answer: dict[str, Any] = {"uid": uid, "allowed": True}
    if admission.result.patch:
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


def _record(admission: Admission, *, seconds: float) -> None:
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
    }
    if admission.error is not None:
        log.error("admission failed open", error=repr(admission.error), **fields)
    elif decision.reason.code is Code.NAMESPACE_EXCLUDED:
        log.debug("admission", **fields)
    else:
        log.info("admission", **fields)
