"""The lock of one Java agent release: its coordinates, size and SHA-256, committed beside the
image's definition (`images/java/locks/<flavor>-<version>.lock`), like requirements.lock.

A bundle is built only from bytes that match the lock. `libinject lock java` writes a lock
only for bytes that match the checksums Maven Central publishes for the artifact, and never
replaces a lock with different bytes: a published release does not change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libinject.api.types import Flavor
from libinject.bundle.java import cache
from libinject.bundle.java.agents import AGENTS
from libinject.bundle.java.maven import Digests, published_checksum
from libinject.bundle.stages import BundleError

_HEADER = (
    "# Written by `libinject lock java` after checking Maven Central's published checksums;\n"
    "# do not edit by hand.\n"
)
_KEYS = ("artifact", "size", "sha256")


@dataclass(frozen=True)
class Lock:
    artifact: str  # group:artifact:version
    size: int
    sha256: str

    def render(self) -> str:
        return f"{_HEADER}artifact {self.artifact}\nsize {self.size}\nsha256 {self.sha256}\n"

    def matches(self, found: Digests) -> bool:
        return (found.size, found.sha256) == (self.size, self.sha256)


def parse(text: str) -> Lock:
    """A lock's text as a Lock; ValueError says what is missing or wrong."""
    pairs = dict(
        line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    missing = [key for key in _KEYS if not pairs.get(key)]
    if missing:
        raise ValueError(f"it has no {', '.join(missing)}")
    sha256 = pairs["sha256"]
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256 {sha256!r} is not 64 lower-case hex digits")
    if not pairs["size"].isdigit():
        raise ValueError(f"size {pairs['size']!r} is not a number of bytes")
    return Lock(pairs["artifact"], int(pairs["size"]), sha256)


def lock_path(locks: Path, flavor: Flavor, version: str) -> Path:
    return locks / f"{flavor}-{version}.lock"


def read(locks: Path, flavor: Flavor, version: str) -> tuple[Path, Lock]:
    """The committed lock of this release, which must name this flavor's artifact."""
    path = lock_path(locks, flavor, version)
    if not path.is_file():
        raise BundleError(
            f"no lock for {flavor} {version} ({path}); check the release and write one with "
            f"`libinject lock java --flavor {flavor} --version {version} --locks {locks}`"
        )
    try:
        lock = parse(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise BundleError(f"{path} is not a lock: {error}") from error
    expected = AGENTS[flavor].coordinates(version)
    if lock.artifact != expected:
        raise BundleError(f"{path} locks {lock.artifact}, not {expected}")
    return path, lock


def write(
    *, flavor: Flavor, version: str, locks: Path, cache_dir: Path, say: Callable[[str], None]
) -> dict[str, object]:
    """Checks the release's jar against Maven Central's published checksums and writes its lock
    (or finds the same lock already there); a report of what was checked."""
    agent = AGENTS[flavor]
    url = agent.url(version)
    published = {algorithm: published_checksum(url, algorithm) for algorithm in ("sha1", "sha256")}
    if published["sha1"] is None:  # every artifact on Maven Central has one
        raise BundleError(
            f"Maven Central has no {agent.coordinates(version)}: {url}.sha1 is not there"
        )

    def check(found: Digests) -> str | None:
        return unpublished(found, published=published, url=url)

    jar = cache.jar_path(cache_dir, agent, version)
    found, _ = cache.verified(url, path=jar, check=check, say=say)
    lock = Lock(agent.coordinates(version), found.size, found.sha256)
    path = lock_path(locks, flavor, version)
    changed = _store(path, lock)
    say(f"{path} {'written' if changed else 'already holds this lock'}")
    return {
        "lock": str(path),
        "artifact": lock.artifact,
        "size": lock.size,
        "sha256": lock.sha256,
        "checked_against": sorted(a for a, digest in published.items() if digest is not None),
        "changed": changed,
    }


def unpublished(found: Digests, *, published: dict[str, str | None], url: str) -> str | None:
    """Why bytes with these digests are not what the repository published for `url` (its
    checksum of an algorithm differs), or None; an algorithm it publishes no file for is not
    compared."""
    ours = {"sha1": found.sha1, "sha256": found.sha256}
    for algorithm, theirs in sorted(published.items()):
        if theirs is not None and theirs != ours[algorithm]:
            return (
                f"{url} has {algorithm} {ours[algorithm]}, but Maven Central publishes "
                f"{theirs}: refusing to lock it"
            )
    return None


def _store(path: Path, lock: Lock) -> bool:
    """Writes the lock unless the same one is there; refuses to replace a different one."""
    if path.exists():
        try:
            old = parse(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise BundleError(f"{path} is not a lock ({error}); it is left as it is") from error
        if old == lock:
            return False
        raise BundleError(
            f"{path} locks {old.artifact} to {old.size} bytes with sha256 {old.sha256}, but "
            f"Maven Central now serves {lock.size} bytes with sha256 {lock.sha256}. A released "
            "artifact should never change: the lock is left as it is"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(lock.render(), encoding="utf-8")
    os.replace(partial, path)
    return True
