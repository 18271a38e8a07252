"""The webhooks bench/webhook.py calls beside libinject's, each a process on loopback with a
serving certificate of its own and a MutatingWebhookConfiguration that selects one namespace:

- the OpenTelemetry Operator (the peer users choose between us and), built from the Go module
  proxy (cluster.build.otel_operator), run as ../shared/notes/peers.md describes: outside the
  cluster with the admin kubeconfig, its Instrumentation CRD installed, its pod webhook at
  /mutate-v1-pod, injecting OpenTelemetry Python from the image libinject injects the same
  release from;
- the floor (tests/tools/admitfloor): allows every pod, changes nothing; what calling a webhook
  costs by itself.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster import build, harness, poll, registry
from cluster.kubectl import Kubectl
from libinject.runtime import pki
from tools.gobuild import go_tool

ARM_LABEL = "bench.libinject.dev/arm"  # the namespace label each peer's webhook selects
OTEL_PATH = "/mutate-v1-pod"
FLOOR_PATH = "/admit"
READY_TIMEOUT = 120.0  # the OTel operator syncs its caches before it serves


@dataclass
class Webhook:
    """A webhook server process on loopback, trusted through `ca` (PEM)."""

    url: str
    ca: bytes
    process: harness.Process

    @property
    def pid(self) -> int:
        return self.process.popen.pid

    def stop(self) -> None:
        registry.stop(self.process)


def serving_material(directory: Path) -> tuple[Path, Path, bytes]:
    """A fresh CA and a serving certificate for 127.0.0.1: the cert and key files, and the CA."""
    material = pki.new_material(hosts=["127.0.0.1"], now=datetime.now(UTC))
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(material.serving.certificate)
    key.write_bytes(material.serving.key)
    key.chmod(0o600)
    return cert, key, material.bundle


def start_floor(directory: Path) -> Webhook:
    cert, key, ca = serving_material(directory / "floor-tls")
    port = harness.free_port()
    command = [
        str(go_tool("admitfloor")),
        f"--address=127.0.0.1:{port}",
        f"--cert={cert}",
        f"--key={key}",
    ]
    return _started(
        "floor",
        command,
        url=f"https://127.0.0.1:{port}{FLOOR_PATH}",
        ca=ca,
        directory=directory,
        env=dict(os.environ),
    )


def start_otel_operator(directory: Path, *, kubeconfig: Path, kubectl: Kubectl) -> Webhook:
    """Installs its Instrumentation CRD and starts it; it serves the certificate it finds under
    $TMPDIR/k8s-webhook-server/serving-certs."""
    binaries = build.ensure(build.otel_operator())
    kubectl("apply", "--server-side", "-f", str(binaries["instrumentations-crd.yaml"]))
    poll.until(
        lambda: _established(kubectl, "instrumentations.opentelemetry.io"),
        what="the Instrumentation CRD established",
        timeout=60,
    )
    scratch = directory / "otel-operator-tmp"
    # The files land where the operator looks for them under TMPDIR; only the CA is ours to keep.
    _, _, ca = serving_material(scratch / "k8s-webhook-server" / "serving-certs")
    port = harness.free_port()
    command = [
        str(binaries["opentelemetry-operator"]),
        f"--webhook-port={port}",
        "--ignore-missing-collector-crds",
        "--metrics-addr=0",
        "--health-probe-addr=0",
    ]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "TMPDIR": str(scratch)}
    return _started(
        "otel-operator",
        command,
        url=f"https://127.0.0.1:{port}{OTEL_PATH}",
        ca=ca,
        directory=directory,
        env=env,
    )


def _established(kubectl: Kubectl, crd: str) -> bool:
    """Read as JSON, not `kubectl wait` nor a jsonpath filter: both fail outright on a CRD whose
    status has no conditions yet, as one just applied may not."""
    status = json.loads(kubectl("get", f"crd/{crd}", "-o", "json").stdout).get("status") or {}
    return any(
        condition.get("type") == "Established" and condition.get("status") == "True"
        for condition in status.get("conditions") or ()
    )


def _started(
    name: str, command: list[str], *, url: str, ca: bytes, directory: Path, env: dict[str, str]
) -> Webhook:
    process = registry.spawn(name, command, log=directory / f"{name}.log", env=env)
    webhook = Webhook(url=url, ca=ca, process=process)
    poll.until(lambda: _answers(webhook), what=f"{name} answering reviews", timeout=READY_TIMEOUT)
    return webhook


def _answers(webhook: Webhook) -> bool:
    process = webhook.process
    if process.popen.poll() is not None:
        raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "ready", "operation": "CREATE"},
    }
    request = urllib.request.Request(
        webhook.url, data=json.dumps(review).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(
            request, context=client_context(webhook), timeout=5
        ) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return True  # it answers (a review without an object may be refused)
    except OSError:
        return False


def client_context(webhook: Webhook) -> ssl.SSLContext:
    """TLS that trusts the webhook's CA, as the API server does."""
    return ssl.create_default_context(cadata=webhook.ca.decode())


def register(kubectl: Kubectl, webhook: Webhook, *, arm: str) -> None:
    """A MutatingWebhookConfiguration calling `webhook` for pods created in namespaces labeled
    ARM_LABEL=arm only, failing open as libinject's does."""
    configuration: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": f"bench-{arm}"},
        "webhooks": [
            {
                "name": f"{arm}.bench.libinject.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "timeoutSeconds": 10,
                "clientConfig": {
                    "url": webhook.url,
                    "caBundle": base64.b64encode(webhook.ca).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {ARM_LABEL: arm}},
            }
        ],
    }
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(configuration))
