"""Finding the pods in manifests: Pods, workload templates, CronJob job templates, Lists."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from libinject.cli.errors import InputError
from libinject.engine.owners import Workload, workload_of

# Where each kind keeps the pod (template) that the engine mutates.
POD_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass
class PodSlot:
    """A pod (template) inside a document, and how to put the mutated one back."""

    owner: dict[str, Any]
    path: tuple[str, ...]
    pod: dict[str, Any]

    @property
    def label(self) -> str:
        meta = self.owner.get("metadata") or {}
        name = f"{meta.get('namespace') or '-'}/{meta.get('name') or meta.get('generateName')}"
        return f"{self.owner.get('kind')} {name}"

    @property
    def workload(self) -> Workload | None:
        """The workload whose template this is (its pods' service name); for a Pod, the one its
        controller's ownerReference stands for, as the webhook reads it."""
        if not self.path:
            return workload_of(self.pod)
        name = (self.owner.get("metadata") or {}).get("name")
        if not isinstance(name, str) or not name:
            return None
        return Workload(str(self.owner.get("kind")), name)

    def replace(self, pod: dict[str, Any]) -> None:
        if not self.path:
            self.owner.clear()
            self.owner.update(pod)
            return
        parent = self.owner
        for key in self.path[:-1]:
            parent = parent[key]
        parent[self.path[-1]] = pod


def is_list(doc: Mapping[str, Any]) -> bool:
    kind = doc.get("kind")
    return kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in doc)


def pod_slots(doc: dict[str, Any], *, source: str, document: int) -> Iterator[PodSlot]:
    """Every pod in a document; Lists are walked in order; other kinds yield nothing. The
    document's shape is checked already (libinject.cli.objects, when it is loaded)."""
    if is_list(doc):
        for item in doc.get("items") or []:
            yield from pod_slots(item, source=source, document=document)
        return
    kind = doc.get("kind")
    if kind not in POD_PATHS:
        return
    pod: Any = doc
    for key in POD_PATHS[kind]:
        pod = pod.get(key) or {}
    slot = PodSlot(doc, POD_PATHS[kind], pod)
    if not (pod.get("spec") or {}).get("containers"):
        path = ".".join((*POD_PATHS[kind], "spec", "containers"))
        raise InputError(source, f"{path}: {slot.label} has no containers", document=document)
    yield slot


def namespace_of(doc: dict[str, Any], default: str) -> str:
    return str((doc.get("metadata") or {}).get("namespace") or default)
