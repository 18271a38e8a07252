"""The webhook's pure core: one pod CREATE in, the pod to admit out. It never raises.

The Kopf handler (a thin shell) passes the pod, the namespace named by the AdmissionReview request
(pods made by controllers often carry none in their body), and what the operator's in-memory
indexes hold. Whatever stops the engine from deciding (caches not primed yet, a namespace the
caches have not seen, a bug) admits the pod without a library, recording why on the pod; a pod
that cannot even take that record is admitted exactly as it came. We never block a pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from libinject.engine.decision import Code, Decision, Reason
from libinject.engine.eligibility import namespace_reason
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import Result, inject, pod_name, skip
from libinject.engine.settings import EngineSettings

ERROR_MESSAGE_LIMIT = 300  # characters of an exception kept in the pod's annotation


@dataclass(frozen=True)
class Caches:
    """What the operator's watches hold, in the engine's terms."""

    index: PolicyIndex
    namespaces: Mapping[str, Mapping[str, str]]  # labels by namespace name


@dataclass(frozen=True)
class Admission:
    """What to admit, the decision behind it, and the error that cut it short, if any (for the
    log line and the metrics; the pod is admitted all the same)."""

    result: Result
    error: BaseException | None = None

    @property
    def outcome(self) -> Code:
        return self.result.decision.reason.code


def admit(
    pod: Mapping[str, Any],
    *,
    namespace: str,
    caches: Caches | None,
    settings: EngineSettings,
) -> Admission:
    """Decides for one pod. `caches` is None until the operator's indexes are primed."""
    try:
        return Admission(_decide(pod, namespace=namespace, caches=caches, settings=settings))
    except Exception as error:  # a bug of ours must never block a pod
        return failed(pod, namespace=namespace, error=error)


def _decide(
    pod: Mapping[str, Any],
    *,
    namespace: str,
    caches: Caches | None,
    settings: EngineSettings,
) -> Result:
    if caches is not None and namespace in caches.namespaces:  # the engine decides it all
        namespace_now = Namespace(namespace, caches.namespaces[namespace])
        return inject(pod, namespace=namespace_now, index=caches.index, settings=settings)
    # Undecidable; still, an excluded namespace is never touched, not even with a record.
    excluded = namespace_reason(Namespace(namespace), settings.namespaces)
    if excluded.code is Code.NAMESPACE_EXCLUDED:
        return Result(dict(pod), [], Decision(pod_name(pod), namespace, excluded))
    if caches is None:
        message = "the operator's caches of policies and namespaces are not primed yet"
        return skip(pod, namespace=namespace, reason=Reason(Code.NOT_READY, message, namespace))
    message = f"namespace {namespace} is not in the operator's cache yet"
    return skip(pod, namespace=namespace, reason=Reason(Code.NAMESPACE_UNKNOWN, message, namespace))


def failed(pod: Mapping[str, Any], *, namespace: str, error: BaseException) -> Admission:
    """The pod admitted without a library, with `error` recorded on it (for errors raised
    around the engine too, e.g. a deadline the webhook server enforces)."""
    message = f"{type(error).__name__}: {error}"[:ERROR_MESSAGE_LIMIT]
    reason = Reason(Code.INTERNAL_ERROR, message, namespace)
    try:
        return Admission(skip(pod, namespace=namespace, reason=reason), error)
    except Exception:  # too malformed to annotate: admit it as it came
        decision = Decision("<malformed pod>", namespace, reason)
        return Admission(Result(dict(pod), [], decision), error)
