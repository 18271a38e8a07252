"""The pod runner (cluster.podrunner) plays the kubelet for real: pods made through the API
server, an init container pulled from the local registry and run chrooted as its user, the app
on the host with the pod's volumes and its environment resolved, and nothing left behind."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson, poll
from cluster.podrunner import (
    AppImage,
    ImageStore,
    InitContainerError,
    PodRunner,
    RunningPod,
    UnsupportedVolumeError,
)
from cluster.podrunner.process import group_members
from cluster.registry import Registry

pytestmark = pytest.mark.live

COPY_UID = 65532  # libinject's copy container runs as this user in restricted namespaces
LIBRARY = {"ddtrace/__init__.py": "version = 'test'\n", "sitecustomize.py": "import ddtrace\n"}

# The app: reports what it sees as one JSON line, then waits to be stopped.
APP = """
import errno, json, os, socket, sys, time
lib, config = sys.argv[1], sys.argv[2]
try:
    open(os.path.join(lib, "written-by-app"), "w")
    write = "allowed"
except OSError as error:
    write = errno.errorcode[error.errno]
print(json.dumps({
    "argv": sys.argv[3:],
    "uid": os.getuid(),
    "env": {key: os.environ.get(key) for key in sys.argv[3:] if key.isupper()},
    "library": sorted(os.listdir(lib)),
    "owner": os.stat(os.path.join(lib, "sitecustomize.py")).st_uid,
    "config": open(os.path.join(config, "app.conf")).read(),
    "write": write,
    "hostname": socket.gethostname(),
    "processes": sorted(int(pid) for pid in os.listdir("/proc") if pid.isdigit()),
    "token": sorted(os.listdir("/var/run/secrets/kubernetes.io/serviceaccount")),
}), flush=True)
time.sleep(120)
"""
REPORTED = ["DD_SERVICE", "DD_ENTITY_ID", "DD_AGENT_HOST", "OTEL_RESOURCE_ATTRIBUTES",
            "PYTHONPATH", "PATH", "HOSTNAME", "FROM_IMAGE", "MEMORY_MI", "GREETING"]  # fmt: skip


@pytest.fixture(scope="module")
def library_image(
    crane: Path, registry: Registry, busybox: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A library image as libinject's contract has it: a static busybox at /bin/busybox and the
    library under /libinject, pushed to the local registry with crane."""
    layer = tmp_path_factory.mktemp("layer") / "layer.tar"
    with tarfile.open(layer, "w") as archive:
        archive.add(busybox, arcname="bin/busybox")
        for name, text in LIBRARY.items():
            info = tarfile.TarInfo(f"libinject/{name}")
            info.size, info.mode = len(text), 0o644
            archive.addfile(info, io.BytesIO(text.encode()))
    reference = f"{registry.address}/busybox-test:1"
    subprocess.run(
        [str(crane), "append", "-f", str(layer), "-t", reference], check=True, capture_output=True
    )
    return reference


