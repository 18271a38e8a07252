"""`make demo` does what the README says, on a control plane of its own, and `make cluster-down`
stops it."""

from __future__ import annotations

import json
import os
import re
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
        for step in range(1, 11):
            assert f"== {step}/10 " in demo.stdout
        # The operator came up, the reconciler filled the columns, and the rolled-out checkout
        # pods were injected by the webhook with both libraries' copy containers.
        assert "ready" in demo.stdout.split("/readyz")[1]
        table = demo.stdout.split("$ kubectl get ipol\n")[1]
        assert re.search(r"shop-otel\s+java,python\s+auto\s+1\s+True", table), table
        assert "namespace/shop labeled" in demo.stdout
        checkout = demo.stdout.split("app=checkout -o yaml  (the injected parts)\n")[1]
        checkout = checkout.split("\n== ")[0]
        assert "libinject.dev/instrumented=true" in checkout
        assert "init container libinject-java" in checkout
        assert "init container libinject-python" in checkout
        assert "policy shop-otel" in checkout
        # The image was built and pushed without Docker, and a payments-api pod, run from the
        # spec the webhook wrote, sent a trace with its labels' service, env and version.
        assert "/libinject/python-ddtrace:4.16.0@sha256:" in demo.stdout
        assert "libinject: loaded ddtrace 4.16.0" in demo.stdout
        span = json.loads(demo.stdout.split("(the root span)\n")[1].split("\n}")[0] + "\n}")
        assert span["service"] == "payments-api"
        assert span["name"] == "flask.request"
        assert (span["env"], span["version"]) == ("prod", "2.3.0")
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
    assert "operator stopped" in down.stderr
    assert supervisor.running_pid(state) is None
    assert not state.exists()
