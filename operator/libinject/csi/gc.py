"""Collection of unused library versions: a cached image no publication record names is removed
once it has been unused for the grace period.

"Unused since" lives on the file system, so it survives a restart: each cache entry has a
`last-use` marker whose mtime is touched when the image is pulled, published and unpublished
(before the record goes away), so an entry whose last volume was unpublished an hour ago and one
pulled a second ago are told apart after a restart as before it. `collectable` is the decision,
pure; `Collector` runs it at start and then every interval in a background thread, and removes
an entry only under the cache's lock for that digest, which a publish holds from finding the
entry until its record is written, after reading the records again: an image published during a
pass is never removed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Set

from libinject.csi import metrics
from libinject.csi.cache import Cache
from libinject.csi.publications import Publications
from libinject.runtime import logs

DEFAULT_GRACE = 900.0  # seconds unused before removal (Datadog's driver waits about 15 min)
DEFAULT_INTERVAL = 60.0  # seconds between passes

_log = logs.get("libinject.csi.gc")


def collectable(
    last_use: Mapping[str, float], referenced: Set[str], now: float, grace: float
) -> list[str]:
    """The digests to remove: not referenced, and last used at least `grace` seconds ago."""
    return sorted(
        digest
        for digest, used in last_use.items()
        if digest not in referenced and now - used >= grace
    )


class Collector:
    """Runs collection passes over `cache`, by the records of `publications`."""

    def __init__(
        self,
        cache: Cache,
        publications: Publications,
        *,
        grace: float = DEFAULT_GRACE,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.publications = publications
        self.grace = grace
        self.interval = interval
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="gc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.collect()
            except Exception as error:  # a failed pass must not end collection for good
                _log.warning("collection pass failed", error=str(error))
            self._stopping.wait(self.interval)

    def collect(self) -> list[str]:
        """One pass; the digests it removed."""
        self.cache.remove_leftovers()
        referenced = set(self.publications.refcounts())
        candidates = collectable(self.cache.last_uses(), referenced, self._clock(), self.grace)
        removed = []
        for digest in candidates:
            with self.cache.hold(digest):
                # Again under the lock a publish holds until its record is written.
                if digest in self.publications.refcounts():
                    continue
                used = self.cache.last_uses().get(digest)
                if used is None or not collectable(
                    {digest: used}, set(), self._clock(), self.grace
                ):
                    continue
                self.cache.remove(digest)
            removed.append(digest)
            _log.info("unused library removed", digest=digest, unused_for=self._clock() - used)
        metrics.CACHE_IMAGES.set(len(self.cache.digests()))
        if removed:
            metrics.GC_REMOVED.inc(len(removed))
        return removed