@pytest.fixture(scope="module")
def images(crane: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    """One image cache for the module: a second pod's pull of the same digest is instant."""
    return ImageStore(crane, tmp_path_factory.mktemp("images"))


@pytest.fixture
def runner(admin: client.ApiClient, crane: Path, images: ImageStore, tmp_path: Path) -> PodRunner:
    return PodRunner(admin=admin, crane=crane, directory=tmp_path / "pods", images=images, grace=5)


@pytest.fixture
def mount_root() -> Iterator[Path]:
    """A mount root of the test's own (two runs at once must not share mountpoints)."""
    root = Path("/opt") / f"libinject-podrunner-{secrets.token_hex(4)}"
    yield root
    assert not root.exists(), f"{root} was left on the host"


def copy_container(image: str, **extra: Any) -> dict[str, Any]:
    """libinject's copy container (engine.delivery), as the webhook writes it."""
    return {
        "name": "libinject-python",
        "image": image,
        "command": ["/bin/busybox", "cp", "-R", "/libinject/.", "/libinject-target/"],
        "volumeMounts": [{"name": "libinject-python", "mountPath": "/libinject-target"}],
        "securityContext": {
            "runAsUser": COPY_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
        },
        **extra,
    }


def field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def app_container(mount_root: Path, *, command: list[str], **extra: Any) -> dict[str, Any]:
    """An app container with the env libinject's engine writes (fieldRefs, then values that
    refer to them) and a few more sources, its library and config mounted."""
    return {
        "name": "app",
        "image": "example.invalid/app:1",  # never pulled: the app runs from the host
        "command": command,
        "env": [
            field("DD_SERVICE", "metadata.labels['tags.datadoghq.com/service']"),
            field("DD_ENTITY_ID", "metadata.uid"),
            field("DD_AGENT_HOST", "status.hostIP"),
            field("LIBINJECT_POD_NAMESPACE", "metadata.namespace"),
            field("LIBINJECT_POD_NAME", "metadata.name"),
            {"name": "OTEL_RESOURCE_ATTRIBUTES",
             "value": "k8s.namespace.name=$(LIBINJECT_POD_NAMESPACE),k8s.pod.name=$(LIBINJECT_POD_NAME)"},
            {"name": "PYTHONPATH", "value": f"{mount_root}/python"},
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
            {"name": "MEMORY_MI",
             "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        ],
        "resources": {"limits": {"memory": "96Mi", "cpu": "1"}},
        "volumeMounts": [
            {"name": "libinject-python", "mountPath": f"{mount_root}/python", "readOnly": True},
            {"name": "settings", "mountPath": f"{mount_root}/config"},
        ],
        **extra,
    }  # fmt: skip


def create_pod(
    admin: client.ApiClient, namespace: str, *, spec: dict[str, Any], name: str = "web"
) -> dict[str, Any]:
    """The pod as the API server stored it (the ServiceAccount plugin added its token volume)."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"tags.datadoghq.com/service": "checkout"}},
        "spec": spec,
    }
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(body), _preload_content=False
    )
    return kubejson.json_of(response)


def create_settings(admin: client.ApiClient, namespace: str) -> None:
    body = {
        "metadata": {"name": "settings"},
        "data": {"app.conf": "debug=true\n", "greeting": "hello $(DD_SERVICE)"},
    }
    client.CoreV1Api(admin).create_namespaced_config_map(namespace, kubejson.body(body))


def library_pod(image: str, mount_root: Path, *, command: list[str]) -> dict[str, Any]:
    return {
        "volumes": [
            {"name": "libinject-python", "emptyDir": {"sizeLimit": "200Mi"}},
            {"name": "settings", "configMap": {"name": "settings"}},
        ],
        "initContainers": [copy_container(image)],
        "containers": [app_container(mount_root, command=command)],
    }


def mounted(paths: list[Path]) -> list[str]:
    """Lines of this process's mount table (the host's) under any of `paths`."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if any(line.split()[4].startswith(str(path)) for path in paths)]


def inside(path: Path) -> list[int]:
    """Processes whose root or working directory is under `path` (a chrooted init container's
    is its image's root there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(entry / "root"), os.readlink(entry / "cwd")]
        except OSError:
            continue  # it ended while we looked
        if any(link.startswith(str(path)) for link in links):
            found.append(int(entry.name))
    return found


def report(running: RunningPod) -> dict[str, Any]:
    """The app's JSON line, once it has written all of it."""
    output = poll.until(
        lambda: running.output() if running.output().endswith("\n") else None,
        what="the app's report",
        timeout=30,
    )
    return dict(json.loads(output.splitlines()[0]))


def test_library_copied_and_app_sees_the_pod(
    admin: client.ApiClient, namespace: str, runner: PodRunner, library_image: str, mount_root: Path
) -> None:
    """The copy init container, pulled from the registry, copies the library into the emptyDir
    as its runAsUser; the app sees it read-only where the pod mounts it, the ConfigMap's file,
    the token volume, its env resolved (label, uid, host IP, $(VAR) in values and args, a
    ConfigMap key, a resource limit), the image env under the container's, the pod's hostname
    and its own PID namespace; the host's mount table never shows the pod's mounts; stopping it
    delivers SIGTERM and leaves no mount, process, mountpoint or directory."""
    create_settings(admin, namespace)
    command = [
        "python3",
        "-c",
        APP,
        f"{mount_root}/python",
        f"{mount_root}/config",
        *REPORTED,
        "$(DD_SERVICE)-$$(DD_SERVICE)",
    ]
    pod = create_pod(admin, namespace, spec=library_pod(library_image, mount_root, command=command))
    app = AppImage(
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "FROM_IMAGE": "image", "PYTHONPATH": "/image"}
    )
    running = runner.start(pod, app=app)
    with running:
        seen = report(running)
        pod_dir = next(runner.directory.iterdir())
        assert mounted([mount_root, runner.directory]) == []
        assert sorted(os.listdir(mount_root)) == ["config", "python"]  # mountpoints, empty here
        assert os.listdir(mount_root / "python") == []
    assert running.returncode == 128 + 15  # SIGTERM reached the app, which it ended

    assert seen["library"] == ["ddtrace", "sitecustomize.py"]
    assert seen["owner"] == COPY_UID
    assert seen["write"] == "EROFS"
    assert seen["config"] == "debug=true\n"
    assert seen["uid"] == 0
    assert seen["hostname"] == "web"
    assert seen["processes"] == [1, 2]  # launch.py's init and the app: nothing of the host's
    assert seen["token"] == ["ca.crt", "namespace", "token"]
    uid = pod["metadata"]["uid"]
    assert seen["env"] == {
        "DD_SERVICE": "checkout",
        "DD_ENTITY_ID": uid,
        "DD_AGENT_HOST": "127.0.0.1",
        "OTEL_RESOURCE_ATTRIBUTES": f"k8s.namespace.name={namespace},k8s.pod.name=web",
        "PYTHONPATH": f"{mount_root}/python",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOSTNAME": "web",
        "FROM_IMAGE": "image",
        "MEMORY_MI": "96",
        "GREETING": "hello $(DD_SERVICE)",
    }
    assert seen["argv"][-1] == "checkout-$(DD_SERVICE)"

    assert not pod_dir.exists()
    assert mounted([mount_root, runner.directory, Path("/var/run/secrets")]) == []
    assert running.process is not None
    assert group_members(running.process.pid) == []
    assert inside(runner.directory) == []


def test_short_lived_app(
    admin: client.ApiClient, namespace: str, runner: PodRunner, library_image: str, mount_root: Path
) -> None:
    """run_to_completion gives the exit code and output of an app that imports the copied
    library through PYTHONPATH, and cleans up after it. The pod may be the client's model; once
    it is scheduled, a limit it does not set is its node's allocatable amount."""
    create_settings(admin, namespace)
    program = (
        "import ddtrace, os, sys; print('ddtrace', ddtrace.version, os.environ['CPUS']); "
        "sys.exit(7)"
    )
    spec = library_pod(library_image, mount_root, command=["python3", "-c", program])
    app = spec["containers"][0]
    del app["resources"]["limits"]["cpu"]
    app["env"].append(
        {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
    )
    create_pod(admin, namespace, spec=spec)
    core = client.CoreV1Api(admin)

    def scheduled() -> client.V1Pod | None:
        found = core.read_namespaced_pod("web", namespace)
        return found if found.spec is not None and found.spec.node_name else None

    pod = poll.until(
        scheduled,
        what="the pod to be scheduled",
        timeout=30,
    )
    done = runner.run_to_completion(pod, app={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert (done.returncode, done.output) == (7, "ddtrace test 64\n")  # harness.fake_node's cpu
    assert list(runner.directory.iterdir()) == []


def test_image_volume(
    admin: client.ApiClient, namespace: str, runner: PodRunner, library_image: str, mount_root: Path
) -> None:
    """An image volume (libinject's image mode) is the image's file system, read-only, mounted
    at the pod's subPath: the library without a copy step."""
    create_settings(admin, namespace)
    spec = library_pod(library_image, mount_root, command=["python3", "-c", "import ddtrace"])
    spec["initContainers"] = []
    spec["volumes"][0] = {
        "name": "libinject-python",
        "image": {"reference": library_image, "pullPolicy": "IfNotPresent"},
    }
    mount = spec["containers"][0]["volumeMounts"][0]
    mount["subPath"] = "libinject"
    program = (
        "import os, sys; print(sorted(os.listdir(sys.argv[1])), flush=True); "
        "open(os.path.join(sys.argv[1], 'x'), 'w')"
    )
    spec["containers"][0]["command"] = ["python3", "-c", program, mount["mountPath"]]
    pod = create_pod(admin, namespace, spec=spec)
    done = runner.run_to_completion(pod, app={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert done.returncode == 1
    assert done.output.startswith("['ddtrace', 'sitecustomize.py']\n")
    assert "Read-only file system" in done.output


def test_failing_init_container_stops_the_pod(
    admin: client.ApiClient,
    namespace: str,
    runner: PodRunner,
    library_image: str,
    mount_root: Path,
    tmp_path: Path,
) -> None:
    """An init container that exits non-zero fails the run with its name, exit code and output;
    the app is never started and nothing of the pod is left."""
    create_settings(admin, namespace)
    marker = tmp_path / "app-started"
    spec = library_pod(
        library_image, mount_root, command=["python3", "-c", f"open({str(marker)!r}, 'w')"]
    )
    script = "echo copying; echo 'no space left' >&2; exit 3"
    spec["initContainers"].append(
        copy_container(library_image, name="broken", command=["/bin/busybox", "sh", "-c", script])
    )
    pod = create_pod(admin, namespace, spec=spec)
    with pytest.raises(InitContainerError) as caught:
        runner.start(pod, app={"PATH": "/usr/bin:/bin"})
    assert (caught.value.container, caught.value.exit_code) == ("broken", 3)
    assert caught.value.output == "copying\nno space left\n"
    assert "init container 'broken' exited with code 3" in str(caught.value)
    assert not marker.exists()
    assert list(runner.directory.iterdir()) == []
    assert mounted([mount_root, runner.directory]) == []
    assert inside(runner.directory) == []


def test_init_container_root_is_read_only(
    admin: client.ApiClient, namespace: str, runner: PodRunner, library_image: str, mount_root: Path
) -> None:
    """readOnlyRootFilesystem holds: the init container cannot write its image's root, while its
    volume mount stays writable (the copy container depends on both)."""
    create_settings(admin, namespace)
    spec = library_pod(library_image, mount_root, command=["true"])
    script = "/bin/busybox touch /libinject-target/ok && /bin/busybox touch /probe"
    spec["initContainers"] = [
        copy_container(library_image, command=["/bin/busybox", "sh", "-c", script])
    ]
    pod = create_pod(admin, namespace, spec=spec)
    with pytest.raises(InitContainerError, match="Read-only file system") as caught:
        runner.start(pod, app={"PATH": "/usr/bin:/bin"})
    assert caught.value.exit_code == 1


def test_stop_kills_what_ignores_sigterm(
    admin: client.ApiClient,
    namespace: str,
    runner: PodRunner,
    library_image: str,
    mount_root: Path,
) -> None:
    """An app that ignores SIGTERM is killed when the grace period ends (exit code 137), and so
    is a process it started in a session of its own: the container's PID namespace goes whole."""
    create_settings(admin, namespace)
    token = f"podrunner-{secrets.token_hex(4)}"
    program = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', sys.argv[1]], "
        "start_new_session=True); print('up', flush=True); time.sleep(300)"
    )
    spec = library_pod(library_image, mount_root, command=["python3", "-c", program, token])
    pod = create_pod(admin, namespace, spec=spec)
    runner.grace = 0.5
    with runner.start(pod, app={"PATH": "/usr/bin:/bin"}) as running:
        poll.until(lambda: running.output() == "up\n", what="the app", timeout=30)
        assert len(with_argument(token)) == 2  # the app and its child
        assert running.stop() == 128 + 9
    assert with_argument(token) == []
    assert list(runner.directory.iterdir()) == []


def with_argument(token: str) -> list[int]:
    """Processes with `token` among their arguments."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # not a process, or it ended while we looked
        if token.encode() in arguments:
            found.append(int(entry.name))
    return found


def test_unsupported_volume_is_refused(
    admin: client.ApiClient, namespace: str, runner: PodRunner, library_image: str, mount_root: Path
) -> None:
    """A volume type the runner cannot make (a PersistentVolumeClaim) fails the run with an
    error naming the volume and its type, before anything runs or is made."""
    spec = library_pod(library_image, mount_root, command=["true"])
    spec["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "data"}})
    pod = create_pod(admin, namespace, spec=spec)
    with pytest.raises(
        UnsupportedVolumeError, match="volume 'data' is of type 'persistentVolumeClaim'"
    ):
        runner.start(pod, app={"PATH": "/usr/bin:/bin"})
    assert list(runner.directory.iterdir()) == []
