"""The one image reference grammar (libinject.engine.references): what a policy's image, the
operator's registry and the CSI plugin's pulls are all held to."""

from __future__ import annotations

import pytest

from libinject.engine import references
from libinject.engine.references import Reference, ReferenceError

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("python", Reference("", "python", "", "")),
        ("python:3.12", Reference("", "python", "3.12", "")),
        ("reg.io/libinject/python-ddtrace:4.16.0",
         Reference("reg.io", "libinject/python-ddtrace", "4.16.0", "")),
        ("127.0.0.1:5000/libinject/python-ddtrace:4.16.0",
         Reference("127.0.0.1:5000", "libinject/python-ddtrace", "4.16.0", "")),
        (f"localhost:5000/lib@{DIGEST}", Reference("localhost:5000", "lib", "", DIGEST)),
        (f"r.io/a/b:v1_x-2.Z@{DIGEST}", Reference("r.io", "a/b", "v1_x-2.Z", DIGEST)),
        ("r.io/a__b/c-d.e:1", Reference("r.io", "a__b/c-d.e", "1", "")),
    ],
)  # fmt: skip
def test_references_of_the_grammar_parse_into_their_parts(value: str, parsed: Reference) -> None:
    assert references.parse(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("r.io/Libs:1", id="uppercase-path"),
        pytest.param("r.io/libs:", id="empty-tag"),
        pytest.param("r.io/libs:1:2", id="two-tags"),
        pytest.param("r.io/libs:.1", id="tag-starts-with-dot"),
        pytest.param("r.io/libs:" + "1" * 129, id="tag-too-long"),
        pytest.param("r.io/libs@sha256:abc", id="short-digest"),
        pytest.param("r.io/libs@sha512:" + "a" * 128, id="other-digest"),
        pytest.param("r.io/../libs:1", id="dot-dot"),
        pytest.param("r.io//libs:1", id="empty-component"),
        pytest.param("r.io/libs:1 ", id="trailing-space"),
        pytest.param("r.io/libs:1\n", id="trailing-newline"),
        pytest.param("r.io/libs:t\u00e9", id="latin-letter-outside-ascii"),
        pytest.param("r.io/libs:t\u0663", id="arabic-indic-digit"),
        pytest.param("r.io/libs\x00:1", id="nul"),
        pytest.param("-r.io/libs:1", id="host-starts-with-dash"),
        pytest.param("r.io:99999999/libs:1", id="port-too-long"),
        pytest.param("r.io/" + "a/" * 300 + "b:1", id="too-long"),
    ],
)
def test_what_is_no_reference_is_refused_with_the_grammar(value: str) -> None:
    with pytest.raises(ReferenceError, match="is not an image reference"):
        references.parse(value)


@pytest.mark.parametrize("value", ["r.io", "localhost:5000", "r.io/libinject", "r.io/a/b-c"])
def test_registry_prefixes(value: str) -> None:
    """What default images are built under: a host, optionally a repository path."""
    assert references.check_prefix(value) == value
    # What the engine builds under it parses, to the same host and path.
    built = references.parse(f"{value}/python-ddtrace:4.16.0")
    assert built.repository == f"{value}/python-ddtrace"


@pytest.mark.parametrize(
    "value", ["", "r.io/", "r.io/libs:1", f"r.io/libs@{DIGEST}", "R.io/Libs", "r.io/a b", "/r.io"]
)
def test_what_is_no_prefix_is_refused(value: str) -> None:
    with pytest.raises(ReferenceError, match="not a registry and repository prefix"):
        references.check_prefix(value)
