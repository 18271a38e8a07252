"""What each app image's config says it runs (libinject.engine.detection), fetched in the
background for this replica's webhook.

The admission path never waits on a registry: each admission tells the Detector which images its
pod names (`want`: a dictionary lookup per container) and is decided with the table as it
stands, so the first pod of an image is injected as its policy says and its record says the
config was not known yet; the fetch follows at once, for the next pod. Configs are cached by
digest, since a digest's config never changes: a tag is asked for its digest again when it is
wanted after REFRESH_SECONDS, and its config fetched only if that digest is new. A config that
cannot be read (a private registry, no egress) detects nothing and is asked for again after
RETRY_SECONDS; the pod's record names the error. Both tables are bounded by CAPACITY, the least
recently wanted images dropped first, and at most PENDING_LIMIT images wait to be fetched.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from libinject.engine import references
from libinject.engine.detection import Detected, detect
from libinject.runtime import logs, metrics
from libinject.runtime.crane import ask

log = logs.get(__name__)
CAPACITY = 5000  # images (and digests) remembered: a cluster's distinct app images, with room
PENDING_LIMIT = 500  # images waiting to be fetched; beyond it, a pod's image waits for its next
PARALLEL = 2  # registry requests at once: fetching must never compete with admissions
REFRESH_SECONDS = 600.0  # how long a tag's digest is trusted before it is asked for again
RETRY_SECONDS = 60.0  # how long a failure stands before the config is asked for again
CONFIG_LIMIT = 1 << 20  # bytes of config JSON read: real ones are a few KiB
ERROR_LIMIT = 200  # characters of crane's message kept in a pod's record

Listener = Callable[[Mapping[str, Detected]], None]


@dataclass(frozen=True)
class _Entry:
    detected: Detected
    due: float  # monotonic time after which a wanted image is fetched again


class Detector:
    def __init__(
        self, *, crane: Path, capacity: int = CAPACITY, pending_limit: int = PENDING_LIMIT
    ) -> None:
        """The bounds are the operator's; the CLI, which reads what its input names once, has
        none."""
        self._crane = crane
        self._capacity = capacity
        self._pending_limit = pending_limit
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently wanted first
        self._configs: OrderedDict[str, Detected] = OrderedDict()  # by digest
        self._pending: dict[str, None] = {}  # images to fetch, in the order they were wanted
        self._wake = asyncio.Event()
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """`listener` gets the whole table after every change (a new, read-only mapping)."""
        self._listeners.append(listener)

    def want(self, pod: Mapping[str, Any]) -> None:
        """Marks the images `pod` names as wanted; those not known, or due, are fetched next."""
        now = time.monotonic()
        for image in _images(pod):
            entry = self._entries.get(image)
            if entry is not None:
                self._entries.move_to_end(image)
                if now < entry.due:
                    continue
            if image not in self._pending and len(self._pending) < self._pending_limit:
                self._pending[image] = None
                self._wake.set()

    @property
    def pending(self) -> tuple[str, ...]:
        """The images waiting to be fetched, first wanted first."""
        return tuple(self._pending)

    @property
    def table(self) -> Mapping[str, Detected]:
        """What each wanted image's config says, as far as fetched (a new, read-only mapping)."""
        return MappingProxyType({image: e.detected for image, e in self._entries.items()})

    async def keep_current(self) -> None:
        """Fetches what is wanted, as it is wanted."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.fetch_wanted()
            table = self.table
            metrics.INDEX_ENTRIES.labels(index="image_configs").set(len(table))
            for listener in self._listeners:
                listener(table)

    async def fetch_wanted(self) -> None:
        """Fetches every image wanted so far that is not known, or is due."""
        limit = asyncio.Semaphore(PARALLEL)
        batch = list(self._pending)
        found = await asyncio.gather(*(self._fetch(image, limit) for image in batch))
        for image, entry in zip(batch, found, strict=True):
            del self._pending[image]
            self._entries[image] = entry
            self._entries.move_to_end(image)
        _trim(self._entries, self._capacity)

    async def _fetch(self, image: str, limit: asyncio.Semaphore) -> _Entry:
        pinned = references.parse(image).digest  # _images took only what parses
        async with limit:
            found = await self._detect(image, digest=pinned)
        if isinstance(found, str):
            log.info("image config not read", image=image, error=found)
            why = f"its config could not be read: {found[:ERROR_LIMIT]}"
            return _Entry(Detected(frozenset(), why), time.monotonic() + RETRY_SECONDS)
        digest, detected = found
        self._configs[digest] = detected
        self._configs.move_to_end(digest)
        _trim(self._configs, self._capacity)
        refresh = float("inf") if pinned else REFRESH_SECONDS
        return _Entry(detected, time.monotonic() + refresh)

    async def _detect(self, image: str, *, digest: str) -> tuple[str, Detected] | str:
        """The image's digest and what its config says, or why they are not known; a digest
        seen before costs one request (none when the reference carries it)."""
        if not digest:
            digest, error = await ask(self._crane, "digest", "--", image)
            if error is not None:
                return error
            if not references.DIGEST.fullmatch(digest):
                return f"the registry's answer is no sha256 digest: {digest[:80]!r}"
        known = self._configs.get(digest)
        if known is not None:
            return digest, known
        text, error = await ask(self._crane, "config", "--", _at(image, digest))
        if error is not None:
            return error
        config = _config_object(text)
        if isinstance(config, str):
            return config
        detected = detect(config)
        log.info("image config read", image=image, digest=digest, detected=detected.evidence)
        return digest, detected


def _at(image: str, digest: str) -> str:
    """`image` pinned to `digest` (as it is, when it names one already)."""
    return image if "@" in image else f"{image}@{digest}"


def _config_object(text: str) -> Mapping[str, Any] | str:
    """The `config` object of an OCI image config document (empty when it has none), or why
    the document is not one."""
    if len(text) > CONFIG_LIMIT:
        return f"its config is over {CONFIG_LIMIT} bytes"
    try:
        document = json.loads(text)
    except ValueError:
        return "its config is not JSON"
    config = document.get("config") if isinstance(document, dict) else None
    return config if isinstance(config, dict) else {}


def _images(pod: Mapping[str, Any]) -> Iterator[str]:
    """The image references of the pod's containers and init containers that parse (anything
    else never reaches crane, whose flags a hostile name could otherwise mimic)."""
    spec = pod.get("spec")
    for key in ("initContainers", "containers"):
        listed = spec.get(key) if isinstance(spec, Mapping) else None
        for container in listed if isinstance(listed, list) else ():
            image = container.get("image") if isinstance(container, Mapping) else None
            if isinstance(image, str) and _parses(image):
                yield image


def _parses(image: str) -> bool:
    try:
        references.parse(image)
    except references.ReferenceError:
        return False
    return True


def _trim(table: OrderedDict[str, Any], capacity: int) -> None:
    while len(table) > capacity:
        table.popitem(last=False)
