"""What `kubectl apply -k manifests/` installs, checked against the real control plane: the base
renders and a server-side dry run accepts every object (the operator's pods meet Pod Security
`restricted` where it is enforced), the webhook's safety settings hold and the API server calls it
only where the namespaceSelector says, the cert-manager overlay renders as described, and the
Service, the probes, the PDB, the ConfigMap and the peering object fit together."""

from __future__ import annotations

import copy
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster import poll
from cluster.fixtures import OPERATOR_NAMESPACE, NamespaceFactory
from cluster.kubectl import Kubectl
from cluster.manifests import RESTRICTED_CONTEXT, dry_run_apply, one, render

REPO = Path(__file__).parents[2]
MANIFESTS = REPO / "manifests"
CERT_MANAGER = MANIFESTS / "overlays" / "cert-manager"
OPT_IN = "libinject.dev/inject"
ENFORCE = "pod-security.kubernetes.io/enforce"
SERVICE_HOST = "libinject-webhook.libinject-system.svc"
CERT_MOUNT = "/var/run/libinject/cert-manager"

# Every object of the base, by (kind, name); all namespaced ones live in libinject-system.
BASE = {
    ("Namespace", "libinject-system"),
    ("CustomResourceDefinition", "instrumentationpolicies.libinject.dev"),
    ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
    ("ServiceAccount", "libinject-operator"),
    ("ClusterRole", "libinject-operator"),
    ("ClusterRoleBinding", "libinject-operator"),
    ("Role", "libinject-operator"),
    ("RoleBinding", "libinject-operator"),
    ("ConfigMap", "libinject-config"),
    ("Deployment", "libinject-operator"),
    ("Service", "libinject-webhook"),
    ("NetworkPolicy", "libinject-operator"),
    ("PodDisruptionBudget", "libinject-operator"),
    ("MutatingWebhookConfiguration", "libinject"),
}

# A pod that meets `restricted` by itself, so only the webhook decides what happens to it.
PROBE_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "selector-probe"},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "registry.invalid/app:1",
                "securityContext": RESTRICTED_CONTEXT,
            }
        ]
    },
}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: dict[str, Any] = containers[0]
    return container


def _dry_run_pod(kubectl: Kubectl, pod: dict[str, Any], namespace: str) -> Any:
    return kubectl(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-o",
        "json",
        "-f",
        "-",
        stdin=json.dumps(pod),
        check=False,
    )


