"""Writable volumes for real: `writable: "true"` makes the plugin mount an overlay at the target,
the cached library as its read-only lower directory and a per-volume upper directory under the
plugin root for the pod's writes (`<root>/overlays/<volume id>/`), each test's plugin in a
private mount namespace (`csi/plugin.py`)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc
import pytest

from cluster import poll
from cluster.registry import Registry
from csi.plugin import UNREACHABLE, Plugin, running_plugin, target_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")

LOADER = "sitecustomize.py"


def writable(image: str) -> dict[str, str]:
    return {"image": image, "writable": "true"}


def overlay_of(plugin: Plugin, volume_id: str) -> Path:
    return plugin.root / "overlays" / volume_id


def library_of(plugin: Plugin, volume_id: str) -> Path:
    """The cache's copy of the library a volume's record names."""
    digest = (plugin.record(volume_id) or {})["digest"]
    return plugin.root / "images" / digest.removeprefix("sha256:") / "libinject"


def fstype(plugin: Plugin, target: Path) -> str:
    """The file system type the plugin's mount namespace shows at `target`."""
    for line in Path(f"/proc/{plugin.holder.pid}/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        if before.split(" ")[4] == str(target):
            return after.split(" ")[0]
    return ""


def test_writes_land_in_the_volumes_own_upper_directory(plugin: Plugin, ddtrace_image: str) -> None:
    """Two writable volumes and a read-only one of the same image: the writable ones are overlays
    that read the library as the image has it; a new file and a changed library file written at
    one target land in that volume's upper directory only: the shared cache copy is unchanged,
    the other writable volume sees neither, and the read-only volume still refuses writes."""
    first, second, readonly = (target_of(plugin, pod) for pod in ("pod-w1", "pod-w2", "pod-ro"))
    plugin.publish("csi-w1", first, writable(ddtrace_image))
    plugin.publish("csi-w2", second, writable(ddtrace_image))
    plugin.publish("csi-ro", readonly, {"image": ddtrace_image})
    assert plugin.pulls() == 1
    library = library_of(plugin, "csi-w1")
    original = (library / LOADER).read_bytes()
    assert fstype(plugin, first) == fstype(plugin, second) == "overlay"
    assert fstype(plugin, readonly) != "overlay"
    record = plugin.record("csi-w1")
    assert record is not None
    assert record["writable"] is True
    assert (plugin.record("csi-ro") or {})["writable"] is False
    for target in (first, second, readonly):
        assert (plugin.inside(target) / LOADER).read_bytes() == original
    assert sorted(p.name for p in plugin.inside(first).iterdir()) == sorted(
        p.name for p in library.iterdir()
    )

    written = plugin.sh(f"echo cache > {first}/written.txt && echo '# patched' >> {first}/{LOADER}")
    assert written.returncode == 0, written.stderr
    upper = overlay_of(plugin, "csi-w1") / "upper"
    assert (upper / "written.txt").read_text() == "cache\n"
    assert (upper / LOADER).read_bytes() == original + b"# patched\n"
    assert (plugin.inside(first) / LOADER).read_bytes() == original + b"# patched\n"

    assert (library / LOADER).read_bytes() == original
    assert not (library / "written.txt").exists()
    assert not (plugin.inside(second) / "written.txt").exists()
    assert (plugin.inside(second) / LOADER).read_bytes() == original
    assert list((overlay_of(plugin, "csi-w2") / "upper").iterdir()) == []
    refused = plugin.sh(f"touch {readonly}/x")
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    assert (plugin.inside(readonly) / LOADER).read_bytes() == original

    for volume, target in (("csi-w1", first), ("csi-w2", second), ("csi-ro", readonly)):
        plugin.unpublish(volume, target)
        assert not plugin.mounted(target)
        assert not target.exists()
        assert plugin.record(volume) is None
    assert not overlay_of(plugin, "csi-w1").exists()
    assert not overlay_of(plugin, "csi-w2").exists()
    assert (library / LOADER).read_bytes() == original  # the cache copy outlives its volumes


def test_killed_and_restarted_plugin_still_removes_the_overlay(
    plugin: Plugin, ddtrace_image: str
) -> None:
    """SIGKILL between publish and unpublish: the overlay stays mounted with the pod's write in
    it, and the restarted plugin's unpublish (knowing from the record that the volume is
    writable) unmounts it and removes its overlay directories."""
    target = target_of(plugin, "pod-k")
    plugin.publish("csi-k", target, writable(ddtrace_image))
    assert plugin.sh(f"echo before > {target}/state").returncode == 0
    plugin.kill(signal.SIGKILL)
    assert plugin.mounted(target)  # the mount outlives the plugin, as on a node

    plugin.start()
    assert (plugin.record("csi-k") or {})["writable"] is True
    plugin.publish("csi-k", target, writable(ddtrace_image))  # idempotent after the restart
    assert (plugin.inside(target) / "state").read_text() == "before\n"
    plugin.unpublish("csi-k", target)
    assert not plugin.mounted(target)
    assert not target.exists()
    assert not overlay_of(plugin, "csi-k").exists()
    assert plugin.record("csi-k") is None


def test_writable_must_match_and_be_true_or_false(plugin: Plugin, ddtrace_image: str) -> None:
    """A volume id published writable and asked again read-only (at the same target, same
    image) is ALREADY_EXISTS, as another image would be, and its overlay is untouched; the same
    request again is OK; a `writable` other than true/false is INVALID_ARGUMENT with nothing
    written."""
    target = target_of(plugin, "pod-m")
    plugin.publish("csi-m", target, writable(ddtrace_image))
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish("csi-m", target, {"image": ddtrace_image})
    assert error.value.code() is grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish("csi-m", target, {"image": ddtrace_image, "writable": "false"})
    assert error.value.code() is grpc.StatusCode.ALREADY_EXISTS
    plugin.publish("csi-m", target, writable(ddtrace_image))
    assert fstype(plugin, target) == "overlay"
    assert overlay_of(plugin, "csi-m").is_dir()

    other = target_of(plugin, "pod-bad")
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish("csi-bad", other, {"image": ddtrace_image, "writable": "yes"})
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert plugin.record("csi-bad") is None
    assert not overlay_of(plugin, "csi-bad").exists()
    assert not other.exists()
    plugin.unpublish("csi-m", target)
    assert not overlay_of(plugin, "csi-m").exists()


def test_an_empty_writable_volume_stays_read_only(plugin: Plugin) -> None:
    """With the library not ready there is nothing to overlay: the volume is the read-only
    empty bind mount even though writable was asked, no overlay directories are made, and the
    record keeps `writable` and says so in its reason."""
    target = target_of(plugin, "pod-e")
    plugin.publish("csi-e", target, writable(f"{UNREACHABLE}/python-ddtrace:4.16.0"))
    assert plugin.mounted(target)
    assert fstype(plugin, target) != "overlay"
    assert list(plugin.inside(target).iterdir()) == []
    assert "Read-only file system" in plugin.sh(f"touch {target}/x").stderr
    record = plugin.record("csi-e")
    assert record is not None
    assert record["digest"] == "empty"
    assert record["writable"] is True
    assert "read-only although writable was asked" in record["reason"]
    assert not overlay_of(plugin, "csi-e").exists()
    plugin.unpublish("csi-e", target)
    assert not target.exists()
    assert plugin.record("csi-e") is None


def test_collection_keeps_an_image_an_overlay_uses(
    tmp_path: Path, registry: Registry, crane: Path, ddtrace_image: str
) -> None:
    """With a one-second grace, an image only a writable volume uses (as its overlay's lower
    directory) is not collected while that volume is published, and the overlay still reads
    it; once unpublished, it is."""
    with running_plugin(tmp_path, registry, crane, "--gc-grace=1", "--gc-interval=0.5") as plugin:
        target = target_of(plugin, "pod-gc")
        plugin.publish("csi-gc", target, writable(ddtrace_image))
        digest = (plugin.record("csi-gc") or {})["digest"].removeprefix("sha256:")
        time.sleep(2)  # past the grace with passes in between
        assert plugin.cached() == [digest]
        assert (plugin.inside(target) / LOADER).is_file()
        assert plugin.sh(f"echo x > {target}/late").returncode == 0

        plugin.unpublish("csi-gc", target)
        assert not overlay_of(plugin, "csi-gc").exists()
        poll.until(
            lambda: plugin.cached() == [],
            what="the unused version to be collected",
            timeout=30,
            interval=0.1,
        )
