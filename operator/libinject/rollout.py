"""Which workloads a policy change rolls out (`spec.rolloutOnChange`), as pure data.

A rollout is an annotation on the pod template, `libinject.dev/policy.<policy name>`, set to a hash
of the policy's spec: the workload controller then replaces its pods, and the webhook injects the
new ones as the policy now says. The hash makes it idempotent: a workload that already carries the
current hash is left alone, so re-running (a restart of the operator, a second replica) never
rolls anything out twice, and only a change of the spec does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libinject.api.types import InstrumentationPolicy
from libinject.engine.decision import Code
from libinject.engine.eligibility import INJECT_ANNOTATION, namespace_reason
from libinject.engine.index import Namespace
from libinject.engine.selectors import selects, selects_namespace
from libinject.engine.settings import NamespaceSettings

ANNOTATION_PREFIX = "libinject.dev/policy."
KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class Workload:
    """A pod-template owner, as the shell lists it."""

    kind: str
    namespace: str
    name: str
    template_labels: Mapping[str, str]
    template_annotations: Mapping[str, str]


NAME_LIMIT = 63  # the part of an annotation key after the prefix's "/"
KEPT = 40  # characters of a long policy name kept before its digest


def annotation(policy: str) -> str:
    """`libinject.dev/policy.<name>`; a name too long for a key is cut and given a digest of the
    whole name, so two long names never share a key."""
    key = f"{ANNOTATION_PREFIX}{policy}"
    if len(key.partition("/")[2]) <= NAME_LIMIT:
        return key
    digest = hashlib.sha256(policy.encode()).hexdigest()[:10]
    return f"{ANNOTATION_PREFIX}{policy[:KEPT]}-{digest}"


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A short, stable digest of the spec as stored (key order does not matter)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def selected_namespaces(
    policy: InstrumentationPolicy,
    *,
    namespaces: Mapping[str, Mapping[str, str]],
    settings: NamespaceSettings,
) -> list[str]:
    """The injection-enabled namespaces the policy selects: where its workloads can be."""
    selector = policy.spec.namespace_selector
    return sorted(
        name
        for name, labels in namespaces.items()
        if namespace_reason(Namespace(name, labels), settings).code is Code.NAMESPACE_ENABLED
        and selects_namespace(selector, name, labels)
    )


def due(
    policy: InstrumentationPolicy, *, digest: str, workloads: Iterable[Workload]
) -> list[Workload]:
    """The workloads (from the selected namespaces) to annotate with `digest`: those whose pod
    template the policy's podSelector selects, not opted out, not already at this digest."""
    key = annotation(policy.name)
    return [
        workload
        for workload in workloads
        if selects(policy.spec.pod_selector, workload.template_labels)
        and workload.template_annotations.get(INJECT_ANNOTATION) != "false"
        and workload.template_annotations.get(key) != digest
    ]
