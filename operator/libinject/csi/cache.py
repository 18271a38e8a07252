"""The node cache: each library image unpacked once, keyed by its manifest digest.

Layout under the plugin's root:
  images/<hex digest>/libinject/   the image's /libinject directory (the bind mount's source)
  images/<hex digest>/last-use     its mtime: when the image was last pulled, published or
                                   unpublished (collection of unused versions reads it; gc.py)
  images/.pull-*/                  a pull in progress (a crash leaves it: removed at start-up)
  refs/<sha256 of reference>.json  which digest a tag resolved to, once it was pulled
  not-ready/                       the directory published when a library is not ready: no
                                   library, only the files the plugin was given for it (the
                                   Java launcher jar and the Node.js loader, which then stand
                                   down: a JVM whose -javaagent jar is missing does not start,
                                   nor a Node whose --require file is)

A pull reads the reference's manifest (`crane manifest`) and picks the node's platform's image from
it when it is an index (libinject.csi.platforms), then exports that image *by its digest* (`crane
export REF@DIGEST -`), keeping only `libinject/` from the flattened file system. Integrity:
go-containerregistry checks that the manifest fetched by digest hashes to that digest, and checks
every layer blob against the digest the manifest gives as it reads it, so the files unpacked are
the ones the digest names; a reference pinned with `@sha256:` must name a manifest of that digest
(the index's, for an index). The export unpacks into a temporary directory that is renamed into
place, so a cache entry is complete or absent. Concurrent requests for one reference share one pull
(its future), which runs to its own deadline even when the publish that started it has given up, so
the next publish finds the library ready. Library tags name released versions and are treated as
immutable: once a tag was pulled, its recorded digest is used without asking the registry again (a
warm publish makes no network call, and works with the registry down).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from libinject.csi import metrics, platforms
from libinject.csi.platforms import Resolved
from libinject.engine.platforms import node_platform
from libinject.runtime import logs

LIBRARY_DIR = "libinject"
LAST_USE = "last-use"
GARBAGE_PREFIX = ".gc-"  # an entry being removed: renamed out of the way first
PULL_PREFIX = ".pull-"  # an entry being unpacked: renamed into place when complete
DEFAULT_PULL_TIMEOUT = 300.0

_log = logs.get("libinject.csi.cache")


class PullError(RuntimeError):
    """The library could not be pulled or unpacked; the message says why."""


@dataclass(frozen=True)
class Entry:
    digest: str  # sha256:<hex>
    path: Path  # the unpacked libinject/ directory


class Puller(Protocol):
    def resolve(self, reference: str, timeout: float) -> Resolved:
        """The digest of the manifest `reference` names, and of the image this node unpacks."""

    def export(self, pinned: str, into: Path, timeout: float) -> None:
        """Unpacks the `libinject/` directory of the image `pinned` (REF@DIGEST) into `into`."""


@dataclass(frozen=True)
class CranePuller:
    """Pulls with go-containerregistry's crane (plain http to localhost registries), the image
    of `platform` (this node's) from an index."""

    crane: Path
    platform: str = field(default_factory=node_platform)
    # A directory with a Docker config.json (registry credentials), read by crane at each pull,
    # so a renewed Secret counts without a restart; None: crane's default ($HOME/.docker).
    docker_config: Path | None = None

    def _env(self) -> dict[str, str] | None:
        if self.docker_config is None:
            return None
        return {**os.environ, "DOCKER_CONFIG": str(self.docker_config)}

    def resolve(self, reference: str, timeout: float) -> Resolved:
        try:
            result = subprocess.run(
                [str(self.crane), "manifest", reference],
                capture_output=True,
                timeout=timeout,
                check=False,
                env=self._env(),
            )
        except subprocess.TimeoutExpired as error:
            raise PullError(f"crane manifest {reference}: no answer in {timeout:.1f}s") from error
        except OSError as error:
            raise PullError(f"crane manifest {reference}: {error}") from error
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace")
            raise PullError(f"crane manifest {reference}: {_last_line(stderr)}")
        try:
            return platforms.resolve(result.stdout, self.platform)  # the bytes as served
        except ValueError as error:
            raise PullError(f"{reference}: {error}") from error

    def export(self, pinned: str, into: Path, timeout: float) -> None:
        try:
            process = subprocess.Popen(
                [str(self.crane), "export", pinned, "-"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env(),
            )
        except OSError as error:
            raise PullError(f"crane export {pinned}: {error}") from error
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                archive.extractall(into, filter=_library_only)
            stderr = process.stderr.read() if process.stderr else b""
            code = process.wait()
        except (tarfile.TarError, OSError) as error:
            process.kill()
            process.wait()
            raise PullError(f"crane export {pinned}: {error}") from error
        finally:
            timer.cancel()
        if code != 0:
            why = "timed out" if code < 0 else _last_line(stderr.decode(errors="replace"))
            raise PullError(f"crane export {pinned}: {why}")


def _library_only(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Only `libinject/...`, through tarfile's `data` filter (no escapes, devices, setuid)."""
    name = member.name.removeprefix("./")
    if name != LIBRARY_DIR and not name.startswith(LIBRARY_DIR + "/"):
        return None
    return tarfile.data_filter(member, dest)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


class Cache:
    """The node cache under `root`; `ensure` makes a library ready, sharing concurrent pulls."""

    def __init__(
        self,
        root: Path,
        puller: Puller,
        *,
        pull_timeout: float = DEFAULT_PULL_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        not_ready_files: Sequence[Path] = (),
    ) -> None:
        self.root = root
        self.images = root / "images"
        self.refs = root / "refs"
        self.not_ready = root / "not-ready"
        self._puller = puller
        self._pull_timeout = pull_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._pulls: dict[str, Future[Entry]] = {}
        self._holds_guard = threading.Lock()
        self._holds: dict[str, threading.Lock] = {}
        for directory in (self.images, self.refs, self.not_ready):
            directory.mkdir(parents=True, exist_ok=True)
        self._fill_not_ready(not_ready_files)
        self._remove_interrupted_pulls()

    def _fill_not_ready(self, files: Sequence[Path]) -> None:
        """Makes the not-ready directory hold exactly `files` (by name), read-only. A pod may
        have it mounted from an earlier run: a changed file is renamed over the old one, so
        the pod sees one or the other, whole."""
        self.not_ready.chmod(0o755)
        wanted = {file.name: file.read_bytes() for file in files}
        for present in self.not_ready.iterdir():
            if present.name in wanted:
                continue
            if present.is_dir() and not present.is_symlink():
                _remove_tree(present)
            else:
                present.unlink()
        for name, data in wanted.items():
            path = self.not_ready / name
            if not path.is_file() or path.read_bytes() != data:
                _write_readonly(path, data)
        self.not_ready.chmod(0o555)

    def _remove_interrupted_pulls(self) -> None:
        """Scratch directories of pulls a crash (SIGKILL, node reboot) cut short. Only at
        start-up: later, a `.pull-*` directory is a pull in progress."""
        for scratch in self.images.glob(PULL_PREFIX + "*"):
            _remove_tree(scratch)
            _log.info("interrupted pull removed", directory=scratch.name)

    def ensure(self, reference: str, timeout: float) -> Entry:
        """The unpacked library of `reference`, waiting at most `timeout` seconds.

        Raises PullError (the pull failed) or TimeoutError (not ready in time; the pull goes on).
        """
        with self._lock:
            ready = self.lookup(reference)
            if ready is not None:
                return ready
            pull = self._pulls.get(reference)
            if pull is None:
                pull = Future()
                self._pulls[reference] = pull
                threading.Thread(
                    target=self._pull, args=(reference, pull), name="pull", daemon=True
                ).start()
        return pull.result(timeout=max(timeout, 0.0))

    def lookup(self, reference: str) -> Entry | None:
        """The cached library of `reference` when its digest is known and unpacked: the image
        a pull recorded for it (for an index, the node's platform's), else the pinned digest."""
        digest = self._recorded(reference) or _pinned(reference)
        if digest is None:
            return None
        path = self.path_of(digest)
        return Entry(digest, path) if path.is_dir() else None

    def path_of(self, digest: str) -> Path:
        return self.images / digest.removeprefix("sha256:") / LIBRARY_DIR

    def digests(self) -> list[str]:
        """The digests unpacked in the cache."""
        return sorted(
            f"sha256:{p.name}" for p in self.images.iterdir() if not p.name.startswith(".")
        )

    @contextmanager
    def hold(self, digest: str) -> Iterator[None]:
        """The lock of one digest: a publish holds it from finding the entry until its record
        is written (and touched), collection while it checks the records and removes the entry."""
        with self._holds_guard:
            lock = self._holds.setdefault(digest, threading.Lock())
        with lock:
            yield

    def touch(self, digest: str) -> None:
        """Marks the entry of `digest` used now (no-op when it is not cached)."""
        marker = self.path_of(digest).parent / LAST_USE
        with suppress(FileNotFoundError):
            marker.touch()  # an existing marker gets mtime now

    def last_uses(self) -> dict[str, float]:
        """When each cached digest was last used (its marker's mtime, else its directory's)."""
        found = {}
        for digest in self.digests():
            entry = self.path_of(digest).parent
            for path in (entry / LAST_USE, entry):
                try:
                    found[digest] = path.stat().st_mtime
                    break
                except FileNotFoundError:
                    continue
        return found

    def remove(self, digest: str) -> None:
        """Removes the entry of `digest` (renamed away first, so it is absent at once) and the
        tag records that resolve to it. The caller holds `hold(digest)` and knows it unused."""
        entry = self.path_of(digest).parent
        garbage = entry.with_name(GARBAGE_PREFIX + entry.name)
        with suppress(FileNotFoundError):
            entry.rename(garbage)
        for ref in self.refs.glob("*.json"):
            if self._recorded_digest(ref) == digest:
                ref.unlink(missing_ok=True)
        _remove_tree(garbage)

    def remove_leftovers(self) -> None:
        """Entries a crash left half-removed, and tag records of digests no longer cached."""
        for garbage in self.images.glob(GARBAGE_PREFIX + "*"):
            _remove_tree(garbage)
        for ref in self.refs.glob("*.json"):
            digest = self._recorded_digest(ref)
            if digest is not None and not self.path_of(digest).is_dir():
                ref.unlink(missing_ok=True)

    def _pull(self, reference: str, pull: Future[Entry]) -> None:
        started = self._clock()
        try:
            entry = self._fetch(reference, deadline=started + self._pull_timeout)
        except BaseException as error:
            _log.warning("library pull failed", reference=reference, error=str(error))
            with self._lock:
                del self._pulls[reference]
            pull.set_exception(
                error if isinstance(error, PullError) else PullError(f"{reference}: {error}")
            )
            return
        with self._lock:
            del self._pulls[reference]
        pull.set_result(entry)

    def _fetch(self, reference: str, deadline: float) -> Entry:
        resolved = self._puller.resolve(reference, timeout=self._left(deadline))
        pinned = _pinned(reference)
        if pinned is not None and pinned != resolved.digest:
            raise PullError(f"{reference}: the registry resolves it to {resolved.digest}")
        digest = resolved.image
        path = self.path_of(digest)
        if not path.is_dir():
            name = reference.partition("@")[0]
            scratch = Path(tempfile.mkdtemp(prefix=PULL_PREFIX, dir=self.images))
            try:
                self._puller.export(f"{name}@{digest}", scratch, timeout=self._left(deadline))
                if not (scratch / LIBRARY_DIR).is_dir():
                    raise PullError(f"{reference}: the image has no /{LIBRARY_DIR} directory")
                (scratch / LAST_USE).touch()  # used now, from the moment it is in place
                try:
                    scratch.rename(path.parent)  # atomic: an entry is complete or absent
                except OSError:
                    if not path.is_dir():
                        raise
            finally:
                _remove_tree(scratch)  # read-only directories of a half-unpacked image too
            _log.info("library pulled", reference=reference, digest=digest)
            metrics.CACHE_IMAGES.set(len(self.digests()))
        self.touch(digest)
        self._record(reference, digest)
        return Entry(digest, path)

    def _left(self, deadline: float) -> float:
        left = deadline - self._clock()
        if left <= 0:
            raise PullError(f"the pull's deadline ({self._pull_timeout:.0f}s) passed")
        return left

    def _ref_file(self, reference: str) -> Path:
        return self.refs / f"{hashlib.sha256(reference.encode()).hexdigest()}.json"

    @staticmethod
    def _recorded_digest(ref: Path) -> str | None:
        try:
            digest = json.loads(ref.read_text()).get("digest")
        except (OSError, ValueError, AttributeError):
            return None
        return digest if isinstance(digest, str) else None

    def _recorded(self, reference: str) -> str | None:
        try:
            data = json.loads(self._ref_file(reference).read_text())
        except (OSError, ValueError):
            return None
        digest = data.get("digest") if data.get("reference") == reference else None
        return digest if isinstance(digest, str) else None

    def _record(self, reference: str, digest: str) -> None:
        write_atomic(self._ref_file(reference), {"reference": reference, "digest": digest})


def _remove_tree(path: Path) -> None:
    """Removes `path`, making read-only directories of an unpacked image writable as it goes."""

    def retry(function: Callable[..., object], name: str, _: object) -> None:
        os.chmod(os.path.dirname(name), 0o700)
        function(name)

    if path.exists():
        shutil.rmtree(path, onerror=retry)


def _write_readonly(path: Path, data: bytes) -> None:
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(scratch, 0o444)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def _pinned(reference: str) -> str | None:
    _, at, digest = reference.partition("@")
    return digest if at else None


def write_atomic(path: Path, data: object) -> None:
    """Writes JSON to `path` through a synced temporary file renamed over it."""
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
