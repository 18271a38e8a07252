"""`libinject explain --detect-languages` and `inject --detect-languages`: the golden case
tests/golden/explain/detection.yaml, whose images are pushed to a real registry with configs as
a Python image's, a JVM image's and one naming no language (tests/cluster/appimages.py), read
back with the real crane. The expected text is tests/golden/explain/detection.txt, the registry's
address written {registry} (UPDATE_GOLDEN=1 rewrites it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cluster import appimages
from cluster.registry import Registry
from libinject.cli.main import main

GOLDEN = Path(__file__).parents[1] / "golden"
CASE = GOLDEN / "explain" / "detection.yaml"
EXPECTED = CASE.with_suffix(".txt")
PLACEHOLDER = "{registry}"


@pytest.fixture
def case(crane: Path, registry: Registry, tmp_path: Path) -> Path:
    """The case with the registry's address, its images pushed (legacy's never is)."""
    prefix = f"{registry.address}/shop"
    appimages.push(crane, f"{prefix}/api:1", **appimages.PYTHON)
    appimages.push(crane, f"{prefix}/pricing:1", **appimages.JAVA)
    appimages.push(crane, f"{prefix}/proxy:1", **appimages.SILENT)
    path = tmp_path / CASE.name
    path.write_text(CASE.read_text().replace(PLACEHOLDER, registry.address))
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.network  # the registry and crane on cold caches
def test_explain_says_what_each_container_runs_and_gets(
    case: Path, crane: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python goes to api alone and Java to pricing alone; proxy, whose config names nothing,
    and legacy, whose config cannot be read, get both, each with why no language was found."""
    policies = str(GOLDEN / "policies")
    args = ["explain", "-f", str(case), "--policies", policies, "--detect-languages"]
    out = _cli(capsys, *args, "--crane", str(crane))
    written = out.replace(registry.address, PLACEHOLDER)
    if os.environ.get("UPDATE_GOLDEN"):
        EXPECTED.write_text(written)
    assert written == EXPECTED.read_text(), "stale golden: rerun with UPDATE_GOLDEN=1"


@pytest.mark.network
def test_inject_writes_what_explain_says(
    case: Path, crane: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policies = str(GOLDEN / "policies")
    args = ["inject", "-f", str(case), "--policies", policies, "--detect-languages"]
    out = _cli(capsys, *args, "--crane", str(crane))
    deployment = list(yaml.safe_load_all(out))[1]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    records = {r["language"]: r for r in json.loads(annotations["libinject.dev/injected"])}
    assert records["python"]["containers"] == ["api", "proxy", "legacy"]
    assert records["python"]["skippedContainers"] == {"pricing": "LanguageNotDetected"}
    assert records["java"]["containers"] == ["pricing", "proxy", "legacy"]
    assert records["java"]["skippedContainers"] == {"api": "LanguageNotDetected"}
    assert records["java"]["notDetected"]["proxy"] == "its config names no language"
    assert "MANIFEST_UNKNOWN" in records["java"]["notDetected"]["legacy"]


def test_without_the_flag_no_registry_is_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Offline by default: the same case, with a crane that cannot run, injects both
    libraries into every container and records no detection."""
    path = tmp_path / CASE.name
    path.write_text(CASE.read_text().replace(PLACEHOLDER, "registry.example"))
    args = ["inject", "-f", str(path), "--policies", str(GOLDEN / "policies")]
    out = _cli(capsys, *args, "--crane", str(tmp_path / "no-crane"))
    deployment = list(yaml.safe_load_all(out))[1]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    for record in json.loads(annotations["libinject.dev/injected"]):
        assert record["containers"] == ["api", "pricing", "proxy", "legacy"]
        assert "notDetected" not in record
