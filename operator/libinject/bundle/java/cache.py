"""The agent jars downloaded so far (`~/.cache/libinject/java/<artifact>-<version>.jar`).

A file enters the cache only once it was checked (against a lock, or against the repository's
published checksums), and it is checked again at each use: a copy that no longer passes is
replaced by a fresh download that passes, or left as it was when the download does not pass.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from libinject.bundle.java.agents import Agent
from libinject.bundle.java.maven import Digests, digests, download
from libinject.bundle.stages import BundleError

Check = Callable[[Digests], str | None]  # why these bytes are refused, or None


def jar_path(cache_dir: Path, agent: Agent, version: str) -> Path:
    return cache_dir / f"{agent.artifact}-{version}.jar"


def verified(
    url: str, *, path: Path, check: Check, say: Callable[[str], None]
) -> tuple[Digests, bool]:
    """The digests of the checked file at `path` and whether it had to be downloaded."""
    if path.is_file():
        cached = digests(path)
        if check(cached) is None:
            return cached, False
        say(f"the cached {path} does not pass its check; downloading it again")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}-") as work:
        partial = Path(work) / path.name
        fetched = download(url, to=partial, say=say)
        refused = check(fetched)
        if refused is not None:
            raise BundleError(refused)
        partial.replace(path)  # atomic: the cache never holds a half-written or refused file
    return fetched, True
