"""Reading manifests/ the way kubectl does, for the tests of what it installs."""

from __future__ import annotations

import copy
import json
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


def dry_run_apply(kubectl: Kubectl, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Server-side dry-run apply; fails on a refusal or a warning. Returns the objects as the
    server would store them.

    The session installs an overlay (tests/cluster/fixtures.py), whose webhook is called by URL;
    an apply merges into what is there, and a `service` next to that `url` is refused. So the
    webhook configuration is dry-run under a name of its own: it is checked as written, whatever
    is installed."""
    objects = copy.deepcopy(objects)
    for obj in objects:
        if obj["kind"] == "MutatingWebhookConfiguration":
            obj["metadata"]["name"] += "-dry-run"
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=test-manifests",
        "--force-conflicts",
        "-o",
        "json",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr  # e.g. "would violate PodSecurity"
    stored = json.loads(result.stdout)
    items: list[dict[str, Any]] = stored["items"] if stored["kind"] == "List" else [stored]
    assert len(items) == len(objects)
    return items
