"""pytest fixtures over the local control plane (registered by tests/conftest.py).

The control plane starts once per session, on first use, so runs that select no live test never
start it. Each test gets fresh namespaces; clients are the admin (system:masters) and the
operator's ServiceAccount, whose only rights are those in manifests/.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client import ApiException

from cluster import build, harness, poll
from cluster.kubectl import Kubectl
from cluster.operator import Operator, OperatorProcess
from libinject.runtime import kube

REPO = Path(__file__).parents[2]
WEBHOOK_PATH = "mutate-pods"
OPERATOR_NAMESPACE = "libinject-system"
OPERATOR_ACCOUNT = "libinject-operator"
# The policy resource, for CustomObjectsApi calls.
GROUP, VERSION, PLURAL = "libinject.dev", "v1alpha1", "instrumentationpolicies"
CRD_NAME = f"{PLURAL}.{GROUP}"

NamespaceFactory = Callable[..., str]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.ControlPlane]:
    # Two fake nodes, so scheduling is a real choice.
    with harness.ControlPlane(tmp_path_factory.mktemp("control-plane"), nodes=2) as plane:
        yield plane


@pytest.fixture(scope="session")
def kubectl(control_plane: harness.ControlPlane) -> Kubectl:
    return Kubectl(binary=build.binaries()["kubectl"], kubeconfig=control_plane.kubeconfig)


@pytest.fixture(scope="session")
def admin(control_plane: harness.ControlPlane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(control_plane.kubeconfig))


@pytest.fixture(scope="session")
def admin_api(control_plane: harness.ControlPlane) -> kube.Api:
    """The admin through the operator's own client (runtime.kube), for calls of its modules."""
    return kube.Api(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def webhook_port() -> int:
    """The loopback port the API server calls the webhook on (operator processes listen on it)."""
    return harness.free_port()


@pytest.fixture(scope="session")
def installed(kubectl: Kubectl, webhook_port: int) -> None:
    """libinject installed the way a user does, through the `local` overlay: the base's CRDs,
    namespace, RBAC and webhook configuration, with the webhook called on loopback."""
    kubectl("apply", "--server-side", "-k", str(REPO / "manifests" / "overlays" / "local"))
    url = f"https://127.0.0.1:{webhook_port}/{WEBHOOK_PATH}"
    patch = [{"op": "replace", "path": "/webhooks/0/clientConfig/url", "value": url}]
    kubectl(
        "patch", "mutatingwebhookconfiguration", "libinject", "--type=json", "-p", json.dumps(patch)
    )
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD_NAME}")
    # Established comes first; the schema reaches the published OpenAPI (what `kubectl explain`
    # and client-side tools read) a moment later.
    poll.until(
        lambda: kubectl("explain", "instrumentationpolicy", check=False).returncode == 0,
        what=f"{CRD_NAME} in the published OpenAPI",
        timeout=60,
    )


@pytest.fixture(scope="session")
def operator_token(installed: None, admin: client.ApiClient) -> str:
    """A token of the operator's ServiceAccount from the TokenRequest API, as a pod would get."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[harness.ISSUER], expiration_seconds=3600)
    )
    response = client.CoreV1Api(admin).create_namespaced_service_account_token(
        OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, request
    )
    assert response.status is not None
    return str(response.status.token)


def token_client(plane: harness.ControlPlane, token: str) -> client.ApiClient:
    """A client that authenticates with a bearer token (a ServiceAccount's, say)."""
    configuration = client.Configuration()
    configuration.host = plane.server
    configuration.ssl_ca_cert = str(plane.keys.ca.certificate)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def operator(control_plane: harness.ControlPlane, operator_token: str) -> client.ApiClient:
    """A client that authenticates as the operator's ServiceAccount."""
    return token_client(control_plane, operator_token)


@pytest.fixture(scope="session")
def operator_kubectl(
    control_plane: harness.ControlPlane, kubectl: Kubectl, operator_token: str
) -> Kubectl:
    """kubectl as the operator's ServiceAccount; its kubeconfig is what the operator runs with."""
    path = control_plane.directory / "operator.kubeconfig"
    ca = control_plane.keys.ca.certificate
    path.write_text(
        harness.kubeconfig(server=control_plane.server, ca=ca, user={"token": operator_token})
    )
    return Kubectl(binary=kubectl.binary, kubeconfig=path)


@pytest.fixture(scope="session")
def operator_api(operator_kubectl: Kubectl) -> kube.Api:
    """The operator's own client (runtime.kube) with the operator's kubeconfig."""
    return kube.Api(operator_kubectl.kubeconfig)


OperatorFactory = Callable[..., Operator]
OPERATOR_KINDS = ("host", "image")


@pytest.fixture(scope="session")
def host_operators(
    control_plane: harness.ControlPlane, operator_kubectl: Kubectl, webhook_port: int
) -> Iterator[Callable[..., OperatorProcess]]:
    """Starts `libinject run` processes as the operator's ServiceAccount (so the manifests' RBAC
    is all they have); every one still running at the end is stopped."""
    started: list[OperatorProcess] = []

    def start(name: str = "operator", *extra_args: str) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig=operator_kubectl.kubeconfig,
            directory=control_plane.directory / "operators",
            webhook_port=webhook_port,
            name=f"{name}-{len(started)}",
            extra_args=extra_args,
        )
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def operator_kind() -> str:
    """How this test's operators run: "host", a process of the runtime environment on this host
    (cluster.operator), or "image", from the operator image as the Deployment defines it
    (cluster.imageoperator). A test module chooses by overriding this fixture."""
    return "host"


