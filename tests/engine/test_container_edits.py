"""Every library's edits of a container are made in turn and written as one run of operations
(`engine.containers.Edits`): the run must do what each library's own operations did.

Pods are generated from a fixed seed: containers with and without env and mounts, the user's
own load variables (literal, empty, from a source), mounts at our paths, and init containers
named by the policy; up to every language at once, in every mode.
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

import jsonpatch
import pytest

from builders import ENABLED, container, pod, policy, run
from libinject.api.types import LOAD_VARIABLES, Language
from libinject.engine.inject import Result
from libinject.engine.settings import LibrarySettings

SEED = 20_251_207
PODS = 300
LANGUAGES = [language.value for language in Language]
MODES = ("init-container", "csi", "image-volume")
ROOT = LibrarySettings().mount_root
OTHER_ENV = ("A", "DD_SERVICE", "OTEL_SERVICE_NAME")
CONTAINER_PATH = re.compile(r"^/spec/(containers|initContainers)/(\d+)/(env|volumeMounts)\b")


def _env(rng: random.Random) -> list[dict[str, Any]] | None:
    if rng.random() < 0.3:
        return None
    names = rng.sample([*LOAD_VARIABLES, *OTHER_ENV], k=rng.randint(0, 3))
    values = ("", "/app", "-Xmx1g", None)
    entries = []
    for name in names:
        value = rng.choice(values)
        entry: dict[str, Any] = {"name": name} if value is None else {"name": name, "value": value}
        if rng.random() < 0.1:
            entry = {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        entries.append(entry)
    return entries


def _mounts(rng: random.Random) -> list[dict[str, Any]] | None:
    if rng.random() < 0.4:
        return None
    mounts = [{"name": "data", "mountPath": "/data"}]
    if rng.random() < 0.2:  # one of our paths, taken by the user: that library skips it
        mounts.append({"name": "data", "mountPath": f"{ROOT}/{rng.choice(LANGUAGES)}"})
    return mounts


def _container(rng: random.Random, name: str) -> dict[str, Any]:
    fields = {"env": _env(rng), "volumeMounts": _mounts(rng)}
    return container(name, **{key: value for key, value in fields.items() if value is not None})


def _case(rng: random.Random) -> tuple[dict[str, Any], list[str], str, bool]:
    """A pod, its languages, a mode, and whether the policy names the init container too."""
    apps = [_container(rng, f"app{n}") for n in range(rng.randint(1, 4))]
    spec: dict[str, Any] = {"volumes": [{"name": "data", "emptyDir": {}}]}
    if rng.random() < 0.5:
        spec["initContainers"] = [_container(rng, "setup")]
    languages = sorted(rng.sample(LANGUAGES, k=rng.randint(1, len(LANGUAGES))))
    return pod(*apps, **spec), languages, rng.choice(MODES), rng.random() < 0.5


def _inject(target: dict[str, Any], languages: list[str], mode: str, inits: bool) -> Result:
    libraries = [{"language": language, "version": "1.2.3"} for language in languages]
    spec: dict[str, Any] = {"libraries": libraries, "injection": {"mode": mode}}
    if inits and "initContainers" in target["spec"]:
        names = [c["name"] for c in target["spec"]["containers"]]
        spec["containerNames"] = [*names, "setup"]
    return run(target, policy(**spec), namespace=ENABLED)


CASES = [_case(random.Random(SEED + number)) for number in range(PODS)]


@pytest.mark.parametrize("case", range(PODS))
def test_the_patch_gives_the_pod_the_engine_returns(case: int) -> None:
    """Applied to an unshared copy of the input (as the API server holds it), the merged
    operations give the engine's pod: a wrong index, a list created twice or a value set on the
    wrong entry would give another pod, or fail to apply."""
    target, languages, mode, inits = CASES[case]
    result = _inject(target, languages, mode, inits)
    applied = jsonpatch.apply_patch(copy.deepcopy(target), copy.deepcopy(result.patch))
    assert applied == result.pod


@pytest.mark.parametrize("case", range(PODS))
def test_each_container_is_written_in_one_run(case: int) -> None:
    """A container's env and mounts operations follow one another: the edits of every library
    are written together, once, and no container's operations come back after another's."""
    target, languages, mode, inits = CASES[case]
    result = _inject(target, languages, mode, inits)
    runs = [
        match.group(1, 2)
        for op in result.patch
        if (match := CONTAINER_PATH.match(op["path"])) is not None
    ]
    ends = [place for number, place in enumerate(runs) if runs[number + 1 : number + 2] != [place]]
    assert len(ends) == len(set(ends)), runs


@pytest.mark.parametrize("case", range(PODS))
def test_all_languages_at_once_edit_containers_as_one_at_a_time(case: int) -> None:
    """Every language from one policy edits each container as the same languages do from one
    policy each, injected in turn (in reverse, so that each copy container goes first, as in
    language order): the same env values by name, and the same mounts. The edits a language
    makes are those its checks allow on the pod the languages before it left."""
    target, languages, mode, inits = CASES[case]
    together = _inject(target, languages, mode, inits).pod
    apart = target
    for language in reversed(languages):
        apart = _inject(apart, [language], mode, inits).pod
    assert _containers(together) == _containers(apart)


def _containers(target: dict[str, Any]) -> dict[str, Any]:
    """Each container's env (name to value) and mounts, by container name."""
    return {
        c["name"]: (
            {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env") or ()},
            sorted((m["mountPath"], m["name"]) for m in c.get("volumeMounts") or ()),
        )
        for c in _all(target)
    }


@pytest.mark.parametrize("case", range(PODS))
def test_mounts_are_compared_only_where_a_path_is_taken(case: int) -> None:
    """Edits compare our mount with the container's only where one of them has its path: a
    path the user took for something else is refused (no container ends with two mounts at one
    path), and our own mount, found again when the pod comes back, is not added twice (a second
    injection writes no container operation)."""
    target, languages, mode, inits = CASES[case]
    result = _inject(target, languages, mode, inits)
    for mounts in (c.get("volumeMounts") or () for c in _all(result.pod)):
        paths = [m["mountPath"] for m in mounts]
        assert len(paths) == len(set(paths)), paths
    again = _inject(result.pod, languages, mode, inits)
    assert not [op for op in again.patch if CONTAINER_PATH.match(op["path"])]


def _all(target: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(target["spec"].get("initContainers") or ()), *target["spec"]["containers"]]
