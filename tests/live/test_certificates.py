"""The webhook's generated certificates on the real control plane: one Secret shared by the
replicas, its CA in the webhook configuration, and renewal before expiry without breaking
trust (the operator runs as its ServiceAccount, so the Role's Secret rules are exercised too)."""

from __future__ import annotations

import base64
import signal
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from kubernetes import client

from cluster import poll
from cluster.fixtures import NamespaceFactory, OperatorFactory
from cluster.operator import NAMESPACE, Operator
from cluster.workloads import ENABLED, PolicyFactory, python_policy, wait_until_injecting
from libinject.runtime import pki

SECRET = "libinject-webhook-tls"
HOSTS = ["127.0.0.1"]


def stored(admin: client.ApiClient) -> pki.Material:
    secret = client.CoreV1Api(admin).read_namespaced_secret(SECRET, NAMESPACE)
    return pki.from_secret_data(cast("dict[str, str]", secret.data))  # base64 text, as served


def ca_bundle(admin: client.ApiClient) -> bytes:
    api = client.AdmissionregistrationV1Api(admin)
    hooks = api.read_mutating_webhook_configuration("libinject").webhooks or []
    bundles = {str(hook.client_config.ca_bundle) for hook in hooks}
    assert len(bundles) == 1
    return base64.b64decode(bundles.pop())


def served_certificate(port: int) -> bytes:
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return pem.encode()


def same_certificate(a: bytes, b: bytes) -> bool:
    return ssl.PEM_cert_to_DER_cert(a.decode()) == ssl.PEM_cert_to_DER_cert(b.decode())


@pytest.fixture
def operator_kind() -> str:
    """The certificate tests run the operator from its image, as the Deployment defines it
    (its tls emptyDir, uid 65532, read-only root); given files are mounted from this host, so
    that test runs a host process."""
    return "image"


@pytest.fixture
def replaced_operator(
    running_operator: Operator, operator_processes: OperatorFactory
) -> Iterator[list[Operator]]:
    """Stops the running operator; the test starts its own, stopped at the end."""
    running_operator.stop(signal.SIGTERM)
    started: list[Operator] = []
    yield started
    for process in started:
        process.stop()


def test_the_secret_is_shared_and_its_ca_is_in_the_webhook_configuration(
    admin: client.ApiClient, running_operator: Operator
) -> None:
    """The operator serves the Secret's certificate, and the webhook configuration trusts the
    Secret's CA bundle (the API server's calls succeeding is shown by every injection test)."""
    material = stored(admin)
    assert ca_bundle(admin) == material.bundle
    assert same_certificate(
        served_certificate(running_operator.webhook_port), material.serving.certificate
    )


def test_material_due_for_renewal_is_renewed_on_start_and_trust_holds(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    replaced_operator: list[Operator],
    operator_processes: OperatorFactory,
) -> None:
    """A Secret whose CA and serving certificate are both in their last third: the operator
    issues a new CA and certificate on start, the webhook configuration trusts old and new CAs
    during the overlap, and pods are injected through the new certificate."""
    issued = datetime.now(UTC) - timedelta(days=3 * 365 - 200)
    old = pki.new_material(hosts=HOSTS, now=issued)
    secret = client.CoreV1Api(admin).read_namespaced_secret(SECRET, NAMESPACE)
    secret.data = dict(pki.to_secret_data(old))
    client.CoreV1Api(admin).replace_namespaced_secret(SECRET, NAMESPACE, secret)

    operator = operator_processes("renewing").wait_ready()
    replaced_operator.append(operator)
    renewed = stored(admin)
    assert renewed.authority != old.authority
    assert renewed.serving != old.serving
    assert pki.expiry(renewed.serving.certificate) > datetime.now(UTC) + timedelta(days=80)
    bundle = ca_bundle(admin)
    assert bundle == renewed.bundle
    assert old.authority.certificate in bundle
    assert renewed.authority.certificate in bundle
    assert same_certificate(served_certificate(operator.webhook_port), renewed.serving.certificate)

    namespace = namespaces(labels=ENABLED)
    policies(python_policy("renewed", [namespace]))
    wait_until_injecting(admin, namespace)


def set_ca_bundle(admin: client.ApiClient, bundle: bytes) -> None:
    """What cert-manager's cainjector does for the cert-manager overlay."""
    encoded = base64.b64encode(bundle).decode()
    patch = [{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": encoded}]
    client.AdmissionregistrationV1Api(admin).patch_mutating_webhook_configuration(
        "libinject", patch
    )


def test_given_certificate_files_are_served_and_reloaded_in_place(
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    replaced_operator: list[Operator],
    host_operators: OperatorFactory,
    tmp_path: Path,
) -> None:
    """With --tls-cert-file/--tls-key-file (cert-manager's Secret, mounted) the operator serves
    those files, leaves the generated Secret and the caBundle alone, and serves renewed files
    from the same listener (pods are still injected through it)."""
    generated = stored(admin)
    first = pki.new_material(hosts=HOSTS, now=datetime.now(UTC))
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.serving.certificate)
    key.write_bytes(first.serving.key)
    set_ca_bundle(admin, first.bundle)
    try:
        operator = host_operators(
            "given-files", f"--tls-cert-file={cert}", f"--tls-key-file={key}"
        ).wait_ready()
        replaced_operator.append(operator)
        assert same_certificate(
            served_certificate(operator.webhook_port), first.serving.certificate
        )
        assert ca_bundle(admin) == first.bundle
        assert stored(admin) == generated
        namespace = namespaces(labels=ENABLED)
        policies(python_policy("given", [namespace]))
        wait_until_injecting(admin, namespace)

        # A renewal under the same CA, as cert-manager writes it into the mounted Secret.
        renewed = pki.renew(first, hosts=[*HOSTS, "localhost"], now=datetime.now(UTC))
        assert renewed is not None
        key.write_bytes(renewed.serving.key)
        cert.write_bytes(renewed.serving.certificate)
        poll.until(
            lambda: same_certificate(
                served_certificate(operator.webhook_port), renewed.serving.certificate
            ),
            what="the renewed certificate served",
            timeout=30,
        )
        wait_until_injecting(admin, namespace)
    finally:
        set_ca_bundle(admin, generated.bundle)  # the next operator's generated chain


def test_an_unusable_secret_is_replaced_on_start(
    admin: client.ApiClient,
    replaced_operator: list[Operator],
    operator_processes: OperatorFactory,
) -> None:
    """A Secret of that name that holds no usable chain (made by hand, or damaged) does not stop
    the operator: it is replaced with fresh material, which is then served and trusted."""
    secret = client.CoreV1Api(admin).read_namespaced_secret(SECRET, NAMESPACE)
    secret.data = {"ca.crt": base64.b64encode(b"not a certificate").decode()}
    client.CoreV1Api(admin).replace_namespaced_secret(SECRET, NAMESPACE, secret)

    operator = operator_processes("replacing").wait_ready()
    replaced_operator.append(operator)
    material = stored(admin)
    assert ca_bundle(admin) == material.bundle
    assert same_certificate(served_certificate(operator.webhook_port), material.serving.certificate)
    assert any(
        line.get("event") == "webhook Secret unusable, replacing it"
        for line in operator.log_lines()
    )
