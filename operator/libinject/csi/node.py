"""The CSI Node service: ephemeral inline volumes served from the node cache.

NodePublishVolume: validate the request, resolve the image from the volume attributes, make sure
the library is in the cache (waiting at most the publish timeout), record the publication, then
bind-mount the library read-only at the target path. A volume with the `writable: "true"`
attribute gets an overlay instead, for libraries that must write next to themselves: the cached
library as its lower directory (read-only, shared by every pod), and an upper and a work directory
of its own (`<root>/overlays/<volume id>/{upper,work}`, made after the record is written), so
writes land there and no other volume sees them. When the library cannot be made ready in
time (a pull error, the registry down, the timeout) an empty read-only directory is published
instead, so the pod starts uninstrumented rather than stuck, and the record, the log, the
`libinject_csi_empty_volumes_total` counter and (when the kubelet named the pod and Events are
on) a Warning Event on the pod say why. The cache entry is held (`Cache.hold`) from finding it
until the record names it and its last use is touched, so collection cannot remove it between.
NodeUnpublishVolume: unmount, remove the target directory, then a writable volume's overlay
directories (the record says `writable`, so this holds after a restart too), drop the record; an
unknown volume is already unpublished (OK). Every other Node call is UNIMPLEMENTED (the base
servicer's answer).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc

from libinject.csi import metrics, mounts, validate
from libinject.csi.cache import Cache, PullError
from libinject.csi.events import Pod, pod_of
from libinject.csi.generated import csi_pb2, csi_pb2_grpc
from libinject.csi.publications import EMPTY, Publication, Publications
from libinject.runtime import logs

DEFAULT_PUBLISH_TIMEOUT = 20.0
# What a publish keeps of the kubelet's own deadline for the mount and its answer.
DEADLINE_MARGIN = 1.0
# Times a publish looks for a library again when collection removed it as the publish found it.
ATTEMPTS = 2

_log = logs.get("libinject.csi.node")


def log_empty(publication: Publication, pod: Pod | None) -> None:
    """The log line of a volume published empty."""
    _log.warning(
        "library not ready: published an empty volume",
        volume_id=publication.volume_id,
        target_path=publication.target_path,
        image=publication.reference,
        reason=publication.reason,
        cause=publication.cause,
        pod=f"{pod.namespace}/{pod.name}" if pod else "",
    )


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    rules: validate.Rules
    publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT


class Node(csi_pb2_grpc.NodeServicer):  # type: ignore[misc]
    def __init__(
        self,
        config: NodeConfig,
        cache: Cache,
        publications: Publications,
        *,
        on_empty: Callable[[Publication, Pod | None], None] | None = None,
    ) -> None:
        self.config = config
        self.cache = cache
        self.publications = publications
        self.on_empty = on_empty
        self.overlays = cache.root / "overlays"
        self._locks_guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def NodeGetCapabilities(self, _request: Any, _context: Any) -> Any:  # noqa: N802 (gRPC's)
        return csi_pb2.NodeGetCapabilitiesResponse(capabilities=[])

    def NodeGetInfo(self, _request: Any, _context: Any) -> Any:  # noqa: N802
        return csi_pb2.NodeGetInfoResponse(node_id=self.config.node_id)

    def NodePublishVolume(self, request: Any, context: Any) -> Any:  # noqa: N802
        started = time.monotonic()
        rules = self.config.rules
        try:
            volume_id = validate.volume_id(request.volume_id)
            target = validate.target_path(request.target_path, rules.target_roots)
            if not request.HasField("volume_capability"):
                raise validate.RefusedError("volume_capability", "missing")
            if request.volume_capability.HasField("block"):
                raise validate.RefusedError("volume_capability", "block volumes are not served")
            reference = validate.image_for(dict(request.volume_context), rules)
            writable = validate.writable(dict(request.volume_context))
            if writable:
                validate.overlay_path(str(self.cache.images), "root")
                validate.overlay_path(str(self._overlay(volume_id)), "root")
            self._check_real_path(target)
        except validate.RefusedError as refused:
            _abort(context, grpc.StatusCode[refused.code.value], str(refused))
        with self._volume_lock(volume_id):
            existing = self.publications.get(volume_id)
            if existing is not None:
                if (
                    existing.target_path != target
                    or existing.reference != reference
                    or existing.writable != writable
                ):
                    _abort(
                        context,
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"volume {volume_id} is published at {existing.target_path} "
                        f"with {existing.reference}"
                        + (" (writable)" if existing.writable else " (read-only)"),
                    )
                if mounts.is_mounted(Path(target)):
                    return csi_pb2.NodePublishVolumeResponse()
            publication = self._publish(volume_id, Path(target), reference, writable, context)
        outcome = "empty" if publication.empty else "library"
        metrics.PUBLISH_SECONDS.labels(outcome).observe(time.monotonic() - started)
        if publication.empty:
            metrics.EMPTY_VOLUMES.labels(publication.cause).inc()
            pod = pod_of(request.volume_context)
            log_empty(publication, pod)
            if self.on_empty is not None:
                self.on_empty(publication, pod)
        else:
            _log.info(
                "volume published",
                volume_id=volume_id,
                target_path=target,
                digest=publication.digest,
                writable=publication.overlay,
            )
        return csi_pb2.NodePublishVolumeResponse()

    def NodeUnpublishVolume(self, request: Any, context: Any) -> Any:  # noqa: N802
        try:
            volume_id = validate.volume_id(request.volume_id)
            target = validate.target_path(request.target_path, self.config.rules.target_roots)
        except validate.RefusedError as refused:
            _abort(context, grpc.StatusCode[refused.code.value], str(refused))
        with self._volume_lock(volume_id):
            existing = self.publications.get(volume_id)
            if existing is None or existing.target_path != target:
                # Not ours at this target: nothing published, nothing to touch (spec: OK).
                return csi_pb2.NodeUnpublishVolumeResponse()
            path = Path(target)
            try:
                if mounts.is_mounted(path):
                    mounts.unmount(path)
                path.rmdir()
            except FileNotFoundError:
                pass
            except (mounts.MountError, OSError) as error:
                _abort(context, grpc.StatusCode.INTERNAL, f"unpublish {target}: {error}")
            if existing.writable:
                # Only now the overlay is unmounted: its upper directory is nobody's any more.
                try:
                    self._remove_overlay(volume_id)
                except OSError as error:
                    _abort(context, grpc.StatusCode.INTERNAL, f"unpublish {target}: {error}")
            if not existing.empty:
                # Before the record goes: collection then never sees it unused since long ago.
                self.cache.touch(existing.digest)
            self.publications.remove(volume_id)
        _log.info("volume unpublished", volume_id=volume_id, target_path=target)
        return csi_pb2.NodeUnpublishVolumeResponse()

    def _publish(
        self, volume_id: str, target: Path, reference: str, writable: bool, context: Any
    ) -> Publication:
        try:
            target.mkdir(parents=True, exist_ok=True)  # the plugin makes the target itself
        except OSError as error:
            _abort(context, grpc.StatusCode.INTERNAL, f"target {target}: {error}")
        publication = None
        for _ in range(ATTEMPTS):
            source, digest, reason, cause = self._library(reference, context)
            with nullcontext() if digest == EMPTY else self.cache.hold(digest):
                if digest != EMPTY and not source.is_dir():
                    continue  # collected after ensure found it: look again
                publication = self._record(
                    volume_id,
                    target,
                    reference,
                    digest=digest,
                    reason=reason,
                    cause=cause,
                    writable=writable,
                )
                if digest != EMPTY:
                    self.cache.touch(digest)
            break
        if publication is None:
            source = self.cache.empty
            why = "removed by collection as it was published"
            publication = self._record(
                volume_id,
                target,
                reference,
                digest=EMPTY,
                reason=why,
                cause=metrics.COLLECTED,
                writable=writable,
            )
        try:
            if publication.overlay:
                overlay = self._overlay(volume_id)
                upper, work = overlay / "upper", overlay / "work"
                self.overlays.mkdir(mode=0o700, exist_ok=True)
                overlay.mkdir(mode=0o700, exist_ok=True)
                upper.mkdir(mode=0o755, exist_ok=True)
                work.mkdir(mode=0o700, exist_ok=True)
                mounts.overlay(source, upper, work, target)
            else:
                mounts.bind_readonly(source, target)
        except (mounts.MountError, OSError) as error:
            message = str(error)
            try:
                if writable:
                    self._remove_overlay(volume_id)
                self.publications.remove(volume_id)
            except OSError as cleanup:  # the record stays: it names what is left to remove
                message += f" (and cleaning up: {cleanup})"
            _abort(context, grpc.StatusCode.INTERNAL, message)
        return publication

    def _record(
        self,
        volume_id: str,
        target: Path,
        reference: str,
        *,
        digest: str,
        reason: str,
        cause: str,
        writable: bool,
    ) -> Publication:
        if writable and digest == EMPTY:
            reason += "; served read-only although writable was asked (no library to overlay)"
        return self.publications.put(
            Publication(
                volume_id=volume_id,
                target_path=str(target),
                reference=reference,
                digest=digest,
                reason=reason,
                cause=cause,
                writable=writable,
            )
        )

    def _overlay(self, volume_id: str) -> Path:
        """A writable volume's overlay directories: `upper/` (its writes) and `work/`."""
        return self.overlays / volume_id

    def _remove_overlay(self, volume_id: str) -> None:
        """Removes a volume's overlay directories (gone already: nothing to do). Called only
        with the overlay unmounted (or never mounted)."""
        with suppress(FileNotFoundError):
            shutil.rmtree(self._overlay(volume_id))

    def _library(self, reference: str, context: Any) -> tuple[Path, str, str, str]:
        """The mount source, the digest (or EMPTY), why it is empty and the coarse cause ("", ""
        when not empty)."""
        timeout = self.config.publish_timeout
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, remaining - DEADLINE_MARGIN)
        try:
            entry = self.cache.ensure(reference, timeout=timeout)
        except TimeoutError:
            why = f"not ready within {max(timeout, 0):.1f}s"
            return self.cache.empty, EMPTY, why, metrics.TIMEOUT
        except PullError as error:
            return self.cache.empty, EMPTY, str(error), metrics.PULL_ERROR
        return entry.path, entry.digest, "", ""

    def _check_real_path(self, target: str) -> None:
        """The target with symlinks resolved must stay under a root (itself resolved)."""
        roots = [os.path.realpath(root) for root in self.config.rules.target_roots]
        if not validate.within(os.path.realpath(target), roots):
            raise validate.RefusedError("target_path", f"{target!r}: resolves outside the roots")

    @contextmanager
    def _volume_lock(self, volume_id: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(volume_id, threading.Lock())
        with lock:
            yield


def _abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("context.abort returns only by raising")  # pragma: no cover
