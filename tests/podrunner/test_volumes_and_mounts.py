"""Volumes are made on the host as the kubelet makes them, unsupported ones are refused before
anything is made, and mounts land where the pod says, never outside an image's root."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cluster.podrunner.errors import ContainerConfigError, UnsupportedVolumeError
from cluster.podrunner.mounts import HostMountpoints, Mount, container_mounts, in_root
from cluster.podrunner.volumes import DUMMY_TOKEN, Volume, prepare_volumes


class Sources:
    def __init__(self, config_maps: Mapping[str, Mapping[str, Any]]) -> None:
        self.config_maps = config_maps

    def config_map(self, name: str) -> Mapping[str, Any] | None:
        return self.config_maps.get(name)

    def secret(self, name: str) -> Mapping[str, Any] | None:
        return {"data": {"password": "aHVudGVyMg=="}} if name == "db" else None

    def allocatable(self) -> Mapping[str, str]:
        raise AssertionError("volumes never read the node")


class Images:
    def __init__(self) -> None:
        self.unpacked: list[tuple[str, Path]] = []

    def unpack(self, reference: str, target: Path) -> None:
        self.unpacked.append((reference, target))
        (target / "libinject").mkdir()


SOURCES = Sources(
    {
        "settings": {
            "data": {"app.conf": "debug=true\n", "other": "x"},
            "binaryData": {"blob": "AAE="},
        },
        "kube-root-ca.crt": {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}},
    }
)


def make(
    volumes: list[dict[str, Any]], directory: Path, *, images: Images | None = None
) -> dict[str, Volume]:
    pod = {"metadata": {"namespace": "shop"}, "spec": {"volumes": volumes}}
    return prepare_volumes(pod, directory=directory, sources=SOURCES, images=images or Images())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_empty_dir_is_world_writable(tmp_path: Path) -> None:
    """An emptyDir is a 0777 directory whatever the umask; medium and sizeLimit are ignored."""
    volumes = make(
        [{"name": "lib", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}], tmp_path
    )
    assert volumes["lib"] == Volume("lib", tmp_path / "lib", read_only=False)
    assert mode(tmp_path / "lib") == 0o777
    assert list((tmp_path / "lib").iterdir()) == []


def test_config_map_files(tmp_path: Path) -> None:
    """Every key as a file (binaryData decoded), mode 0644 unless defaultMode says otherwise;
    always mounted read-only."""
    volumes = make(
        [{"name": "cfg", "configMap": {"name": "settings", "defaultMode": 0o600}}], tmp_path
    )
    root = tmp_path / "cfg"
    assert volumes["cfg"].read_only
    assert sorted(path.name for path in root.iterdir()) == ["app.conf", "blob", "other"]
    assert (root / "app.conf").read_text() == "debug=true\n"
    assert (root / "blob").read_bytes() == b"\x00\x01"
    assert mode(root / "app.conf") == 0o600


def test_config_map_items(tmp_path: Path) -> None:
    """items pick keys and name their paths (subdirectories made), with a mode of their own."""
    items = [{"key": "app.conf", "path": "conf/app.conf", "mode": 0o640}]
    make([{"name": "cfg", "configMap": {"name": "settings", "items": items}}], tmp_path)
    root = tmp_path / "cfg"
    assert [path.relative_to(root).as_posix() for path in sorted(root.rglob("*"))] == [
        "conf",
        "conf/app.conf",
    ]
    assert mode(root / "conf" / "app.conf") == 0o640


def test_missing_config_maps_and_keys(tmp_path: Path) -> None:
    """Missing and optional is an empty volume; missing and required fails, naming the volume."""
    make([{"name": "opt", "configMap": {"name": "absent", "optional": True}}], tmp_path)
    assert list((tmp_path / "opt").iterdir()) == []
    with pytest.raises(ContainerConfigError, match="volume 'req': 'absent' not found"):
        make([{"name": "req", "configMap": {"name": "absent"}}], tmp_path)
    items = [{"key": "nope", "path": "nope"}]
    with pytest.raises(ContainerConfigError, match="'settings' has no key 'nope'"):
        make([{"name": "key", "configMap": {"name": "settings", "items": items}}], tmp_path)


def test_item_paths_stay_in_the_volume(tmp_path: Path) -> None:
    """An item path that climbs out of the volume is refused."""
    items = [{"key": "other", "path": "../escape"}]
    with pytest.raises(ContainerConfigError, match="leaves the volume"):
        make([{"name": "cfg", "configMap": {"name": "settings", "items": items}}], tmp_path)
    assert not (tmp_path / "escape").exists()


def test_secret_files(tmp_path: Path) -> None:
    """A Secret's values, decoded, read-only."""
    volumes = make([{"name": "creds", "secret": {"secretName": "db"}}], tmp_path)
    assert (tmp_path / "creds" / "password").read_text() == "hunter2"
    assert volumes["creds"].read_only


