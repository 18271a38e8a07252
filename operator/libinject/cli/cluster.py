"""What `libinject explain` reads from a running cluster instead of files: the objects, the
policies, the namespaces' labels and what `auto` means there (the CSI driver, image volumes),
through the kubeconfig, with the operator's own API client (runtime.kube: plain JSON)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from libinject.api.parse import InvalidPolicyError, parse_policy
from libinject.api.types import GROUP, PLURAL, VERSION, InstrumentationPolicy
from libinject.cli.errors import InputError
from libinject.engine import imagevolumes
from libinject.engine.settings import ImageVolumeSupport
from libinject.runtime.kube import Api, ApiError, server_version

NOT_FOUND = 404
SOURCE = "the cluster"


@dataclass(frozen=True)
class Kind:
    """A kind `explain` reads: its API path, its plural, and its name in manifests."""

    group_path: str
    plural: str
    name: str
    api_version: str


_KINDS = (
    Kind("/apis/apps/v1", "deployments", "Deployment", "apps/v1"),
    Kind("/apis/apps/v1", "statefulsets", "StatefulSet", "apps/v1"),
    Kind("/apis/apps/v1", "daemonsets", "DaemonSet", "apps/v1"),
    Kind("/apis/batch/v1", "cronjobs", "CronJob", "batch/v1"),
    Kind("/apis/batch/v1", "jobs", "Job", "batch/v1"),
    Kind("/apis/apps/v1", "replicasets", "ReplicaSet", "apps/v1"),
    Kind("/api/v1", "replicationcontrollers", "ReplicationController", "v1"),
    Kind("/api/v1", "pods", "Pod", "v1"),
)
# What `kind/name` may say, as kubectl does: the kind, its plural, its short name.
_SHORT = {"deploy": "deployments", "sts": "statefulsets", "ds": "daemonsets", "cj": "cronjobs",
          "rs": "replicasets", "rc": "replicationcontrollers", "po": "pods"}  # fmt: skip
KINDS_BY_WORD = {
    word: kind
    for kind in _KINDS
    for word in (
        kind.plural,
        kind.name.lower(),
        *(s for s, p in _SHORT.items() if p == kind.plural),
    )
}


@dataclass
class ClusterView:
    """Everything one explain run needs, read before the engine runs."""

    documents: list[dict[str, Any]]
    namespaces: dict[str, dict[str, str]]
    policies: list[InstrumentationPolicy]
    invalid_policies: list[str] = field(default_factory=list)
    csi_registered: bool = False
    image_volumes: ImageVolumeSupport = field(default_factory=ImageVolumeSupport)


def read(api: Api, *, target: str | None, namespace: str | None, csi_driver: str) -> ClusterView:
    """`target` (`deployment/checkout`) in `namespace`; without a target every workload of
    `namespace`, or of every namespace when it is None."""
    documents = _target(api, target, namespace) if target else list(_workloads(api, namespace))
    policies, invalid = _policies(api)
    return ClusterView(
        documents=documents,
        namespaces=_namespaces(api, {_namespace(doc) for doc in documents}),
        policies=policies,
        invalid_policies=invalid,
        csi_registered=_csi_registered(api, csi_driver),
        image_volumes=_image_volumes(api),
    )


def _get(api: Api, path: str) -> dict[str, Any]:
    try:
        return api.get(path)
    except ApiError as error:
        raise InputError(SOURCE, f"GET {path}: {error}") from None


def _target(api: Api, target: str, namespace: str | None) -> list[dict[str, Any]]:
    word, slash, name = target.partition("/")
    kind = KINDS_BY_WORD.get(word.lower())
    if not slash or not name or kind is None:
        kinds = ", ".join(k.name.lower() for k in _KINDS)
        raise InputError(target, f"expected KIND/NAME, KIND one of {kinds}")
    return [_manifest(_get(api, f"{_collection(kind, namespace or 'default')}/{name}"), kind)]


def _workloads(api: Api, namespace: str | None) -> Iterator[dict[str, Any]]:
    """Every object whose pods a controller of its own does not make: Deployments but not their
    ReplicaSets, CronJobs but not their Jobs, bare Pods but not controllers' pods."""
    for kind in _KINDS:
        for item in _get(api, _collection(kind, namespace)).get("items") or ():
            if not _controlled(item):
                yield _manifest(item, kind)


def _collection(kind: Kind, namespace: str | None) -> str:
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{kind.group_path}{where}/{kind.plural}"


def _controlled(item: Mapping[str, Any]) -> bool:
    owners = (item.get("metadata") or {}).get("ownerReferences") or ()
    return any(isinstance(owner, Mapping) and owner.get("controller") for owner in owners)


def _manifest(item: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """An item as a manifest: lists leave out each item's apiVersion and kind."""
    return {"apiVersion": kind.api_version, "kind": kind.name, **item}


def _namespace(doc: Mapping[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("namespace") or "default")


def _namespaces(api: Api, names: set[str]) -> dict[str, dict[str, str]]:
    labels = {}
    for name in sorted(names):
        metadata = _get(api, f"/api/v1/namespaces/{name}").get("metadata") or {}
        labels[name] = dict(metadata.get("labels") or {})
    return labels


def _policies(api: Api) -> tuple[list[InstrumentationPolicy], list[str]]:
    """The valid policies, and why each other one is left out (as the operator leaves it)."""
    items = _get(api, f"/apis/{GROUP}/{VERSION}/{PLURAL}").get("items") or ()
    valid, invalid = [], []
    for item in items:
        try:
            valid.append(parse_policy(item))
        except InvalidPolicyError as error:
            invalid.append(str(error))
    return valid, invalid


def _csi_registered(api: Api, driver: str) -> bool:
    try:
        api.get(f"/apis/storage.k8s.io/v1/csidrivers/{driver}")
    except ApiError as error:
        if error.status == NOT_FOUND:
            return False
        raise InputError(SOURCE, f"reading the CSIDriver {driver}: {error}") from None
    return True


def _image_volumes(api: Api) -> ImageVolumeSupport:
    """As the operator judges it, from the API server's version and every node's."""
    try:
        version = server_version(api)
        nodes = api.get("/api/v1/nodes").get("items") or ()
    except ApiError as error:
        return ImageVolumeSupport(False, f"the nodes could not be read: {error}")
    problems = {
        str(node["metadata"]["name"]): imagevolumes.node_problem(
            str(node["metadata"]["name"]), (node.get("status") or {}).get("nodeInfo")
        )
        for node in nodes
    }
    return imagevolumes.support(server_version=version, node_problems=problems)
