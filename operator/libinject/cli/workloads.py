"""Finding the pods in manifests: Pods, workload templates, CronJob job templates, Lists."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from libinject.cli.errors import InputError

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

    def replace(self, pod: dict[str, Any]) -> None:
        if not self.path:
            self.owner.clear()
            self.owner.update(pod)
            return
        parent = self.owner
        for key in self.path[:-1]:
            parent = parent[key]
        parent[self.path[-1]] = pod


def pod_slots(doc: dict[str, Any], *, source: str, document: int) -> Iterator[PodSlot]:
    """Every pod in a document; Lists are walked in order; other kinds yield nothing."""
    kind = doc.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in doc):
        for item in doc.get("items") or []:
            if isinstance(item, dict):
                yield from pod_slots(item, source=source, document=document)
        return
    if kind not in POD_PATHS:
        return
    pod: Any = doc
    for key in POD_PATHS[kind]:
        pod = pod.get(key) if isinstance(pod, dict) else None
    slot = PodSlot(doc, POD_PATHS[kind], pod if isinstance(pod, dict) else {})
    _check_pod(slot, source=source, document=document)
    yield slot


def _check_pod(slot: PodSlot, *, source: str, document: int) -> None:
    containers = (slot.pod.get("spec") or {}).get("containers")
    if not isinstance(containers, list) or not containers:
        raise InputError(source, f"{slot.label} has no containers", document=document)
    for container in containers:
        if not isinstance(container, dict) or not container.get("name"):
            raise InputError(
                source, f"{slot.label} has a container without a name", document=document
            )


def namespace_of(doc: dict[str, Any], default: str) -> str:
    return str((doc.get("metadata") or {}).get("namespace") or default)
