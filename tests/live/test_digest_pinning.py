"""Library images pinned by digest (`libinject run --pin-digests`), through the webhook on the
real control plane, against real registries: the operator resolves each policy's image tags with
crane in the background, pods get `<image>@<digest>` and the digest in their record, a tag that
moves is followed, a tag that cannot be resolved makes its policy Ready=False naming it (pods get
the last known digest, or, with none, no library and the reason)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster import kubejson, poll
from cluster.fixtures import NamespaceFactory, OperatorFactory
from cluster.libraries import DDTRACE, JAVA_VERSIONS, ImageFactory
from cluster.operator import Operator
from cluster.registry import Registry
from cluster.workloads import (
    ENABLED,
    INJECTED,
    SKIPPED,
    PolicyFactory,
    app_pod,
    condition,
    policy,
    policy_status,
)
from libinject.api.types import Flavor, Language
from libinject.engine.versions import library_image

PREFIX = "pinning"  # the operator's default images: a repository of the tests' registry its own


@pytest.fixture
def pinning_operator(own_operator: OperatorFactory, registry: Registry, crane: Path) -> Operator:
    """An operator pinning digests, resolving every second, whose default images are under
    PREFIX in the tests' registry (tags only these tests move)."""
    return own_operator(
        "digests",
        "--pin-digests=true",
        f"--crane={crane}",
        "--digest-interval=1",
        f"--registry={registry.address}/{PREFIX}",
    )


def _crane(crane: Path, *args: str) -> str:
    done = subprocess.run([str(crane), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _digest(crane: Path, reference: str) -> str:
    return _crane(crane, "digest", reference).strip()


def _admitted(admin: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The pod as admission leaves it (a dry run: the webhook has no side effects)."""
    response = client.CoreV1Api(admin).create_namespaced_pod(
        namespace, kubejson.body(app_pod(name)), dry_run="All", _preload_content=False
    )
    return dict(kubejson.json_of(response))


def _admitted_with(
    admin: client.ApiClient, namespace: str, *, image: str, language: str = "python"
) -> dict[str, Any]:
    """The first dry-run pod whose copy container for `language` runs `image`."""

    def admitted() -> dict[str, Any] | None:
        pod = _admitted(admin, namespace, "probe")
        return pod if _init_image(pod, language) == image else None

    found: dict[str, Any] = poll.until(admitted, what=f"a pod with {image}", timeout=30)
    return found


def _init_image(pod: dict[str, Any], language: str) -> str | None:
    for container in pod["spec"].get("initContainers") or ():
        if container["name"] == f"libinject-{language}":
            return str(container["image"])
    return None


def _ready(admin: client.ApiClient, name: str, *, reason: str = "Valid") -> dict[str, Any]:
    """The policy's Ready condition, once its reason is `reason`."""

    def current() -> dict[str, Any] | None:
        ready = condition(policy_status(admin, name), "Ready")
        return ready if ready.get("reason") == reason else None

    found: dict[str, Any] = poll.until(current, what=f"{name} Ready: {reason}", timeout=30)
    return found


def test_pods_get_the_tags_digest_and_follow_it_when_the_tag_moves(
    pinning_operator: Operator,
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    library_images: ImageFactory,
    crane: Path,
    registry: Registry,
) -> None:
    """Every pod gets the policy's image at the digest its tag names now, and records it; once
    the tag is pushed again with other bytes, new pods get the new digest (old ones keep theirs:
    a ReplicaSet's pods never mix bytes within one resolution)."""
    reference = library_image(
        registry=f"{registry.address}/{PREFIX}",
        language=Language.PYTHON,
        flavor=Flavor.DDTRACE,
        version=DDTRACE,
    )
    _crane(crane, "copy", library_images("ddtrace"), reference)
    first = _digest(crane, reference)
    namespace = namespaces(labels=ENABLED)
    libraries = [{"language": "python", "version": DDTRACE}]
    name = policies(policy("pinned", [namespace], libraries=libraries))
    assert _ready(admin, name)["status"] == "True"
    pod = _admitted_with(admin, namespace, image=f"{reference}@{first}")
    (record,) = json.loads(pod["metadata"]["annotations"][INJECTED])
    assert record["digest"] == first
    assert "digestNote" not in record
    _crane(crane, "mutate", reference, "--label=moved=1", "-t", reference)
    second = _digest(crane, reference)
    assert second != first
    _admitted_with(admin, namespace, image=f"{reference}@{second}")


def test_an_unresolvable_tag_makes_the_policy_not_ready_and_its_pods_skip_that_library(
    pinning_operator: Operator,
    admin: client.ApiClient,
    namespaces: NamespaceFactory,
    policies: PolicyFactory,
    library_images: ImageFactory,
    crane: Path,
    registry: Registry,
    tmp_path: Path,
) -> None:
    """A Java image tag no registry serves: its policy is Ready=False with reason ImageUnresolved
    naming the image and saying pods get no library for it; a pod still gets its Python library
    (another policy's, pinned) and records why Java was skipped. A tag resolved once, whose
    registry then goes away, keeps its last known digest: pods still get it, with a note, and
    the policy says so."""
    namespace = namespaces(labels=ENABLED)
    absent = f"{registry.address}/libinject/never-pushed:1"
    java_library = {"language": "java", "version": JAVA_VERSIONS["ddtrace"], "image": absent}
    java = policies(policy("absent", [namespace], libraries=[java_library]))
    with Registry(tmp_path / "second") as second:
        copied = f"{second.address}/libinject/python-ddtrace:{DDTRACE}"
        _crane(crane, "copy", library_images("ddtrace"), copied)
        digest = _digest(crane, copied)
        python_library = {"language": "python", "version": DDTRACE, "image": copied}
        python = policies(policy("elsewhere", [namespace], libraries=[python_library]))
        assert _ready(admin, python)["status"] == "True"
        _admitted_with(admin, namespace, image=f"{copied}@{digest}")
    ready = _ready(admin, java, reason="ImageUnresolved")
    assert ready["status"] == "False"
    assert absent in ready["message"]
    assert "pods get no library for it" in ready["message"]
    stale = _ready(admin, python, reason="ImageUnresolved")  # its registry stopped
    assert f"pods get the last known digest {digest}" in stale["message"]
    pod = _admitted(admin, namespace, "b")
    assert _init_image(pod, "python") == f"{copied}@{digest}"
    assert _init_image(pod, "java") is None
    (record,) = json.loads(pod["metadata"]["annotations"][INJECTED])
    assert record["digest"] == digest
    assert "the last known digest" in record["digestNote"]
    skipped = pod["metadata"]["annotations"][SKIPPED]
    assert "ImageUnresolved" in skipped
    assert absent in skipped
