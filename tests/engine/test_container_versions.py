"""Per-container versions: the pod annotation libinject.dev/<container>.<language>.version asks
for one container's version, held to the rules of the pod's own request (the version grammar,
the policy's allowedVersions, no request where the policy pins its image). A granted version
other than the pod's gets a copy of its own (volume, copy container, mount path), so two
versions of a language can run side by side in one pod; a refusal keeps the pod's version and is
recorded."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import pytest

from builders import ENABLED, PYTHON, container, env_of, pod, policy, run
from libinject.api.types import Language
from libinject.cli.explain import to_text
from libinject.engine.decision import Code
from libinject.engine.delivery import object_name
from libinject.engine.index import PolicyIndex
from libinject.engine.inject import inject
from libinject.engine.settings import EngineSettings, ImageVolumeSupport, LibrarySettings

OTHER = "4.15.0"  # the version the worker asks for, beside the policy's PYTHON version
ALLOWING = policy(libraries=[{**PYTHON, "allowedVersions": ["4.*"]}])
OWN = object_name(Language.PYTHON, OTHER)


def _two(**annotations: str) -> dict[str, Any]:
    return pod(container("api"), container("worker"), annotations=annotations)


def _record(result: Any) -> dict[str, Any]:
    [record] = json.loads(result.pod["metadata"]["annotations"]["libinject.dev/injected"])
    return dict(record)


def _inits(result: Any) -> dict[str, str]:
    return {c["name"]: c["image"] for c in result.pod["spec"].get("initContainers", [])}


def _mounts(result: Any, name: str) -> dict[str, str]:
    found = next(c for c in result.pod["spec"]["containers"] if c["name"] == name)
    return {m["name"]: m["mountPath"] for m in found.get("volumeMounts", [])}


def test_a_container_gets_the_version_it_asks_for_beside_the_pods() -> None:
    result = run(_two(**{"libinject.dev/worker.python.version": OTHER}), ALLOWING)
    inits = _inits(result)
    assert inits["libinject-python"].endswith(f"/python-ddtrace:{PYTHON['version']}")
    assert inits[OWN].endswith(f"/python-ddtrace:{OTHER}")
    assert _mounts(result, "api") == {"libinject-python": "/opt/libinject/python"}
    own_path = f"/opt/libinject/{OWN.removeprefix('libinject-')}"
    assert _mounts(result, "worker") == {OWN: own_path}
    assert env_of(result, "worker")["PYTHONPATH"].startswith(own_path)
    assert env_of(result, "api")["PYTHONPATH"].startswith("/opt/libinject/python")
    volumes = {v["name"] for v in result.pod["spec"]["volumes"]}
    assert {"libinject-python", OWN} <= volumes
    record = _record(result)
    assert record["version"] == PYTHON["version"]
    assert record["containers"] == ["api", "worker"]
    assert record["containerVersions"] == {"worker": OTHER}


def test_when_every_container_asks_the_same_version_only_that_one_is_copied() -> None:
    """No copy of the pod's version where no container takes it."""
    asks = {f"libinject.dev/{name}.python.version": OTHER for name in ("api", "worker")}
    result = run(_two(**asks), ALLOWING)
    assert list(_inits(result)) == [OWN]
    assert "libinject-python" not in {v["name"] for v in result.pod["spec"]["volumes"]}


@pytest.mark.parametrize(
    ("asked", "rule", "why"),
    [
        (OTHER, policy(), "refused: allowedVersions is [none]"),
        ("4.*", ALLOWING, "refused: not a version"),
        ("4.15.0@sha256:" + "a" * 64, ALLOWING, "refused: not a version"),
        (OTHER, policy(libraries=[{**PYTHON, "image": "registry.example/own/python:1"}]),
         "refused: the policy pins the image"),
    ],
    ids=["not-allowed", "a-pattern", "a-digest", "pinned-image"],
)  # fmt: skip
def test_a_refused_request_keeps_the_pods_version_and_is_recorded(
    asked: str, rule: Any, why: str
) -> None:
    result = run(_two(**{"libinject.dev/worker.python.version": asked}), rule)
    assert OWN not in _inits(result)
    assert _mounts(result, "worker") == _mounts(result, "api")
    record = _record(result)
    assert "containerVersions" not in record
    assert why in record["containerVersionsRefused"]["worker"]
    assert "libinject.dev/worker.python.version" in record["containerVersionsRefused"]["worker"]


def test_a_container_request_starts_from_the_pods_own_request() -> None:
    """The pod asks 4.15.0 for all; worker asking 4.15.0 too is no second version, and api
    asking the policy's version gets it, in a copy of its own."""
    asks = {
        "libinject.dev/python.version": OTHER,
        "libinject.dev/worker.python.version": OTHER,
        "libinject.dev/api.python.version": PYTHON["version"],
    }
    result = run(_two(**asks), ALLOWING)
    record = _record(result)
    assert record["version"] == OTHER
    assert record["containerVersions"] == {"api": PYTHON["version"]}
    assert set(_inits(result)) == {
        "libinject-python",
        object_name(Language.PYTHON, PYTHON["version"]),
    }


@pytest.mark.parametrize(
    "settings",
    [
        EngineSettings(),
        EngineSettings(libraries=LibrarySettings(csi_registered=True)),
        EngineSettings(libraries=LibrarySettings(image_volumes=ImageVolumeSupport(True, "v1.35"))),
    ],
    ids=["init-container", "csi", "image-volume"],
)
def test_each_mode_delivers_the_second_version_and_a_second_pass_adds_nothing(
    settings: EngineSettings,
) -> None:
    """The reinvoked pod (the first pass's output) gets no further change in any mode."""
    asked = _two(**{"libinject.dev/worker.python.version": OTHER})
    first = run(asked, ALLOWING, settings=settings)
    volumes = {v["name"]: v for v in first.pod["spec"]["volumes"]}
    assert OTHER in json.dumps(volumes[OWN]) or OWN in _inits(first)
    index = PolicyIndex([ALLOWING])
    second = inject(first.pod, namespace=ENABLED, index=index, settings=settings)
    assert second.patch == []
    assert jsonpatch.apply_patch(asked, first.patch) == first.pod


def test_names_of_versions_that_read_alike_stay_apart_and_fit_a_label() -> None:
    alike = {object_name(Language.PYTHON, v) for v in ("1.0-rc", "1-0.rc", "1.0-RC")}
    assert len(alike) == 3
    longest = object_name(Language.NODEJS, "1.2.3-" + "x" * 58)
    assert len(longest) <= 63
    assert longest.startswith("libinject-nodejs-1-2-3-xxx")


def test_explain_names_each_containers_version_and_each_refusal() -> None:
    asks = {"libinject.dev/worker.python.version": OTHER, "libinject.dev/api.python.version": "9"}
    result = run(_two(**asks), ALLOWING, explain=True)
    text = to_text("pod web", result.decision)
    assert f"container worker: ContainerInstrumented: instrumented, version {OTHER}" in text
    assert "container api: ContainerInstrumented: instrumented\n" in text
    assert (
        f"version for worker: VersionRequested: libinject.dev/worker.python.version={OTHER} is allowed"
        in text
    )
    assert "version for api: VersionNotAllowed: libinject.dev/api.python.version=9 refused" in text
    reasons = dict(result.decision.injected[0].container_version_reasons)
    assert reasons["api"].code is Code.VERSION_NOT_ALLOWED
