"""The CRD on a real API server: it installs and is explained, the server rejects what the model
rejects (naming the field), and accepts the examples with the model's defaults filled in."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from api.invalid_policies import INVALID
from cluster.fixtures import GROUP, PLURAL, VERSION
from cluster.kubectl import Kubectl
from libinject.api.crd import crd
from libinject.api.parse import parse_policy

REPO = Path(__file__).parents[2]
EXAMPLES = sorted((REPO / "examples" / "policies").glob("*.yaml"))


def _schema(*path: str) -> dict[str, Any]:
    node: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for name in path:
        node = node["properties"][name]
        node = node.get("items", node)
    return node


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize("path", [("spec",), ("spec", "libraries"), ("spec", "injection")])
def test_kubectl_explain_shows_the_descriptions(kubectl: Kubectl, path: tuple[str, ...]) -> None:
    """The server publishes our schema: each field's description is what `kubectl explain`
    prints (whitespace aside, since kubectl wraps lines)."""
    shown = _words(kubectl("explain", ".".join(("instrumentationpolicy", *path))).stdout)
    fields = _schema(*path)["properties"]
    assert fields
    for name, field in fields.items():
        assert f"{name} <" in shown, f"{name} missing from kubectl explain"
        assert _words(field["description"]) in shown, f"{name}'s description missing"


@pytest.mark.usefixtures("installed")
def test_crd_is_established_with_its_short_name(kubectl: Kubectl) -> None:
    crd_status = json.loads(kubectl("get", "crd", f"{PLURAL}.{GROUP}", "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd_status["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert kubectl("get", "ipol").returncode == 0


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InstrumentationPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def _server_path(path: str) -> str:
    """The server names map entries `matchLabels.app` where the parser says `matchLabels[app]`."""
    return re.sub(r"\[([^\]\d][^\]]*)\]", r".\1", path)


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(("spec", "path"), [pytest.param(s, p, id=i) for i, s, p, _ in INVALID])
def test_server_rejects_invalid_policies(
    admin: client.ApiClient, spec: dict[str, Any], path: str
) -> None:
    """Each case the Python parser rejects, the API server rejects too, naming the same field
    (a dry-run create: the full admission and validation chain, nothing stored)."""
    api = client.CustomObjectsApi(admin)
    with pytest.raises(ApiException) as rejected:
        api.create_cluster_custom_object(
            GROUP, VERSION, PLURAL, _policy("invalid", spec), dry_run="All"
        )
    assert rejected.value.status == 422, rejected.value.body
    causes = json.loads(str(rejected.value.body))["details"]["causes"]
    fields = [cause.get("field", "") for cause in causes]
    assert _server_path(path) in fields, causes


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_are_accepted_with_defaults(admin: client.ApiClient, example: Path) -> None:
    """The server fills in the schema's defaults, and they are the model's: parsing what the
    server returns gives the same policy as parsing the file."""
    written = yaml.safe_load(example.read_text())
    stored: Any = client.CustomObjectsApi(admin).create_cluster_custom_object(
        GROUP, VERSION, PLURAL, written, dry_run="All"
    )
    spec = stored["spec"]
    assert all("flavor" in library for library in spec["libraries"])
    assert spec["injection"]["mode"] in {"auto", "init-container", "csi", "image-volume"}
    assert "priority" in spec
    assert spec != written["spec"], "the server applied no default"
    assert parse_policy(stored) == replace(parse_policy(written), generation=1)


@pytest.mark.usefixtures("installed")
def test_kubectl_get_shows_what_the_status_says(admin: client.ApiClient, kubectl: Kubectl) -> None:
    """The printer columns read the fields the reconciler will write: with a status like the
    one it writes, `kubectl get ipol` shows every language, the mode, the count, the pods
    instrumented of all it covers, and Ready."""
    api = client.CustomObjectsApi(admin)
    body = yaml.safe_load((REPO / "examples" / "policies" / "shop-otel.yaml").read_text())
    body["metadata"]["name"] = "columns-probe"
    api.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    try:
        status = {
            "observedGeneration": 1,
            "matchedNamespaces": 2,
            "languages": "java,python",
            "pods": {"total": 9, "instrumented": 7, "outdated": 1, "skipped": {"PodOptedOut": 1}},
            "instrumented": "7/9",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Valid",
                    "lastTransitionTime": "2026-11-24T00:00:00Z",
                }
            ],
        }
        api.patch_cluster_custom_object_status(
            GROUP, VERSION, PLURAL, "columns-probe", {"status": status}
        )
        header, row = kubectl("get", "ipol", "columns-probe").stdout.splitlines()
        assert header.split() == [
            "NAME", "LANGUAGES", "MODE", "NAMESPACES", "INSTRUMENTED", "READY", "AGE"
        ]  # fmt: skip
        assert row.split()[:6] == ["columns-probe", "java,python", "auto", "2", "7/9", "True"]
    finally:
        api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "columns-probe")
