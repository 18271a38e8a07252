"""Every library version the README, the examples, the tests and the benchmarks inject is one we
build: listed in images/<language>/versions for its flavor.

What counts as naming a version to inject: a library of a policy (`language` and `version`,
in YAML or in a Python mapping, `flavor` defaulting to ddtrace as in the API), everywhere; and
in the README, the examples and the golden cases also a library image reference
(`.../<language>-<flavor>:<version>`) and the build commands (`libinject bundle <language>
--flavor F --version V`, `images/build.sh <language> F V`), and the same in images/'s build
script and Dockerfile. Test and benchmark code names
images of its own (the CSI tests push stand-ins under numbered tags), which are no library's
version.

Left out: a version a pod requests by annotation (`libinject.dev/<language>.version`, or
`libinject.dev/<container>.<language>.version` for one container), in the
file where it is requested, with the image and record it is granted: a request exists to differ
from the policy's version, and each flavor has one version we build. Text that is not a version
(`latest`, `x`: the refusal tests'), and languages that have no images/<language>/ yet: there
is no list to keep in step with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.libraries import IMAGES, library_versions
from libinject.api.types import Flavor, is_version

ROOT = IMAGES.parent
BUILT = {
    language.name: library_versions(language.name)
    for language in sorted(IMAGES.iterdir())
    if (language / "versions").is_file()
}
LANGUAGES = "python|java|nodejs|dotnet|ruby|php"
FLAVORS = "|".join(Flavor)
_Q = "[\"']?"  # a key or value, quoted or not (Python, JSON, YAML flow mappings)
# A flat mapping (no nested braces), then its keys; any order of keys.
MAPPING = re.compile(r"\{[^{}]*\}")
LANGUAGE = re.compile(rf"{_Q}language{_Q}\s*:\s*{_Q}({LANGUAGES}){_Q}\s*[,}}\n]")
FLAVOR = re.compile(rf"{_Q}flavor{_Q}\s*:\s*{_Q}({FLAVORS}){_Q}\s*[,}}\n]")
VERSION = re.compile(rf"(?<![\w./-]){_Q}version{_Q}\s*:\s*{_Q}([^\s\"',}}]+)")
# The pod's request, or one container's (libinject.dev/<container>.<language>.version).
REQUESTED = re.compile(
    rf"libinject\.dev/(?:[a-z0-9-]+\.)?({LANGUAGES})\.version{_Q}\s*:\s*{_Q}([^\s\"',}}]+)"
)
# A library of a YAML block sequence: `- language: java` and the keys indented under it.
BLOCK = re.compile(r"^(\s*)- language: .*(?:\n\1  \w+: .*)*", re.MULTILINE)
IMAGE = re.compile(rf"/({LANGUAGES})-({FLAVORS}):([\w.+-]+)")
BUNDLE = re.compile(rf"libinject bundle ({LANGUAGES}) --flavor ({FLAVORS}) --version (\S+)")
BUILD = re.compile(rf"images/build\.sh ({LANGUAGES}) ({FLAVORS}) (\S+)")

Named = tuple[str, str, str, str]  # (where, language, flavor, version)


def _sources() -> Iterator[Path]:
    yield from (ROOT / "README.md", IMAGES / "build.sh", IMAGES / "Dockerfile")
    for top in ("examples", "tests", "bench"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in {".py", ".yaml", ".yml", ".md"} and path.is_file():
                yield path


def named_versions(path: Path) -> Iterator[Named]:
    """Every (language, flavor, version) the file names to inject, requests left out."""
    text = path.read_text()
    where = str(path.relative_to(ROOT))
    requested = set(REQUESTED.findall(text))
    found: list[tuple[str, str, str]] = []
    for library in [*MAPPING.findall(text), *(m.group(0) for m in BLOCK.finditer(text))]:
        language, version = LANGUAGE.search(library), VERSION.search(library)
        if language and version:
            flavor = FLAVOR.search(library)
            found.append((language[1], flavor[1] if flavor else "ddtrace", version[1]))
    if path.suffix != ".py" or where.startswith("examples/"):  # build.sh, Dockerfile too
        for pattern in (IMAGE, BUNDLE, BUILD):
            found += [(m[1], m[2], m[3]) for m in pattern.finditer(text)]
    for named in found:
        if (named[0], named[2]) not in requested:
            yield (where, *named)


def _named() -> list[Named]:
    return [
        named
        for path in _sources()
        for named in named_versions(path)
        if named[1] in BUILT and is_version(named[3])
    ]


def test_the_scan_sees_the_places_that_name_versions() -> None:
    """The patterns find what they must, or this test would pass on nothing: the README's
    worked example, the examples' policies and the golden cases all name Java's versions, and
    the image build script and Dockerfile Python's."""
    wheres = {where for where, language, _, _ in _named() if language == "java"}
    assert {"README.md", "examples/policies/shop-otel.yaml"} <= wheres
    assert "tests/golden/policies/policies.yaml" in wheres
    python = {where for where, language, _, _ in _named() if language == "python"}
    assert {"images/build.sh", "images/Dockerfile"} <= python


@pytest.mark.parametrize("language", sorted(BUILT))
def test_each_versions_file_lists_every_flavor_once_with_a_release_version(language: str) -> None:
    listed = BUILT[language]
    assert set(listed) == {str(flavor) for flavor in Flavor}
    assert all(is_version(version) for version in listed.values())


def test_every_version_named_is_one_we_build() -> None:
    stray = [
        f"{where}: {language} {flavor} {version} (images/{language}/versions: "
        f"{BUILT[language].get(flavor)})"
        for where, language, flavor, version in _named()
        if BUILT[language].get(flavor) != version
    ]
    assert stray == []
