"""`make demo`: libinject on a live local control plane, step by step.

Starts (or reuses) the control plane of tests/cluster, installs the CRD and RBAC, applies the
example policies, opts the example namespaces in, then shows what the webhook will do to the
example workloads: explained, injected offline, and validated by the API server's dry-run.
The control plane keeps running afterwards for exploring; `make cluster-down` stops it.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from cluster import build, supervisor
from cluster.build import BuildError
from cluster.harness import StartupError
from cluster.kubectl import Kubectl, KubectlError
from libinject.cli.main import main as cli
from libinject.cli.workloads import pod_slots

REPO = Path(__file__).parents[1]
POLICIES = REPO / "examples" / "policies"
WORKLOADS = REPO / "examples" / "workloads"
OPT_IN = "libinject.dev/inject"
STEPS = 7


def step(number: int, title: str) -> None:
    print(f"\n== {number}/{STEPS} {title}", flush=True)


def show(command: str, output: str) -> None:
    print(f"$ {command}")
    print(output.rstrip())


def libinject(*args: str) -> str:
    """The CLI's stdout (its summary goes to stderr, which the demo shows as is)."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        if cli(list(args)) != 0:
            raise SystemExit(f"libinject {' '.join(args)} failed")
    return captured.getvalue()


def namespaces_without_opt_in() -> list[dict[str, Any]]:
    """The examples' namespaces, minus the opt-in label that step 5 adds by hand."""
    found = []
    for path in sorted(WORKLOADS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] == "Namespace":
                document["metadata"].get("labels", {}).pop(OPT_IN, None)
                found.append(document)
    return found


def summary(stored: dict[str, Any]) -> str:
    """The injected parts of each pod (template) the server accepted."""
    lines = []
    for slot in pod_slots(stored, source="dry-run", document=1):
        annotations = slot.pod.get("metadata", {}).get("annotations", {})
        lines.append(f"{slot.label}:")
        for library in json.loads(annotations.get("libinject.dev/injected", "[]")):
            targets = ", ".join(library["containers"])
            lines.append(
                f"  {library['language']} {library['flavor']} {library['version']} "
                f"({library['mode']}, policy {library['policy']}) -> {targets}"
            )
        if "libinject.dev/injection-skipped" in annotations:
            lines.append(f"  skipped: {annotations['libinject.dev/injection-skipped']}")
        for container in slot.pod["spec"].get("initContainers", []):
            lines.append(f"  init container {container['name']}: {container['image']}")
        for container in slot.pod["spec"]["containers"]:
            names = ", ".join(e["name"] for e in container.get("env", [])) or "-"
            lines.append(f"  container {container['name']} env: {names}")
    return "\n".join(lines)


def main() -> int:
    step(1, "Building the control plane (cached in ~/.cache/libinject/testbin after the first run)")
    binaries = build.binaries()
    step(2, "Starting etcd, kube-apiserver, controller-manager, scheduler and kwok")
    kubeconfig = supervisor.ensure_running(supervisor.state_dir())
    kubectl = Kubectl(binary=binaries["kubectl"], kubeconfig=kubeconfig)
    show("kubectl get nodes", kubectl("get", "nodes").stdout)

    step(3, "Installing libinject's CRD, namespace and RBAC")
    show(
        "kubectl apply --server-side -k manifests/",
        kubectl("apply", "--server-side", "-k", str(REPO / "manifests")).stdout,
    )
    kubectl("wait", "--for=condition=Established", "crd/instrumentationpolicies.libinject.dev")

    step(4, "Applying the example policies")
    show("kubectl apply -f examples/policies/", kubectl("apply", "-f", str(POLICIES)).stdout)

    step(5, "Creating the example namespaces and opting them in")
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(namespaces_without_opt_in()))
    names = [n["metadata"]["name"] for n in namespaces_without_opt_in()]
    for name in names:  # pods are refused until the controllers made this ServiceAccount
        kubectl("wait", "--for=create", "--timeout=30s", "-n", name, "serviceaccount/default")
    label = f"{OPT_IN}=enabled"
    show(
        f"kubectl label namespace {' '.join(names)} {label}",
        kubectl("label", "--overwrite", "namespace", *names, label).stdout,
    )
    show(
        "kubectl get namespaces -L ...",
        kubectl(
            "get", "namespaces", *names, "-L", f"{OPT_IN},team,pod-security.kubernetes.io/enforce"
        ).stdout,
    )

    step(6, "The policies as the cluster sees them")
    show("kubectl get ipol", kubectl("get", "ipol").stdout)

    step(7, "What the webhook will do: explained, injected offline, validated by a server dry-run")
    show(
        "libinject explain -f examples/workloads/shop.yaml --policies examples/policies",
        libinject("explain", "-f", str(WORKLOADS / "shop.yaml"), "--policies", str(POLICIES)),
    )
    injected = libinject("inject", "-f", str(WORKLOADS), "--policies", str(POLICIES))
    dry_run = kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=injected)
    pipeline = "libinject inject -f examples/workloads --policies examples/policies"
    show(f"{pipeline} | kubectl apply --dry-run=server -f -", summary(json.loads(dry_run.stdout)))

    print(f"\nExplore it:\n  export KUBECONFIG={kubeconfig}\n  {binaries['kubectl']} get ipol")
    print(f"  {binaries['kubectl']} explain instrumentationpolicy.spec.libraries")
    print("Stop it: make cluster-down")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KubectlError, BuildError, StartupError, TimeoutError) as error:
        sys.exit(f"demo failed: {error}")
