"""Reading manifests/ the way kubectl does, for the tests of what it installs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cluster.kubectl import Kubectl

# A container's securityContext that meets Pod Security `restricted` by itself.
RESTRICTED_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def render(kubectl: Kubectl, path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of a directory: its objects."""
    return [d for d in yaml.safe_load_all(kubectl("kustomize", str(path)).stdout) if d]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]
