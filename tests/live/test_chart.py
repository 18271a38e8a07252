"""The Helm chart (charts/libinject) is manifests/ in another form: with its default values it
renders exactly the objects `kubectl kustomize manifests/` does (so the two never drift), its CRDs
are crds/'s, it lints clean, and every value it offers renders objects the API server accepts (a
server-side dry run on the local control plane) that carry that value where it belongs."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.helm import Helm
from cluster.kubectl import Kubectl
from cluster.manifests import dry_run_apply, one, render
from libinject.api.types import Mode
from libinject.runtime.config import OPTIONS

REPO = Path(__file__).parents[2]
CHART = REPO / "charts" / "libinject"
CSI_NAMESPACE = "libinject-csi"
CHECKSUM = "checksum/config"  # Helm's only addition: new settings roll the operator's pods

# Every value the chart offers, set away from its default at once.
TOGGLED: dict[str, Any] = {
    "image": {"digest": "sha256:" + "ab" * 32},
    "replicas": 3,
    "resources": {"requests": {"cpu": "250m", "memory": "192Mi"}, "limits": {"memory": "384Mi"}},
    "settings": {
        "registry": "registry.example.com/apm",
        "defaultMode": "csi",
        "autoImageVolumes": False,
        "mutateUnlabelled": True,
        "excludedNamespaces": ["batch", "legacy"],
        "agentPortDdtrace": 9126,
        "agentPortOtlp": 4319,
    },
    "webhook": {"timeoutSeconds": 5},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "preference": {
                        "matchExpressions": [
                            {"key": "node-role", "operator": "In", "values": ["ops"]}
                        ]
                    },
                }
            ]
        }
    },
    "priorityClassName": "platform-critical",
    "extraLabels": {"team": "platform"},
    "rollout": True,
    "csi": True,
    "pinDigests": True,
    "detectLanguages": True,
}


def values_file(tmp_path: Path, values: dict[str, Any] | None) -> list[str]:
    """helm's arguments for `values` written to a file (none for the chart's defaults)."""
    if values is None:
        return []
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["--values", str(path)]


def helm_template(helm: Helm, tmp_path: Path, values: dict[str, Any] | None = None) -> list[Any]:
    """`helm template` of the chart, CRDs included, with `values` if given."""
    args = ("template", "libinject", str(CHART), "--include-crds", *values_file(tmp_path, values))
    return [d for d in yaml.safe_load_all(helm(*args).stdout) if d]


def comparable(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """The objects by kind, namespace and name, with the settings file parsed (the chart writes
    it from values, the manifests by hand with comments) and Helm's checksum annotation left out."""
    found = {}
    for original in objects:
        obj = copy.deepcopy(original)
        metadata = obj["metadata"]
        if obj["kind"] == "ConfigMap" and "config.yaml" in obj.get("data", {}):
            obj["data"]["config.yaml"] = yaml.safe_load(obj["data"]["config.yaml"])
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]["metadata"]
            annotations = template.pop("annotations", {})
            assert set(annotations) <= {CHECKSUM}, annotations
        found[(obj["kind"], metadata.get("namespace", ""), metadata["name"])] = obj
    return found


def test_the_chart_lints_clean(helm: Helm) -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def test_default_values_render_what_kustomize_installs(
    helm: Helm, kubectl: Kubectl, tmp_path: Path
) -> None:
    """Object for object and field for field, CRDs included: a change to manifests/ that the
    chart does not follow (or the reverse) fails here."""
    chart = comparable(helm_template(helm, tmp_path))
    manifests = comparable(render(kubectl, REPO / "manifests"))
    assert sorted(chart) == sorted(manifests)
    for key, obj in manifests.items():
        assert chart[key] == obj, key


