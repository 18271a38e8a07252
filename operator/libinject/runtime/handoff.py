"""How one admission passes through Kopf's dispatch to our `@kopf.on.mutate` handler and back,
on Kopf's public surface only.

Kopf calls a webhook server's function with the review and the request's `headers`, and hands
both to the handler as keyword arguments; what the handler returns, Kopf drops. So the server
keeps each admission in flight in a table, names it in one header it adds to the request's own
(replacing any value a client sent), and the handler looks the admission up by that header and
says on it how to decide. Kopf gets the pod reduced to what names it: it deep-copies what it
gets, on the event loop, and the handler reads the whole pod from the admission.

Kopf may change what it passes; `check_route` sends one review through it before the server
listens, so an upgrade that breaks this path stops the operator at start, with the reason,
instead of failing every pod open.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import kopf

from libinject.admission import Admission

HEADER = "X-Libinject-Admission"  # names the admission in flight (the server sets it)
CHECK_UID = "libinject-route-check"
_NAMES = ("name", "generateName", "namespace", "uid")
_KOPF = f"kopf {metadata.version('kopf')}"  # named in the errors: an upgrade is the likely cause


@dataclass
class Pending:
    """One admission in flight: what the handler needs, and how it decides (a call the server
    runs, on a decision thread when the pod is large)."""

    pod: Mapping[str, Any]
    namespace: str
    decide: Callable[[], Admission] | None = None


class KopfRouteError(RuntimeError):
    """Kopf did not hand our handler the admission it routed: the installed Kopf passes its
    handlers something else than the version this was built against."""


class InFlight:
    """The admissions being decided, by the key the server put in their header."""

    def __init__(self) -> None:
        self._calls: dict[str, Pending] = {}
        self._keys = itertools.count()

    def open(self, call: Pending, headers: Mapping[str, str]) -> dict[str, str]:
        """Registers `call`; returns the request's headers with its key added (for Kopf)."""
        key = str(next(self._keys))
        self._calls[key] = call
        return {**headers, HEADER: key}

    def close(self, headers: Mapping[str, str]) -> None:
        self._calls.pop(headers[HEADER], None)

    def call_for(self, headers: Mapping[str, str]) -> Pending:
        """The admission a handler call is for, from the `headers` Kopf passed the handler."""
        call = self._calls.get(headers.get(HEADER, ""))
        if call is None:
            raise KopfRouteError(
                f"{_KOPF} passed the handler no {HEADER} header of an admission"
                " in flight: the webhook cannot tell which pod to decide"
            )
        return call


def routing_review(review: Mapping[str, Any]) -> Any:
    """The review as Kopf gets it: the pod reduced to what names it. Typed Any: Kopf's own type
    for it (a TypedDict) is not exported."""
    payload = review["request"]
    pod = payload["object"]
    meta = pod.get("metadata")
    stub = {key: pod[key] for key in ("apiVersion", "kind") if key in pod}
    if isinstance(meta, Mapping):
        stub["metadata"] = {key: meta[key] for key in _NAMES if key in meta}
    return {**review, "request": {**payload, "object": stub}}


async def route(
    fn: kopf.WebhookFn,
    *,
    review: Mapping[str, Any],
    call: Pending,
    webhook: str,
    headers: Mapping[str, str],
    in_flight: InFlight,
) -> Callable[[], Admission]:
    """Kopf routes the review to our handler, which says on `call` how to decide: returns that."""
    named = in_flight.open(call, headers)
    try:
        answer: Mapping[str, Any] = await fn(routing_review(review), webhook=webhook, headers=named)
    finally:
        in_flight.close(named)
    if call.decide is None:
        # Kopf answers a handler's exception in the review's status.
        status = answer.get("response", {}).get("status") or {}
        why = status.get("message") or "no handler was called"
        raise KopfRouteError(f"{_KOPF}, webhook {webhook}: {why}")
    return call.decide


async def check_route(fn: kopf.WebhookFn, *, webhook: str, in_flight: InFlight) -> None:
    """One review of a nameless pod through Kopf to our handler; raises KopfRouteError, saying
    why, when the handler was not reached or could not find the admission."""
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {}}
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": CHECK_UID,
            "operation": "CREATE",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "userInfo": {"username": "libinject:route-check"},
            "dryRun": True,
            "object": pod,
        },
    }
    call = Pending(pod=pod, namespace="")
    await route(fn, review=review, call=call, webhook=webhook, headers={}, in_flight=in_flight)
