"""The CRD file is generated from the model, and both views of the schema agree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.invalid_policies import CRD_CASES
from libinject.api.crd import crd

CRD_FILE = Path(__file__).parents[2] / "crds" / "instrumentationpolicies.libinject.dev.yaml"


def _root() -> dict[str, Any]:
    schema: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_matches_the_model() -> None:
    """A stale crds/ file fails here: run `make crds` after editing libinject.api.types."""
    assert yaml.safe_load(CRD_FILE.read_text()) == crd(), "crds/ is stale: run `make crds`"


def _walk(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for key, child in (schema.get("properties") or {}).items():
        found += _walk(child, f"{path}.{key}")
    if "items" in schema:
        found += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _walk(schema["additionalProperties"], f"{path}{{}}")
    return found


def test_every_field_has_a_description() -> None:
    """`kubectl explain` teaches the API only if every field is described."""
    spec = _root()["properties"]["spec"]
    status = _root()["properties"]["status"]
    for path, schema in _walk(spec, "spec") + _walk(status, "status"):
        if path.endswith(("[]", "}")):
            continue  # list items and map values are described by their field
        assert schema.get("description"), f"{path} has no description"


def test_crd_identity_and_printer_columns() -> None:
    spec = crd()["spec"]
    assert spec["group"] == "libinject.dev"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["shortNames"] == ["ipol"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Languages", "Mode", "Namespaces", "Instrumented", "Ready", "Age"]


def test_defaults_in_the_crd() -> None:
    spec = _root()["properties"]["spec"]["properties"]
    library = spec["libraries"]["items"]["properties"]
    assert library["flavor"]["default"] == "ddtrace"
    assert spec["injection"]["default"] == {}
    assert spec["injection"]["properties"]["mode"]["default"] == "auto"
    assert spec["injection"]["properties"]["sizeLimit"]["default"] == "1Gi"
    assert spec["agent"]["properties"]["mode"]["default"] == "hostIP"
    assert spec["priority"]["default"] == 0


def _node_at(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema node for an error path like spec.libraries[0].language, and its parent."""
    node, parent = _root(), _root()
    for part in re.findall(r"[A-Za-z]+|\[[^\]]*\]", path):
        parent = node
        if part.startswith("[") and "items" in node:
            node = node["items"]
        elif part.startswith("["):
            node = node["additionalProperties"]
        else:
            node = node["properties"][part]
    return node, parent


@pytest.mark.parametrize(("path", "keyword"), CRD_CASES)
def test_crd_rejects_where_the_parser_rejects(path: str, keyword: str) -> None:
    """For every invalid case, the CRD carries the constraint that rejects it at that field
    (`required` and list uniqueness live on the parent), so the apiserver and the parser reject
    for the same reason."""
    node, parent = _node_at(path)
    if keyword == "x-kubernetes-validations" and keyword not in node:
        field = "." + path.rsplit(".", 1)[-1]
        rules = [r for r in parent.get(keyword, []) if r.get("fieldPath") == field]
        assert rules, f"the CRD has no CEL rule pointing at {path}"
        return
    holder = parent if keyword in ("required", "x-kubernetes-list-type") else node
    assert keyword in holder, f"the CRD has no {keyword} at {path}"


def test_cel_rules_are_bounded() -> None:
    """The apiserver refuses CEL over unbounded lists: every list a rule reads has maxItems."""
    for path, schema in _walk(_root()["properties"]["spec"], "spec"):
        for rule in schema.get("x-kubernetes-validations", []):
            for name in re.findall(r"self\.(\w+)\.all\(", rule["rule"]):
                assert "maxItems" in schema["properties"][name], f"{path}.{name} is unbounded"