def _template_as_pod(deployment: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(deployment["spec"]["template"])  # callers may edit the pod
    metadata = {"name": "operator-template", "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


@pytest.fixture(scope="module")
def base(kubectl: Kubectl) -> list[dict[str, Any]]:
    return render(kubectl, MANIFESTS)


@pytest.fixture(scope="module")
def overlay(kubectl: Kubectl) -> list[dict[str, Any]]:
    return render(kubectl, CERT_MANAGER)


def test_base_renders_the_whole_install(base: list[dict[str, Any]]) -> None:
    """`kubectl kustomize manifests` yields exactly the install: CRDs, namespace, RBAC, config,
    operator, Service, PDB and webhook, each once, every namespaced one in libinject-system. The
    peering object is not among them: it cannot share an apply with its CRD, so the operator
    creates it on start (manifests/kustomization.yaml)."""
    assert {(o["kind"], o["metadata"]["name"]) for o in base} == BASE
    assert len(base) == len(BASE)
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole"}
    cluster_scoped |= {"ClusterRoleBinding", "MutatingWebhookConfiguration"}
    for obj in base:
        expected = None if obj["kind"] in cluster_scoped else OPERATOR_NAMESPACE
        assert obj["metadata"].get("namespace") == expected, obj["metadata"]


@pytest.mark.usefixtures("installed")
def test_base_passes_a_server_side_dry_run(kubectl: Kubectl, base: list[dict[str, Any]]) -> None:
    """The server accepts every object of the base without a warning. libinject-system enforces
    `restricted`; Pod Security only warns about a Deployment's template, so the template is also
    dry-run as a Pod there, where `restricted` is enforced."""
    namespace = one(base, "Namespace", OPERATOR_NAMESPACE)
    assert namespace["metadata"]["labels"][ENFORCE] == "restricted"
    dry_run_apply(kubectl, base)
    pod = _template_as_pod(one(base, "Deployment", "libinject-operator"))
    result = _dry_run_pod(kubectl, pod, OPERATOR_NAMESPACE)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.usefixtures("installed")
def test_restricted_is_really_enforced_in_the_operator_namespace(
    kubectl: Kubectl, base: list[dict[str, Any]]
) -> None:
    """Control for the test above: the same template without its container securityContext is
    refused in libinject-system, so the acceptance there is Pod Security's verdict."""
    pod = _template_as_pod(one(base, "Deployment", "libinject-operator"))
    del pod["spec"]["containers"][0]["securityContext"]
    result = _dry_run_pod(kubectl, pod, OPERATOR_NAMESPACE)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr, result.stderr


def test_webhook_safety_settings(base: list[dict[str, Any]]) -> None:
    """The webhook as rendered: never blocks a pod (failurePolicy Ignore), waits at most 5 s,
    is re-invoked after later webhooks, declares no side effects, only sees pod CREATEs, only in
    opted-in namespaces other than the system ones and ours, and carries no caBundle (the
    operator or cert-manager fills it, and a re-apply must not wipe it)."""
    configuration = one(base, "MutatingWebhookConfiguration", "libinject")
    [webhook] = configuration["webhooks"]
    assert webhook["name"] == "pods.libinject.dev"
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["timeoutSeconds"] <= 5
    assert webhook["reinvocationPolicy"] == "IfNeeded"
    assert webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["matchPolicy"] == "Equivalent"
    assert webhook["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert webhook["clientConfig"] == {
        "service": {
            "namespace": OPERATOR_NAMESPACE,
            "name": "libinject-webhook",
            "path": "/mutate-pods",
            "port": 443,
        }
    }
    expressions = {
        (e["key"], e["operator"]): set(e["values"])
        for e in webhook["namespaceSelector"]["matchExpressions"]
    }
    assert expressions[OPT_IN, "In"] == {"enabled"}
    excluded = expressions["kubernetes.io/metadata.name", "NotIn"]
    assert {"kube-system", "kube-public", "kube-node-lease", OPERATOR_NAMESPACE} <= excluded
    assert "libinject-csi" in excluded  # the CSI plugin's own pods must start without it
    assert "matchLabels" not in webhook["namespaceSelector"]
    assert "objectSelector" not in webhook


@pytest.mark.usefixtures("installed")
def test_the_server_keeps_the_webhook_as_written(
    kubectl: Kubectl, base: list[dict[str, Any]]
) -> None:
    """The server stores every setting of the webhook as we wrote it: none is dropped, none is
    defaulted to something else (and so the checks above are what the API server acts on)."""
    rendered = one(base, "MutatingWebhookConfiguration", "libinject")
    [stored] = dry_run_apply(kubectl, [rendered])
    [webhook], [stored_webhook] = rendered["webhooks"], stored["webhooks"]
    for key, value in webhook.items():
        assert stored_webhook[key] == value, key


def _webhook_metric(kubectl: Kubectl, metric: str, webhook: str) -> float:
    """Sum of an API server admission-webhook counter over all series of one webhook."""
    text = kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for match in re.finditer(rf"^{metric}\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("name") == webhook:
            total += float(match["value"])
    return total


@pytest.fixture
def probe_webhook(kubectl: Kubectl, base: list[dict[str, Any]]) -> Iterator[str]:
    """A copy of our webhook configuration, under its own names, pointing at a Service that does
    not exist: every call to it fails, whatever state the real operator is in, and the API
    server's counters for it are its alone. Yields the webhook's name."""
    configuration = copy.deepcopy(one(base, "MutatingWebhookConfiguration", "libinject"))
    suffix = secrets.token_hex(3)
    configuration["metadata"] = {"name": f"libinject-probe-{suffix}"}
    webhook = configuration["webhooks"][0]
    webhook["name"] = f"probe-{suffix}.libinject.dev"
    webhook["clientConfig"]["service"]["name"] = f"absent-{suffix}"
    kubectl("create", "-f", "-", stdin=json.dumps(configuration))
    try:
        yield str(webhook["name"])
    finally:
        kubectl("delete", "mutatingwebhookconfiguration", configuration["metadata"]["name"])


@pytest.fixture
def system_namespaces_opted_in(kubectl: Kubectl) -> Iterator[list[str]]:
    """The namespaces the selector must exclude, labelled as if opted in; the label is removed
    afterwards."""
    names = ["kube-system", "kube-public", "kube-node-lease", OPERATOR_NAMESPACE]
    for name in names:
        kubectl("label", "namespace", name, f"{OPT_IN}=enabled", "--overwrite")
    try:
        yield names
    finally:
        for name in names:
            kubectl("label", "namespace", name, f"{OPT_IN}-")


@pytest.mark.usefixtures("installed")
def test_the_server_calls_the_webhook_only_where_the_selector_says(
    kubectl: Kubectl,
    namespaces: NamespaceFactory,
    probe_webhook: str,
    system_namespaces_opted_in: list[str],
) -> None:
    """With the rendered rules and selector, the API server calls the webhook for a pod in an
    opted-in namespace and for no pod elsewhere: not unlabelled, not `disabled`, and not the
    system namespaces or ours even when they carry the opt-in label. Every call fails, and the pod
    is admitted all the same (failurePolicy Ignore: the server counts a fail-open). The pods are
    server-side dry runs, which the server only sends to webhooks declaring sideEffects None."""
    opted_in = namespaces(labels={OPT_IN: "enabled"})
    elsewhere = [namespaces(), namespaces(labels={OPT_IN: "disabled"}), *system_namespaces_opted_in]

    def calls() -> float:
        return _webhook_metric(kubectl, "apiserver_admission_webhook_request_total", probe_webhook)

    def fail_opens() -> float:
        return _webhook_metric(
            kubectl, "apiserver_admission_webhook_fail_open_count", probe_webhook
        )

    def admit(namespace: str) -> None:
        result = _dry_run_pod(kubectl, PROBE_POD, namespace)
        assert result.returncode == 0, f"{namespace}: {result.stderr}"

    # The server picks a new configuration up from a watch: wait until it calls the probe.
    before = calls()

    def admitted_through_the_probe() -> bool:
        admit(opted_in)
        return calls() > before

    poll.until(admitted_through_the_probe, what="the probe webhook in use", timeout=30)
    for namespace in elsewhere:
        before = calls()
        admit(namespace)
        assert calls() == before, f"the webhook was called for a pod in {namespace}"
    before, failed_open = calls(), fail_opens()
    admit(opted_in)
    assert calls() == before + 1
    assert fail_opens() == failed_open + 1


def test_cert_manager_overlay_changes_only_what_it_says(
    base: list[dict[str, Any]], overlay: list[dict[str, Any]]
) -> None:
    """The overlay is the base plus cert-manager's Issuers and Certificates; of the base's
    objects it changes only the webhook (the cainjector annotation) and the Deployment (the
    Secret mounted, the flags pointing at it). Everything else is byte for byte the base."""
    keyed = {(o["kind"], o["metadata"]["name"]): o for o in overlay}
    added = {key for key, o in keyed.items() if o["apiVersion"].startswith("cert-manager.io/")}
    assert {kind for kind, _ in added} == {"Issuer", "Certificate"}
    assert set(keyed) - added == BASE
    changed = {
        (o["kind"], o["metadata"]["name"])
        for o in base
        if keyed[o["kind"], o["metadata"]["name"]] != o
    }
    assert changed == {
        ("MutatingWebhookConfiguration", "libinject"),
        ("Deployment", "libinject-operator"),
    }

    configuration = keyed["MutatingWebhookConfiguration", "libinject"]
    assert configuration["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{OPERATOR_NAMESPACE}/libinject-webhook"
    }
    assert (
        configuration["webhooks"]
        == one(base, "MutatingWebhookConfiguration", "libinject")["webhooks"]
    )

    certificate = keyed["Certificate", "libinject-webhook"]
    assert certificate["metadata"]["namespace"] == OPERATOR_NAMESPACE
    assert certificate["spec"]["secretName"] == "libinject-webhook-cert"
    assert set(certificate["spec"]["dnsNames"]) == {SERVICE_HOST, f"{SERVICE_HOST}.cluster.local"}
    # The issuer chain resolves inside the overlay: serving cert <- CA Issuer <- CA cert <- self.
    issuer = keyed["Issuer", certificate["spec"]["issuerRef"]["name"]]
    ca = keyed["Certificate", next(iter(issuer["spec"].values()))["secretName"]]
    assert ca["spec"]["isCA"] is True
    assert "selfSigned" in keyed["Issuer", ca["spec"]["issuerRef"]["name"]]["spec"]

    deployment = keyed["Deployment", "libinject-operator"]
    container = _container(deployment)
    base_args = _container(one(base, "Deployment", "libinject-operator"))["args"]
    assert container["args"] == [
        *base_args,
        f"--tls-cert-file={CERT_MOUNT}/tls.crt",
        f"--tls-key-file={CERT_MOUNT}/tls.key",
    ]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == CERT_MOUNT]
    assert mount.get("readOnly") is True
    assert "subPath" not in mount  # a subPath mount would never see a renewed certificate
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mount["name"]]["secret"]["secretName"] == "libinject-webhook-cert"


@pytest.mark.usefixtures("installed")
def test_cert_manager_overlay_passes_a_dry_run_without_cert_manager(
    kubectl: Kubectl, overlay: list[dict[str, Any]]
) -> None:
    """cert-manager's CRDs are not installed here, so its objects are left out; the rest of the
    overlay (the patched Deployment with the Secret volume, and the annotated webhook) is
    accepted by the server without a warning, and the template still meets `restricted`."""
    ours = [o for o in overlay if not o["apiVersion"].startswith("cert-manager.io/")]
    dry_run_apply(kubectl, ours)
    pod = _template_as_pod(one(ours, "Deployment", "libinject-operator"))
    result = _dry_run_pod(kubectl, pod, OPERATOR_NAMESPACE)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_service_probes_and_pdb_fit_the_deployment(base: list[dict[str, Any]]) -> None:
    """The Service sends 443 to the container's webhook port and exposes the probe listener as
    `metrics`; readiness is /readyz and liveness /healthz on that listener, behind a startup
    probe; the PDB keeps one replica of two through drains; both select the Deployment's pods.
    A new replica is ready before an old one stops, and replicas spread across nodes."""
    deployment = one(base, "Deployment", "libinject-operator")
    spec, pod_spec = deployment["spec"], deployment["spec"]["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    container = _container(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"webhook": 9443, "probes": 8080}

    service = one(base, "Service", "libinject-webhook")
    assert service["spec"]["selector"].items() <= labels.items()
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert service_ports == {"https": (443, "webhook"), "metrics": (8080, "probes")}

    for probe, path in (("readiness", "/readyz"), ("liveness", "/healthz"), ("startup", None)):
        http = container[f"{probe}Probe"]["httpGet"]
        assert http["port"] == "probes"
        assert path is None or http["path"] == path

    pdb = one(base, "PodDisruptionBudget", "libinject-operator")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert spec["replicas"] > pdb["spec"]["minAvailable"]

    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert {c["topologyKey"] for c in pod_spec["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname"
    }
    assert pod_spec["serviceAccountName"] == "libinject-operator"
    assert container["image"] == "localhost:5000/libinject/operator:0.1.0"
    assert "memory" in container["resources"]["limits"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    # POD_ID: the name Kopf gives this replica in logs and in the peering object.
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_ID": "metadata.name"}


def test_the_read_only_root_leaves_the_operator_room_to_write(base: list[dict[str, Any]]) -> None:
    """The root filesystem is read-only; the generated certificates' directory (the operator's
    default --cert-dir) and /tmp are emptyDirs, the certificates' in memory; the config is the
    ConfigMap, mounted read-only where `--config` looks."""
    deployment = one(base, "Deployment", "libinject-operator")
    container = _container(deployment)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert mounts["/var/run/libinject/tls"]["emptyDir"]["medium"] == "Memory"
    assert "emptyDir" in mounts["/tmp"]
    assert container["args"] == ["run", "--config", "/etc/libinject/config.yaml"]
    assert mounts["/etc/libinject"]["configMap"]["name"] == "libinject-config"


def test_the_operator_reads_its_config_and_flags(
    base: list[dict[str, Any]], overlay: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The operator's own loader (which refuses unknown keys) reads config.yaml as the defaults;
    the webhook host there is the Service's name and the ports are the container's. The
    Deployment's arguments parse, and in the cert-manager overlay they point the operator at the
    mounted certificate files."""
    import argparse  # noqa: PLC0415

    from libinject.runtime import config  # noqa: PLC0415 (the operator's runtime, under way)

    text = one(base, "ConfigMap", "libinject-config")["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    defaults = config.load(flags={}, environ={})
    assert config.load(flags={"config": path}, environ={}) == defaults
    document = yaml.safe_load(text)
    assert document["webhookHost"] == SERVICE_HOST
    container = _container(one(base, "Deployment", "libinject-operator"))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (document["webhookPort"], document["probePort"]) == (ports["webhook"], ports["probes"])

    def settings(args: list[str]) -> Any:
        assert args[:3] == ["run", "--config", "/etc/libinject/config.yaml"]
        parser = argparse.ArgumentParser()
        config.add_arguments(parser)
        flags = vars(parser.parse_args(["--config", str(path), *args[3:]]))
        return config.load(flags=flags, environ={})

    assert settings(container["args"]) == defaults
    overlaid = settings(_container(one(overlay, "Deployment", "libinject-operator"))["args"])
    assert overlaid.webhook.cert_file == Path(CERT_MOUNT, "tls.crt")
    assert overlaid.webhook.key_file == Path(CERT_MOUNT, "tls.key")


@pytest.mark.usefixtures("installed")
def test_the_peering_crd_keeps_kopf_keepalives(
    kubectl: Kubectl, base: list[dict[str, Any]]
) -> None:
    """Once the base is installed, a ClusterKopfPeering like the one the operator creates is
    accepted, and the server keeps a status shaped like Kopf's keep-alives (identity -> priority,
    lifetime, lastseen): the CRD preserves unknown fields there, and has no status subresource
    that would make Kopf patch /status (a sub-resource the operator's RBAC does not grant)."""
    crd = one(base, "CustomResourceDefinition", "clusterkopfpeerings.kopf.dev")
    [version] = crd["spec"]["versions"]
    assert "subresources" not in version
    keepalive = {"priority": 7, "lifetime": 60, "lastseen": "2026-01-01T00:00:00+00:00"}
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": "libinject"},
        "status": {"replica-a": keepalive},
    }
    [stored] = dry_run_apply(kubectl, [peering])
    # Only our entry: a running operator of this test session keeps its own there too.
    assert stored["status"]["replica-a"] == keepalive
