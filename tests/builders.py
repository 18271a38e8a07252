"""Small builders for test inputs: policies, pods and namespaces as plain dicts."""

from __future__ import annotations

from typing import Any

from libinject.api.parse import parse_policy
from libinject.api.types import InstrumentationPolicy
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import Result, inject
from libinject.engine.settings import EngineSettings

ENABLED = Namespace("apps", {"libinject.dev/inject": "enabled"})
RESTRICTED = Namespace(
    "locked",
    {"libinject.dev/inject": "enabled", "pod-security.kubernetes.io/enforce": "restricted"},
)
PYTHON = {"language": "python", "version": "4.16.0"}
JAVA = {"language": "java", "version": "1.56.0"}
NODEJS = {"language": "nodejs", "version": "6.21.0"}
MODES = ("init-container", "csi", "image-volume")
COMPLIANT_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def policy_object(name: str = "p", **spec: Any) -> dict[str, Any]:
    spec.setdefault("libraries", [PYTHON])
    return {
        "apiVersion": "libinject.dev/v1alpha1",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def policy(name: str = "p", **spec: Any) -> InstrumentationPolicy:
    return parse_policy(policy_object(name, **spec))


def container(name: str = "app", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": f"registry.example/{name}:1", **fields}


def pod(
    *containers: dict[str, Any],
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web"}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": {"containers": list(containers or [container()]), **spec}}


def run(
    target: dict[str, Any],
    *policies: InstrumentationPolicy,
    namespace: Namespace = ENABLED,
    settings: EngineSettings | None = None,
    explain: bool = False,
) -> Result:
    return inject(
        target,
        namespace=namespace,
        index=PolicyIndex(policies or [policy()]),
        settings=settings or EngineSettings(),
        explain=explain,
    )


def env_of(result: Result, name: str = "app") -> dict[str, Any]:
    """The env of one container of the result, by variable name."""
    spec = result.pod["spec"]
    everything = spec["containers"] + spec.get("initContainers", [])
    found = next(c for c in everything if c["name"] == name)
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in found.get("env", [])}


def restricted_pods() -> list[dict[str, Any]]:
    """Pods whose own containers already meet Pod Security `restricted`, in several shapes."""
    app = container("app", securityContext=COMPLIANT_CONTAINER)
    sidecar = container("mesh", restartPolicy="Always", securityContext=COMPLIANT_CONTAINER)
    limited = container(
        "app",
        securityContext=COMPLIANT_CONTAINER,
        resources={"limits": {"cpu": "1", "memory": "1Gi"}},
    )
    return [
        pod(app),
        pod(app, initContainers=[sidecar]),
        pod(limited, securityContext={"runAsUser": 1000}),
    ]


def plain_pods() -> list[dict[str, Any]]:
    """Pods that meet `baseline` only, as most applications are written."""
    return [pod(), pod(container("a"), container("b"))]
