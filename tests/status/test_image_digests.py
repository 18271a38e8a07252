"""A policy's Ready condition with digests pinned: an image tag the operator cannot resolve makes
it Ready=False with reason ImageUnresolved, naming the image, why, and what pods get meanwhile;
one resolved, or not asked about yet, leaves it Ready."""

from __future__ import annotations

from datetime import UTC, datetime

from builders import JAVA, PYTHON, policy_object
from libinject.engine.digests import Pin
from libinject.engine.settings import LibrarySettings, NamespaceSettings
from libinject.status import PolicyObject, Verdict, reconcile

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
REGISTRY = "registry.example/libinject"
PYTHON_IMAGE = f"{REGISTRY}/python-ddtrace:4.16.0"
JAVA_IMAGE = f"{REGISTRY}/java-ddtrace:1.56.0"
OLD = "sha256:" + "a" * 64


def _verdict(digests: dict[str, Pin] | None, **spec: object) -> Verdict:
    policy = PolicyObject("p", 1, policy_object("p", **spec), {})
    libraries = LibrarySettings(registry=REGISTRY, digests=digests)
    namespaces = {"apps": {"libinject.dev/inject": "enabled"}}
    verdicts = reconcile(
        [policy], namespaces=namespaces, settings=NamespaceSettings(), now=NOW, libraries=libraries
    )
    return verdicts["p"]


def _ready(verdict: Verdict) -> dict[str, str]:
    (ready,) = [c for c in verdict.status["conditions"] if c["type"] == "Ready"]
    return dict(ready)


def test_resolved_and_not_yet_resolved_tags_leave_the_policy_ready() -> None:
    for digests in (None, {}, {PYTHON_IMAGE: Pin(OLD)}):
        assert _ready(_verdict(digests))["status"] == "True", digests


def test_a_tag_never_resolved_says_pods_get_no_library_for_it() -> None:
    """The message names the image and crane's reason; the change is a Warning Event."""
    why = "MANIFEST_UNKNOWN: manifest unknown"
    verdict = _verdict(
        {PYTHON_IMAGE: Pin(None, why), JAVA_IMAGE: Pin(OLD)}, libraries=[PYTHON, JAVA]
    )
    ready = _ready(verdict)
    assert (ready["status"], ready["reason"]) == ("False", "ImageUnresolved")
    assert ready["message"] == (
        f"{PYTHON_IMAGE} cannot be resolved to a digest ({why}): pods get no library for it "
        "until it resolves"
    )
    assert [(e.type, e.reason) for e in verdict.events] == [("Warning", "ImageUnresolved")]


def test_a_tag_resolved_before_says_pods_get_the_last_known_digest() -> None:
    """Each unresolvable image of the policy is named, the policy's own `image` too."""
    own = "mirror.example/java-agent:2"
    java = {**JAVA, "image": own}
    digests = {PYTHON_IMAGE: Pin(OLD, "connection refused"), own: Pin(None, "UNAUTHORIZED")}
    message = _ready(_verdict(digests, libraries=[PYTHON, java]))["message"]
    assert message == (
        f"{PYTHON_IMAGE} cannot be resolved to a digest (connection refused): pods get the last "
        f"known digest {OLD}; {own} cannot be resolved to a digest (UNAUTHORIZED): pods get no "
        "library for it until it resolves"
    )


def test_a_paused_or_invalid_policy_says_that_first() -> None:
    digests = {PYTHON_IMAGE: Pin(None, "gone")}
    assert _ready(_verdict(digests, paused=True))["reason"] == "Paused"
    invalid = [{**PYTHON, "allowedVersions": ["2.*"]}]
    assert _ready(_verdict(digests, libraries=invalid))["reason"] == "Invalid"