@pytest.mark.parametrize(
    ("values", "kustomization"),
    [
        ({"certManager": True}, {"resources": ["overlays/cert-manager"]}),
        ({"rollout": True}, {"resources": ["base"], "components": ["components/rollout"]}),
        ({"csi": True}, {"resources": ["base"], "components": ["components/csi"]}),
        ({"pinDigests": True}, {"resources": ["base"], "components": ["components/pin-digests"]}),
        (
            {"detectLanguages": True},
            {"resources": ["base"], "components": ["components/detect-languages"]},
        ),
        (
            {"pinDigests": True, "detectLanguages": True},
            {
                "resources": ["base"],
                "components": ["components/pin-digests", "components/detect-languages"],
            },
        ),
        (
            {"webhook": {"url": "https://127.0.0.1:9443/mutate-pods"}, "replicas": 0},
            {"resources": ["overlays/local"]},
        ),
        (
            {"certManager": True, "rollout": True, "csi": True},
            {
                "resources": ["overlays/cert-manager"],
                "components": ["components/rollout", "components/csi"],
            },
        ),
    ],
    ids=[
        "cert-manager",
        "rollout",
        "csi",
        "pin-digests",
        "detect-languages",
        "pin-and-detect",
        "local",
        "all-three",
    ],
)
def test_each_toggle_renders_what_its_overlay_or_component_installs(
    helm: Helm,
    kubectl: Kubectl,
    tmp_path: Path,
    values: dict[str, Any],
    kustomization: dict[str, list[str]],
) -> None:
    """`certManager` is manifests/overlays/cert-manager, `rollout`, `csi`, `pinDigests` and
    `detectLanguages` their components added to the base (the last two each add DNS, as both
    components do), `webhook.url` with no replicas the local overlay (kustomize reads them
    through a kustomization made here, as a user's would)."""
    manifests = os.path.relpath(REPO / "manifests", tmp_path)
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        **{
            kind: [f"{manifests}/{path}" for path in paths] for kind, paths in kustomization.items()
        },
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(document))
    chart = comparable(helm_template(helm, tmp_path, values))
    kustomized = comparable(render(kubectl, tmp_path))
    assert sorted(chart) == sorted(kustomized)
    for key, obj in kustomized.items():
        assert chart[key] == obj, key


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicas": "two"}, "/replicas"),
        ({"settings": {"defaultMode": "auto"}}, "/settings/defaultMode"),
        ({"settings": {"registy": "registry.example.com"}}, "registy"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"),
        ({"extraLabels": {"tier": 1}}, "/extraLabels/tier"),
    ],
    ids=["type", "enum", "unknown-key", "digest", "range", "label-value"],
)
def test_a_bad_value_is_refused_naming_it(
    helm: Helm, tmp_path: Path, values: dict[str, Any], named: str
) -> None:
    """values.schema.json: a mistyped or unknown value stops the render (and so an install or
    an upgrade) with a message naming it, before anything reaches the cluster."""
    args = ("template", "libinject", str(CHART), *values_file(tmp_path, values))
    result = helm(*args, check=False)
    assert result.returncode != 0
    assert named in result.stderr, result.stderr


