"""The durable record of each published volume: `<root>/volumes/<volume id>.json`.

A record is written (atomically) before the mount and removed after the unmount, so after a
crash or a restart the records still name every volume that may be mounted. Reference counts are
derived from them, never kept apart: a digest is in use while a record names it. A record also
says which target its volume holds, so a second volume id is never mounted over it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from libinject.csi.cache import write_atomic

EMPTY = "empty"  # the digest field of a volume published empty (the library was not ready)


@dataclass(frozen=True)
class Publication:
    volume_id: str
    target_path: str
    reference: str  # the image asked for
    digest: str  # sha256:<hex>, or EMPTY
    reason: str = ""  # why the volume is empty (a pull error, a timeout); "" when not
    cause: str = ""  # the reason's coarse kind (metrics.TIMEOUT, ...); "" when not empty
    published_at: float = 0.0  # seconds since the epoch

    @property
    def empty(self) -> bool:
        return self.digest == EMPTY


class Publications:
    """The records under `root/volumes/` (volume ids are validated before they get here)."""

    def __init__(self, root: Path) -> None:
        self.directory = root / "volumes"
        self.directory.mkdir(parents=True, exist_ok=True)
        # Which volumes each target (by real path) holds: read from the records once, then kept
        # with them, so a publish does not read every record to find its target free.
        self._guard = threading.Lock()
        self._targets: dict[str, set[str]] | None = None

    def get(self, volume_id: str) -> Publication | None:
        try:
            data = json.loads(self._path(volume_id).read_text())
        except FileNotFoundError:
            return None
        known = set(Publication.__dataclass_fields__)
        return Publication(**{key: value for key, value in data.items() if key in known})

    def put(self, publication: Publication) -> Publication:
        stamped = (
            publication
            if publication.published_at
            else Publication(**{**asdict(publication), "published_at": time.time()})
        )
        write_atomic(self._path(stamped.volume_id), asdict(stamped))
        with self._guard:
            targets = self._index()
            targets.setdefault(os.path.realpath(stamped.target_path), set()).add(stamped.volume_id)
        return stamped

    def remove(self, volume_id: str) -> None:
        old = self.get(volume_id)
        self._path(volume_id).unlink(missing_ok=True)
        if old is not None:
            with self._guard:
                self._index().get(os.path.realpath(old.target_path), set()).discard(volume_id)

    def all(self) -> list[Publication]:
        found = (self.get(p.stem) for p in sorted(self.directory.glob("*.json")))
        return [p for p in found if p is not None]

    def at_target(self, real_path: str) -> list[str]:
        """The ids of the volumes published at `real_path` (compared as real paths: a target
        named through a symlink is the directory it resolves to)."""
        with self._guard:
            return sorted(self._index().get(real_path, ()))

    def _index(self) -> dict[str, set[str]]:
        """The targets' volumes (the caller holds `_guard`)."""
        if self._targets is None:
            self._targets = {}
            for publication in self.all():
                volumes = self._targets.setdefault(os.path.realpath(publication.target_path), set())
                volumes.add(publication.volume_id)
        return self._targets

    def refcounts(self) -> dict[str, int]:
        """How many published volumes use each cached digest (empty volumes are not counted)."""
        return dict(Counter(p.digest for p in self.all() if not p.empty))

    def _path(self, volume_id: str) -> Path:
        return self.directory / f"{volume_id}.json"
