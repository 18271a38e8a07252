"""The CSI node plugin for real: `libinject csi` over its unix socket, called with the generated
client stubs as the kubelet would, pulling real library images from a local registry with crane
and bind-mounting them, each test's plugin in a private mount namespace (`csi/plugin.py`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tarfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from cluster import poll
from cluster.registry import Registry
from csi.plugin import (
    UNREACHABLE,
    Plugin,
    running_plugin,
    signed,
    target_of,
)
from libinject.bundle.java.launcher import JAR_NAME, LAUNCHER_JAR
from libinject.bundle.nodejs.build import packaged_loader
from libinject.csi.generated import csi_pb2, csi_pb2_grpc  # after csi.plugin's clear failure

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


def test_publish_read_readonly_unpublish(plugin: Plugin, ddtrace_image: str) -> None:
    """Publish bind-mounts the image's /libinject read-only at the target (the loader is there,
    writes fail with EROFS), the record names the digest; unpublish unmounts, removes the target
    directory and the record."""
    target = target_of(plugin, "pod-a")
    plugin.publish("csi-a", target, signed(ddtrace_image))

    seen = plugin.inside(target)
    assert (seen / "sitecustomize.py").is_file()
    assert plugin.mounted(target)
    write = plugin.sh(f"touch {target}/x")
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr
    record = plugin.record("csi-a")
    assert record is not None
    assert record["digest"].startswith("sha256:")
    assert record["target_path"] == str(target)
    assert plugin.cached() == [record["digest"].removeprefix("sha256:")]

    plugin.unpublish("csi-a", target)
    assert not plugin.mounted(target)
    assert not target.exists()
    assert plugin.record("csi-a") is None
    plugin.unpublish("csi-a", target)  # again: already unpublished is OK


def test_publish_again_is_idempotent_elsewhere_already_exists(
    plugin: Plugin, ddtrace_image: str
) -> None:
    """The same volume published again at the same target is OK; at another target it is
    ALREADY_EXISTS (CSI spec), and the first publication stays."""
    attributes = signed(ddtrace_image)
    target = target_of(plugin, "pod-b")
    plugin.publish("csi-b", target, attributes)
    plugin.publish("csi-b", target, attributes)  # idempotent
    assert (plugin.inside(target) / "sitecustomize.py").is_file()
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish("csi-b", target_of(plugin, "pod-c"), attributes)
    assert error.value.code() is grpc.StatusCode.ALREADY_EXISTS
    plugin.unpublish("csi-b", target)


PODS_ON_NODE = 50


def test_fifty_pods_share_one_pull_and_one_copy(plugin: Plugin, ddtrace_image: str) -> None:
    """50 pods of one version, published concurrently on a cold cache (as a Deployment scaled
    out on one node): one pull, one cache directory, 50 read-only mounts of it; each unpublish
    releases one reference."""
    targets = {f"csi-{i}": target_of(plugin, f"pod-{i}") for i in range(PODS_ON_NODE)}
    with ThreadPoolExecutor(max_workers=16) as pool:
        calls = [
            pool.submit(plugin.publish, volume, target, signed(ddtrace_image))
            for volume, target in targets.items()
        ]
        for call in calls:
            call.result()
    assert plugin.pulls() == 1
    assert len(plugin.cached()) == 1
    digests = {(plugin.record(volume) or {}).get("digest") for volume in targets}
    assert len(digests) == 1
    for target in targets.values():
        assert plugin.mounted(target)
        assert (plugin.inside(target) / "sitecustomize.py").is_file()
    for volume, target in targets.items():
        plugin.unpublish(volume, target)
    assert not list((plugin.root / "volumes").glob("*.json"))
    assert len(plugin.cached()) == 1  # unused, but well within the default grace (900 s)


def test_unreachable_registry_publishes_an_empty_volume(plugin: Plugin) -> None:
    """With the registry down the pod must still start: publish succeeds with a read-only
    directory holding no library, only the Java launcher and the Node.js loader (a JVM whose
    -javaagent jar is missing would not start, nor a Node whose --require file is; these start
    and the launcher and the loader stand down), and the record says why the library is
    missing."""
    target = target_of(plugin, "pod-down")
    plugin.publish("csi-down", target, signed(f"{UNREACHABLE}/python-ddtrace:4.16.0"))
    assert plugin.mounted(target)
    loader = packaged_loader()
    assert sorted(p.name for p in plugin.inside(target).iterdir()) == sorted(
        [JAR_NAME, loader.name]
    )
    assert (plugin.inside(target) / JAR_NAME).read_bytes() == LAUNCHER_JAR.read_bytes()
    assert (plugin.inside(target) / loader.name).read_bytes() == loader.read_bytes()
    assert plugin.sh(f"touch {target}/x").returncode != 0
    java = plugin.sh(
        f"LIBINJECT_DEBUG=true JAVA_TOOL_OPTIONS=-javaagent:{target}/{JAR_NAME} java -version"
    )
    assert java.returncode == 0, java.stderr
    assert f"library not ready: no bundle.txt in {target}" in java.stderr
    node = plugin.sh(f"NODE_OPTIONS=--require={target}/{loader.name} node -e 'console.log(6 * 7)'")
    assert (node.returncode, node.stdout) == (0, "42\n"), node.stderr
    assert "crane manifest" in plugin.empty_because("csi-down")
    assert "library not ready" in plugin.logs[-1].read_text()
    plugin.unpublish("csi-down", target)
    assert not target.exists()


def test_slow_pull_publishes_empty_then_the_cache_is_warm(
    tmp_path: Path, registry: Registry, crane: Path, ddtrace_image: str
) -> None:
    """A publish timeout shorter than the pull: the first publish mounts an empty volume in time
    (its record says so), the pull goes on, and a later publish gets the library."""
    with running_plugin(tmp_path, registry, crane, publish_timeout=0.05) as plugin:
        first = target_of(plugin, "pod-1")
        plugin.publish("csi-1", first, signed(ddtrace_image))
        assert "not ready within" in plugin.empty_because("csi-1")
        poll.until(plugin.cached, what="the pull to finish", timeout=120)
        second = target_of(plugin, "pod-2")
        plugin.publish("csi-2", second, signed(ddtrace_image))
        assert (plugin.inside(second) / "sitecustomize.py").is_file()


@pytest.mark.parametrize(
    ("volume_id", "target", "attributes", "code"),
    [
        ("../x", "pods/p/mount", None, grpc.StatusCode.INVALID_ARGUMENT),
        ("a/b", "pods/p/mount", None, grpc.StatusCode.INVALID_ARGUMENT),
        ("", "pods/p/mount", None, grpc.StatusCode.INVALID_ARGUMENT),
        ("csi-x", "pods/../../etc", None, grpc.StatusCode.INVALID_ARGUMENT),
        ("csi-x", "/etc/libinject", None, grpc.StatusCode.INVALID_ARGUMENT),
        ("csi-x", "pods/p/mount", {}, grpc.StatusCode.INVALID_ARGUMENT),
        (
            "csi-x",
            "pods/p/mount",
            signed("docker.io/library/busybox:1"),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    ],
)
def test_hostile_requests_refused(
    plugin: Plugin,
    volume_id: str,
    target: str,
    attributes: dict[str, str] | None,
    code: grpc.StatusCode,
) -> None:
    """Hostile volume ids, target paths escaping or outside the pods root, missing attributes
    and images from a registry not allowed: refused with the right code, nothing written."""
    path = target if target.startswith("/") else f"{plugin.pods.parent}/{target}"
    image = signed(f"{plugin.registry.address}/libinject/python-ddtrace:1")
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish(volume_id, Path(path), image if attributes is None else attributes)
    assert error.value.code() is code
    assert not list((plugin.root / "volumes").glob("*.json"))
    assert not Path("/etc/libinject").exists()


def test_symlinked_target_escaping_the_root_refused(plugin: Plugin, tmp_path: Path) -> None:
    """A target whose parent is a symlink out of the pods root is refused before any mount."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (plugin.pods / "evil").symlink_to(outside)
    image = signed(f"{plugin.registry.address}/libinject/python-ddtrace:1")
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish("csi-evil", plugin.pods / "evil" / "mount", image)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not (outside / "mount").exists()


