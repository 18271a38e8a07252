"""Injected pods pass Pod Security, judged by the upstream pod-security-admission library
(tests/tools/psacheck), the same code the apiserver's PodSecurity admission runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from builders import (
    ENABLED,
    JAVA,
    MODES,
    PYTHON,
    RESTRICTED,
    plain_pods,
    policy,
    restricted_pods,
    run,
)
from cluster import versions
from tools.gobuild import go_tool


@pytest.fixture(scope="session")
def psacheck() -> Path:
    return go_tool("psacheck")


def evaluate(checker: Path, level: str, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(checker), level], input=json.dumps(pods), capture_output=True, text=True, check=True
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


@pytest.mark.parametrize("mode", MODES)
def test_restricted_namespace_output_passes_restricted(psacheck: Path, mode: str) -> None:
    rule = policy(libraries=[PYTHON, JAVA], injection={"mode": mode})
    injected = [run(p, rule, namespace=RESTRICTED) for p in restricted_pods()]
    assert all(r.decision.injected for r in injected)
    for verdict in evaluate(psacheck, "restricted", [r.pod for r in injected]):
        assert verdict["allowed"], verdict["reasons"]


def test_the_check_can_fail_our_output(psacheck: Path) -> None:
    """Control: outside restricted namespaces the copy container does not claim runAsNonRoot,
    and the checker does forbid that pod at `restricted`. So the test above can fail."""
    injected = run(restricted_pods()[0], policy(), namespace=ENABLED)
    (verdict,) = evaluate(psacheck, "restricted", [injected.pod])
    assert not verdict["allowed"]
    assert "libinject-python" in verdict["reasons"][0]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_passes_baseline(psacheck: Path, mode: str) -> None:
    plain = [*plain_pods(), *restricted_pods()]
    rule = policy(libraries=[PYTHON, JAVA], injection={"mode": mode})
    injected = [run(p, rule, namespace=ENABLED).pod for p in plain]
    for verdict in evaluate(psacheck, "baseline", injected):
        assert verdict["allowed"], verdict["reasons"]


def test_checker_runs_the_control_planes_pod_security_code() -> None:
    """The offline checker and the live API server judge with the same release of the Pod
    Security library: its go.mod follows the one pin in tests/cluster/versions.py."""
    go_mod = (Path(__file__).parents[1] / "tools" / "psacheck" / "go.mod").read_text()
    assert f"k8s.io/pod-security-admission {versions.STAGING}\n" in go_mod
