"""The pod's volumes, made on the host under the pod's directory.

emptyDir: a directory, mode 0777 as the kubelet makes it (medium and sizeLimit are ignored).
configMap, secret: their files (items map keys to paths); mounted read-only, as the kubelet
always does. image: the image's file system, read-only. The ServiceAccount token volume
(projected, `kube-api-access-*`) gets a token, the namespace and the cluster's CA bundle
(the namespace's kube-root-ca.crt ConfigMap): a dummy token unless the caller gives a real one
(the runner does for a pod it lets reach the API server, cluster.podrunner.runner.ClusterAccess).
It is filled, not skipped, because the ServiceAccount plugin (and libinject's copy container)
mount it. csi: published by the CSI node plugin the runner was given, as the kubelet
publishes an inline volume (cluster.podrunner.csi); the path is the plugin's target path, and
only the plugin's own driver is accepted. Anything else is refused.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from cluster import poll
from cluster.podrunner.csi import CSIVolumes
from cluster.podrunner.environment import Sources
from cluster.podrunner.errors import ContainerConfigError, UnsupportedVolumeError

TOKEN_VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"  # published in every namespace by the controller-manager
# No newline at the end, as in the kubelet's tokens: apps send it as a header value, which may not
# hold one (OpenTelemetry JS's EKS detector: Node throws, and its resource-detector-aws 3.0.0
# then crashes the process from a timer 2 s later).
DUMMY_TOKEN = "not-a-token: the pod runner gives pods no ServiceAccount credentials"
DEFAULT_MODE = 0o644
ROOT_CA_TIMEOUT = 30.0


@dataclass(frozen=True)
class Volume:
    name: str
    path: Path
    read_only: bool  # whatever the volumeMount says


class Unpacker(Protocol):
    def unpack(self, reference: str, target: Path) -> None: ...


def prepare_volumes(
    pod: Mapping[str, Any],
    *,
    directory: Path,
    sources: Sources,
    images: Unpacker,
    csi: CSIVolumes | None = None,
    token: str = DUMMY_TOKEN,
) -> dict[str, Volume]:
    """Makes every volume of the pod under `directory` (csi volumes through `csi`, which keeps
    what it published for the caller to unpublish); refuses the whole pod if one of them is of a
    type the runner does not support, before making any. `token` is the ServiceAccount token
    volume's."""
    specs = list(pod.get("spec", {}).get("volumes") or ())
    for spec in specs:
        _check(spec, csi)
    namespace = str(pod["metadata"]["namespace"])
    volumes = {}
    for spec in specs:
        name = str(spec["name"])
        if _kind(spec) == "csi":
            assert csi is not None  # _check refused it otherwise
            path = csi.publish(pod, spec)
            volumes[name] = Volume(name, path, read_only=bool(spec["csi"].get("readOnly")))
            continue
        volumes[name] = _make(
            spec, directory / name, sources=sources, images=images, namespace=namespace,
            token=token,
        )  # fmt: skip
    return volumes


def _kind(spec: Mapping[str, Any]) -> str:
    kinds = [key for key in spec if key != "name"]
    return kinds[0] if len(kinds) == 1 else "+".join(kinds) or "none"


def _check(spec: Mapping[str, Any], csi: CSIVolumes | None) -> None:
    kind = _kind(spec)
    if kind == "csi" and csi is not None:
        csi.plugin.check(spec)
        return
    token = kind == "projected" and str(spec["name"]).startswith(TOKEN_VOLUME_PREFIX)
    if kind not in ("emptyDir", "configMap", "secret", "image") and not token:
        raise UnsupportedVolumeError(str(spec["name"]), kind)


def _make(
    spec: Mapping[str, Any],
    path: Path,
    *,
    sources: Sources,
    images: Unpacker,
    namespace: str,
    token: str,
) -> Volume:
    name, kind = str(spec["name"]), _kind(spec)
    path.mkdir(parents=True)
    if kind == "emptyDir":
        path.chmod(0o777)  # mkdir's mode is cut by the umask
        return Volume(name, path, read_only=False)
    if kind == "image":
        images.unpack(str(spec["image"]["reference"]), path)
    elif kind == "projected":
        _fill_token(path, namespace=namespace, sources=sources, token=token)
    else:
        _fill_keys(name, spec[kind], path=path, read=_reader(kind, sources))
    return Volume(name, path, read_only=True)


def _reader(kind: str, sources: Sources) -> Callable[[str], dict[str, bytes] | None]:
    def config_map(name: str) -> dict[str, bytes] | None:
        found = sources.config_map(name)
        if found is None:
            return None
        text = {key: value.encode() for key, value in (found.get("data") or {}).items()}
        return text | _decoded(found.get("binaryData") or {})

    def secret(name: str) -> dict[str, bytes] | None:
        found = sources.secret(name)
        return None if found is None else _decoded(found.get("data") or {})

    return config_map if kind == "configMap" else secret


def _decoded(entries: Mapping[str, str]) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in entries.items()}


def _fill_keys(
    volume: str,
    source: Mapping[str, Any],
    *,
    path: Path,
    read: Callable[[str], dict[str, bytes] | None],
) -> None:
    """A configMap's or secret's keys as files; `items` picks keys and names their paths."""
    name = str(source.get("name") or source.get("secretName") or "")
    data = read(name)
    optional = bool(source.get("optional"))
    if data is None:
        if optional:
            return  # an optional source that is missing is an empty volume
        raise ContainerConfigError(f"volume {volume!r}: {name!r} not found")
    mode = int(source.get("defaultMode", DEFAULT_MODE))
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    for item in items:
        key = str(item["key"])
        if key not in data:
            if optional:
                continue
            raise ContainerConfigError(f"volume {volume!r}: {name!r} has no key {key!r}")
        _write(path, str(item["path"]), content=data[key], mode=int(item.get("mode", mode)))


def _write(root: Path, relative: str, *, content: bytes, mode: int) -> None:
    parts = PurePosixPath(relative)
    if parts.is_absolute() or ".." in parts.parts:
        raise ContainerConfigError(f"volume item path {relative!r} leaves the volume")
    target = root / parts
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod(mode)


def _fill_token(path: Path, *, namespace: str, sources: Sources, token: str) -> None:
    _write(path, "token", content=token.encode(), mode=DEFAULT_MODE)
    _write(path, "namespace", content=namespace.encode(), mode=DEFAULT_MODE)
    # The controller-manager publishes the bundle a moment after the namespace is made; the
    # kubelet retries the mount until it is there, and so do we (for a while).
    root_ca = poll.until(
        lambda: sources.config_map(ROOT_CA_CONFIG_MAP),
        what=f"ConfigMap {namespace}/{ROOT_CA_CONFIG_MAP}",
        timeout=ROOT_CA_TIMEOUT,
    )
    certificate = str(((root_ca or {}).get("data") or {}).get("ca.crt", ""))
    _write(path, "ca.crt", content=certificate.encode(), mode=DEFAULT_MODE)
