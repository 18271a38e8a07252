"""The reconciling operator: policy status and Events, active in one replica (Kopf peering).

Level-triggered: watch events of policies, namespaces and pods update an in-memory picture of
the cluster, then one pass (after a short settling pause, one at a time) writes every policy whose
status differs from what `status.reconcile` derives from the whole picture: a relabelled namespace
or a new rival policy changes other policies' status too. The work happens inside `on.event`
handlers on purpose: Kopf pauses them in a standby peer, so only the active replica writes. (A
daemon per policy would also do, but Kopf puts a finalizer on every object with a daemon, and a
policy must stay deletable while the operator is down.) Deletions also reach the picture from the
serving operator, whose watches never pause (serving.registry): a standby replica's watches do,
and Kopf's listing on resume says nothing of what was deleted meanwhile. Pods are the exception:
a second watch of them would double Kopf's per-object memory, so the listing on resume sweeps out
those it does not name (runtime.covered). A pass after pod changes alone reuses the last verdicts
and judges only those pods for the coverage counts (libinject.coverage).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import kopf

from libinject.api.parse import InvalidPolicyError
from libinject.api.types import GROUP, PLURAL, VERSION, InstrumentationPolicy
from libinject.engine.checks import usable_policy
from libinject.engine.digests import Pin
from libinject.engine.index import PolicyIndex
from libinject.engine.settings import EngineSettings
from libinject.runtime import caches, events, heap, kube, logs, metrics
from libinject.runtime.covered import CoveredPods
from libinject.runtime.rollouts import Rollouts
from libinject.status import READY, PolicyObject, Verdict, reconcile

SETTLE_SECONDS = 0.3  # a burst of watch events (start-up, kubectl apply -f dir/) is one pass
SETTLE_LIMIT_SECONDS = 5.0  # a burst that never pauses still gets a pass this often
RETRY_SECONDS = 30.0
KEPT_METADATA = ("name", "uid", "generation")
LISTED = "listed"  # the key of the two indexes that only wait for complete listings
log = logs.get(__name__)


class Picture:
    """Every policy (what passes read of it) and namespace as last seen, and what this replica
    last wrote."""

    def __init__(self, settings: EngineSettings, api: kube.Api) -> None:
        self.settings = settings
        self.api = api
        self.rollouts = Rollouts(api, settings.namespaces)
        self.policies: dict[str, Mapping[str, Any]] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.version = 0
        self.reconciled = 0  # the version the last finished pass saw
        self.written: dict[str, dict[str, Any]] = {}
        self.pods = CoveredPods()
        # Policies, namespaces and digests make up the world verdicts and coverage are judged
        # in; a pass after pod changes alone reuses its verdicts and judges those pods only.
        self._world = 0
        self._judged_world = -1
        self._verdicts: dict[str, Verdict] = {}
        self._index = PolicyIndex(())
        self._passes: asyncio.Future[None] | None = None
        self._retry: asyncio.TimerHandle | None = None

    def changed(self, *, world: bool = True) -> None:
        """Called after each change (`world`: of policies, namespaces or digests, not only of
        pods): one pass covers the whole burst. Handlers do not wait for it: thousands of them
        waiting, each holding its watch event's body, would make the process's peak (and,
        through the allocator, its resident size) grow with the burst."""
        self.version += 1
        if world:
            self._world += 1
        if self._passes is None or self._passes.done():
            self._passes = asyncio.ensure_future(self._settle())  # kept: tasks are weakly held

    async def _settle(self) -> None:
        """Passes after a settling pause, until one has seen every change made so far."""
        while self.reconciled < self.version:
            await self._quiet()
            seen = self.version
            try:
                failed = await self._pass()
            except Exception:  # a pass must never end the loop silently: retried like a failure
                log.exception("reconcile pass failed")
                failed = True
            self.reconciled = seen
            # What the burst's watch events took is garbage now: the resident size would keep it.
            await asyncio.to_thread(heap.release_free_memory)
            if failed and self._retry is None:  # a later pass retries them; the others are done
                self._retry = asyncio.get_running_loop().call_later(RETRY_SECONDS, self._retry_now)

    async def _quiet(self) -> None:
        """Until no change came for SETTLE_SECONDS, or for at most SETTLE_LIMIT_SECONDS: a pass in
        the middle of a burst writes statuses the rest of the burst changes again (1,000 policies
        created in 3 s were written about twice each)."""
        loop = asyncio.get_running_loop()
        limit = loop.time() + SETTLE_LIMIT_SECONDS
        while True:
            before = self.version
            await asyncio.sleep(SETTLE_SECONDS)
            if self.version == before or loop.time() >= limit:
                return

    async def _pass(self) -> bool:
        """Writes every policy whose status differs from what the picture derives; whether one
        of them failed."""
        namespaces = dict(self.namespaces)  # one snapshot: the watch keeps changing the dict
        world, everything = self._world, self._world != self._judged_world
        if everything:
            self._verdicts, self._index = await self._reconcile(namespaces)
            verdicts = self._verdicts
        else:  # the same verdicts, whose Events went out when they were new
            verdicts = {name: replace(v, events=()) for name, v in self._verdicts.items()}
        await asyncio.to_thread(
            partial(
                self.pods.judge,
                self.pods.work(everything=everything),
                everything=everything,
                index=self._index,
                namespaces=namespaces,
                settings=self.settings.namespaces,
            )
        )
        self._judged_world = world
        failed = [
            name
            for name, verdict in verdicts.items()
            if not await self._one(name, self._counted(name, verdict), namespaces=namespaces)
        ]
        _count(verdicts)
        if failed:  # the retry derives them again, Events and all
            self._world += 1
        return bool(failed)

    async def _reconcile(
        self, namespaces: Mapping[str, Mapping[str, str]]
    ) -> tuple[dict[str, Verdict], PolicyIndex]:
        """Each policy's verdict, and the engine's index of the usable ones (which decides the
        pods each covers). In a thread: at thousands of policies and namespaces this takes a
        good part of a second, which on the loop would stall this replica's admissions."""
        objects = [self._policy_object(name, body) for name, body in self.policies.items()]
        bodies = list(self.policies.values())

        def derive() -> tuple[dict[str, Verdict], PolicyIndex]:
            verdicts = reconcile(
                objects,
                namespaces=namespaces,
                settings=self.settings.namespaces,
                now=datetime.now(UTC),
                libraries=self.settings.libraries,
            )
            return verdicts, PolicyIndex(_usable(bodies))

        return await asyncio.to_thread(derive)

    def _counted(self, name: str, verdict: Verdict) -> Verdict:
        """The verdict with the pods the policy covers (libinject.coverage)."""
        return replace(verdict, status={**verdict.status, **self.pods.status(name)})

    def use_digests(self, digests: Mapping[str, Pin]) -> None:
        """The digests the operator now knows: statuses name the images it cannot resolve."""
        libraries = replace(self.settings.libraries, digests=digests)
        self.settings = replace(self.settings, libraries=libraries)
        self.changed()

    def forget_policy(self, name: str) -> None:
        self.policies.pop(name, None)
        self.written.pop(name, None)
        self.rollouts.forget(name)

    def forget_namespace(self, name: str) -> None:
        self.namespaces.pop(name, None)

    def _retry_now(self) -> None:
        self._retry = None
        self.changed()

    def saw(self, name: str, body: Mapping[str, Any], *, listed: bool = False) -> bool:
        """Keeps the policy; whether a pass must look at it again: not when the event only
        echoes our own status write. Those echoes are most of the events after a burst, and each
        pass over 1,000 policies and 10,000 namespaces is a second of CPU taken from the writes.
        A `listed` body (a watch started again: at start, or a standby replica resuming) is the
        server's status as it is now: what we wrote before may have been overwritten since."""
        previous, kept = self.policies.get(name), _kept(body)
        self.policies[name] = kept
        if listed:
            self.written.pop(name, None)
        if self.written.get(name) != dict(kept.get("status") or {}):
            return True
        del self.written[name]  # our write came back: the watched status is current again
        return previous is None or _decided_by(previous) != _decided_by(kept)

    def _policy_object(self, name: str, body: Mapping[str, Any]) -> PolicyObject:
        return PolicyObject(
            name=name,
            generation=int((body.get("metadata") or {}).get("generation") or 0),
            body=body,
            status=self._status(name, body),
        )

    def _status(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The policy's status as it is on the server: our last write until the watch echoes it,
        so a pass in between neither repeats its Events nor restarts its transition times."""
        return self.written.get(name) or dict(body.get("status") or {})

    async def _one(
        self, name: str, verdict: Verdict, *, namespaces: Mapping[str, Mapping[str, str]]
    ) -> bool:
        """Writes one policy's status and follows its rollout; a failure is reported on the
        policy and does not stop the others. A policy deleted during the pass is skipped: its
        DELETED event has taken it out of the picture."""
        body = self.policies.get(name)
        if body is None:
            return True
        try:
            await self._apply(name, body, verdict)
            await self.rollouts.follow(body, namespaces=namespaces)
        except Exception as error:  # the pass must go on for every other policy
            log.exception("policy not reconciled", policy=name)
            message = f"not reconciled, retried in {RETRY_SECONDS:.0f}s: {error}"[:1000]
            events.post(body, type="Warning", reason="ReconcileFailed", message=message)
            return False
        return True

    async def _apply(self, name: str, body: Mapping[str, Any], verdict: Verdict) -> None:
        current = self._status(name, body)
        if verdict.status == current:
            return
        # A merge patch: absent keys are removed explicitly so no field of an old verdict lingers.
        patch = {"status": {**dict.fromkeys(current), **verdict.status}}
        # Noted before the call: the write's echo can reach `saw` on the event loop while the call
        # is still in its thread, and must find it there (else it would stay, masking the server's
        # status from every later pass).
        before = self.written.get(name)
        self.written[name] = verdict.status
        try:
            await asyncio.to_thread(
                self.api.patch, f"/apis/{GROUP}/{VERSION}/{PLURAL}/{name}/status", patch
            )
        except Exception as error:
            _restore(self.written, name, before)
            if isinstance(error, kube.ApiError) and error.status == 404:
                return  # deleted meanwhile: its DELETED event is on the way
            raise
        metrics.STATUS_WRITES.inc()
        ready = _ready(verdict)
        log.info("policy status", policy=name, ready=ready["status"], reason=ready["reason"])
        for event in verdict.events:
            events.post(body, type=event.type, reason=event.reason, message=event.message)


def _usable(bodies: Iterable[Mapping[str, Any]]) -> Iterator[InstrumentationPolicy]:
    """The policies the webhook would use (engine.checks.usable_policy), the others left out."""
    for body in bodies:
        with contextlib.suppress(InvalidPolicyError):
            yield usable_policy(body)


def _restore(written: dict[str, dict[str, Any]], name: str, before: dict[str, Any] | None) -> None:
    """Our record of a policy's status as it was before a write that failed."""
    if before is None:
        written.pop(name, None)
    else:
        written[name] = before


def _kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """What passes, rollouts and Events read of a policy (Events name it by kind, name and uid).
    The rest of a watched body, its managedFields and kubectl's last-applied copy above all, would
    be kept for every policy for nothing."""
    metadata = body.get("metadata") or {}
    kept = {key: body[key] for key in ("apiVersion", "kind", "spec", "status") if key in body}
    kept["metadata"] = {key: metadata[key] for key in KEPT_METADATA if key in metadata}
    return kept


def _decided_by(kept: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a kept policy a verdict is derived from (its status being ours)."""
    return (kept.get("spec"), kept["metadata"].get("generation"), kept["metadata"].get("uid"))


def _count(verdicts: Mapping[str, Verdict]) -> None:
    reasons = Counter(_ready(verdict)["reason"] for verdict in verdicts.values())
    for reason in ("Valid", "Invalid", "Paused"):
        metrics.POLICIES.labels(reason=reason).set(reasons.get(reason, 0))


def _ready(verdict: Verdict) -> dict[str, Any]:
    return next(c for c in verdict.status["conditions"] if c["type"] == READY)


def registry(picture: Picture) -> kopf.OperatorRegistry:
    reg = kopf.OperatorRegistry()

    # Indexes that hold nothing useful but make Kopf wait, before calling the handlers below, for
    # the complete listing of policies and namespaces: a first pass on half a cluster would write
    # wrong counts, spurious conflict Events, and rollouts of only the namespaces seen so far.
    # One key each: a key per object would cost Kopf a store per namespace.
    @kopf.index(GROUP, VERSION, PLURAL, id="listed-policies", registry=reg)
    async def listed_policies(**_: Any) -> dict[str, bool]:
        return {LISTED: True}

    @kopf.index("", "v1", "namespaces", id="listed-namespaces", registry=reg)
    async def listed_namespaces(**_: Any) -> dict[str, bool]:
        return {LISTED: True}

    @kopf.on.event(GROUP, VERSION, PLURAL, id="policy-seen", registry=reg)
    async def policy_seen(event: Mapping[str, Any], name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            picture.forget_policy(name)
        elif not picture.saw(name, event["object"], listed=event.get("type") is None):
            return
        picture.changed()

    # Every pod, for the counts of the policies that cover it: kept as a small summary, and
    # only a change of what coverage reads asks for a pass (status updates do not). One watch,
    # here: Kopf keeps a record of its own for every object it watches, a second watch would
    # double it. Deletions missed in standby are swept when the listing on resume is complete.
    @kopf.on.event("", "v1", "pods", id="pod-seen", registry=reg)
    async def pod_seen(
        event: Mapping[str, Any], namespace: str | None, name: str, **_: Any
    ) -> None:
        key = f"{namespace}/{name}"
        kind = event.get("type")
        if kind == "DELETED":
            changed = picture.pods.forget(key)
        elif kind is None:
            changed = picture.pods.listed(key, event["object"])
        else:
            changed = picture.pods.saw(key, event["object"])
        if changed:
            picture.changed(world=False)

    @kopf.on.event("", "v1", "namespaces", id="namespace-seen", registry=reg)
    async def namespace_seen(event: Mapping[str, Any], name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            picture.forget_namespace(name)
        else:
            labels = caches.labels_of(event["object"])
            if picture.namespaces.get(name) == labels:
                return  # other changes (annotations, status) move no count
            picture.namespaces[name] = labels
        picture.changed()

    return reg