def test_the_schema_knows_what_the_operator_knows() -> None:
    """The settings the schema allows are operator settings, and its default modes are the modes
    a policy may name but `auto` (what `auto` falls back to cannot be `auto`)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    settings = schema["properties"]["settings"]["properties"]
    assert set(settings) <= {option.key for option in OPTIONS}
    assert set(settings) == set(yaml.safe_load((CHART / "values.yaml").read_text())["settings"])
    assert set(settings["defaultMode"]["enum"]) == {mode.value for mode in Mode} - {"auto"}


def test_the_charts_crds_are_crds_directory_files() -> None:
    for crd in (REPO / "crds").glob("*.yaml"):
        if crd.name != "kustomization.yaml":
            assert (CHART / "crds" / crd.name).read_bytes() == crd.read_bytes(), crd.name
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(
        p.name for p in (REPO / "crds").glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_every_value_lands_where_it_belongs(helm: Helm, tmp_path: Path) -> None:
    objects = helm_template(helm, tmp_path, TOGGLED)
    deployment = one(objects, "Deployment", "libinject-operator")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"localhost:5000/libinject/operator@{TOGGLED['image']['digest']}"
    assert deployment["spec"]["replicas"] == 3
    assert container["resources"] == TOGGLED["resources"]
    for field in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod[field] == TOGGLED[field], field
    settings = yaml.safe_load(one(objects, "ConfigMap", "libinject-config")["data"]["config.yaml"])
    assert settings == {
        **TOGGLED["settings"],
        "webhookPort": 9443,
        "probePort": 8080,
        "webhookHost": "libinject-webhook.libinject-system.svc",
    }
    hook = one(objects, "MutatingWebhookConfiguration", "libinject")["webhooks"][0]
    assert hook["timeoutSeconds"] == 5
    inject, names = hook["namespaceSelector"]["matchExpressions"]
    # Unlabelled namespaces are sent too; an explicit opt-out and the excluded ones are not.
    assert inject == {"key": "libinject.dev/inject", "operator": "NotIn", "values": ["disabled"]}
    assert {"batch", "legacy", "kube-system", "libinject-system"} <= set(names["values"])
    namespaced_or_not = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    assert all(o["metadata"]["labels"]["team"] == "platform" for o in namespaced_or_not)
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "platform"
    assert "team" not in deployment["spec"]["selector"]["matchLabels"]  # a selector never changes
    rollout = one(objects, "ClusterRole", "libinject-rollout")
    assert rollout["rules"][0]["verbs"] == ["list", "patch"]
    plugin = one(objects, "DaemonSet", "libinject-csi")["spec"]["template"]["spec"]["containers"][0]
    assert plugin["image"] == container["image"]
    assert "--allowed-repository=registry.example.com/apm" in plugin["args"]
    assert {"name": "LIBINJECT_PIN_DIGESTS", "value": "true"} in container["env"]
    egress = one(objects, "NetworkPolicy", "libinject-operator")["spec"]["egress"]
    assert {"port": 53, "protocol": "UDP"} in egress[-1]["ports"]  # registries by name


def test_the_monitors_scrape_the_metrics_listener(helm: Helm, tmp_path: Path) -> None:
    """The ServiceMonitor names the Service's `metrics` port, the PodMonitor the pods' `probes`
    port, both the operator's pods by the selector the Service uses; neither is there unless
    asked for (a cluster without the Prometheus Operator has no such kinds)."""
    assert not [
        o for o in helm_template(helm, tmp_path) if o["apiVersion"].startswith("monitoring.")
    ]
    objects = helm_template(helm, tmp_path, {"serviceMonitor": True, "podMonitor": True})
    service = one(objects, "Service", "libinject-webhook")
    by_kind = {o["kind"]: o for o in objects if o["apiVersion"] == "monitoring.coreos.com/v1"}
    assert set(by_kind) == {"ServiceMonitor", "PodMonitor"}
    for monitor in by_kind.values():
        assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    [endpoint] = by_kind["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    [pod_endpoint] = by_kind["PodMonitor"]["spec"]["podMetricsEndpoints"]
    container = one(objects, "Deployment", "libinject-operator")["spec"]["template"]["spec"]
    ports = {port["name"] for port in container["containers"][0]["ports"]}
    assert pod_endpoint["port"] in ports
    assert pod_endpoint["path"] == "/metrics"


def test_new_settings_roll_the_operator(helm: Helm, tmp_path: Path) -> None:
    """The pod template carries the settings' checksum: `helm upgrade` with other settings
    restarts the replicas, which read them only at start."""

    def checksum(values: dict[str, Any] | None) -> str:
        objects = helm_template(helm, tmp_path, values)
        template = one(objects, "Deployment", "libinject-operator")["spec"]["template"]
        return str(template["metadata"]["annotations"][CHECKSUM])

    assert checksum(None) == checksum({"replicas": 3})
    assert checksum(None) != checksum({"settings": {"defaultMode": "csi"}})


def test_another_namespace_moves_every_reference(helm: Helm, tmp_path: Path) -> None:
    objects = helm_template(helm, tmp_path, {"namespace": "apm-system", "createNamespace": False})
    assert not [o for o in objects if o["kind"] == "Namespace"]
    text = json.dumps([o for o in objects if o["kind"] != "CustomResourceDefinition"])
    assert "libinject-system" not in text
    settings = yaml.safe_load(one(objects, "ConfigMap", "libinject-config")["data"]["config.yaml"])
    assert settings["webhookHost"] == "libinject-webhook.apm-system.svc"
    hook = one(objects, "MutatingWebhookConfiguration", "libinject")["webhooks"][0]
    assert hook["clientConfig"]["service"]["namespace"] == "apm-system"


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    "values",
    [None, TOGGLED, {**TOGGLED, "certManager": True}],
    ids=["defaults", "every-value-set", "with-cert-manager"],
)
def test_the_api_server_accepts_the_rendered_objects(
    helm: Helm, kubectl: Kubectl, tmp_path: Path, values: dict[str, Any] | None
) -> None:
    """A server-side dry run of everything but the CRDs (installed already, and Helm installs
    them before the rest), with no refusal and no warning. cert-manager is not installed here,
    so its Issuers and Certificates are left out; what the toggle changes in our own objects (the
    mounted Secret, the flags, the cainjector annotation) is checked by the server. So are the
    objects in the CSI plugin's namespace, which a dry run cannot create first
    (test_csi_manifests.py dry-runs the component's, which the chart's equal)."""
    objects = helm_template(helm, tmp_path, values)
    ours = [
        o
        for o in objects
        if o["kind"] != "CustomResourceDefinition"
        and not o["apiVersion"].startswith("cert-manager.io/")
        and o["metadata"].get("namespace") != CSI_NAMESPACE
        and (o["kind"], o["metadata"]["name"]) != ("Namespace", CSI_NAMESPACE)
    ]
    dry_run_apply(kubectl, ours)
