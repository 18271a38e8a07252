"""Whether the cluster mounts image volumes, read from the versions its API server and nodes
report: every node must, or `auto` does not choose them."""

from __future__ import annotations

from typing import Any

import pytest

from libinject.engine.imagevolumes import node_problem, server_problem, support


def _info(kubelet: str, runtime: str) -> dict[str, Any]:
    return {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime}


@pytest.mark.parametrize(
    ("kubelet", "runtime"),
    [
        ("v1.35.0", "containerd://2.2.0"),
        ("v1.36.3", "containerd://2.2.1"),
        ("v1.35.2-eks-4f2c1a7", "cri-o://1.33.0"),
        ("v1.40.0", "containerd://v3.0.0"),
    ],
)
def test_a_node_with_a_recent_kubelet_and_runtime_mounts_them(kubelet: str, runtime: str) -> None:
    assert node_problem("n1", _info(kubelet, runtime)) is None


@pytest.mark.parametrize(
    ("info", "named"),
    [
        (_info("v1.34.9", "containerd://2.2.0"), "kubelet v1.34.9, not v1.35+"),
        (_info("v1.36.3", "containerd://2.1.4"), "containerd://2.1.4"),  # no subPath before 2.2
        (_info("v1.36.3", "containerd://1.7.27"), "containerd://1.7.27"),
        (_info("v1.36.3", "cri-o://1.32.5"), "cri-o://1.32.5"),
        (_info("v1.36.3", "docker://28.1.1"), "docker://28.1.1"),
        (_info("kwok-v0.8.0", "kwok-v0.8.0"), "kubelet kwok-v0.8.0"),  # a fake node
        (_info("v1.36.3", "kwok-v0.8.0"), "container runtime kwok-v0.8.0"),
        ({}, "kubelet of unknown version"),
        (None, "kubelet of unknown version"),
        ({"kubeletVersion": 7, "containerRuntimeVersion": ["x"]}, "kubelet 7"),  # hostile types
    ],
)
def test_a_node_short_of_either_says_which(info: Any, named: str) -> None:
    problem = node_problem("n1", info)
    assert problem is not None
    assert problem.startswith("node n1: ")
    assert named in problem


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("v1.35.0", None),
        ("v1.36.3", None),
        ("v1.34.2", "the API server is v1.34.2, image volumes are on by default from v1.35"),
        ("nonsense", "the API server is nonsense, image volumes are on by default from v1.35"),
        (None, "the API server's version is not known yet"),
    ],
)
def test_the_api_server_must_keep_the_volume_source(
    version: str | None, problem: str | None
) -> None:
    assert server_problem(version) == problem


def test_every_node_must_mount_them() -> None:
    """One node short is enough to say no: the first by name is named, the rest counted."""
    problems = {
        "c": "node c: kubelet v1.34.0, not v1.35+",
        "a": None,
        "b": "node b: container runtime containerd://1.7.27, not containerd 2.2+ or cri-o 1.33+",
    }
    verdict = support(server_version="v1.36.3", node_problems=problems)
    assert not verdict.available
    assert verdict.reason == f"{problems['b']} (and 1 more nodes)"
    alone = support(server_version="v1.36.3", node_problems={"a": None, "b": problems["b"]})
    assert alone.reason == problems["b"]


def test_a_cluster_where_all_of_them_do() -> None:
    verdict = support(server_version="v1.36.3", node_problems={"a": None, "b": None})
    assert verdict.available
    assert verdict.reason == "the API server is v1.36.3 and every node mounts them"


def test_no_nodes_or_an_old_server_mean_no() -> None:
    """Until the nodes are listed, or with an API server that drops the volume source, `auto`
    must not write a volume the pod could not use."""
    assert not support(server_version="v1.36.3", node_problems={}).available
    old = support(server_version="v1.33.1", node_problems={"a": None})
    assert not old.available
    assert "v1.33.1" in old.reason
