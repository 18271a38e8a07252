"""Golden cases: each input runs through the CLI, through the patch path the webhook will use,
and through the CLI again (idempotency). UPDATE_GOLDEN=1 rewrites the expected files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from libinject.admission import Caches, admit
from libinject.cli.main import main
from libinject.cli.policies import load_policies
from libinject.cli.workloads import namespace_of, pod_slots
from libinject.engine.index import PolicyIndex
from libinject.engine.settings import EngineSettings

GOLDEN = Path(__file__).parents[1] / "golden"
POLICIES = GOLDEN / "policies"
CASES = sorted(p for p in (GOLDEN / "cases").glob("*.yaml") if ".injected" not in p.name)


def _cli(capsys: pytest.CaptureFixture[str], source: Path) -> str:
    assert main(["inject", "-f", str(source), "--policies", str(POLICIES)]) == 0
    return capsys.readouterr().out


def _expected(case: Path) -> Path:
    return case.with_suffix(".injected.yaml")


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_cli_output_matches_golden(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli(capsys, case)
    if os.environ.get("UPDATE_GOLDEN"):
        _expected(case).write_text(out)
    assert out == _expected(case).read_text(), "stale golden: rerun with UPDATE_GOLDEN=1"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_cli_is_idempotent(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Injecting an already injected manifest changes nothing."""
    assert _cli(capsys, _expected(case)) == _expected(case).read_text()


TEMPLATE_HASH = "5d8f7c9b4"
# The controller each workload's pods are made by, and its name: what the pods carry in their
# ownerReferences when the API server asks the webhook about them.
CONTROLLERS = {
    "Deployment": ("ReplicaSet", "{name}-" + TEMPLATE_HASH),
    "CronJob": ("Job", "{name}-29377440"),
}


def _as_created(pod: dict[str, Any], workload: dict[str, Any]) -> dict[str, Any]:
    """A pod of `workload`'s template as its controller creates it: with the ownerReferences
    (and, for a Deployment's, the pod-template-hash label) that name the workload."""
    kind, name = workload["kind"], workload["metadata"]["name"]
    kind, pattern = CONTROLLERS.get(kind, (kind, "{name}"))
    metadata = {**pod.get("metadata", {})}
    metadata["ownerReferences"] = [
        {"apiVersion": "v1", "kind": kind, "name": pattern.format(name=name), "controller": True}
    ]
    if workload["kind"] == "Deployment":
        metadata["labels"] = {**metadata.get("labels", {}), "pod-template-hash": TEMPLATE_HASH}
    return {**pod, "metadata": metadata}


def _pods(documents: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for number, doc in enumerate(documents, start=1):
        for slot in pod_slots(doc, source="golden", document=number):
            pod = _as_created(slot.pod, slot.owner) if slot.path else slot.pod
            pods.append((namespace_of(slot.owner, "default"), pod))
    return pods


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_patch_path_matches_golden(case: Path) -> None:
    """The webhook's core (libinject.admission) gives a JSON patch that turns each input pod into
    the golden pod; a workload's pods as their controller creates them, so the webhook finds
    the workload (the service name of a pod without one) where the CLI was told it."""
    inputs = list(yaml.safe_load_all(case.read_text()))
    expected = list(yaml.safe_load_all(_expected(case).read_text()))
    labels = {
        d["metadata"]["name"]: d["metadata"].get("labels", {})
        for d in inputs
        if d["kind"] == "Namespace"
    }
    pairs = list(zip(_pods(inputs), _pods(expected), strict=True))
    caches = Caches(
        index=PolicyIndex(load_policies(str(POLICIES))),
        namespaces={namespace: labels.get(namespace, {}) for (namespace, _), _ in pairs},
    )
    for (namespace, before), (_, after) in pairs:
        admission = admit(before, namespace=namespace, caches=caches, settings=EngineSettings())
        assert admission.error is None
        assert jsonpatch.apply_patch(before, admission.result.patch) == after
