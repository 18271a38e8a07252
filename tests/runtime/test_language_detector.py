"""The operator's language detector (libinject.runtime.detection) against a real registry with
the real crane: it fetches the configs of the images admissions name, caches them by digest
(a second tag of the same image costs one digest request, a digest reference none), asks a tag
again when it is due and follows it if it moved, names why a config could not be read, never
passes crane a name that is no image reference, and stays within its bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cluster import appimages
from cluster.registry import Registry
from libinject.api.types import Language
from libinject.engine.detection import Detected
from libinject.runtime import detection
from libinject.runtime.detection import Detector


def _pod(*images: Any) -> dict[str, Any]:
    containers = [{"name": f"c{number}", "image": image} for number, image in enumerate(images)]
    return {"spec": {"containers": containers}}


def _counting(crane: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A crane that logs each command it is given, then runs the real one; and its log."""
    log = tmp_path / "crane.log"
    log.touch()
    wrapper = tmp_path / "crane"
    wrapper.write_text(f'#!/bin/sh\necho "$1 $3" >> {log}\nexec {crane} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def _fetched(detector: Detector, *images: Any) -> Mapping[str, Detected]:
    detector.want(_pod(*images))
    asyncio.run(detector.fetch_wanted())
    return detector.table


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "registry") as running:
        yield running


@pytest.mark.network  # the registry and crane on cold caches
def test_configs_say_what_each_image_runs_or_why_not(
    crane: Path, registry: Registry, tmp_path: Path
) -> None:
    python, java, silent = (f"{registry.address}/apps/{name}:1" for name in ("py", "jvm", "bin"))
    appimages.push(crane, python, **appimages.PYTHON)
    appimages.push(crane, java, **appimages.JAVA)
    appimages.push(crane, silent, **appimages.SILENT)
    missing = f"{registry.address}/apps/never-pushed:1"
    detector = Detector(crane=crane)
    table = _fetched(detector, python, java, silent, missing)
    assert table[python].languages == {Language.PYTHON}
    assert table[python].evidence == "PYTHON_VERSION in its environment"
    assert table[java].languages == {Language.JAVA}
    assert table[silent] == Detected(frozenset(), "its config names no language")
    assert table[missing].languages == frozenset()
    assert table[missing].evidence.startswith("its config could not be read: ")
    assert "MANIFEST_UNKNOWN" in table[missing].evidence


@pytest.mark.network
def test_configs_are_cached_by_digest_and_a_due_tag_is_followed(
    crane: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting, log = _counting(crane, tmp_path)
    first, second = f"{registry.address}/apps/py:1", f"{registry.address}/apps/py:latest"
    digest = appimages.push(crane, first, **appimages.PYTHON)
    appimages.push(crane, second, **appimages.PYTHON)  # the same image under another tag
    detector = Detector(crane=counting)
    _fetched(detector, first)
    assert log.read_text().split("\n")[:-1] == [f"digest {first}", f"config {first}@{digest}"]
    log.write_text("")
    table = _fetched(detector, second, f"{registry.address}/apps/py@{digest}")
    assert log.read_text() == f"digest {second}\n"  # its config is known by its digest
    assert table[second] == table[first]
    log.write_text("")
    _fetched(detector, first)  # known and not due: nothing is asked
    assert log.read_text() == ""
    appimages.push(crane, first, **appimages.JAVA)  # the tag moves to a JVM image
    monkeypatch.setattr(detection, "REFRESH_SECONDS", 0.0)
    detector = Detector(crane=counting)
    _fetched(detector, first)
    table = _fetched(detector, first)  # due at once: asked again, and followed
    assert table[first].languages == {Language.JAVA}


def test_a_config_that_cannot_be_read_is_asked_for_again_after_the_retry_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = Detector(crane=tmp_path / "no-crane")
    image = "registry.example/apps/py:1"
    table = _fetched(detector, image)
    assert table[image].evidence.startswith(f"its config could not be read: cannot run {tmp_path}")
    detector.want(_pod(image))  # within the retry time: not asked again
    assert detector.pending == ()
    monkeypatch.setattr(detection, "RETRY_SECONDS", 0.0)
    detector = Detector(crane=tmp_path / "no-crane")
    _fetched(detector, image)
    detector.want(_pod(image))  # past the retry time: asked again
    assert detector.pending == (image,)


@pytest.mark.parametrize(
    "image", ["--help", "-v", "a b", "", "Upper:1", "x" * 600, 7, None, ["list"]]
)
def test_a_name_that_is_no_image_reference_never_reaches_crane(image: Any) -> None:
    """A pod author's container image is anything the API server let through: a name crane
    would read as a flag, or no text at all, is not fetched (nor does it break the others)."""
    detector = Detector(crane=Path("crane"))
    detector.want(_pod(image, "registry.example/ok:1"))
    detector.want({"spec": {"containers": "not a list", "initContainers": [None, 3]}})
    detector.want({"spec": None})
    assert detector.pending == ("registry.example/ok:1",)


def test_what_is_remembered_and_waiting_is_bounded(tmp_path: Path) -> None:
    detector = Detector(crane=tmp_path / "no-crane", capacity=2, pending_limit=3)
    images = [f"registry.example/app{number}:1" for number in range(5)]
    detector.want(_pod(*images))
    assert detector.pending == tuple(images[:3])  # the others wait for their next pod
    asyncio.run(detector.fetch_wanted())
    assert list(detector.table) == images[1:3]  # the least recently wanted went first


def test_the_table_reaches_listeners_as_images_are_wanted(tmp_path: Path) -> None:
    detector = Detector(crane=tmp_path / "no-crane")
    tables: list[Mapping[str, Detected]] = []
    detector.listen(tables.append)

    async def scenario() -> None:
        task = asyncio.create_task(detector.keep_current())
        detector.want(_pod("registry.example/a:1"))
        for _ in range(200):
            if tables:
                break
            await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(scenario())
    assert [list(table) for table in tables] == [["registry.example/a:1"]]
