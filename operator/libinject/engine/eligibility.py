"""Should this pod be considered at all? One ordered function per level, each yielding a reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libinject.engine.decision import Code, Reason
from libinject.engine.index import Namespace
from libinject.engine.limits import size_reason
from libinject.engine.settings import NamespaceSettings

INJECT_LABEL = "libinject.dev/inject"
INJECT_ANNOTATION = "libinject.dev/inject"


def namespace_reason(namespace: Namespace, settings: NamespaceSettings) -> Reason:
    """Excluded namespaces first, then an explicit 'disabled', then opt-in (or the setting)."""
    name = namespace.name
    if name in settings.excluded or name == settings.operator_namespace:
        return Reason(Code.NAMESPACE_EXCLUDED, f"namespace {name} is never mutated", name)
    label = namespace.labels.get(INJECT_LABEL)
    if label == "disabled":
        return Reason(
            Code.NAMESPACE_DISABLED, f"namespace {name} has {INJECT_LABEL}=disabled", name
        )
    if label == "enabled":
        return Reason(Code.NAMESPACE_ENABLED, f"namespace {name} has {INJECT_LABEL}=enabled", name)
    if settings.mutate_unlabelled:
        return Reason(
            Code.NAMESPACE_ENABLED,
            f"namespace {name} is unlabelled and the operator mutates those",
            name,
        )
    return Reason(
        Code.NAMESPACE_NOT_ENABLED, f"namespace {name} lacks the label {INJECT_LABEL}=enabled", name
    )


def pod_reason(pod: Mapping[str, Any]) -> Reason | None:
    """Why this pod is skipped whatever the policies say, or None."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    spec = pod.get("spec") or {}
    if annotations.get(INJECT_ANNOTATION) == "false":
        return Reason(
            Code.POD_OPTED_OUT, f'the pod has the annotation {INJECT_ANNOTATION}: "false"'
        )
    node_os = (spec.get("nodeSelector") or {}).get("kubernetes.io/os")
    if (spec.get("os") or {}).get("name") == "windows" or node_os == "windows":
        return Reason(Code.WINDOWS_POD, "Windows pods are not instrumented")
    if not spec.get("containers"):
        return Reason(Code.NO_CONTAINERS, "the pod has no containers")
    return size_reason(spec)
