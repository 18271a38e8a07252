"""The opt-in CSI component (manifests/components/csi), checked against the real control plane: it
renders on top of the base and adds only the plugin's objects, the API server accepts them all in a
server-side dry run, the CSIDriver says what the plugin does, the plugin's arguments are what
`libinject csi` accepts and agree with the volumes they name, its ServiceAccount may post Events
and read the one signing-key Secret and nothing else, and a pod in a namespace enforcing Pod
Security `restricted` may use the driver.

Nothing here creates the CSIDriver: once it exists the operator turns every `auto` policy to csi,
which would change what the other live tests see. Only the namespace and the RBAC objects are
created for real, for the token test."""

from __future__ import annotations

import copy
import json
import os
import posixpath
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from cluster import harness, kubejson, poll
from cluster.fixtures import OPERATOR_NAMESPACE, NamespaceFactory, token_client
from cluster.kubectl import Kubectl
from cluster.manifests import RESTRICTED_CONTEXT, one, render
from libinject.cli.csi import _run_csi
from libinject.cli.main import _parser
from libinject.csi import validate
from libinject.runtime import csikey, kube
from libinject.runtime.config import RuntimeSettings

REPO = Path(__file__).parents[2]
MANIFESTS = REPO / "manifests"
COMPONENT = MANIFESTS / "components" / "csi"
DRIVER = "csi.libinject.dev"
CSI_NAMESPACE = ACCOUNT = "libinject-csi"
ENFORCE = "pod-security.kubernetes.io/enforce"
KUBELET_PODS = "/var/lib/kubelet/pods"
KEY_READER = "libinject-csi-key-reader"
KEY_SECRET = "libinject-csi-key"

# What the component adds to the base, by (kind, name).
ADDED = {
    ("Namespace", CSI_NAMESPACE),
    ("CSIDriver", DRIVER),
    ("ServiceAccount", ACCOUNT),
    ("ClusterRole", ACCOUNT),
    ("ClusterRoleBinding", ACCOUNT),
    ("DaemonSet", "libinject-csi"),
    ("Role", KEY_READER),
    ("RoleBinding", KEY_READER),
}
CLUSTER_SCOPED = {"Namespace", "CSIDriver", "ClusterRole", "ClusterRoleBinding"}
# The signing key's reader: the one object of the component in the operator's namespace.
IN_OPERATOR_NAMESPACE = {"Role", "RoleBinding"}

# A container that meets `restricted` by itself.
RESTRICTED_CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": "registry.invalid/app:1",
    "securityContext": RESTRICTED_CONTEXT,
    "volumeMounts": [{"name": "library", "mountPath": "/libinject/python", "readOnly": True}],
}


def _ours(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if (o["kind"], o["metadata"]["name"]) in ADDED]


def _containers(daemonset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in daemonset["spec"]["template"]["spec"]["containers"]}


def _volumes(daemonset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}


def _mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in container["volumeMounts"]}


def _flags(args: list[str]) -> dict[str, str]:
    """`--name=value` arguments as a mapping (each flag given once)."""
    pairs = [a.removeprefix("--").split("=", 1) for a in args if a.startswith("--")]
    flags = dict(pairs)
    assert len(flags) == len(pairs), args
    return flags


