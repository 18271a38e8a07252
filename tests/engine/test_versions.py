"""Pods may pick a library version by annotation, only within the policy's allowedVersions."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import PYTHON, pod, policy, run
from libinject.api import types as api_types
from libinject.api.fields import FIELD_KEY
from libinject.api.parse import InvalidPolicyError
from libinject.api.types import Flavor, Language, LibrarySpec, is_version
from libinject.engine.checks import semantic_errors
from libinject.engine.decision import Code
from libinject.engine.inject import Result
from libinject.engine.settings import EngineSettings
from libinject.engine.versions import InvalidVersionError, allows, library_image


@pytest.mark.parametrize(
    ("pattern", "version", "allowed"),
    [
        ("*", "9.9.9", True),
        ("3.*", "3.1.0", True),
        ("3.*", "3", True),
        ("3.*", "30.1.0", False),
        ("3.9.*", "3.9.1", True),
        ("3.9.*", "3.10.0", False),
        ("3.9.1", "3.9.1", True),
        ("3.9.1", "3.9.10", False),
        ("3.9.1-rc.1", "3.9.1-rc.1", True),
    ],
)
def test_allows(pattern: str, version: str, allowed: bool) -> None:
    assert allows(pattern, version) is allowed


def _injected(result: Result) -> dict[str, object]:
    annotations = result.pod["metadata"]["annotations"]
    (record,) = json.loads(annotations["libinject.dev/injected"])
    return dict(record)


def test_an_allowed_request_picks_version_and_image_tag() -> None:
    lib = {**PYTHON, "allowedVersions": ["4.*"]}
    result = run(
        pod(annotations={"libinject.dev/python.version": "4.15.0"}), policy(libraries=[lib])
    )
    (choice,) = result.decision.injected
    assert choice.version == "4.15.0"
    assert choice.image.endswith("/python-ddtrace:4.15.0")
    assert result.pod["spec"]["initContainers"][0]["image"] == choice.image
    assert _injected(result)["version"] == "4.15.0"


def test_a_refused_request_injects_the_policy_version_and_records_why() -> None:
    lib = {**PYTHON, "allowedVersions": ["4.*"]}
    result = run(
        pod(annotations={"libinject.dev/python.version": "2.21.0"}), policy(libraries=[lib])
    )
    (choice,) = result.decision.injected
    assert choice.version == "4.16.0"
    assert choice.version_reason is not None
    assert choice.version_reason.code is Code.VERSION_NOT_ALLOWED
    record = _injected(result)
    assert record["version"] == "4.16.0"
    assert "2.21.0 refused" in str(record["versionRefused"])


def test_no_allowed_versions_means_no_choice() -> None:
    result = run(pod(annotations={"libinject.dev/python.version": "4.15.0"}), policy())
    assert result.decision.injected[0].version == "4.16.0"


def test_a_pinned_image_refuses_every_request() -> None:
    lib = {**PYTHON, "image": "mirror.example/py:pinned"}
    result = run(
        pod(annotations={"libinject.dev/python.version": "4.15.0"}), policy(libraries=[lib])
    )
    (choice,) = result.decision.injected
    assert (choice.version, choice.image) == ("4.16.0", "mirror.example/py:pinned")
    assert choice.version_reason is not None
    assert "pins the image" in choice.version_reason.message


def test_the_annotation_of_another_language_is_ignored() -> None:
    lib = {**PYTHON, "allowedVersions": ["*"]}
    result = run(pod(annotations={"libinject.dev/java.version": "9.9.9"}), policy(libraries=[lib]))
    assert result.decision.injected[0].version == "4.16.0"


DIGEST = "sha256:" + "a" * 64
REGISTRY = EngineSettings().libraries.registry
# What a granted request may produce, and nothing else: the default image, tagged with a
# version of the grammar of spec.libraries[].version (anchored on both ends with \Z, so a
# trailing newline cannot slip through as it would with $).
DEFAULT_IMAGE = re.compile(
    re.escape(REGISTRY) + r"/([a-z]+)-([a-z]+):([0-9]+(\.[0-9]+){0,2}"
    r"(-?[A-Za-z][-0-9A-Za-z.]*|-[0-9][-0-9A-Za-z.]*)?)\Z"
)


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param(f"4.1@{DIGEST}", id="digest-pins-any-image"),
        pytest.param("4.1/../../x", id="path"),
        pytest.param("4.1:latest", id="second-tag"),
        pytest.param("4.*", id="pattern-as-version"),
        pytest.param("*", id="star"),
        pytest.param(" 4.1", id="leading-space"),
        pytest.param("4.1 ", id="trailing-space"),
        pytest.param("4.1\n", id="trailing-newline"),
        pytest.param("4.1\t", id="tab"),
        pytest.param("4.1-rc 1", id="inner-space"),
        pytest.param("", id="empty"),
        pytest.param("v4.1", id="v-prefix"),
        pytest.param("4.1.2.3", id="four-parts"),
        pytest.param("4.1-" + "a" * 62, id="overlong"),
        pytest.param("\uff14.1", id="fullwidth-digit"),
        pytest.param("4.1-r\u04411", id="cyrillic-es"),
        pytest.param("4\u066b1", id="arabic-decimal-separator"),
        pytest.param("4.1\u200b", id="zero-width-space"),
        pytest.param("4.1-rc_1", id="underscore"),
        pytest.param("4.1+build", id="plus"),
        pytest.param("4.1\x00", id="nul"),
        pytest.param(None, id="null"),
    ],
)
def test_a_request_that_is_no_version_is_refused(requested: object) -> None:
    """The allow-list compares versions only: anything outside the grammar the CRD enforces on
    spec.libraries[].version is refused before it is compared (4.1@<digest> once matched 4.*
    and pinned any image), the policy's version is used, and the refusal is recorded on the pod
    like any other. Fails before the fix: those requests were granted or crashed."""
    lib = {**PYTHON, "allowedVersions": ["4.*", "*"]}
    result = run(
        pod(annotations={"libinject.dev/python.version": requested}),  # type: ignore[dict-item]
        policy(libraries=[lib]),
    )
    (choice,) = result.decision.injected
    assert (choice.version, choice.image) == ("4.16.0", f"{REGISTRY}/python-ddtrace:4.16.0")
    assert choice.version_reason is not None
    assert choice.version_reason.code is Code.VERSION_NOT_ALLOWED
    assert "not a version" in choice.version_reason.message
    assert "not a version" in str(_injected(result)["versionRefused"])
    assert len(choice.version_reason.message) < 400, "a hostile value is shown cut short"


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param(4.1, id="yaml-float"),
        pytest.param(4, id="yaml-int"),
        pytest.param(["4.1"], id="list"),
        pytest.param({"4": "1"}, id="mapping"),
        pytest.param(True, id="bool"),
    ],
)
def test_a_request_that_is_no_string_leaves_the_pod_uninstrumented(requested: object) -> None:
    """An annotation value that is no string (a YAML 4.10 is the float 4.1) never reaches the
    version check or the image: the pod is refused as MalformedPod, naming the annotation."""
    lib = {**PYTHON, "allowedVersions": ["4.*", "*"]}
    result = run(
        pod(annotations={"libinject.dev/python.version": requested}),  # type: ignore[dict-item]
        policy(libraries=[lib]),
    )
    assert result.decision.injected == ()
    assert result.decision.reason.code is Code.MALFORMED_POD
    assert "libinject.dev/python.version" in result.decision.reason.message


@pytest.mark.parametrize(
    "requested", ["4", "4.1", "4.1.7", "4.1.0-rc.1", "4.1.0rc1", "4.1.0-RC1", "4." + "1" * 61]
)
def test_every_version_of_the_grammar_can_be_granted(requested: str) -> None:
    """The refusal above is no blanket one: every form the policy's version may take (up to
    its 64 characters) is granted when allowed, and becomes the image tag."""
    lib = {**PYTHON, "allowedVersions": ["4.*"]}
    result = run(
        pod(annotations={"libinject.dev/python.version": requested}), policy(libraries=[lib])
    )
    (choice,) = result.decision.injected
    assert (choice.version, choice.image) == (requested, f"{REGISTRY}/python-ddtrace:{requested}")
    assert choice.version_reason is not None
    assert choice.version_reason.code is Code.VERSION_REQUESTED


@pytest.mark.parametrize(
    "version", ["1.2\n", "1.2 ", "1.2@" + DIGEST, "1.2/../x", "1.2:x", "2.*", "1." + "1" * 63]
)
def test_a_policy_version_outside_the_grammar_is_invalid(version: str) -> None:
    """The policy side of the same grammar: the Python parser judges patterns as the API
    server does (Go's `$` matches only at the very end, so "1.2\\n" is refused there too), so
    no policy version can make an invalid image reference. Fails before the fix for "1.2\\n"."""
    with pytest.raises(InvalidPolicyError, match=r"spec\.libraries\[0\]\.version"):
        policy(libraries=[{**PYTHON, "version": version}])


def test_every_pattern_of_the_model_is_anchored() -> None:
    """`fields.matches` full-matches, which judges like the API server's Go regexp search only
    for patterns anchored at both ends: every pattern the model declares must be."""
    patterns = [
        value
        for model in (LibrarySpec, *_models())
        for spec in dataclasses.fields(model)
        if (meta := spec.metadata.get(FIELD_KEY)) is not None
        for value in (meta.pattern, meta.item_pattern, meta.value_pattern)
        if value is not None
    ]
    assert patterns
    assert all(p.startswith("^") and p.endswith("$") for p in patterns), patterns


def _models() -> list[type]:
    return [
        value
        for value in vars(api_types).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value)
    ]


@pytest.mark.parametrize(
    ("value", "valid"),
    [("1", True), ("1.2.3-rc.1", True), ("0.66b1", True), ("1.2\n", False), (1.2, False)],
)
def test_is_version(value: object, valid: bool) -> None:
    """The one grammar function, for both the policy's version and a pod's request."""
    assert is_version(value) is valid


@pytest.mark.parametrize("version", ["1.2\n", "1.2@" + DIGEST, "../1", "1:2", "2.*"])
def test_the_image_builder_refuses_what_is_no_version(version: str) -> None:
    """The one builder of image references from a version refuses to build a bad one, whoever
    calls it (the engine, the CSI plugin)."""
    with pytest.raises(InvalidVersionError):
        library_image(
            registry=REGISTRY, language=Language.PYTHON, flavor=Flavor.DDTRACE, version=version
        )


# Strings near the grammar: its own characters, the separators of an image reference, spaces,
# control characters and lookalikes of digits and letters from other scripts.
NEAR = st.text(
    alphabet=st.sampled_from(
        [*"0123456789.-*abcRC:@/_+ \t\n\r\x00", "\u0663", "\uff14", "\u0441", "\u200b"]
    ),
    max_size=80,
)
REQUESTS = st.one_of(
    NEAR,
    st.text(max_size=80),
    st.builds(lambda v, tail: v + tail, st.sampled_from(["4", "4.1", "4.1.2"]), NEAR),
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    requested=REQUESTS,
    allowed=st.sampled_from([["*"], ["4.*"], ["4.1.*"], ["4.1"]]),
    language=st.sampled_from(list(Language)),
    flavor=st.sampled_from(list(Flavor)),
)
def test_no_request_yields_an_image_outside_the_default_form(
    requested: object, allowed: list[str], language: Language, flavor: Flavor
) -> None:
    """Whatever a pod requests, for any language and flavor, the image is
    <registry>/<language>-<flavor>:<version> with a version of the grammar, equal to the version
    recorded, and the pod's init container gets exactly that image; or, for a value that is no
    string (which the API server never stores), the pod gets no image at all (MalformedPod)."""
    lib = {"language": language, "flavor": flavor, "version": "4.16.0", "allowedVersions": allowed}
    result = run(
        pod(annotations={f"libinject.dev/{language}.version": requested}),  # type: ignore[dict-item]
        policy(libraries=[lib]),
    )
    if not isinstance(requested, str | None):
        assert result.decision.reason.code is Code.MALFORMED_POD
        assert result.decision.injected == ()
        assert "initContainers" not in result.pod["spec"]
        return
    (choice,) = result.decision.injected
    match = DEFAULT_IMAGE.match(choice.image)
    assert match is not None, choice.image
    assert match.group(1, 2, 3) == (language, flavor, choice.version)
    assert is_version(choice.version)
    assert choice.version in ("4.16.0", requested)
    assert result.pod["spec"]["initContainers"][0]["image"] == choice.image


@pytest.mark.parametrize(
    "image",
    [
        "mirror.example/py:tag\u00e9",  # a Latin letter outside ASCII
        "mirror.example/py:t\u0663",  # an Arabic-Indic digit
        "mirror.example/py:v1\n",
        "mirror.example/Py:v1",
        "mirror.example/py:",
        "mirror.example/py:v1@sha256:abc",
    ],
)
def test_a_policy_image_that_is_no_image_reference_is_invalid(image: str) -> None:
    """The policy's own `image` can name no reference a runtime refuses either: ASCII-only tags
    (Python's \\w would take other scripts' letters and digits), a lowercase repository, a
    non-empty tag, a whole digest. Fails before the fix for the non-ASCII tags."""
    parsed = None
    with contextlib.suppress(InvalidPolicyError):  # the CRD's pattern may refuse it already
        parsed = policy(libraries=[{**PYTHON, "image": image}])
    assert parsed is None or semantic_errors(parsed), image
