"""The kubelet's part for one pod: volumes, init containers from their images, then one app
container on the host's file system (or from its own image), all in private mount and PID
namespaces.

CSI inline volumes are published by a real node plugin (cluster.podrunner.csi) in this
process's mount namespace, under the kubelet root: each container's namespace is a copy of ours
made when it starts, so it has the plugin's mount at the target path and binds it at its
mountPath."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client

from cluster.podrunner.api import ApiSources
from cluster.podrunner.containers import Image
from cluster.podrunner.csi import CSIVolumes, NodePlugin
from cluster.podrunner.environment import Sources, resolve_env
from cluster.podrunner.errors import ContainerConfigError, InitContainerError
from cluster.podrunner.images import ImageStore
from cluster.podrunner.launchspec import launch_spec
from cluster.podrunner.mounts import HostMountpoints, container_mounts
from cluster.podrunner.process import ContainerProcess
from cluster.podrunner.volumes import Volume, prepare_volumes

Pod = Mapping[str, Any]


@dataclass(frozen=True)
class AppImage:
    """What the app's image would bring, since the app runs from the host's file system: its
    environment (a venv's bin first on PATH, say), working directory, entrypoint and cmd."""

    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()

    def as_image(self) -> Image:
        return Image(env=dict(self.env), entrypoint=self.entrypoint, cmd=self.cmd,
                     working_dir=self.working_dir)  # fmt: skip


@dataclass(frozen=True)
class ClusterAccess:
    """How a pod reaches the API server, as the kubelet and kube-proxy give it: a real token of
    its ServiceAccount, bound to the pod (TokenRequest, as the kubelet asks for the projected
    kube-api-access volume), and KUBERNETES_SERVICE_HOST/PORT naming the API server (here on
    loopback, where the `kubernetes` Service's address would lead). Only for a pod the API
    server stores (the token is bound to its uid)."""

    host: str
    port: int
    token_seconds: int = 3607  # what the kubelet asks for the kube-api-access token

    def env(self) -> dict[str, str]:
        return {"KUBERNETES_SERVICE_HOST": self.host, "KUBERNETES_SERVICE_PORT": str(self.port)}


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str


class PodRunner:
    """Runs pods as stored by the API server; each gets a directory under `directory`.

    `admin` reads what the pod refers to (ConfigMaps, Secrets, its node). `host_ip` stands for
    status.hostIP and status.podIP: the app runs on this host's network. `grace` is how long a
    stopped app gets between SIGTERM and SIGKILL.

    `csi_endpoint` (unix:///path/csi.sock) is a CSI node plugin for the pods' `csi` inline
    volumes of its driver; `kubelet_root` is the kubelet's root directory its target paths are
    under (`<kubelet_root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`). Without an
    endpoint a csi volume is refused as unsupported.

    `cluster_access` lets the pods reach the API server as their ServiceAccount; without it
    their token volume holds a dummy token and no KUBERNETES_SERVICE_* variable is set."""

    def __init__(
        self,
        *,
        admin: client.ApiClient,
        crane: Path,
        directory: Path,
        host_ip: str = "127.0.0.1",
        images: ImageStore | None = None,
        init_timeout: float = 120.0,
        grace: float = 5.0,
        csi_endpoint: str | None = None,
        kubelet_root: Path = Path("/var/lib/kubelet"),
        cluster_access: ClusterAccess | None = None,
    ) -> None:
        self.core = client.CoreV1Api(admin)
        self.directory = directory
        self.host_ip = host_ip
        self.images = images or ImageStore(crane, directory / "images")
        self.init_timeout = init_timeout
        self.grace = grace
        self.csi = (
            None
            if csi_endpoint is None
            else NodePlugin(endpoint=csi_endpoint, kubelet_root=kubelet_root)
        )
        self.cluster_access = cluster_access

    def start(
        self,
        pod: Pod | client.V1Pod,
        *,
        app: AppImage | Mapping[str, str] | None,
        container: str | None = None,
    ) -> RunningPod:
        """Makes the volumes, runs the init containers in order, then starts the app container
        (`container`, or the first) in the background: from the host's file system with what
        `app` says its image would bring, or, `app` None, chrooted into its own image as the
        init containers are. Any failure removes what was made."""
        pod = _as_dict(pod, self.core.api_client)
        work = self.directory / _directory_name(pod)
        running = RunningPod(work, grace=self.grace)
        running.csi = None if self.csi is None else CSIVolumes(self.csi)
        try:
            sources = _sources(self.core, pod)
            work.mkdir(parents=True)
            volumes = prepare_volumes(
                pod,
                directory=work / "volumes",
                sources=sources,
                images=self.images,
                csi=running.csi,
                **({} if self.cluster_access is None else {"token": self._token(pod)}),
            )
            for spec in pod["spec"].get("initContainers") or ():
                self._run_init(pod, spec, volumes=volumes, sources=sources, work=work)
            spec = _app_container(pod, container)
            running.process = self._start_app(
                pod, spec, app=app, volumes=volumes, sources=sources, running=running
            )
        except BaseException:
            running.stop()
            raise
        return running

    def run_to_completion(
        self,
        pod: Pod | client.V1Pod,
        *,
        app: AppImage | Mapping[str, str] | None,
        container: str | None = None,
        timeout: float,
    ) -> Completed:
        """Runs the pod until its app exits (TimeoutError past `timeout`, after stopping it)."""
        with self.start(pod, app=app, container=container) as running:
            returncode = running.wait(timeout)
            running.stop()
            return Completed(returncode=returncode, output=running.output())

    def _run_init(
        self,
        pod: Pod,
        spec: Mapping[str, Any],
        *,
        volumes: Mapping[str, Volume],
        sources: Sources,
        work: Path,
    ) -> None:
        name = str(spec["name"])
        if spec.get("restartPolicy") == "Always":
            raise ContainerConfigError(f"init container {name!r}: sidecars are not supported")
        directory = work / "containers" / name
        root = directory / "rootfs"
        image = self._image_root(spec, root)
        env = self._env(pod, spec, sources=sources)
        mounts = container_mounts(spec, volumes)
        launch = launch_spec(pod, spec, image=image, env=env, root=root, mounts=mounts)
        process = ContainerProcess(name=name, spec=launch, directory=directory).start()
        code = self._finish(process)
        if code != 0:
            raise InitContainerError(name, exit_code=code, output=process.output())

    def _finish(self, process: ContainerProcess) -> int | None:
        """An init container's exit code, None if it ran past the timeout. It is stopped in any
        case, with whatever it left running, also when the wait is interrupted."""
        try:
            return process.wait(self.init_timeout)
        except TimeoutError:
            return None
        finally:
            process.stop(grace=self.grace)

    def _start_app(
        self,
        pod: Pod,
        spec: Mapping[str, Any],
        *,
        app: AppImage | Mapping[str, str] | None,
        volumes: Mapping[str, Volume],
        sources: Sources,
        running: RunningPod,
    ) -> ContainerProcess:
        name = str(spec["name"])
        env = self._env(pod, spec, sources=sources)
        mounts = container_mounts(spec, volumes)
        directory = running.directory / "containers" / name
        directory.mkdir(parents=True)
        root: Path | None = None
        if app is None:
            root = directory / "rootfs"
            image = self._image_root(spec, root)
        else:
            image = (app if isinstance(app, AppImage) else AppImage(env=dict(app))).as_image()
            for mount in mounts:
                running.mountpoints.claim(Path(mount.target), directory=mount.source.is_dir())
        launch = launch_spec(pod, spec, image=image, env=env, root=root, mounts=mounts)
        return ContainerProcess(name=name, spec=launch, directory=directory).start()

    def _image_root(self, spec: Mapping[str, Any], root: Path) -> Image:
        """The container's image unpacked into `root`; its config."""
        reference = str(spec["image"])
        self.images.unpack(reference, root)
        return self.images.config(reference)

    def _env(self, pod: Pod, spec: Mapping[str, Any], *, sources: Sources) -> dict[str, str]:
        """The container's variables over the API server's address (as the kubelet puts the
        `kubernetes` Service's ahead of the container's own), when the pods may reach it."""
        access = {} if self.cluster_access is None else self.cluster_access.env()
        return access | resolve_env(pod, spec, sources=sources, host_ip=self.host_ip)

    def _token(self, pod: Pod) -> str:
        """A token of the pod's ServiceAccount bound to the pod, as the kubelet requests it."""
        assert self.cluster_access is not None
        metadata = pod["metadata"]
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[],  # the API server's own
                expiration_seconds=self.cluster_access.token_seconds,
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=metadata["name"], uid=metadata["uid"]
                ),
            )
        )
        account = str(pod["spec"].get("serviceAccountName") or "default")
        response = self.core.create_namespaced_service_account_token(
            account, str(metadata["namespace"]), request
        )
        if response.status is None:
            raise RuntimeError(f"TokenRequest for {account} answered without a token")
        return str(response.status.token)