def test_killed_and_restarted_plugin_loses_nothing(plugin: Plugin, ddtrace_image: str) -> None:
    """SIGKILL between publish and unpublish: the restarted plugin still knows the volume (its
    record and the reference count derived from the records), serves a new publish of the same
    image from the cache without pulling, and unpublishes both cleanly."""
    first = target_of(plugin, "pod-1")
    plugin.publish("csi-1", first, signed(ddtrace_image))
    before = plugin.record("csi-1")
    plugin.kill(signal.SIGKILL)
    assert plugin.mounted(first)  # the mount outlives the plugin, as on a node

    plugin.start()  # a stale socket is left behind: the new plugin replaces it
    assert plugin.record("csi-1") == before
    second = target_of(plugin, "pod-2")
    plugin.publish("csi-2", second, signed(ddtrace_image))
    assert plugin.pulls() == 1  # the first run's only
    assert before is not None
    refcounts = Counter(
        json.loads(path.read_text())["digest"] for path in (plugin.root / "volumes").glob("*.json")
    )
    assert refcounts == {before["digest"]: 2}

    plugin.unpublish("csi-1", first)
    assert not plugin.mounted(first)
    assert not first.exists()
    assert plugin.record("csi-1") is None
    assert (plugin.inside(second) / "sitecustomize.py").is_file()  # the other still served
    plugin.unpublish("csi-2", second)
    assert not plugin.mounted(second)


