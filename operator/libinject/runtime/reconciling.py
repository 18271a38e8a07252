"""The reconciling operator: policy status and Events, active in one replica (Kopf peering).

Level-triggered: watch events of policies and namespaces update an in-memory picture of the
cluster, then one pass (after a short settling pause, one at a time) writes every policy whose
status differs from what `status.reconcile` derives from the whole picture: a relabelled namespace
or a new rival policy changes other policies' status too. The work happens inside `on.event`
handlers on purpose: Kopf pauses them in a standby peer, so only the active replica writes. (A
daemon per policy would also do, but Kopf puts a finalizer on every object with a daemon, and a
policy must stay deletable while the operator is down.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client

from libinject.api.types import GROUP, VERSION
from libinject.engine.settings import EngineSettings
from libinject.runtime import events, logs, metrics
from libinject.runtime.rollouts import Rollouts
from libinject.status import READY, PolicyObject, Verdict, reconcile

PLURAL = "instrumentationpolicies"
SETTLE_SECONDS = 0.3  # a burst of watch events (start-up, kubectl apply -f dir/) is one pass
log = logs.get(__name__)


class Picture:
    """Every policy and namespace as last seen, and what this replica last wrote."""

    def __init__(self, settings: EngineSettings, api: client.ApiClient) -> None:
        self.settings = settings
        self.objects = client.CustomObjectsApi(api)
        self.rollouts = Rollouts(api, settings.namespaces)
        self.policies: dict[str, Mapping[str, Any]] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.version = 0
        self.reconciled = 0  # the version the last finished pass saw
        self.written: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def settle(self) -> None:
        """Called after each change: waits for the burst to end, then makes one pass for all of
        it (later callers find their change already covered)."""
        self.version += 1
        mine = self.version
        await asyncio.sleep(SETTLE_SECONDS)
        async with self._lock:
            if self.reconciled >= mine:
                return
            seen = self.version
            verdicts = reconcile(
                [_policy_object(body) for body in self.policies.values()],
                namespaces=self.namespaces,
                settings=self.settings.namespaces,
                now=datetime.now(UTC),
            )
            for name, verdict in verdicts.items():
                await self._apply(name, verdict)
                await self.rollouts.follow(self.policies[name], namespaces=self.namespaces)
            self.reconciled = seen
            _count(verdicts)

    async def _apply(self, name: str, verdict: Verdict) -> None:
        body = self.policies[name]
        current = dict(body.get("status") or {})
        # Our own write may not have come back through the watch yet: compare with it too.
        if verdict.status in (current, self.written.get(name)):
            return
        # A merge patch: absent keys are removed explicitly so no field of an old verdict lingers.
        patch = {"status": {**dict.fromkeys(current), **verdict.status}}
        try:
            await asyncio.to_thread(
                self.objects.patch_cluster_custom_object_status, GROUP, VERSION, PLURAL, name, patch
            )
        except client.ApiException as error:
            if error.status == 404:  # deleted meanwhile: its DELETED event is on the way
                return
            raise
        self.written[name] = verdict.status
        metrics.STATUS_WRITES.inc()
        ready = _ready(verdict)
        log.info("policy status", policy=name, ready=ready["status"], reason=ready["reason"])
        for event in verdict.events:
            events.post(body, type=event.type, reason=event.reason, message=event.message)


def _count(verdicts: Mapping[str, Verdict]) -> None:
    reasons = Counter(_ready(verdict)["reason"] for verdict in verdicts.values())
    for reason in ("Valid", "Invalid", "Paused"):
        metrics.POLICIES.labels(reason=reason).set(reasons.get(reason, 0))


def _ready(verdict: Verdict) -> dict[str, Any]:
    return next(c for c in verdict.status["conditions"] if c["type"] == READY)


def _policy_object(body: Mapping[str, Any]) -> PolicyObject:
    metadata = body.get("metadata") or {}
    return PolicyObject(
        name=str(metadata.get("name")),
        generation=int(metadata.get("generation") or 0),
        body=body,
        status=body.get("status") or {},
    )


def registry(*, settings: EngineSettings, api: client.ApiClient) -> kopf.OperatorRegistry:
    reg = kopf.OperatorRegistry()
    picture = Picture(settings, api)

    @kopf.on.event(GROUP, VERSION, PLURAL, id="policy-seen", registry=reg)
    async def policy_seen(event: Mapping[str, Any], name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            picture.policies.pop(name, None)
            picture.written.pop(name, None)
            picture.rollouts.forget(name)
        else:
            picture.policies[name] = event["object"]
        await picture.settle()

    @kopf.on.event("", "v1", "namespaces", id="namespace-seen", registry=reg)
    async def namespace_seen(event: Mapping[str, Any], name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            picture.namespaces.pop(name, None)
        else:
            labels = dict((event["object"].get("metadata") or {}).get("labels") or {})
            if picture.namespaces.get(name) == labels:
                return  # other changes (annotations, status) move no count
            picture.namespaces[name] = labels
        await picture.settle()

    return reg