class RunningPod:
    """A pod whose app container runs; `stop()` (or leaving the `with` block) ends it and
    removes everything the pod had on the host."""

    def __init__(self, directory: Path, *, grace: float) -> None:
        self.directory = directory
        self.grace = grace
        self.mountpoints = HostMountpoints()
        self.process: ContainerProcess | None = None
        self.csi: CSIVolumes | None = None

    def __enter__(self) -> RunningPod:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def returncode(self) -> int | None:
        """The app's exit code once it exited (128 + the signal if one ended it), else None."""
        return None if self.process is None else self.process.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Waits for the app to exit; its code. TimeoutError if it still runs after `timeout`."""
        return self._process().wait(timeout)

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM, SIGKILL after the grace period (the runner's, unless given); then the CSI
        volumes are unpublished, and the mountpoints made on the host and the pod's directory
        go. Safe to call twice; a failed unpublish is raised once the rest is cleaned up."""
        code = None
        if self.process is not None:
            code = self.process.stop(grace=self.grace if grace is None else grace)
            self.process.keep_output()
        try:
            if self.csi is not None:
                self.csi.unpublish_all()
        finally:
            self.mountpoints.release()
            shutil.rmtree(self.directory, ignore_errors=True)
        return code

    def kill(self) -> None:
        """SIGKILL to the app container, no SIGTERM first; `stop()` still cleans up after."""
        self._process().kill()

    def output(self) -> str:
        """The app's stdout and stderr so far."""
        return self._process().output()

    def _process(self) -> ContainerProcess:
        if self.process is None:
            raise RuntimeError("the pod's app container has not started")
        return self.process


def _app_container(pod: Pod, name: str | None) -> Mapping[str, Any]:
    found = [spec for spec in pod["spec"]["containers"] if name in (None, spec["name"])]
    if not found:
        raise ContainerConfigError(f"the pod has no container {name!r}")
    return dict(found[0])


def _sources(core: client.CoreV1Api, pod: Pod) -> ApiSources:
    namespace = str(pod["metadata"]["namespace"])
    node = str(pod["spec"].get("nodeName") or "")
    return ApiSources(core, namespace=namespace, node_name=node)


def _directory_name(pod: Pod) -> str:
    metadata = pod["metadata"]
    return f"{metadata['namespace']}.{metadata['name']}.{secrets.token_hex(3)}"


def _as_dict(pod: Pod | client.V1Pod, api: client.ApiClient) -> dict[str, Any]:
    """The pod as the API serves it (camelCase), whether given as JSON or as the client's model."""
    if isinstance(pod, client.V1Pod):
        return dict(api.sanitize_for_serialization(pod))
    return dict(pod)