def _template_as_pod(daemonset: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(daemonset["spec"]["template"])
    metadata = {"name": "csi-template", "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def _dry_run(kubectl: Kubectl, verb: str, objects: list[dict[str, Any]], namespace: str) -> Any:
    """A server-side dry run of `kubectl apply --server-side` or `kubectl create`."""
    extra = ["--server-side", "--field-manager=test-csi-manifests"] if verb == "apply" else []
    return kubectl(
        verb,
        *extra,
        "--dry-run=server",
        "-n",
        namespace,
        "-o",
        "json",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
        check=False,
    )


@pytest.fixture(scope="module")
def base(kubectl: Kubectl) -> list[dict[str, Any]]:
    return render(kubectl, MANIFESTS)


@pytest.fixture(scope="module")
def with_csi(kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """A user's kustomization: the base plus the component. kustomize takes only relative paths,
    so they are relative to the temporary directory."""
    directory = tmp_path_factory.mktemp("with-csi")
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS / "base", directory)],
        "components": [os.path.relpath(COMPONENT, directory)],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return render(kubectl, directory)


@pytest.fixture(scope="module")
def daemonset(with_csi: list[dict[str, Any]]) -> dict[str, Any]:
    return one(with_csi, "DaemonSet", "libinject-csi")


@pytest.fixture(scope="module")
def csi_namespace(admin: client.ApiClient, with_csi: list[dict[str, Any]]) -> Iterator[str]:
    """The component's namespace, created for real from its manifest (a dry run cannot create a
    namespace for the dry runs of the objects in it); deleted afterwards. A namespace still
    terminating from an earlier module is waited out first."""
    core = client.CoreV1Api(admin)

    def absent() -> bool:
        try:
            core.read_namespace(CSI_NAMESPACE)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    poll.until(absent, what=f"no namespace {CSI_NAMESPACE}", timeout=60)
    core.create_namespace(kubejson.body(one(with_csi, "Namespace", CSI_NAMESPACE)))
    try:
        yield CSI_NAMESPACE
    finally:
        core.delete_namespace(CSI_NAMESPACE)


def test_the_component_adds_the_plugin_and_changes_nothing_else(
    base: list[dict[str, Any]], with_csi: list[dict[str, Any]]
) -> None:
    """Base plus component is the base, byte for byte, plus the namespace, the CSIDriver, the
    RBAC and the DaemonSet, each once; the namespaced ones are in libinject-csi, which enforces
    `privileged`, while libinject-system keeps enforcing `restricted` (and holds only the Role
    and RoleBinding that let the plugin read the signing key)."""
    keys = [(o["kind"], o["metadata"]["name"]) for o in with_csi]
    assert len(keys) == len(set(keys))
    assert set(keys) - {(o["kind"], o["metadata"]["name"]) for o in base} == ADDED
    assert [o for o in with_csi if (o["kind"], o["metadata"]["name"]) not in ADDED] == base
    for obj in _ours(with_csi):
        expected = None if obj["kind"] in CLUSTER_SCOPED else CSI_NAMESPACE
        expected = OPERATOR_NAMESPACE if obj["kind"] in IN_OPERATOR_NAMESPACE else expected
        assert obj["metadata"].get("namespace") == expected, obj["metadata"]
    labels = {
        o["metadata"]["name"]: o["metadata"]["labels"] for o in with_csi if o["kind"] == "Namespace"
    }
    assert labels == {
        OPERATOR_NAMESPACE: {ENFORCE: "restricted"},
        CSI_NAMESPACE: {ENFORCE: "privileged"},
    }


def test_the_csidriver_describes_the_plugin(with_csi: list[dict[str, Any]]) -> None:
    """The CSIDriver: node-only (nothing to attach), pod info on mount (the plugin names the pod
    in its Event), inline volumes only, the kubelet never changes ownership of the shared
    read-only files, no republish and no capacity tracking. Exactly these fields, nothing else."""
    driver = one(with_csi, "CSIDriver", DRIVER)
    assert driver["apiVersion"] == "storage.k8s.io/v1"
    assert driver["spec"] == {
        "attachRequired": False,
        "podInfoOnMount": True,
        "volumeLifecycleModes": ["Ephemeral"],
        "fsGroupPolicy": "None",
        "requiresRepublish": False,
        "storageCapacity": False,
    }


PRIVILEGED_REFUSED = "securityContext.privileged: Forbidden: disallowed by cluster policy"


def _accepted(kubectl: Kubectl, verb: str, objects: list[dict[str, Any]], namespace: str) -> Any:
    """A dry run that must pass without a warning. The local API server runs without
    --allow-privileged (a real cluster's kubelet and API server allow it), and refuses a
    privileged container outright: then that must be the only refusal, and the same objects with
    the plugin's `privileged` (and the Bidirectional propagation that requires it) taken out must pass (so every other field is still checked)."""
    result = _dry_run(kubectl, verb, objects, namespace)
    if result.returncode != 0 and PRIVILEGED_REFUSED in result.stderr:
        assert result.stderr.count("Forbidden") == 1, result.stderr
        objects = copy.deepcopy(objects)
        for obj in objects:
            if obj["kind"] in {"DaemonSet", "Pod"}:
                spec = (
                    obj["spec"]["template"]["spec"] if obj["kind"] == "DaemonSet" else obj["spec"]
                )
                for container in spec["containers"]:
                    container.get("securityContext", {}).pop("privileged", None)
                    for mount in container.get("volumeMounts", []):
                        mount.pop("mountPropagation", None)  # Bidirectional needs privileged
        result = _dry_run(kubectl, verb, objects, namespace)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    return result


@pytest.mark.usefixtures("installed")
def test_the_server_accepts_the_component(
    kubectl: Kubectl, with_csi: list[dict[str, Any]], csi_namespace: str, plugin: client.ApiClient
) -> None:
    """The API server accepts every object of the component without a warning (a server-side
    dry run: the DaemonSet with its hostPaths, Bidirectional propagation, root user and
    system-node-critical priority, the CSIDriver, the RBAC, the namespace's labels; `privileged`
    as _accepted says), and stores the CSIDriver's fields as written (none defaulted to something
    else). The template, dry-run as a Pod in libinject-csi, passes Pod Security there. The key
    reader's Role and RoleBinding are dry-run in libinject-system, where they live."""
    keyed = [o for o in _ours(with_csi) if o["kind"] in IN_OPERATOR_NAMESPACE]
    ours = [o for o in _ours(with_csi) if o["kind"] not in IN_OPERATOR_NAMESPACE]
    stored = json.loads(_accepted(kubectl, "apply", ours, csi_namespace).stdout)
    items = stored["items"] if stored["kind"] == "List" else [stored]
    assert len(items) == len(ours)
    stored = json.loads(_accepted(kubectl, "apply", keyed, OPERATOR_NAMESPACE).stdout)
    assert len(stored["items"]) == len(keyed) == 2
    written = one(with_csi, "CSIDriver", DRIVER)["spec"]
    assert {k: one(items, "CSIDriver", DRIVER)["spec"][k] for k in written} == written

    pod = _template_as_pod(one(with_csi, "DaemonSet", "libinject-csi"))
    _accepted(kubectl, "create", [pod], csi_namespace)


@pytest.mark.usefixtures("installed")
def test_the_plugin_could_not_run_in_the_operator_namespace(
    kubectl: Kubectl, daemonset: dict[str, Any]
) -> None:
    """Why the plugin has a namespace of its own: its pod is refused by Pod Security in
    libinject-system, which enforces `restricted` for the operator."""
    pod = _template_as_pod(daemonset)
    # Its ServiceAccount lives in libinject-csi; the operator's stands in for it here.
    pod["spec"]["serviceAccountName"] = "libinject-operator"
    # Without `privileged` (refused first by the local API server, see _accepted): hostPaths and
    # root alone are enough for `restricted` to refuse it.
    for container in pod["spec"]["containers"]:
        container["securityContext"].pop("privileged", None)
        for mount in container.get("volumeMounts", []):
            mount.pop("mountPropagation", None)
    result = _dry_run(kubectl, "create", [pod], OPERATOR_NAMESPACE)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr, result.stderr


def test_the_plugin_arguments_are_what_the_cli_accepts(
    daemonset: dict[str, Any], with_csi: list[dict[str, Any]]
) -> None:
    """The plugin container's args parse with `libinject`'s own argument parser into the `csi`
    command, pass the checks it makes before serving (endpoint form, repository and target-root
    rules), and agree with the pod around them: the socket is in the directory the registrar and
    the livenessprobe mount, the cache root and the kubelet's pods directory are the mounted
    hostPaths (the latter under its host path: the kubelet sends host paths), the node id is the
    node's name, the operator's library registry is the one allowed repository, and the key is
    the Secret the operator makes, in its namespace, which the component's Role lets it read."""
    containers = _containers(daemonset)
    plugin = containers["plugin"]
    operator = one(with_csi, "Deployment", "libinject-operator")["spec"]["template"]["spec"]
    assert plugin["image"] == operator["containers"][0]["image"]
    args = _parser().parse_args(plugin["args"])
    assert args.run is _run_csi
    rules = validate.Rules(
        allowed_repositories=tuple(args.allowed_repository),
        target_roots=tuple(args.target_root),
    )
    config = yaml.safe_load(one(with_csi, "ConfigMap", "libinject-config")["data"]["config.yaml"])
    assert rules.allowed_repositories == (config["registry"],)
    assert rules.target_roots == (KUBELET_PODS,)
    assert args.key_secret == f"{OPERATOR_NAMESPACE}/{RuntimeSettings().csi_key_secret}"
    assert args.key_secret == f"{OPERATOR_NAMESPACE}/{KEY_SECRET}"
    role = one(with_csi, "Role", KEY_READER)
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [KEY_SECRET],
            "verbs": ["get"],
        }
    ]

    volumes, mounts = _volumes(daemonset), _mounts(plugin)
    assert args.endpoint.startswith("unix:///")
    socket = args.endpoint.removeprefix("unix://")
    assert posixpath.dirname(socket) == mounts["socket-dir"]["mountPath"]
    assert str(args.root) == mounts["cache"]["mountPath"]
    assert volumes["cache"]["hostPath"] == {"path": str(args.root), "type": "DirectoryOrCreate"}
    assert mounts["pods"]["mountPath"] == volumes["pods"]["hostPath"]["path"] == KUBELET_PODS
    assert args.node_id == "$(NODE_NAME)"
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in (
        plugin["env"]
    )

    for name in ("node-driver-registrar", "liveness-probe"):
        flags = _flags(containers[name]["args"])
        mount = _mounts(containers[name])["socket-dir"]["mountPath"]
        assert flags["csi-address"] == posixpath.join(mount, posixpath.basename(socket)), name
    registration = _flags(containers["node-driver-registrar"]["args"])["kubelet-registration-path"]
    socket_dir = volumes["socket-dir"]["hostPath"]
    assert socket_dir["type"] == "DirectoryOrCreate"
    assert registration == posixpath.join(socket_dir["path"], posixpath.basename(socket))
    assert posixpath.dirname(registration) == f"/var/lib/kubelet/plugins/{DRIVER}"


