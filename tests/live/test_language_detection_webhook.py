"""Language detection (`libinject run --detect-languages`) through the webhook on the real
control plane: the operator reads the configs of the images pods name from a real registry with
crane, off the admission path. The first pod of an image is injected as its policy says and its
record says the config was not known yet; the next pods of a Python image, a JVM image and an
image whose config names no language get only what they run (the JVM pod no Python copy), and a
policy with detectLanguages: false gets every library everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import appimages, kubejson, poll
from cluster.fixtures import NamespaceFactory, OperatorFactory
from cluster.libraries import DDTRACE, JAVA_VERSIONS
from cluster.operator import Operator
from cluster.registry import Registry
from cluster.workloads import ENABLED, INJECTED, PolicyFactory, policy

LIBRARIES = [
    {"language": "python", "version": DDTRACE},
    {"language": "java", "version": JAVA_VERSIONS["ddtrace"]},
]


@pytest.fixture
def detecting_operator(own_operator: OperatorFactory, crane: Path) -> Operator:
    return own_operator("detecting", "--detect-languages=true", f"--crane={crane}")


@pytest.fixture
def images(crane: Path, registry: Registry) -> dict[str, str]:
    """The app images, pushed: a Python one, a JVM one, one whose config names no language."""
    pushed = {}
    for name, config in (("py", appimages.PYTHON), ("jvm", appimages.JAVA),
                         ("bin", appimages.SILENT)):  # fmt: skip
        pushed[name] = f"{registry.address}/detection/{name}:1"
        appimages.push(crane, pushed[name], **config)
    return pushed


def _admitted(admin: client.ApiClient, namespace: str, images: dict[str, str]) -> dict[str, Any]:
    """A pod with one container per image, as admission leaves it (a dry run)."""
    containers = [{"name": name, "image": image} for name, image in images.items()]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
           "spec": {"containers": containers}}  # fmt: skip
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(pod), dry_run="All", _preload_content=False
    )
    return dict(kubejson.json_of(response))


def _records(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["language"]: r for r in json.loads(pod["metadata"]["annotations"][INJECTED])}


def _inits(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("initContainers") or ()]


def test_pods_get_only_the_libraries_of_the_languages_their_images_run(
    detecting_operator: Operator,
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    images: dict[str, str],
) -> None:
    namespace = namespaces(labels=ENABLED)
    policies(policy("polyglot", [namespace], libraries=LIBRARIES))
    first = _records(_admitted(admin, namespace, images))
    assert first["python"]["containers"] == ["py", "jvm", "bin"]
    assert first["java"]["notDetected"]["jvm"] == "its config is not known yet"

    def detected() -> dict[str, Any] | None:
        pod = _admitted(admin, namespace, images)
        return pod if "skippedContainers" in _records(pod)["java"] else None

    pod = poll.until(detected, what="a pod decided with the images' configs", timeout=30)
    records = _records(pod)
    assert records["python"]["containers"] == ["py", "bin"]
    assert records["python"]["skippedContainers"] == {"jvm": "LanguageNotDetected"}
    assert records["java"]["containers"] == ["jvm", "bin"]
    assert records["java"]["skippedContainers"] == {"py": "LanguageNotDetected"}
    assert records["java"]["notDetected"] == {"bin": "its config names no language"}
    jvm_only = _admitted(admin, namespace, {"jvm": images["jvm"]})
    assert _inits(jvm_only) == ["libinject-java"]  # no Python bundle copied into a JVM pod
    assert "python" not in _records(jvm_only)


def test_a_policy_can_turn_detection_off(
    detecting_operator: Operator,
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    images: dict[str, str],
) -> None:
    namespace = namespaces(labels=ENABLED)
    detecting = namespaces(labels=ENABLED)
    policies(policy("everywhere", [namespace], libraries=LIBRARIES, detectLanguages=False))
    policies(policy("detecting", [detecting], libraries=LIBRARIES))
    jvm = {"jvm": images["jvm"]}

    def detected() -> bool:  # the JVM image's config is known to the operator by now
        return _inits(_admitted(admin, detecting, jvm)) == ["libinject-java"]

    poll.until(detected, what="the JVM image detected", timeout=30)
    pod = _admitted(admin, namespace, jvm)
    assert _inits(pod) == ["libinject-java", "libinject-python"]
    assert all("notDetected" not in record for record in _records(pod).values())