def test_service_account_token_volume(tmp_path: Path) -> None:
    """kube-api-access-* gets a dummy token, the namespace and the cluster's CA bundle."""
    projected = {"sources": [{"serviceAccountToken": {"path": "token"}}]}
    volumes = make([{"name": "kube-api-access-x1", "projected": projected}], tmp_path)
    root = tmp_path / "kube-api-access-x1"
    assert (root / "token").read_text() == DUMMY_TOKEN
    assert (root / "namespace").read_text() == "shop"
    assert (root / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert volumes["kube-api-access-x1"].read_only


def test_image_volume(tmp_path: Path) -> None:
    """An image volume is the image's file system, read-only."""
    images = Images()
    volume = {"name": "lib", "image": {"reference": "127.0.0.1:1/lib:1", "pullPolicy": "Always"}}
    volumes = make([volume], tmp_path, images=images)
    assert images.unpacked == [("127.0.0.1:1/lib:1", tmp_path / "lib")]
    assert volumes["lib"].read_only


@pytest.mark.parametrize(
    "volume",
    [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "host", "hostPath": {"path": "/etc"}},
        {"name": "other", "projected": {"sources": []}},
        {"name": "info", "downwardAPI": {"items": []}},
    ],
)
def test_unsupported_volumes_are_refused_first(tmp_path: Path, volume: dict[str, Any]) -> None:
    """A volume of any other type (a projected one not named kube-api-access-*, too) fails the
    pod with an error naming it and its type, before any volume is made."""
    kind = next(key for key in volume if key != "name")
    with pytest.raises(
        UnsupportedVolumeError, match=f"volume '{volume['name']}' is of type '{kind}'"
    ) as caught:
        make([{"name": "lib", "emptyDir": {}}, volume], tmp_path)
    assert (caught.value.volume, caught.value.kind) == (volume["name"], kind)
    assert list(tmp_path.iterdir()) == []


def test_container_mounts(tmp_path: Path) -> None:
    """Mounts sorted parents first; read-only if the mount or the volume says so; a subPath is
    made in the volume if missing and may not leave it; a mount of no volume is refused."""
    volumes = {
        "lib": Volume("lib", tmp_path / "lib", read_only=False),
        "cfg": Volume("cfg", tmp_path / "cfg", read_only=True),
    }
    container = {
        "volumeMounts": [
            {"name": "lib", "mountPath": "/opt/libinject/python", "readOnly": True},
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "lib", "mountPath": "/data", "subPath": "a/b"},
        ]
    }
    assert container_mounts(container, volumes) == [
        Mount(tmp_path / "lib" / "a" / "b", "/data", read_only=False),
        Mount(tmp_path / "cfg", "/etc/app", read_only=True),
        Mount(tmp_path / "lib", "/opt/libinject/python", read_only=True),
    ]
    assert (tmp_path / "lib" / "a" / "b").is_dir()
    for bad, message in [
        ({"name": "lib", "mountPath": "/x", "subPath": "../up"}, "leaves it"),
        ({"name": "ghost", "mountPath": "/x"}, "names no volume"),
        ({"name": "lib", "mountPath": "/x", "subPathExpr": "$(POD)"}, "subPathExpr"),
    ]:
        with pytest.raises(ContainerConfigError, match=message):
            container_mounts({"volumeMounts": [bad]}, volumes)


def test_paths_resolve_inside_the_root(tmp_path: Path) -> None:
    """Symlinks in an image (absolute, relative, `..` past the top) resolve within its root."""
    root = tmp_path / "rootfs"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")
    (root / "lib64").symlink_to("../../../../../usr/lib")
    assert in_root(root, "/var/run/secrets") == root / "run" / "secrets"
    assert in_root(root, "/lib64/x") == root / "usr" / "lib" / "x"
    assert in_root(root, "/../../etc/passwd") == root / "etc" / "passwd"
    (root / "loop").symlink_to("/loop")
    with pytest.raises(ContainerConfigError, match="too many levels"):
        in_root(root, "/loop/x")


def test_host_mountpoints_are_removed_by_the_last_holder(tmp_path: Path) -> None:
    """What a pod made is removed when it releases it, unless another pod still holds it; what
    existed before is never removed."""
    existing = tmp_path / "opt"
    existing.mkdir()
    first, second = HostMountpoints(), HostMountpoints()
    first.claim(existing / "libinject" / "python", directory=True)
    second.claim(existing / "libinject" / "java", directory=True)
    second.claim(existing / "app.conf", directory=False)
    assert (existing / "app.conf").is_file()
    first.release()
    assert (existing / "libinject").is_dir()  # the second pod's mountpoint is still in it
    assert not (existing / "libinject" / "python").exists()
    second.release()
    assert list(existing.iterdir()) == []
    assert existing.is_dir()


def test_host_mountpoints_keep_what_was_put_there(tmp_path: Path) -> None:
    """A made directory that is no longer empty stays."""
    mountpoints = HostMountpoints()
    mountpoints.claim(tmp_path / "made", directory=True)
    (tmp_path / "made" / "file").write_text("someone's")
    mountpoints.release()
    assert (tmp_path / "made" / "file").exists()
    os.unlink(tmp_path / "made" / "file")
