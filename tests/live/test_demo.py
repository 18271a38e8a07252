"""`make demo` does what the README says, on a control plane of its own, and `make cluster-down`
stops it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cluster import supervisor

REPO = Path(__file__).parents[2]


def test_demo_runs_every_step_and_leaves_a_cluster_to_explore(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "LIBINJECT_CLUSTER_DIR": str(state)}
    try:
        demo = subprocess.run(
            [sys.executable, str(REPO / "examples" / "demo.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        for step in range(1, 8):
            assert f"== {step}/7 " in demo.stdout
        # The policies were stored, the namespaces opted in, and the server accepted the
        # injected Deployment with both libraries' copy containers.
        assert "shop-otel" in demo.stdout.split("kubectl get ipol")[1]
        assert "namespace/shop labeled" in demo.stdout
        checkout = demo.stdout.split("Deployment shop/checkout:\n")[-1]
        assert "init container libinject-java" in checkout
        assert "init container libinject-python" in checkout
        assert f"export KUBECONFIG={state / 'admin.kubeconfig'}" in demo.stdout
        assert supervisor.running_pid(state) is not None, "the control plane should stay up"
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "cluster", "down", str(state)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert down.returncode == 0
    assert supervisor.running_pid(state) is None
    assert not state.exists()
