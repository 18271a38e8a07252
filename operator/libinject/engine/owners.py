"""The workload a pod belongs to, from the ownerReferences it carries at admission: the service
name of a pod whose labels name none.

Controllers write a pod's ownerReferences before they create it, so the webhook sees them; the
name of the workload a person wrote is recovered from the generated names:
- a ReplicaSet named `<deployment>-<pod-template-hash>` (the pod's `pod-template-hash` label
  says which suffix) is its Deployment; any other ReplicaSet is itself;
- a Job named `<cronjob>-<scheduled time in minutes>` (eight or more digits, as the CronJob
  controller names them) is its CronJob; any other Job is itself;
- a StatefulSet, a DaemonSet or a ReplicationController is itself.
A pod with no controller of those kinds (a bare pod, an operator's custom resource) has none.
The pod's shape is not trusted here: anything not of the expected type counts as absent. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_CRONJOB_JOB = re.compile(r"(?P<cronjob>.+)-[0-9]{8,}")
_ITSELF = frozenset({"StatefulSet", "DaemonSet", "ReplicationController"})


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str


def workload_of(pod: Mapping[str, Any]) -> Workload | None:
    """The workload `pod`'s controller stands for, or None."""
    metadata = pod.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    controller = _controller(metadata.get("ownerReferences"))
    if controller is None:
        return None
    kind, name = controller
    labels = metadata.get("labels")
    template_hash = labels.get("pod-template-hash") if isinstance(labels, Mapping) else None
    if kind == "ReplicaSet":
        suffix = f"-{template_hash}"
        if isinstance(template_hash, str) and template_hash and name.endswith(suffix):
            return Workload("Deployment", name.removesuffix(suffix))
        return Workload(kind, name)
    if kind == "Job":
        scheduled = _CRONJOB_JOB.fullmatch(name)
        return Workload("CronJob", scheduled["cronjob"]) if scheduled else Workload(kind, name)
    return Workload(kind, name) if kind in _ITSELF else None


def _controller(references: object) -> tuple[str, str] | None:
    """(kind, name) of the reference marked controller, else of the only one."""
    if not isinstance(references, list):
        return None
    usable = [
        (ref["kind"], ref["name"], ref.get("controller") is True)
        for ref in references
        if isinstance(ref, Mapping)
        and isinstance(ref.get("kind"), str)
        and isinstance(ref.get("name"), str)
        and ref["name"]
    ]
    marked = [(kind, name) for kind, name, controller in usable if controller]
    if marked:
        return marked[0]
    return (usable[0][0], usable[0][1]) if len(usable) == 1 else None
