"""The CSI Node service: ephemeral inline volumes served from the node cache.

NodePublishVolume: validate the request (a volume our webhook wrote, signed for the pod's
namespace: libinject.csi.validate), resolve the image, make sure the library is in the cache
(waiting at most the publish timeout), record the publication, then bind-mount the library
read-only at the target path. A refusal is answered with its gRPC code, logged, counted
(`libinject_csi_refused_publishes_total{reason}`) and, when the kubelet named the pod, reported
as a Warning Event on it: such a volume was not written by our webhook (or is malformed), so no
library is owed to its pod, and a refusal (the pod stays ContainerCreating, its events say why)
is the honest answer. A target that already holds another volume (its record, or any mount) is
refused ALREADY_EXISTS and left as it is. When the library cannot be made ready in time (a pull
error, the registry down, the timeout) the cache's read-only "not ready" directory is published
instead (no library; for Java, only the launcher jar JAVA_TOOL_OPTIONS names, which stands down),
so an injected pod starts uninstrumented rather than stuck, and the record, the log, the
`libinject_csi_empty_volumes_total` counter and a Warning Event on the pod say why. The cache
entry is held (`Cache.hold`) from finding it until the record names it and its last use is
touched, so collection cannot remove it between.
NodeUnpublishVolume: unmount the target only when this volume's record names it (never another
volume's mount), remove the target directory, drop the record; an unknown volume is already
unpublished (OK). Every other Node call is UNIMPLEMENTED (the base servicer's answer).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc

from libinject.csi import metrics, mounts, validate
from libinject.csi.cache import Cache, PullError
from libinject.csi.events import Pod, pod_of
from libinject.csi.generated import csi_pb2, csi_pb2_grpc
from libinject.csi.keys import Keys, KeyUnavailableError
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
        pod=_name(pod),
    )


def _name(pod: Pod | None) -> str:
    return f"{pod.namespace}/{pod.name}" if pod else ""


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
        keys: Keys,
        on_empty: Callable[[Publication, Pod | None], None] | None = None,
        on_refused: Callable[[str, str, Pod | None], None] | None = None,
    ) -> None:
        self.config = config
        self.cache = cache
        self.publications = publications
        self.keys = keys
        self.on_empty = on_empty
        self.on_refused = on_refused
        self._locks_guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def NodeGetCapabilities(self, _request: Any, _context: Any) -> Any:  # noqa: N802 (gRPC's)
        return csi_pb2.NodeGetCapabilitiesResponse(capabilities=[])

    def NodeGetInfo(self, _request: Any, _context: Any) -> Any:  # noqa: N802
        return csi_pb2.NodeGetInfoResponse(node_id=self.config.node_id)

    def NodePublishVolume(self, request: Any, context: Any) -> Any:  # noqa: N802
        started = time.monotonic()
        attributes = dict(request.volume_context)
        pod = pod_of(attributes)
        try:
            volume_id, target, reference = self._check(request, attributes, context)
        except validate.RefusedError as refused:
            self._refuse(context, request.volume_id, refused, pod)
        # The volume's lock, then its target's (by its real path: the mount table shows that one,
        # and two spellings of one directory are one target): a second id at the same target
        # waits, then sees the first one's record.
        real = os.path.realpath(target)
        with self._lock(f"volume:{volume_id}"), self._lock(f"target:{real}"):
            existing = self.publications.get(volume_id)
            if existing is not None:
                if existing.target_path != target or existing.reference != reference:
                    self._refuse(context, volume_id, _conflict(existing, target), pod)
                if mounts.is_mounted(Path(real)):
                    return csi_pb2.NodePublishVolumeResponse()
            else:
                self._check_target_free(context, volume_id, real, pod)
            publication = self._publish(volume_id, Path(target), reference, context)
        outcome = "empty" if publication.empty else "library"
        metrics.PUBLISH_SECONDS.labels(outcome).observe(time.monotonic() - started)
        if publication.empty:
            metrics.EMPTY_VOLUMES.labels(publication.cause).inc()
            log_empty(publication, pod)
            if self.on_empty is not None:
                self.on_empty(publication, pod)
        else:
            _log.info(
                "volume published",
                volume_id=volume_id,
                target_path=target,
                digest=publication.digest,
                pod=_name(pod),
            )
        return csi_pb2.NodePublishVolumeResponse()

    def NodeUnpublishVolume(self, request: Any, context: Any) -> Any:  # noqa: N802
        try:
            volume_id = validate.volume_id(request.volume_id)
            target = validate.target_path(request.target_path, self.config.rules.target_roots)
        except validate.RefusedError as refused:
            _abort(context, grpc.StatusCode[refused.code.value], str(refused))
        real = os.path.realpath(target)
        with self._lock(f"volume:{volume_id}"), self._lock(f"target:{real}"):
            existing = self.publications.get(volume_id)
            if existing is None or existing.target_path != target:
                # Not this volume's target: whatever is mounted there is another volume's (or
                # nobody's); nothing to touch (spec: OK).
                return csi_pb2.NodeUnpublishVolumeResponse()
            path = Path(real)
            try:
                if mounts.is_mounted(path):
                    mounts.unmount(path)
                path.rmdir()
            except FileNotFoundError:
                pass
            except (mounts.MountError, OSError) as error:
                _abort(context, grpc.StatusCode.INTERNAL, f"unpublish {target}: {error}")
            if not existing.empty:
                # Before the record goes: collection then never sees it unused since long ago.
                self.cache.touch(existing.digest)
            self.publications.remove(volume_id)
        _log.info("volume unpublished", volume_id=volume_id, target_path=target)
        return csi_pb2.NodeUnpublishVolumeResponse()

    def _check(
        self, request: Any, attributes: dict[str, str], context: Any
    ) -> tuple[str, str, str]:
        """The volume id, target and image of a request the plugin may serve (else raises
        RefusedError; aborts UNAVAILABLE while no signing key can be read: the kubelet retries)."""
        rules = self.config.rules
        volume_id = validate.volume_id(request.volume_id)
        target = validate.target_path(request.target_path, rules.target_roots)
        if not request.HasField("volume_capability"):
            raise validate.RefusedError("volume_capability", "missing")
        if request.volume_capability.HasField("block"):
            raise validate.RefusedError("volume_capability", "block volumes are not served")
        try:
            key = self.keys.current()
            try:
                reference = validate.image_for(attributes, rules, keys=[key])
            except validate.RefusedError as refused:
                fresh = self.keys.fresh() if refused.reason is validate.Reason.SIGNATURE else key
                if fresh == key:
                    raise
                reference = validate.image_for(attributes, rules, keys=[fresh])  # a new key
        except KeyUnavailableError as error:
            _log.warning("no signing key: publish deferred", volume_id=volume_id, error=str(error))
            _abort(context, grpc.StatusCode.UNAVAILABLE, f"no signing key yet: {error}")
        self._check_real_path(target)
        return volume_id, target, reference

    def _refuse(
        self, context: Any, volume_id: str, refused: validate.RefusedError, pod: Pod | None
    ) -> NoReturn:
        """Logs, counts and reports a refusal, then answers it."""
        metrics.REFUSED.labels(refused.reason.value).inc()
        _log.warning(
            "publish refused",
            volume_id=volume_id[:128],
            field=refused.field,
            reason=refused.reason.value,
            code=refused.code.value,
            error=str(refused),
            pod=_name(pod),
        )
        if self.on_refused is not None:
            self.on_refused(volume_id, str(refused), pod)
        _abort(context, grpc.StatusCode[refused.code.value], str(refused))

    def _check_target_free(self, context: Any, volume_id: str, real: str, pod: Pod | None) -> None:
        """A new volume's target (`real`: its real path) must hold no other volume: a second
        mount over it would hide the first, and the first one's unpublish would then unmount the
        second's layer."""
        others = self.publications.at_target(real)
        if others or mounts.is_mounted(Path(real)):
            holder = f"volume {others[0]}" if others else "another mount"
            refused = validate.RefusedError(
                "target_path",
                f"{real!r} already holds {holder}",
                validate.Code.ALREADY_EXISTS,
                validate.Reason.TARGET_IN_USE,
            )
            self._refuse(context, volume_id, refused, pod)

    def _publish(self, volume_id: str, target: Path, reference: str, context: Any) -> Publication:
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
                    volume_id, target, reference, digest=digest, reason=reason, cause=cause
                )
                if digest != EMPTY:
                    self.cache.touch(digest)
            break
        if publication is None:
            source = self.cache.not_ready
            why = "removed by collection as it was published"
            publication = self._record(
                volume_id, target, reference, digest=EMPTY, reason=why, cause=metrics.COLLECTED
            )
        try:
            mounts.bind_readonly(source, target)
        except (mounts.MountError, OSError) as error:
            self.publications.remove(volume_id)
            _abort(context, grpc.StatusCode.INTERNAL, str(error))
        return publication

    def _record(
        self, volume_id: str, target: Path, reference: str, *, digest: str, reason: str, cause: str
    ) -> Publication:
        return self.publications.put(
            Publication(
                volume_id=volume_id,
                target_path=str(target),
                reference=reference,
                digest=digest,
                reason=reason,
                cause=cause,
            )
        )

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
            return self.cache.not_ready, EMPTY, why, metrics.TIMEOUT
        except PullError as error:
            return self.cache.not_ready, EMPTY, str(error), metrics.PULL_ERROR
        return entry.path, entry.digest, "", ""

    def _check_real_path(self, target: str) -> None:
        """The target with symlinks resolved must stay under a root (itself resolved)."""
        roots = [os.path.realpath(root) for root in self.config.rules.target_roots]
        if not validate.within(os.path.realpath(target), roots):
            raise validate.RefusedError("target_path", f"{target!r}: resolves outside the roots")

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield


def _conflict(existing: Publication, target: str) -> validate.RefusedError:
    """The same volume id asked again with another target or image (CSI: ALREADY_EXISTS)."""
    return validate.RefusedError(
        "volume_id",
        f"volume {existing.volume_id} is published at {existing.target_path} with "
        f"{existing.reference}, not at {target} with this image",
        validate.Code.ALREADY_EXISTS,
        validate.Reason.VOLUME_IN_USE,
    )


def _abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("context.abort returns only by raising")  # pragma: no cover