@pytest.fixture
def operator_processes(operator_kind: str, request: pytest.FixtureRequest) -> OperatorFactory:
    """Starts operator replicas of this test's kind: `operator_processes(name, *flags)`."""
    if operator_kind not in OPERATOR_KINDS:
        raise ValueError(f"operator_kind {operator_kind!r} is none of {OPERATOR_KINDS}")
    # Looked up by name: the image's fixtures build the image, which only its tests need.
    factory: OperatorFactory = request.getfixturevalue(f"{operator_kind}_operators")
    return factory


@pytest.fixture(scope="session")
def _operators_now() -> list[tuple[str, Operator]]:
    return []


@pytest.fixture
def running_operator(
    _operators_now: list[tuple[str, Operator]],
    operator_processes: OperatorFactory,
    operator_kind: str,
) -> Operator:
    """The operator of this test's kind, up and ready; after a test stopped or killed it, or
    when the last test ran the other kind (which is stopped: both would share the webhook's
    port), a fresh one."""
    if _operators_now:
        kind, current = _operators_now[-1]
        if current.alive() and kind == operator_kind:
            return current
        if current.alive():
            current.stop()
    _operators_now.append((operator_kind, operator_processes().wait_ready()))
    return _operators_now[-1][1]


@pytest.fixture
def own_operator(
    _operators_now: list[tuple[str, Operator]], operator_processes: OperatorFactory
) -> Iterator[OperatorFactory]:
    """Starts one operator of this test's own: `own_operator(name, *flags)`, ready. The shared
    one is stopped first (they would share the webhook's port), and this one after the test, so
    the next test gets a fresh shared one."""
    started: list[Operator] = []

    def start(name: str, *flags: str) -> Operator:
        for _, running in _operators_now:
            if running.alive():
                running.stop()
        operator = operator_processes(name, *flags).wait_ready()
        _operators_now.append((name, operator))
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.stop()


@pytest.fixture
def namespaces(
    admin: client.ApiClient, request: pytest.FixtureRequest
) -> Iterator[NamespaceFactory]:
    """Makes fresh namespaces named after the test (`labels=` sets e.g. Pod Security levels);
    deletes them afterwards without waiting: the namespace controller finishes in the background."""
    core = client.CoreV1Api(admin)
    made: list[str] = []
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")

    def create(*, labels: dict[str, str] | None = None) -> str:
        name = f"{slug}-{secrets.token_hex(3)}"
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or {}))
        core.create_namespace(body)
        made.append(name)
        # The ServiceAccount admission plugin refuses pods until the controllers made it.
        poll.until(
            lambda: _has_default_service_account(core, name),
            what=f"the default ServiceAccount of {name}",
            timeout=30,
        )
        return name

    yield create
    for name in made:
        core.delete_namespace(name)


@pytest.fixture
def namespace(namespaces: NamespaceFactory) -> str:
    return namespaces()


def _has_default_service_account(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
