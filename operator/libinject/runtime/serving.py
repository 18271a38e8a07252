"""The serving operator, run by every replica: Kopf indexes of policies and namespaces, and the
`@kopf.on.mutate` handler that asks the admission core about each new pod.

It runs standalone (no peering) on purpose: Kopf pauses every watch of a standby peer, indexes
included, and a webhook deciding on frozen caches would inject stale policies.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any, Protocol

import kopf

from libinject.admission import Caches, admit
from libinject.api.types import GROUP, PLURAL, VERSION, InstrumentationPolicy
from libinject.runtime import caches, heap, logs, metrics, webhook
from libinject.runtime.automode import AutoMode
from libinject.runtime.detection import Detector
from libinject.runtime.digests import Resolver
from libinject.runtime.handoff import InFlight
from libinject.runtime.probes import Readiness

INDEXES_PRIMED = "indexes primed"
log = logs.get(__name__)


class Deletions(Protocol):
    """Told of every deleted policy and namespace (the reconciler's picture)."""

    def forget_policy(self, name: str) -> None: ...

    def forget_namespace(self, name: str) -> None: ...


def registry(
    *,
    auto_mode: AutoMode,
    state: caches.CacheState,
    readiness: Readiness,
    in_flight: InFlight,
    deletions: Deletions,
    resolver: Resolver | None = None,
    detector: Detector | None = None,
) -> kopf.OperatorRegistry:
    """The serving operator's handlers. Its watches never pause, so it also tells `deletions` of
    every deletion: the reconciler's own watches pause in a standby replica, and on resume Kopf
    lists what exists but says nothing of what was deleted meanwhile, so without this a replica
    active again would keep those (a deleted rival would keep a live policy Conflicting). With
    digests pinned, `resolver` learns of every policy as it is indexed, and of its deletion; with
    languages detected, `detector` learns of every pod's images as it is admitted."""
    reg = kopf.OperatorRegistry()

    @kopf.index(GROUP, VERSION, PLURAL, id="policies", registry=reg)
    async def policies(body: kopf.Body, name: str, **_: Any) -> dict[str, InstrumentationPolicy]:
        entry = caches.policy_entry(body)
        if resolver is not None:  # parsed once, here, for both
            resolver.policy_seen(name, entry.get(caches.ALL))
        return entry

    # Whether our CSI driver is registered, and whether every node mounts image volumes, decide
    # what a policy's `auto` mode means.
    @kopf.index("storage.k8s.io", "v1", "csidrivers", id="csi_drivers", registry=reg)
    async def csi_drivers(name: str, **_: Any) -> dict[str, bool]:
        return {name: True}

    @kopf.on.event("", "v1", "nodes", id="node_versions", registry=reg)
    async def node_versions(name: str, type: str, status: kopf.Status, **_: Any) -> None:
        if type == "DELETED":
            auto_mode.node_gone(name)
        else:
            auto_mode.node_seen(name, status.get("nodeInfo"))

    @kopf.index("", "v1", "namespaces", id="namespace_labels", registry=reg)
    async def namespace_labels(body: kopf.Body, **_: Any) -> dict[str, dict[str, str]]:
        return caches.namespace_entry(body)

    # Kopf runs resource handlers only once every index has its initial listing, so the first
    # call of this one is the moment the caches are complete (a cluster always has namespaces).
    @kopf.on.event("", "v1", "namespaces", id="primed", registry=reg)
    async def primed(type: str, name: str, **kwargs: Any) -> None:
        if type == "DELETED":
            deletions.forget_namespace(name)
        _count(kwargs)
        if not state.primed:
            state.primed = True
            frozen = heap.freeze_start_up_heap()
            readiness.mark(INDEXES_PRIMED)
            log.info("indexes primed: the webhook now decides", frozen_objects=frozen)
            heap.release_free_memory()  # the listings' events are garbage now

    @kopf.on.event(GROUP, VERSION, PLURAL, id="counted", registry=reg)
    async def counted(type: str, name: str, **kwargs: Any) -> None:
        if type == "DELETED":
            deletions.forget_policy(name)
            if resolver is not None:
                resolver.policy_seen(name, None)
        _count(kwargs)

    @kopf.on.mutate(
        "",
        "v1",
        "pods",
        operations=["CREATE"],
        id=webhook.HANDLER_ID,
        registry=reg,
        ignore_failures=True,
    )
    async def mutate_pod(headers: dict[str, str], **kwargs: Any) -> None:
        # Kopf hands each index to handlers as a keyword argument named after its id.
        # The server runs the decision: here, only what to decide with.
        call = in_flight.call_for(headers)
        if detector is not None:  # for the next pod: this one is decided with what is known
            detector.want(call.pod)
        call.decide = functools.partial(
            admit,
            call.pod,
            namespace=call.namespace,
            caches=_snapshot(
                state.caches(kwargs["policies"], kwargs["namespace_labels"]), call.namespace
            ),
            settings=auto_mode.settings(csi_drivers=kwargs["csi_drivers"]),
        )

    return reg


def _snapshot(caches: Caches | None, namespace: str) -> Caches | None:
    """The caches as the decision thread may read them: the labels of the one namespace copied
    here, on the event loop, where Kopf changes its index (the policy index is rebuilt, never
    changed, when policies change)."""
    if caches is None:
        return None
    labels = caches.namespaces.get(namespace)
    return replace(caches, namespaces={} if labels is None else {namespace: dict(labels)})


def _count(indexes: dict[str, Any]) -> None:
    """Index sizes for /metrics, refreshed on every watch event rather than on the hot path."""
    policies = indexes["policies"]
    metrics.INDEX_ENTRIES.labels(index="policies").set(
        len(policies[caches.ALL]) if caches.ALL in policies else 0
    )
    metrics.INDEX_ENTRIES.labels(index="namespaces").set(len(indexes["namespace_labels"]))
