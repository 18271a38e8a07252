"""Collection of unused library versions: the decision (pure), a collector over a cache on disk
(no root: directories stand in for unpacked images), and the real plugin with a one-second grace
removing only the version no volume uses, across a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import poll
from cluster.libraries import ImageFactory
from cluster.registry import Registry
from csi.plugin import Plugin, running_plugin, signed, target_of
from libinject.csi.cache import Cache, Entry
from libinject.csi.gc import Collector, collectable
from libinject.csi.platforms import Resolved
from libinject.csi.publications import Publication, Publications

A, B, C = (f"sha256:{char * 64}" for char in "abc")


def test_collectable_only_unreferenced_versions_past_the_grace() -> None:
    last_use = {A: 100.0, B: 100.0, C: 950.0}
    assert collectable(last_use, set(), now=1000.0, grace=900.0) == [A, B]
    assert collectable(last_use, {A}, now=1000.0, grace=900.0) == [B]
    assert collectable(last_use, {A, B}, now=1000.0, grace=900.0) == []
    assert collectable(last_use, set(), now=999.0, grace=900.0) == []  # 899 s unused: kept
    assert collectable(last_use, set(), now=1000.0, grace=0.0) == [A, B, C]
    assert collectable({}, {A}, now=1000.0, grace=0.0) == []


class NoPulls:
    def resolve(self, reference: str, timeout: float) -> Resolved:  # noqa: ARG002 (the Puller's)
        raise AssertionError(f"no pull expected: {reference}")

    def export(self, pinned: str, into: Path, timeout: float) -> None:  # noqa: ARG002
        raise AssertionError(f"no pull expected: {pinned}")


def cached(cache: Cache, digest: str, *, unused_for: float, tag: str = "") -> Entry:
    """An unpacked entry as a pull leaves it (read-only inside), last used `unused_for` ago."""
    path = cache.path_of(digest)
    (path / "lib").mkdir(parents=True)
    (path / "lib" / "x.py").write_text("x = 1\n")
    (path / "lib").chmod(0o555)
    cache.touch(digest)
    when = time.time() - unused_for
    os.utime(path.parent / "last-use", (when, when))
    if tag:
        cache._record(tag, digest)  # what a pull records
    return Entry(digest, path)


def publish(publications: Publications, volume_id: str, digest: str) -> None:
    publications.put(Publication(volume_id, f"/pods/{volume_id}", "ref", digest))


def test_collector_removes_unused_versions_and_their_tags(tmp_path: Path) -> None:
    """Only the version unreferenced and unused past the grace goes, with its tag record; the
    one a record names stays however old, the recently unpublished one stays; a second cache over
    the same root (a restarted plugin) reads the same last uses; leftovers of a crash go."""
    cache, publications = Cache(tmp_path, NoPulls()), Publications(tmp_path)
    cached(cache, A, unused_for=3600, tag="reg/libinject/python-ddtrace:1")
    cached(cache, B, unused_for=3600, tag="reg/libinject/python-ddtrace:2")
    cached(cache, C, unused_for=10, tag="reg/libinject/python-ddtrace:3")
    publish(publications, "v-b", B)
    (cache.images / ".gc-dead" / "lib").mkdir(parents=True)  # a removal a crash interrupted

    restarted = Cache(tmp_path, NoPulls())
    assert restarted.last_uses() == pytest.approx(cache.last_uses())
    assert Collector(restarted, Publications(tmp_path), grace=900).collect() == [A]

    assert cache.digests() == [B, C]
    assert cache.lookup("reg/libinject/python-ddtrace:1") is None
    assert cache.lookup("reg/libinject/python-ddtrace:2") == Entry(B, cache.path_of(B))
    refs = [json.loads(p.read_text())["digest"] for p in cache.refs.glob("*.json")]
    assert sorted(refs) == [B, C]
    assert sorted(p.name for p in cache.images.iterdir()) == ["b" * 64, "c" * 64]


def test_a_version_published_during_the_pass_stays(tmp_path: Path) -> None:
    """A publish holds the digest from finding the entry until its record is written: a pass
    that chose the entry before the record existed looks again under that lock and keeps it."""
    cache, publications = Cache(tmp_path, NoPulls()), Publications(tmp_path)
    cached(cache, A, unused_for=3600)
    collector = Collector(cache, publications, grace=900)
    removed: list[list[str]] = []
    with cache.hold(A):  # a publish has found the entry
        pass_ = threading.Thread(target=lambda: removed.append(collector.collect()))
        pass_.start()
        pass_.join(timeout=0.5)
        assert pass_.is_alive()  # the pass waits for the publish
        publish(publications, "v-a", A)
        cache.touch(A)
    pass_.join(timeout=10)
    assert removed == [[]]
    assert cache.digests() == [A]


def test_unpublish_marks_the_version_used_then(tmp_path: Path) -> None:
    """An entry last published long ago is unused only from its unpublish on (the marker is
    touched before the record goes), so the grace runs from there."""
    cache, publications = Cache(tmp_path, NoPulls()), Publications(tmp_path)
    cached(cache, A, unused_for=3600)
    publish(publications, "v-a", A)
    collector = Collector(cache, publications, grace=900)
    assert collector.collect() == []
    cache.touch(A)  # what NodeUnpublishVolume does before removing the record
    publications.remove("v-a")
    assert collector.collect() == []
    assert collector.collect() == []
    late = Collector(cache, publications, grace=900, clock=lambda: time.time() + 901)
    assert late.collect() == [A]


# The real plugin (root: mounts).

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


@pytest.fixture(scope="module")
def two_images(library_images: ImageFactory, crane: Path) -> tuple[str, str]:
    """The ddtrace image and a copy with a label: the same files under another digest."""
    first = library_images("ddtrace")
    second = first.rsplit(":", 1)[0] + ":gc-second"
    subprocess.run(
        [str(crane), "mutate", first, "--label", "dev.libinject.test=gc", "--tag", second],
        check=True,
        capture_output=True,
    )
    return first, second


@pytest.fixture
def gc_plugin(tmp_path: Path, registry: Registry, crane: Path) -> Iterator[Plugin]:
    with running_plugin(tmp_path, registry, crane, "--gc-grace=1", "--gc-interval=0.5") as plugin:
        yield plugin


@root_only
def test_plugin_collects_only_the_unused_version(
    gc_plugin: Plugin, two_images: tuple[str, str]
) -> None:
    """Two images published, one unpublished: after the grace only that one is gone (with its
    tag record); the used one stays and its mount still reads, also across a restart, until it
    is unpublished too."""
    plugin = gc_plugin
    kept, dropped = target_of(plugin, "pod-kept"), target_of(plugin, "pod-dropped")
    plugin.publish("csi-kept", kept, signed(two_images[0]))
    plugin.publish("csi-dropped", dropped, signed(two_images[1]))
    kept_digest = (plugin.record("csi-kept") or {})["digest"].removeprefix("sha256:")
    dropped_digest = (plugin.record("csi-dropped") or {})["digest"].removeprefix("sha256:")
    assert sorted(plugin.cached()) == sorted([kept_digest, dropped_digest])

    time.sleep(2)  # past the grace with passes in between: a used version is not collected
    assert sorted(plugin.cached()) == sorted([kept_digest, dropped_digest])

    plugin.unpublish("csi-dropped", dropped)
    poll.until(
        lambda: plugin.cached() == [kept_digest],
        what="the unused version to be collected",
        timeout=30,
        interval=0.1,
    )
    refs = [json.loads(p.read_text())["digest"] for p in (plugin.root / "refs").glob("*.json")]
    assert refs == [f"sha256:{kept_digest}"]
    assert (plugin.inside(kept) / "sitecustomize.py").is_file()
    poll.until(
        lambda: "unused library removed" in plugin.log(), what="the removal's log line", timeout=5
    )

    plugin.kill(signal.SIGKILL)
    plugin.start()
    time.sleep(2)  # the restarted plugin's passes, past the grace
    assert plugin.cached() == [kept_digest]
    assert (plugin.inside(kept) / "sitecustomize.py").is_file()

    plugin.unpublish("csi-kept", kept)
    poll.until(
        lambda: plugin.cached() == [],
        what="the last version to be collected",
        timeout=30,
        interval=0.1,
    )
    assert not list((plugin.root / "refs").glob("*.json"))
