"""A test pod runner: plays the kubelet for one pod, for real, on this host.

Given a pod as the API server stored it (after libinject's webhook mutated it), it makes the
pod's volumes under a directory of its own, pulls each init container's image from an OCI
registry with crane and runs it to completion chrooted into that image, then starts the app
container from the host's file system (or, `app=None`, from its own image) with the pod's
volumes mounted and its environment resolved as the kubelet resolves it. Every container runs in private mount, UTS and PID
namespaces (launch.py), so no mount reaches the host's mount table and no process outlives it.
Given a CSI node plugin's endpoint (`csi_endpoint`, `kubelet_root`), it publishes the pod's csi
inline volumes through that plugin as the kubelet does; those mounts are the plugin's, in the
runner's own mount namespace, under the kubelet root.

    runner = PodRunner(admin=admin, crane=crane, directory=tmp_path)
    with runner.start(pod, app={"PATH": f"{venv}/bin:/usr/bin:/bin"}) as running:
        running.wait(30)
        print(running.output())
"""

from cluster.podrunner.containers import Identity, Image
from cluster.podrunner.errors import (
    ContainerConfigError,
    CSIVolumeError,
    ImagePullError,
    InitContainerError,
    PodRunnerError,
    UnsupportedVolumeError,
)
from cluster.podrunner.expansion import expand
from cluster.podrunner.images import ImageStore
from cluster.podrunner.runner import AppImage, ClusterAccess, Completed, PodRunner, RunningPod

__all__ = [
    "AppImage",
    "CSIVolumeError",
    "ClusterAccess",
    "Completed",
    "ContainerConfigError",
    "Identity",
    "Image",
    "ImagePullError",
    "ImageStore",
    "InitContainerError",
    "PodRunner",
    "PodRunnerError",
    "RunningPod",
    "UnsupportedVolumeError",
    "expand",
]
