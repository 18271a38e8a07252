"""Starts and stops a local control plane: etcd, kube-apiserver, controller-manager, scheduler and
kwok with fake nodes, on free loopback ports, in one directory.

What envtest does, plus the controllers and fake nodes, so Deployments become Running pods.
Every child process dies with the process that started it (PR_SET_PDEATHSIG), so a crash, a
SIGKILL or a Ctrl-C of the test run leaves no orphan holding a port; `stop()` is the orderly way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import shutil
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from cluster import build, pki, poll

SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
STARTUP_TIMEOUT = 90.0  # seconds; a cold apiserver on 2 busy cores takes ~10
STOP_TIMEOUT = 15.0
PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A component did not become ready; the message carries the tail of its log."""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Service:
    """Something the tests start and stop: `with X(...) as x:` starts it and always stops it."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class ControlPlane(Service):
    """A control plane living in `directory`; use as a context manager or call start/stop."""

    directory: Path
    nodes: int = 1
    processes: list[Process] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    _keys: pki.Pki | None = None

    @property
    def keys(self) -> pki.Pki:
        """The cluster's CA, serving, service-account and client keys (after start)."""
        if self._keys is None:
            raise RuntimeError("the control plane has not been started")
        return self._keys

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def node_names(self) -> list[str]:
        return [f"kwok-node-{index}" for index in range(self.nodes)]

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()  # never leave half a control plane running
            raise

    def stop(self) -> None:
        """Terminates every component, newest first, and frees the ports; safe to call twice.

        One at a time, clients before servers: stopped this way the whole plane is down in about
        a second, where signalling all five at once left the API server in its graceful shutdown
        until the timeout (15 s, measured on this project's machine).
        """
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        self.processes.clear()
        shutil.rmtree(self.directory / "etcd", ignore_errors=True)  # the bulk; logs stay

    def _start(self) -> None:
        binaries = build.binaries()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(exist_ok=True)
        identities = (pki.ADMIN, pki.CONTROLLER_MANAGER, pki.SCHEDULER)
        self._keys = keys = pki.create(self.directory / "pki", clients=identities)
        self.ports = {
            name: free_port() for name in ("etcd", "etcd-peer", "apiserver", "kcm", "scheduler")
        }
        self._etcd(binaries["etcd"])
        self._apiserver(binaries["kube-apiserver"], keys)
        kubeconfigs = {identity: self._write_kubeconfig(identity, keys) for identity in identities}
        self._controller_manager(
            binaries["kube-controller-manager"], keys, kubeconfigs[pki.CONTROLLER_MANAGER]
        )
        self._scheduler(binaries["kube-scheduler"], kubeconfigs[pki.SCHEDULER])
        self._kwok(binaries["kwok"], binaries["kwok.yaml"])
        self._write_state()

    def _write_state(self) -> None:
        """What a person (or a test) needs to find the pieces: ports and process ids."""
        state = {
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "ports": self.ports,
            "pids": {process.name: process.popen.pid for process in self.processes},
        }
        (self.directory / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    def _etcd(self, binary: Path) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        process = self._spawn(
            "etcd",
            [
                str(binary),
                "--name=etcd",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=etcd={peer}",
                "--unsafe-no-fsync=true",  # test data: speed over durability
                "--log-level=warn",
            ],
        )
        wait_until(process, lambda: b'"health":"true"' in http_get(f"{client}/health"))

    def _apiserver(self, binary: Path, keys: pki.Pki) -> None:
        process = self._spawn(
            "kube-apiserver",
            [
                str(binary),
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--cert-dir={self.directory / 'apiserver'}",
                f"--tls-cert-file={keys.serving.certificate}",
                f"--tls-private-key-file={keys.serving.key}",
                f"--client-ca-file={keys.ca.certificate}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                # On by default; named so that nobody turns them off by accident: they are what
                # the webhook and the Pod Security tests stand on.
                "--enable-admission-plugins=PodSecurity,MutatingAdmissionWebhook,ServiceAccount",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={keys.service_account.certificate}",
                f"--service-account-signing-key-file={keys.service_account.key}",
                "--profiling=false",
            ],
        )
        admin = keys.clients[pki.ADMIN]
        context = tls_context(ca=keys.ca.certificate, client=admin)
        wait_until(process, lambda: http_get(f"{self.server}/readyz", context=context) == b"ok")

    def _controller_manager(self, binary: Path, keys: pki.Pki, kubeconfig: Path) -> None:
        process = self._spawn(
            "kube-controller-manager",
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['kcm']}",
                f"--cert-dir={self.directory / 'kcm'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={keys.service_account.key}",
                f"--root-ca-file={keys.ca.certificate}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--cluster-cidr={POD_CIDR}",
            ],
        )
        url = f"https://127.0.0.1:{self.ports['kcm']}/healthz"
        wait_until(process, lambda: http_get(url, context=tls_context()) == b"ok")

    def _scheduler(self, binary: Path, kubeconfig: Path) -> None:
        process = self._spawn(
            "kube-scheduler",
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['scheduler']}",
                f"--cert-dir={self.directory / 'scheduler'}",
                "--leader-elect=false",
            ],
        )
        url = f"https://127.0.0.1:{self.ports['scheduler']}/healthz"
        wait_until(process, lambda: http_get(url, context=tls_context()) == b"ok")

    def _kwok(self, binary: Path, stages: Path) -> None:
        key, value = FAKE_NODE_ANNOTATION
        process = self._spawn(
            "kwok",
            [
                str(binary),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={stages}",  # explicit, so a user's ~/.kwok is never read
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={key}={value}",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.0.0.1",
                "--node-lease-duration-seconds=40",  # heartbeats, like a kubelet
            ],
        )
        for name in self.node_names:
            self.api("POST", "/api/v1/nodes", fake_node(name))
        wait_until(process, self._nodes_ready)

    def _nodes_ready(self) -> bool:
        nodes = self.api("GET", "/api/v1/nodes")["items"]
        ready = {
            node["metadata"]["name"]
            for node in nodes
            for condition in node.get("status", {}).get("conditions", [])
            if condition["type"] == "Ready" and condition["status"] == "True"
        }
        return set(self.node_names) <= ready

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One admin request to the API server (the harness's own needs; tests use clients)."""
        context = tls_context(ca=self.keys.ca.certificate, client=self.keys.clients[pki.ADMIN])
        request = urllib.request.Request(
            self.server + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return dict(json.load(response))

    def _spawn(self, name: str, command: list[str]) -> Process:
        log = self.directory / "logs" / f"{name}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop them in order
                # Runs in the child before exec; the only thread the harness starts (the build
                # ticker) has ended by then, so the fork-with-threads hazard does not apply.
                preexec_fn=die_with_parent,  # noqa: PLW1509
            )
        process = Process(name=name, popen=popen, log=log)
        self.processes.append(process)
        return process

    def _write_kubeconfig(self, identity: pki.Identity, keys: pki.Pki) -> Path:
        pair = keys.clients[identity]
        path = (
            self.kubeconfig
            if identity == pki.ADMIN
            else self.directory / f"{pair.key.stem}.kubeconfig"
        )
        path.write_text(
            kubeconfig(
                server=self.server,
                ca=keys.ca.certificate,
                user={"client-certificate": str(pair.certificate), "client-key": str(pair.key)},
            )
        )
        return path


def kubeconfig(*, server: str, ca: Path, user: dict[str, str]) -> str:
    """A one-context kubeconfig named `libinject`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "libinject", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "libinject", "user": user}],
        "contexts": [
            {"name": "libinject", "context": {"cluster": "libinject", "user": "libinject"}}
        ],
        "current-context": "libinject",
    }
    return yaml.safe_dump(config, sort_keys=False)


def fake_node(name: str) -> dict[str, Any]:
    """A Node that kwok keeps Ready and whose pods it marks Running; sized for pod bursts."""
    key, value = FAKE_NODE_ANNOTATION
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "1000"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tls_context(*, ca: Path | None = None, client: pki.KeyPair | None = None) -> ssl.SSLContext:
    """TLS to a component; without a CA the peer is not verified (health checks only)."""
    if ca is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.certificate), str(client.key))
    return context


def http_get(url: str, *, context: ssl.SSLContext | None = None) -> bytes:
    """The body of a GET, or b"" while the server is not up (refused, reset, 5xx, ...)."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return bytes(response.read())
    except (OSError, urllib.error.URLError):
        return b""


def wait_until(process: Process, ready: Callable[[], bool]) -> None:
    """Polls `ready` until true; fails fast, with the log, if the process exits first."""

    def check() -> bool:
        with contextlib.suppress(urllib.error.URLError, OSError):
            if ready():
                return True
        if process.popen.poll() is not None:
            raise StartupError(
                f"{process.name} exited with {process.popen.returncode} before it was ready:\n"
                f"{process.log_tail()}"
            )
        return False

    try:
        poll.until(check, what=f"{process.name} to be ready", timeout=STARTUP_TIMEOUT)
    except TimeoutError as error:
        raise StartupError(f"{error} (log: {process.log}):\n{process.log_tail()}") from None


def die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGKILL when the parent dies.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
