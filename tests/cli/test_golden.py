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


def _pods(documents: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for number, doc in enumerate(documents, start=1):
        for slot in pod_slots(doc, source="golden", document=number):
            pods.append((namespace_of(slot.owner, "default"), slot.pod))
    return pods


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_patch_path_matches_golden(case: Path) -> None:
    """The webhook's core (libinject.admission) gives a JSON patch that turns each input pod into
    the golden pod."""
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