def test_the_daemonset_has_what_a_node_plugin_needs(daemonset: dict[str, Any]) -> None:
    """The pod as a node plugin needs it: on every node (tolerates every taint), critical
    priority, the plugin privileged and root with the kubelet's pods directory mounted
    Bidirectional (so its mounts reach the host), the registrar with the kubelet's registration
    directory, the plugin restarted when Probe fails (livenessprobe sidecar on its port), every
    container with requests and a memory limit, and every image pinned to a version."""
    spec = daemonset["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == ACCOUNT
    assert spec["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in spec["tolerations"]
    assert "hostNetwork" not in spec

    containers = _containers(daemonset)
    assert set(containers) == {"plugin", "node-driver-registrar", "liveness-probe"}
    plugin = containers["plugin"]
    assert plugin["securityContext"]["privileged"] is True
    assert plugin["securityContext"]["runAsUser"] == 0
    assert plugin["args"][0] == "csi"
    mounts = _mounts(plugin)
    assert mounts["pods"]["mountPropagation"] == "Bidirectional"
    assert all("mountPropagation" not in m for n, m in mounts.items() if n != "pods")

    volumes = _volumes(daemonset)
    assert volumes["registration-dir"]["hostPath"]["path"].rstrip("/") == (
        "/var/lib/kubelet/plugins_registry"
    )
    assert _mounts(containers["node-driver-registrar"])["registration-dir"]["mountPath"] == (
        "/registration"
    )
    for name in ("node-driver-registrar", "liveness-probe"):
        context = containers[name]["securityContext"]
        assert "privileged" not in context, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert set(_mounts(containers[name])) <= {"socket-dir", "registration-dir"}, name

    port = _flags(containers["liveness-probe"]["args"])["health-port"]
    assert {p["name"]: p["containerPort"] for p in plugin["ports"]}["healthz"] == int(port)
    assert plugin["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}

    for name, container in containers.items():
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name
        repository, _, tag = container["image"].rpartition(":")
        assert tag, name
        assert tag != "latest", name
        assert "/" in repository, name
    assert containers["node-driver-registrar"]["image"].startswith(
        "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2."
    )
    assert containers["liveness-probe"]["image"].startswith(
        "registry.k8s.io/sig-storage/livenessprobe:v2."
    )


Call = Callable[[client.ApiClient, str], Any]


def _event(api: client.ApiClient, namespace: str) -> Any:
    """What the plugin posts when a library is not ready: an Event on the pod."""
    body = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="libinject-csi-"),
        involved_object=client.V1ObjectReference(kind="Pod", name="web", namespace=namespace),
        reason="LibraryNotReady",
        message="rbac probe",
        type="Warning",
    )
    return client.CoreV1Api(api).create_namespaced_event(namespace, body)


def _event_patch(api: client.ApiClient, namespace: str) -> Any:
    """A repeated Event is a patch of its count."""
    event = _event(api, namespace)
    body = {"count": 2}
    return client.CoreV1Api(api).patch_namespaced_event(event.metadata.name, namespace, body)


def _events_v1(api: client.ApiClient, namespace: str) -> Any:
    body = client.EventsV1Event(
        metadata=client.V1ObjectMeta(generate_name="libinject-csi-"),
        event_time=datetime.now(UTC),
        reporting_controller="csi.libinject.dev",
        reporting_instance="node-1",
        action="Publish",
        reason="LibraryNotReady",
        regarding=client.V1ObjectReference(kind="Pod", name="web", namespace=namespace),
        type="Warning",
    )
    return client.EventsV1Api(api).create_namespaced_event(namespace, body)


def _key(api: client.ApiClient, _: str) -> Any:
    """What the plugin reads to check the webhook's signatures."""
    return client.CoreV1Api(api).read_namespaced_secret(KEY_SECRET, OPERATOR_NAMESPACE)


ALLOWED: dict[str, Call] = {
    "read the signing key": _key,
    "post an Event on a pod": _event,
    "patch an Event (a repeat)": _event_patch,
    "post an events.k8s.io Event": _events_v1,
}

DENIED: dict[str, Call] = {
    "read a Secret": lambda api, ns: client.CoreV1Api(api).read_namespaced_secret("app-db", ns),
    "read the webhook's TLS Secret": lambda api, _: client.CoreV1Api(api).read_namespaced_secret(
        "libinject-webhook-tls", OPERATOR_NAMESPACE
    ),
    "list Secrets beside the key": lambda api, _: client.CoreV1Api(api).list_namespaced_secret(
        OPERATOR_NAMESPACE
    ),
    "list Secrets": lambda api, ns: client.CoreV1Api(api).list_namespaced_secret(ns),
    "list Secrets everywhere": lambda api, _: client.CoreV1Api(api).list_secret_for_all_namespaces(),
    "read pods": lambda api, ns: client.CoreV1Api(api).list_namespaced_pod(ns),
    "create pods": lambda api, ns: client.CoreV1Api(api).create_namespaced_pod(
        ns, kubejson.body({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a", "image": "a"}]}})
    ),
    "read Events": lambda api, ns: client.CoreV1Api(api).list_namespaced_event(ns),
    "delete Events": lambda api, ns: client.CoreV1Api(api).delete_collection_namespaced_event(ns),
    "read nodes": lambda api, _: client.CoreV1Api(api).list_node(),
    "read CSI drivers": lambda api, _: client.StorageV1Api(api).list_csi_driver(),
    "create a CSI driver": lambda api, _: client.StorageV1Api(api).create_csi_driver(
        kubejson.body({"metadata": {"name": "x.example.com"}, "spec": {"volumeLifecycleModes": ["Ephemeral"]}})
    ),
    "read policies": lambda api, _: client.CustomObjectsApi(api).list_cluster_custom_object(
        "libinject.dev", "v1alpha1", "instrumentationpolicies"
    ),
    "grant itself more": lambda api, _: client.RbacAuthorizationV1Api(api).create_cluster_role_binding(
        kubejson.body({"metadata": {"name": "escalate"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": CSI_NAMESPACE}]})
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def world(admin: client.ApiClient, installed: None) -> Iterator[str]:
    """A namespace with a Secret, as the admin made it: where the calls act."""
    core = client.CoreV1Api(admin)
    created = core.create_namespace(kubejson.body({"metadata": {"generateName": "csi-rbac-"}}))
    assert created.metadata is not None
    namespace = str(created.metadata.name)
    core.create_namespaced_secret(
        namespace, kubejson.body({"metadata": {"name": "app-db"}, "stringData": {"password": "x"}})
    )
    yield namespace
    core.delete_namespace(namespace)


@pytest.fixture(scope="module")
def plugin(
    control_plane: harness.ControlPlane,
    admin: client.ApiClient,
    admin_api: kube.Api,
    kubectl: Kubectl,
    with_csi: list[dict[str, Any]],
    csi_namespace: str,
) -> Iterator[client.ApiClient]:
    """The component's ServiceAccount and RBAC, created for real from the manifests, and a client
    with a token of that ServiceAccount from the TokenRequest API, as the plugin's pod gets."""
    # The key Secret as the operator makes it at start (a live test may not have run one yet).
    csikey.ensure(admin_api, namespace=OPERATOR_NAMESPACE, name=KEY_SECRET)
    rbac = [o for o in _ours(with_csi) if o["kind"] in {"ServiceAccount", "ClusterRole", "Role"}]
    rbac += [o for o in _ours(with_csi) if o["kind"] in {"ClusterRoleBinding", "RoleBinding"}]
    kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[harness.ISSUER], expiration_seconds=3600)
    )
    response = client.CoreV1Api(admin).create_namespaced_service_account_token(
        ACCOUNT, csi_namespace, request
    )
    assert response.status is not None
    try:
        yield token_client(control_plane, str(response.status.token))
    finally:
        rbac_api = client.RbacAuthorizationV1Api(admin)
        rbac_api.delete_cluster_role_binding(ACCOUNT)
        rbac_api.delete_cluster_role(ACCOUNT)
        rbac_api.delete_namespaced_role_binding(KEY_READER, OPERATOR_NAMESPACE)
        rbac_api.delete_namespaced_role(KEY_READER, OPERATOR_NAMESPACE)


@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_the_plugin_may(action: str, plugin: client.ApiClient, world: str) -> None:
    """The plugin's ServiceAccount may read the signing key and post (and repeat) an Event on a
    pod in any namespace: the calls the plugin makes."""
    ALLOWED[action](plugin, world)


@pytest.mark.parametrize("action", sorted(DENIED))
def test_the_plugin_may_not(action: str, plugin: client.ApiClient, world: str) -> None:
    """Anything else is refused by RBAC (403 naming the ServiceAccount): no other Secret (not
    even beside the key, nor a list of them), no pods, no nodes, no reading Events back, no
    CSIDrivers, no policies, no escalation."""
    with pytest.raises(ApiException) as refused:
        DENIED[action](plugin, world)
    assert refused.value.status == 403, refused.value.body
    assert f"system:serviceaccount:{CSI_NAMESPACE}:{ACCOUNT}" in str(refused.value.body)


def test_the_denials_are_not_for_want_of_objects(admin: client.ApiClient, world: str) -> None:
    """Control: the admin can read the Secret and the pods the plugin was refused, so those 403s
    are RBAC's."""
    client.CoreV1Api(admin).read_namespaced_secret("app-db", world)
    client.CoreV1Api(admin).list_namespaced_pod(world)


def _library_pod(volume: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "csi-volume-probe"},
        "spec": {"containers": [RESTRICTED_CONTAINER], "volumes": [{"name": "library", **volume}]},
    }


@pytest.mark.usefixtures("installed")
def test_restricted_pods_may_use_the_driver(kubectl: Kubectl, namespaces: NamespaceFactory) -> None:
    """Pod Security `restricted` (Kubernetes 1.36) allows `csi` inline volumes of any driver: a
    restricted-compliant pod with the volume the webhook writes (driver csi.libinject.dev,
    read-only, the library named in volumeAttributes) passes a server-side dry-run create, without
    a warning, in a namespace enforcing `restricted`. No CSIDriver object is needed for that: Pod
    Security looks at the volume's type only."""
    namespace = namespaces(labels={ENFORCE: "restricted"})
    volume = {
        "csi": {
            "driver": DRIVER,
            "readOnly": True,
            "volumeAttributes": {"language": "python", "flavor": "ddtrace", "version": "4.16.0"},
        }
    }
    result = _dry_run(kubectl, "create", [_library_pod(volume)], namespace)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    stored = json.loads(result.stdout)
    assert stored["spec"]["volumes"][0]["csi"]["driver"] == DRIVER


@pytest.mark.usefixtures("installed")
def test_restricted_is_really_enforced_there(
    kubectl: Kubectl, namespaces: NamespaceFactory
) -> None:
    """Control for the test above: the same pod with a hostPath volume instead is refused in such
    a namespace, so the acceptance there is Pod Security's verdict on the csi volume."""
    namespace = namespaces(labels={ENFORCE: "restricted"})
    volume = {"hostPath": {"path": "/var/lib/libinject/csi", "type": "Directory"}}
    result = _dry_run(kubectl, "create", [_library_pod(volume)], namespace)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr, result.stderr
