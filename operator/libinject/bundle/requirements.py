"""The version requirements a bundle's libraries place on other distributions, per target.

The loader refuses to start the tracer when the application has its own copy of a dependency
that the tracer cannot use (its copy wins on sys.path). It needs that knowledge as data, with
environment markers already evaluated for its interpreter: it must stay dependency-free and fast.
Written to `libinject-requires.txt` in each site directory, one `<name> <specifier>` line each.

An exact pin of a stable API (the recipe names them) is widened to its major version from that
minor on: a patch or minor release the application already has must not turn tracing off.
"""

from __future__ import annotations

import email.parser
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REQUIRES_FILE = "libinject-requires.txt"


def installed_metadata(site: Path) -> list[str]:
    """The METADATA text of every distribution installed in a site directory."""
    return [path.read_text() for path in sorted(site.glob("*.dist-info/METADATA"))]


def merged_requirements(
    metadata: Iterable[str], *, markers: Mapping[str, str]
) -> dict[str, SpecifierSet]:
    """Every distribution required by these packages under `markers`, with the specifiers
    of all requirers combined (an application's copy must satisfy all of them)."""
    merged: dict[str, SpecifierSet] = {}
    environment = {**markers, "extra": ""}
    for text in metadata:
        message = email.parser.Parser().parsestr(text, headersonly=True)
        for line in message.get_all("Requires-Dist") or ():
            requirement = _parse(line, source=str(message.get("Name")))
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            name = canonicalize_name(requirement.name)
            merged[name] = merged.get(name, SpecifierSet()) & requirement.specifier
    return merged


def render(requirements: Mapping[str, SpecifierSet]) -> str:
    lines = (f"{name} {_specifier_text(spec)}".rstrip() for name, spec in requirements.items())
    return "".join(f"{line}\n" for line in sorted(lines))


def widened(
    requirements: Mapping[str, SpecifierSet], *, stable: Iterable[str]
) -> dict[str, SpecifierSet]:
    """The requirements with each exact pin `==X.Y.Z` of a `stable` distribution (a stable API,
    backward compatible within its major version) relaxed to `~=X.Y`: this minor or any later
    one of the same major. Every other clause, and every other distribution, stays as it is."""
    names = {canonicalize_name(name) for name in stable}
    return {
        name: SpecifierSet(",".join(_compatible(one) for one in spec)) if name in names else spec
        for name, spec in requirements.items()
    }


def write(site: Path, *, markers: Mapping[str, str], stable: Iterable[str] = ()) -> None:
    requirements = merged_requirements(installed_metadata(site), markers=markers)
    (site / REQUIRES_FILE).write_text(render(widened(requirements, stable=stable)))


def _compatible(specifier: Specifier) -> str:
    """`==X.Y[.Z...]` of a final release as `~=X.Y`; any other clause unchanged. A pre-release,
    a dev or local version, a prefix (`==X.*`) or a one-part version promises nothing wider."""
    if specifier.operator != "==" or specifier.version.endswith(".*"):
        return str(specifier)
    version = Version(specifier.version)
    if version.is_prerelease or version.local is not None or len(version.release) < 2:
        return str(specifier)
    epoch = f"{version.epoch}!" if version.epoch else ""
    return f"~={epoch}{version.major}.{version.minor}"


def _specifier_text(spec: SpecifierSet) -> str:
    # Sorted so that a rebuild writes the same file.
    return ",".join(sorted({str(one) for one in spec}))


def _parse(line: str, *, source: str) -> Requirement:
    try:
        return Requirement(line)
    except InvalidRequirement as error:
        raise ValueError(f"{source}: unreadable requirement {line!r}: {error}") from error
