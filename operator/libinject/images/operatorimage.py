"""What the operator image is, however it is built: without a Docker engine by `make image`
(tests/cluster/operatorimage.py: Debian's packages, the locked wheels, one OCI index for every
platform), or from the Dockerfile by a user with one. tests/images/test_dockerfile.py keeps the
Dockerfile to what is written here.

The image runs `libinject` (the operator, `run`, or the CSI node plugin, `csi`) on Debian
bookworm's Python, as uid 65532 on a read-only root: its bytecode is compiled at build time.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from libinject.engine.platforms import Machine, by_platform

PYTHON = "3.11"  # bookworm's python3 (3.11.2 and its security updates); the lock is made on 3.11
PYTHON_BINARY = f"/usr/bin/python{PYTHON}"
DEBIAN_SUITE = "bookworm"
# The interpreter and its standard library, and the C++ runtime grpcio's extension links (a
# manylinux wheel may expect it from the system); apt adds what they depend on (libc6, ...).
DEBIAN_PACKAGES = (f"python{PYTHON}-minimal", f"libpython{PYTHON}-stdlib", "libstdc++6")
# Debian's python puts /usr/local/lib/python3.11/dist-packages on sys.path for local installs.
SITE_PACKAGES = f"/usr/local/lib/python{PYTHON}/dist-packages"
CRANE = "/usr/local/bin/crane"  # the CSI plugin pulls library images with it
USER = "65532:65532"  # numeric: the kubelet checks runAsNonRoot without reading /etc/passwd
# -P: the working directory is not put on sys.path ahead of the installed package.
ENTRYPOINT = (PYTHON_BINARY, "-P", "-m", "libinject")
CMD = ("run",)
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",  # the root is read-only; bytecode was compiled at build
    "PYTHONUNBUFFERED": "1",
    # One CA bundle for Python and for crane (Go reads SSL_CERT_FILE): certifi's, from the lock.
    "SSL_CERT_FILE": f"{SITE_PACKAGES}/certifi/cacert.pem",
}
EXPOSED_PORTS = ("8080/tcp", "9443/tcp")  # probes and metrics; the webhook
# What Debian's packages bring that a container never reads; their copyright files stay.
PRUNED = ("usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian")
DOC = "usr/share/doc"
# The accounts the image knows, as in distroless images: nonroot is the user it runs as.
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnonroot:x:65532:\n"
GLIBC_MINOR = 36  # bookworm's glibc is 2.36: wheels for any manylinux up to it run


@dataclass(frozen=True)
class Platform:
    """One platform of the index and the oldest glibc its wheels may be built for."""

    machine: Machine
    oldest_glibc_minor: int  # the oldest manylinux tag built for it

    @property
    def name(self) -> str:
        """OCI's, Debian's and Go's architecture: arm64."""
        return self.machine.architecture

    @property
    def oci(self) -> str:
        return self.machine.platform

    def wheel_platforms(self) -> list[str]:
        """pip's `--platform` values for wheels that run on bookworm: every manylinux_2_N up
        to glibc 2.36, newest first, and the legacy names wheels still carry alone
        (manylinux2014 is 2.17, manylinux2010 2.12, manylinux1 2.5)."""
        tags = [
            f"manylinux_2_{minor}_{self.machine.uname}"
            for minor in range(GLIBC_MINOR, self.oldest_glibc_minor - 1, -1)
        ]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [
            f"{name}_{self.machine.uname}"
            for minor, name in legacy.items()
            if minor >= self.oldest_glibc_minor
        ]
        return tags


PLATFORMS = (
    Platform(machine=by_platform("linux/amd64"), oldest_glibc_minor=5),
    Platform(machine=by_platform("linux/arm64"), oldest_glibc_minor=17),
)


def write_tree_layer(root: Path, out: Path) -> None:
    """`root`'s contents as a layer tar, reproducibly: entries in name order, owned by root and
    dated 0, their modes (set-uid bits, /tmp's sticky bit), symlinks and hard links kept."""
    entries = sorted(root.iterdir())
    if not entries:
        raise ValueError(f"{root} is empty: no layer to write")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as layer:
        for entry in entries:  # add() recurses in sorted order below each of these
            layer.add(str(entry), arcname=entry.name, filter=_owned_by_root)


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info
