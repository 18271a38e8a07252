"""Each policy's library image tags resolved to digests, in the background, in every replica.

The webhook must decide in milliseconds and never wait on a registry, so it only reads the table
this keeps (libinject.engine.digests says what a pod gets from it). Every replica resolves for
its own webhook; the active reconciler's table also decides the policies' Ready condition. The
tags are those the policies' libraries name at their own versions; they are resolved when that
set changes and again every interval, which is how a moved tag is followed. A failed resolution
keeps the last known digest beside the error. `crane digest` asks the registry (plain HTTP for
localhost registries, credentials from crane's Docker config).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from libinject.api.types import InstrumentationPolicy
from libinject.engine import references
from libinject.engine.digests import Pin
from libinject.engine.versions import policy_images
from libinject.runtime import logs
from libinject.runtime.crane import ask

log = logs.get(__name__)
PARALLEL = 4  # registry requests at once: enough for hundreds of tags in one interval
ERROR_LIMIT = 300  # characters of crane's message kept in a status and a pod's record

Listener = Callable[[Mapping[str, Pin]], None]


class Resolver:
    def __init__(self, *, crane: Path, registry: str, interval: float) -> None:
        self._crane = crane
        self._registry = registry
        self._interval = interval
        self._wanted: tuple[str, ...] = ()
        self._by_policy: dict[str, tuple[str, ...]] = {}  # policy name -> its image tags
        self._named = Counter[str]()  # image tag -> how many policies name it
        self._pins: Mapping[str, Pin] = MappingProxyType({})
        self._wake = asyncio.Event()
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """`listener` gets the whole table after every change (a new, read-only mapping)."""
        self._listeners.append(listener)

    def policy_seen(self, name: str, policy: InstrumentationPolicy | None) -> None:
        """One policy as it is now (None: deleted, or invalid); a tag no policy named before is
        resolved at once. Each call costs that policy's tags only: the start-up listing of a
        thousand policies must not recompute all of them a thousand times."""
        images = () if policy is None else tuple(policy_images(policy, registry=self._registry))
        before = self._by_policy.pop(name, ())
        if images:
            self._by_policy[name] = images
        self._named.subtract(before)
        self._named.update(images)
        self._named = +self._named  # tags no policy names any more are dropped
        wanted = tuple(sorted(self._named))
        if wanted != self._wanted:
            self._wanted = wanted
            self._wake.set()

    async def keep_current(self) -> None:
        """Resolves every wanted tag, then again after the interval or a change of the tags."""
        while True:
            self._wake.clear()
            await self._resolve_all()
            with contextlib.suppress(TimeoutError):  # the interval passed: resolve them again
                await asyncio.wait_for(self._wake.wait(), self._interval)

    async def _resolve_all(self) -> None:
        wanted = self._wanted
        limit = asyncio.Semaphore(PARALLEL)
        found = await asyncio.gather(*(self._resolve(image, limit) for image in wanted))
        pins = dict(zip(wanted, found, strict=True))
        if pins == dict(self._pins):
            return
        for image, pin in pins.items():
            if pin != self._pins.get(image):
                _log_change(image, before=self._pins.get(image), after=pin)
        self._pins = MappingProxyType(pins)
        for listener in self._listeners:
            listener(self._pins)

    async def _resolve(self, image: str, limit: asyncio.Semaphore) -> Pin:
        known = self._pins.get(image)
        last = None if known is None else known.digest
        async with limit:
            answer, error = await ask(self._crane, "digest", image)
        if error is not None:
            return Pin(last, error[:ERROR_LIMIT])
        if not references.DIGEST.fullmatch(answer):
            return Pin(last, f"the registry's answer is no sha256 digest: {answer[:80]!r}")
        return Pin(answer)


def _log_change(image: str, *, before: Pin | None, after: Pin) -> None:
    if after.error is not None:
        log.warning(
            "image tag not resolved", image=image, error=after.error, last_digest=after.digest
        )
    elif before is not None and before.digest not in (None, after.digest):
        log.info("image tag moved", image=image, before=before.digest, digest=after.digest)
    else:
        log.info("image tag resolved", image=image, digest=after.digest)