def test_identity_and_node_info(plugin: Plugin) -> None:
    """A node-only plugin: its name, no controller capability, ready, the configured node id;
    the calls it does not serve are UNIMPLEMENTED."""
    identity = csi_pb2_grpc.IdentityStub(plugin.channel)
    info = identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest())
    assert info.name == "csi.libinject.dev"
    assert info.vendor_version
    assert not identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest()).capabilities
    assert plugin.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest()).node_id == "node-1"
    with pytest.raises(grpc.RpcError) as error:
        plugin.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(volume_id="v"))
    assert error.value.code() is grpc.StatusCode.UNIMPLEMENTED
    with contextlib.suppress(grpc.RpcError):
        plugin.channel.close()


def test_a_pull_killed_midway_is_removed_at_restart(
    tmp_path: Path, registry: Registry, crane: Path, ddtrace_image: str
) -> None:
    """SIGKILL while a pull unpacks into its `.pull-*` scratch directory: the directory is left
    behind (nothing of the dead process can remove it); the restarted plugin removes it before
    serving (logged), and the next publish pulls the library whole."""
    with running_plugin(tmp_path, registry, crane, publish_timeout=0.05) as plugin:
        images = plugin.root / "images"

        def unpacking() -> list[Path]:
            return [p for p in images.glob(".pull-*") if (p / "libinject").exists()]

        plugin.publish("csi-1", target_of(plugin, "pod-1"), signed(ddtrace_image))  # empty
        poll.until(unpacking, what="the pull to start unpacking", timeout=60, interval=0.005)
        plugin.kill(signal.SIGKILL)
        left = list(images.glob(".pull-*"))
        assert left
        assert plugin.cached() == []

        plugin.start()
        assert not list(images.glob(".pull-*"))
        assert '"interrupted pull removed"' in plugin.log()
        target = target_of(plugin, "pod-2")
        plugin.publish("csi-2", target, signed(ddtrace_image))
        poll.until(plugin.cached, what="the pull to finish", timeout=120)
        plugin.unpublish("csi-2", target)
        plugin.publish("csi-2", target, signed(ddtrace_image))
        assert (plugin.inside(target) / "sitecustomize.py").is_file()


def two_platform_index(registry: Registry, crane: Path, directory: Path) -> str:
    """A library image pushed as an OCI index of a linux/amd64 and a linux/arm64 image, each
    whose /libinject/platform names its own platform; the index's reference, by tag."""
    repository = f"{registry.address}/libinject/python-ddtrace"
    manifests = []
    for architecture in ("amd64", "arm64"):
        root = directory / architecture
        (root / "libinject").mkdir(parents=True)
        (root / "libinject" / "platform").write_text(f"linux/{architecture}\n")
        layer = directory / f"{architecture}.tar"
        with tarfile.open(layer, "w") as archive:
            archive.add(root / "libinject", arcname="libinject")
        tag = f"{repository}:multi-{architecture}"
        for command in (
            ["append", "--oci-empty-base", "-f", str(layer), "-t", tag],
            ["mutate", tag, f"--set-platform=linux/{architecture}", "-t", tag],
        ):
            subprocess.run([str(crane), *command], check=True, capture_output=True)
        manifests += ["-m", tag]
    index = f"{repository}:multi"
    subprocess.run([str(crane), "index", "append", *manifests, "-t", index], check=True,
                   capture_output=True)  # fmt: skip
    return index


def test_a_multi_platform_image_gives_each_node_its_own_platforms_files(
    tmp_path: Path, registry: Registry, crane: Path
) -> None:
    """A node unpacks its own platform's image from an index, whatever the machine the tests run
    on (`--platform` stands for the node's); pinned by the index's digest it is the same image,
    served from the same cache entry; a platform the index lacks gives an empty volume
    whose record names the platforms there are."""
    index = two_platform_index(registry, crane, tmp_path / "layers")
    digest = subprocess.run([str(crane), "digest", index], check=True, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    pinned = f"{index}@{digest}"
    for platform in ("linux/amd64", "linux/arm64"):
        directory = tmp_path / platform.replace("/", "-")
        directory.mkdir()
        with running_plugin(directory, registry, crane, f"--platform={platform}") as plugin:
            for n, reference in enumerate((index, pinned, pinned)):
                target = target_of(plugin, f"pod-{n}")
                plugin.publish(f"csi-{n}", target, signed(reference))
                assert (plugin.inside(target) / "platform").read_text() == f"{platform}\n"
            assert plugin.pulls() == 1  # by tag or by the index's digest: one image unpacked
            assert len(plugin.cached()) == 1
            record = plugin.record("csi-1")
            assert record is not None
            assert record["digest"] != digest  # the platform's image, not the index

    directory = tmp_path / "s390x"
    directory.mkdir()
    with running_plugin(directory, registry, crane, "--platform=linux/s390x") as plugin:
        target = target_of(plugin, "pod-other")
        plugin.publish("csi-other", target, signed(index))
        reason = plugin.empty_because("csi-other")
        assert "no linux/s390x image (it has linux/amd64, linux/arm64)" in reason
