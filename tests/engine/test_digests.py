"""Pinning library images by digest in the engine (libinject.engine.digests): what a pod gets
for each state of the operator's table, and what its record says."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from builders import JAVA, PYTHON, pod, policy, run
from libinject.engine.decision import Code
from libinject.engine.digests import Pin, pinned
from libinject.engine.inject import Result
from libinject.engine.settings import EngineSettings, LibrarySettings

REGISTRY = LibrarySettings().registry
PYTHON_IMAGE = f"{REGISTRY}/python-ddtrace:4.16.0"
JAVA_IMAGE = f"{REGISTRY}/java-ddtrace:1.56.0"
NOW, OLD = "sha256:" + "b" * 64, "sha256:" + "a" * 64


def _settings(digests: dict[str, Pin] | None) -> EngineSettings:
    libraries = dataclasses.replace(LibrarySettings(), digests=digests)
    return EngineSettings(libraries=libraries)


def _records(result: Result) -> dict[str, dict[str, Any]]:
    annotations = result.pod["metadata"]["annotations"]
    return {r["language"]: r for r in json.loads(annotations["libinject.dev/injected"])}


def _images(result: Result) -> dict[str, str]:
    return {c["name"]: c["image"] for c in result.pod["spec"].get("initContainers") or ()}


@pytest.mark.parametrize(
    ("pins", "image", "digest", "note"),
    [
        pytest.param(None, PYTHON_IMAGE, None, None, id="not-pinning"),
        pytest.param({}, PYTHON_IMAGE, None, "not resolved to a digest yet", id="not-yet"),
        pytest.param({PYTHON_IMAGE: Pin(NOW)}, f"{PYTHON_IMAGE}@{NOW}", NOW, None, id="resolved"),
        pytest.param({PYTHON_IMAGE: Pin(OLD, "connection refused")}, f"{PYTHON_IMAGE}@{OLD}", OLD,
                     "cannot be resolved now (connection refused): the last known digest",
                     id="last-known"),
    ],
)  # fmt: skip
def test_each_state_of_the_table_gives_the_pod_an_image_and_a_record(
    pins: dict[str, Pin] | None, image: str, digest: str | None, note: str | None
) -> None:
    result = run(pod(), policy(), settings=_settings(pins))
    assert _images(result) == {"libinject-python": image}
    record = _records(result)["python"]
    assert record.get("digest") == digest
    assert note is None or note in record["digestNote"]
    assert note is not None or "digestNote" not in record


def test_a_tag_never_resolved_skips_only_its_library_and_says_why() -> None:
    """Java's tag never resolved: Java is skipped with ImageUnresolved naming the image and
    crane's reason; Python, resolved, is injected pinned."""
    pins = {PYTHON_IMAGE: Pin(NOW), JAVA_IMAGE: Pin(None, "MANIFEST_UNKNOWN: manifest unknown")}
    result = run(pod(), policy(libraries=[PYTHON, JAVA]), settings=_settings(pins))
    assert _images(result) == {"libinject-python": f"{PYTHON_IMAGE}@{NOW}"}
    assert set(_records(result)) == {"python"}
    skipped = result.pod["metadata"]["annotations"]["libinject.dev/injection-skipped"]
    assert skipped.startswith("ImageUnresolved: java: ")
    assert skipped.endswith(
        f"{JAVA_IMAGE} cannot be resolved to a digest: MANIFEST_UNKNOWN: manifest unknown"
    )
    (java,) = [d for d in result.decision.languages if d.language == "java"]
    assert java.choice is not None
    assert java.choice.skipped is not None
    assert java.choice.skipped.code is Code.IMAGE_UNRESOLVED


def test_the_only_library_unresolved_leaves_the_pod_uninstrumented() -> None:
    pins = {PYTHON_IMAGE: Pin(None, "UNAUTHORIZED")}
    result = run(pod(), policy(), settings=_settings(pins))
    assert result.decision.reason.code is Code.IMAGE_UNRESOLVED
    assert result.pod["metadata"]["labels"]["libinject.dev/instrumented"] == "false"
    assert "initContainers" not in result.pod["spec"]


def test_an_image_the_policy_pins_by_digest_is_kept_and_recorded() -> None:
    own = f"mirror.example/py@{OLD}"
    result = run(pod(), policy(libraries=[{**PYTHON, "image": own}]), settings=_settings({}))
    assert _images(result) == {"libinject-python": own}
    assert _records(result)["python"]["digest"] == OLD


def test_a_version_a_pod_requests_is_not_in_the_table_and_goes_by_tag() -> None:
    """Only the policies' own versions are resolved: a granted request gets its tag, and the
    record says it is not pinned."""
    library = {**PYTHON, "allowedVersions": ["4.*"]}
    requested = pod(annotations={"libinject.dev/python.version": "4.15.0"})
    result = run(
        requested, policy(libraries=[library]), settings=_settings({PYTHON_IMAGE: Pin(NOW)})
    )
    assert _images(result) == {"libinject-python": f"{REGISTRY}/python-ddtrace:4.15.0"}
    assert "not resolved to a digest yet" in _records(result)["python"]["digestNote"]


def test_pinned_never_adds_a_second_digest() -> None:
    assert (
        pinned(f"{PYTHON_IMAGE}@{OLD}", {PYTHON_IMAGE: Pin(NOW)}).image == f"{PYTHON_IMAGE}@{OLD}"
    )
