"""The spec launch.py starts a container from: what to mount where, as whom, what to run.

For a container from an image, mountpoints and the working directory are made inside its root
(the pod's own copy); for the app on the host, making them is the caller's (HostMountpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cluster.podrunner import containers
from cluster.podrunner.containers import Image
from cluster.podrunner.mounts import Mount, in_root, make_mountpoint

# The device nodes an image's root gets from the host (a runtime makes a few more).
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
PROC = Mount(Path("/proc"), "/proc", read_only=False)  # mounted fresh, not bound
HOSTNAME_LIMIT = 63  # the kubelet cuts a pod's name to a hostname's length


def launch_spec(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    image: Image,
    env: Mapping[str, str],
    root: Path | None,
    mounts: list[Mount],
) -> dict[str, Any]:
    """launch.py's spec for `container`: chrooted into `root`, or on the host when None."""
    hostname = _hostname(pod)
    who = containers.identity(pod, container, image=image, passwd=_passwd(root))
    working_dir = containers.working_dir(container, image)
    if root is not None:
        in_root(root, working_dir).mkdir(parents=True, exist_ok=True)  # as runc makes it
        mounts = [*mounts, *(Mount(Path(device), device, read_only=False) for device in DEVICES)]
    context = container.get("securityContext") or {}
    return {
        "hostname": hostname,
        "root": None if root is None else str(root),
        "readOnlyRoot": bool(context.get("readOnlyRootFilesystem")),
        "mounts": [_mount(root, mount) for mount in mounts],
        "proc": str(_target(root, PROC)),
        "uid": who.uid,
        "gid": who.gid,
        "groups": list(who.groups),
        "workingDir": working_dir,
        "argv": containers.argv(container, image, env=env),
        "env": containers.environment({"HOSTNAME": hostname}, image=image, env=env),
    }


def _mount(root: Path | None, mount: Mount) -> dict[str, Any]:
    target = _target(root, mount)
    return {"source": str(mount.source), "target": str(target), "readOnly": mount.read_only}


def _target(root: Path | None, mount: Mount) -> Path:
    """Where the mount goes as a host path; inside an image's root, its mountpoint made."""
    if root is None:
        return Path(mount.target)
    target = in_root(root, mount.target)
    make_mountpoint(target, directory=mount.source.is_dir())
    return target


def _passwd(root: Path | None) -> list[str]:
    """The image's /etc/passwd lines (for USER names and primary groups); none on the host."""
    if root is None:
        return []
    path = in_root(root, "/etc/passwd")
    return path.read_text(errors="replace").splitlines() if path.is_file() else []


def _hostname(pod: Mapping[str, Any]) -> str:
    return str(pod["spec"].get("hostname") or pod["metadata"]["name"])[:HOSTNAME_LIMIT]
