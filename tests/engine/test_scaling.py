"""One pod cannot stall a replica: the engine's work grows linearly with the pod, and a pod beyond
the bounds of `libinject.engine.limits` is skipped at a cost independent of its size.

Work is counted, never timed: the lines the engine executes (Python loops) and the comparisons
made on the pod's names (scans inside C code, such as `name in a_tuple`, that are one line each).
For work w(n) = a*n + b, w(2n) <= 2*w(n); anything superlinear in the measured dimension breaks
that. The seconds at 1,000 to 20,000 containers are in bench/results/engine.json.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import libinject.engine
from builders import JAVA, PYTHON, container, pod, policy, run
from libinject.engine import limits
from libinject.engine.decision import Code
from libinject.engine.inject import SKIPPED_ANNOTATION

ENGINE = str(Path(libinject.engine.__file__).parent)


class Name(str):
    """A name that counts how often it is compared for equality (a hash lookup compares once,
    a scan of a list or tuple once per item)."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        Name.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


@contextmanager
def engine_lines() -> Iterator[list[int]]:
    """Counts the lines executed in libinject.engine while the block runs."""
    count = [0]

    def trace(frame: FrameType, event: str, _: Any) -> Callable[..., Any] | None:
        if not frame.f_code.co_filename.startswith(ENGINE):
            return None
        if event == "line":
            count[0] += 1
        return trace

    sys.settrace(trace)
    try:
        yield count
    finally:
        sys.settrace(None)


def shaped(n: int, dimension: str) -> dict[str, Any]:
    """A pod that grows with `n` in one dimension and stays small in the others."""
    grows = {key: (n if key == dimension else 2) for key in ("containers", "env", "mounts", "args")}
    volumes = n if dimension == "volumes" else 2
    inits = n if dimension == "initContainers" else 1
    apps = [
        container(
            Name(f"app-{index}"),
            env=[{"name": Name(f"VAR_{k}"), "value": "v"} for k in range(grows["env"])],
            args=[f"-Dk{k}=v" for k in range(grows["args"])],
            volumeMounts=[
                {"name": Name(f"vol-{k % volumes}"), "mountPath": f"/mnt/{k}"}
                for k in range(grows["mounts"])
            ],
        )
        for index in range(grows["containers"])
    ]
    return pod(
        *apps,
        initContainers=[container(Name(f"init-{index}")) for index in range(inits)],
        volumes=[{"name": Name(f"vol-{k}"), "emptyDir": {}} for k in range(volumes)],
    )


def work(target: dict[str, Any]) -> tuple[int, int]:
    """Lines executed and name comparisons made to inject `target` into all its containers, with
    both a Python and a Java library (Java's reads each command and args item too)."""
    both = policy(libraries=[PYTHON, JAVA])
    Name.comparisons = 0
    with engine_lines() as lines:
        result = run(target, both)
    assert result.decision.reason.code is Code.INJECTED
    return lines[0], Name.comparisons


@pytest.mark.parametrize(
    "dimension", ["containers", "initContainers", "env", "mounts", "args", "volumes"]
)
def test_work_is_linear_in_every_dimension_of_the_pod(dimension: str) -> None:
    """Doubling the pod in one dimension at most doubles the engine's work. Before the engine
    kept a set of the wanted container names, each container's name was looked up by a scan of
    all of them: 4x the comparisons for 2x the containers."""
    n = 150
    lines, comparisons = work(shaped(n, dimension))
    lines_2n, comparisons_2n = work(shaped(2 * n, dimension))
    assert lines_2n <= 2 * lines
    assert comparisons_2n <= 2 * comparisons


def test_a_pod_at_the_bounds_is_decided() -> None:
    """A pod at the bounds is decided: only pods beyond them are refused."""
    at_bound = pod(*[container(f"c{index}") for index in range(limits.MAX_CONTAINERS)])
    assert run(at_bound).decision.reason.code is Code.INJECTED
    entries = [{"name": f"V{k}", "value": "v"} for k in range(limits.MAX_ENTRIES - 1)]
    # One more entry is ours (the load variable): the pod holds MAX_ENTRIES - 1 of its own.
    assert run(pod(container(env=entries))).decision.reason.code is Code.INJECTED


@pytest.mark.parametrize(
    "oversized",
    [
        pytest.param(
            lambda n: pod(*[container(f"c{index}") for index in range(n)]), id="containers"
        ),
        pytest.param(
            lambda n: pod(container(), initContainers=[container(f"i{k}") for k in range(n)]),
            id="init-containers",
        ),
        pytest.param(
            lambda n: pod(container(env=[{"name": f"V{k}", "value": "v"} for k in range(n)])),
            id="env",
        ),
        pytest.param(
            lambda n: pod(
                container(volumeMounts=[{"name": "v", "mountPath": f"/m{k}"} for k in range(n)])
            ),
            id="mounts",
        ),
        pytest.param(lambda n: pod(container(args=[f"-D{k}" for k in range(n)])), id="args"),
        pytest.param(
            lambda n: pod(
                container(), volumes=[{"name": f"v{k}", "emptyDir": {}} for k in range(n)]
            ),
            id="volumes",
        ),
    ],
)
def test_a_pod_beyond_the_bounds_is_skipped_at_a_fixed_cost(
    oversized: Callable[[int], dict[str, Any]],
) -> None:
    """Beyond a bound, the pod is left as it came with PodTooLarge on it, and the engine's work
    does not depend on how far beyond: the same lines for a pod 1 item and 10x over the bound."""
    bound = max(limits.MAX_CONTAINERS, limits.MAX_ENTRIES) + 1
    with engine_lines() as lines:
        result = run(oversized(bound))
    with engine_lines() as lines_10x:
        run(oversized(10 * bound))
    assert result.decision.reason.code is Code.POD_TOO_LARGE
    assert result.pod["metadata"]["annotations"][SKIPPED_ANNOTATION].startswith("PodTooLarge:")
    assert [op["path"] for op in result.patch] == ["/metadata/annotations", "/metadata/labels"]
    assert lines_10x[0] <= lines[0] + 10
