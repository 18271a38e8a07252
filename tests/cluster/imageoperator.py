"""The operator run from its image, as the Deployment in manifests/ defines it.

The image is built by cluster.operatorimage (as `make image` builds it) and pushed to the tests'
registry once per session. Each replica is a Pod made from the Deployment's template (the local
overlay, `kubectl kustomize`), stored by the API server (so the ServiceAccount admission adds the
token volume and Pod Security `restricted` checks it) on a fake node, and run by the pod runner
chrooted into the image's own file system: the template's args, env (POD_NAMESPACE and POD_ID
from the downward API), mounts (the ConfigMap's config.yaml, the tls and tmp emptyDirs), uid
65532 and read-only root; with a real token of the operator's ServiceAccount bound to the pod and
KUBERNETES_SERVICE_HOST/PORT naming the API server, as in a cluster.

What differs, because every replica shares this host's network: each replica's webhook and
probe ports, and the name its certificate is for (127.0.0.1, the local overlay's URL), are set
through LIBINJECT_* variables put before the template's env; a test's extra flags follow the
template's args.
"""

from __future__ import annotations

import copy
import secrets
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from cluster import harness, kubejson, operatorimage
from cluster.fixtures import OPERATOR_NAMESPACE, REPO
from cluster.kubectl import Kubectl
from cluster.manifests import one, render
from cluster.operator import Operator
from cluster.podrunner import ClusterAccess, PodRunner, RunningPod
from cluster.registry import Registry

DEPLOYMENT = "libinject-operator"
CONTAINER = "operator"


@dataclass
class ImageOperator(Operator):
    admin: client.ApiClient
    runner: PodRunner
    template: Mapping[str, Any]  # the Deployment's pod template
    image: str
    node: str
    webhook_port: int
    name: str = "operator"
    probe_port: int = field(default_factory=harness.free_port)
    extra_args: tuple[str, ...] = ()
    pod_name: str = ""
    running: RunningPod | None = None

    @property
    def identity(self) -> str:
        return self.pod_name  # POD_ID, from metadata.name

    def start(self) -> Self:
        self.pod_name = f"{DEPLOYMENT}-{self.name}-{secrets.token_hex(3)}"
        env = {
            "LIBINJECT_WEBHOOK_HOST": "127.0.0.1",
            "LIBINJECT_WEBHOOK_PORT": str(self.webhook_port),
            "LIBINJECT_PROBE_PORT": str(self.probe_port),
        }
        pod = operator_pod(self.template, name=self.pod_name, image=self.image, node=self.node,
                           env=env, extra_args=self.extra_args)  # fmt: skip
        core = client.CoreV1Api(self.admin)
        response = core.create_namespaced_pod(
            OPERATOR_NAMESPACE, kubejson.body(pod), _preload_content=False
        )
        stored = kubejson.json_of(response)
        try:
            self.running = self.runner.start(stored, app=None, container=CONTAINER)
        except BaseException:
            self._delete()
            raise
        return self

    def alive(self) -> bool:
        return self.running is not None and self.running.returncode is None

    def output(self) -> str:
        return "" if self.running is None else self.running.output()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """SIGTERM: the kubelet's stop (SIGKILL after the pod's grace period, up to `timeout`);
        SIGKILL: killed with no warning. Then the pod's volumes and its API object go."""
        assert self.running is not None
        if sig == signal.SIGKILL:
            self.running.kill()
        elif sig != signal.SIGTERM:
            raise ValueError(f"a pod is stopped with SIGTERM or SIGKILL, not {sig.name}")
        code = self.running.stop(grace=timeout)
        self._delete()
        assert code is not None
        return code

    def _delete(self) -> None:
        try:
            client.CoreV1Api(self.admin).delete_namespaced_pod(
                self.pod_name, OPERATOR_NAMESPACE, grace_period_seconds=0
            )
        except ApiException as error:
            if error.status != 404:
                raise


def operator_pod(
    template: Mapping[str, Any],
    *,
    name: str,
    image: str,
    node: str,
    env: Mapping[str, str],
    extra_args: tuple[str, ...],
) -> dict[str, Any]:
    """A Pod as the Deployment's ReplicaSet would make it from `template`, on `node`, running
    `image`; `env` goes before the template's own variables, `extra_args` after its args."""
    spec = copy.deepcopy(dict(template["spec"]))
    spec["nodeName"] = node
    (container,) = [c for c in spec["containers"] if c["name"] == CONTAINER]
    container["image"] = image
    container["args"] = [*container.get("args", ()), *extra_args]
    added = [{"name": key, "value": value} for key, value in env.items()]
    container["env"] = [*added, *container.get("env", ())]
    metadata = {"name": name, "namespace": OPERATOR_NAMESPACE,
                "labels": dict(template["metadata"].get("labels") or {})}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def deployment_template(kubectl: Kubectl) -> dict[str, Any]:
    """The operator Deployment's pod template, as the local overlay installs it."""
    objects = render(kubectl, REPO / "manifests" / "overlays" / "local")
    return dict(one(objects, "Deployment", DEPLOYMENT)["spec"]["template"])


def operator_runner(
    plane: harness.ControlPlane,
    *,
    admin: client.ApiClient,
    crane: Path,
    template: Mapping[str, Any],
    directory: Path,
) -> PodRunner:
    """A pod runner for operator replicas on `plane`: stopped after the template's grace
    period, their pods reaching the API server as their ServiceAccount."""
    server = urlsplit(plane.server)
    if server.hostname is None or server.port is None:
        raise ValueError(f"{plane.server} names no host and port")
    return PodRunner(
        admin=admin,
        crane=crane,
        directory=directory,
        grace=float(template["spec"]["terminationGracePeriodSeconds"]),
        cluster_access=ClusterAccess(host=server.hostname, port=server.port),
    )


ImageOperatorFactory = Callable[..., ImageOperator]


@pytest.fixture(scope="session")
def operator_image(registry: Registry, crane: Path) -> operatorimage.OperatorImage:
    """The operator image, built from this checkout and pushed to the tests' registry."""
    reference = f"{registry.address}/libinject/operator:test"
    return operatorimage.build_image(reference=reference, crane=crane)


@pytest.fixture(scope="session")
def image_operators(
    control_plane: harness.ControlPlane,
    admin: client.ApiClient,
    kubectl: Kubectl,
    installed: None,
    operator_image: operatorimage.OperatorImage,
    crane: Path,
    webhook_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ImageOperatorFactory]:
    """Starts operator replicas from the image (see the module's doc); every one still running
    at the end is stopped."""
    template = deployment_template(kubectl)
    runner = operator_runner(control_plane, admin=admin, crane=crane, template=template,
                             directory=tmp_path_factory.mktemp("operator-pods"))  # fmt: skip
    started: list[ImageOperator] = []

    def start(name: str = "operator", *extra_args: str) -> ImageOperator:
        replica = ImageOperator(
            admin=admin,
            runner=runner,
            template=template,
            image=operator_image.reference,
            node=control_plane.node_names[len(started) % control_plane.nodes],
            webhook_port=webhook_port,
            name=f"{name}-{len(started)}",
            extra_args=extra_args,
        )
        started.append(replica.start())
        return replica

    yield start
    for replica in started:
        if replica.alive():
            replica.stop()
