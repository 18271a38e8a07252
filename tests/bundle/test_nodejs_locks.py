"""`libinject lock nodejs` and the committed locks: each pins the release images/nodejs/versions
lists, every package with its integrity hash, and a lock is never replaced by another."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cluster.libraries import LIBINJECT, NODE_LOCKS, NODE_VERSIONS
from libinject.api.types import Flavor
from libinject.bundle.nodejs.flavors import FLAVORS
from libinject.bundle.nodejs.locks import (
    PACKAGE_JSON,
    PACKAGE_LOCK,
    differences,
    manifest,
    read,
    unpinned,
)
from libinject.bundle.nodejs.platforms import PLATFORMS, Platform
from libinject.bundle.stages import BundleError
from tools.gobuild import cache_root

FLAVORS_LISTED = sorted(NODE_VERSIONS)


def _lock(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(LIBINJECT), "lock", "nodejs", f"--cache={cache_root() / 'npm'}", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _packages(directory: Path) -> dict[str, dict[str, Any]]:
    return dict(json.loads((directory / PACKAGE_LOCK).read_text())["packages"])


def test_every_listed_version_has_a_lock_and_every_lock_is_of_a_listed_version() -> None:
    """The image list and the locks move together: a version without its lock could not be
    built, and a lock without a listed version is left over."""
    listed = {f"{flavor}-{version}" for flavor, version in NODE_VERSIONS.items()}
    assert {p.name for p in NODE_LOCKS.iterdir()} == listed
    for directory in NODE_LOCKS.iterdir():
        assert sorted(p.name for p in directory.iterdir()) == sorted([PACKAGE_JSON, PACKAGE_LOCK])


@pytest.mark.parametrize("flavor", FLAVORS_LISTED)
def test_the_committed_lock_pins_the_release_with_an_integrity_hash_for_every_package(
    flavor: str,
) -> None:
    """The lock reads back: its package.json names the flavor's package at exactly the listed
    version, npm's lock installs that version, and every package it installs has a tarball
    URL on the npm registry and a sha512 integrity hash, which npm ci checks."""
    version = NODE_VERSIONS[flavor]
    lock = read(NODE_LOCKS, Flavor(flavor), version)
    tracer = FLAVORS[Flavor(flavor)].tracer
    assert json.loads(lock.manifest)["dependencies"] == {tracer: version}
    assert lock.version_of(tracer) == version
    for path, entry in lock.packages.items():
        if path:
            assert entry["integrity"].startswith("sha512-"), path
            assert entry["resolved"].startswith("https://registry.npmjs.org/"), path


def test_each_platform_installs_its_own_oxc_binding_and_nothing_of_other_platforms() -> None:
    """What the bundle must find installed per platform, read from the real ddtrace lock:
    oxc-parser's binding for that platform only (x64 or arm64, gnu or musl), none of the
    WebAssembly binding's runtime (reached only through a package of another cpu), and every
    package that is no platform's own everywhere."""
    lock = read(NODE_LOCKS, Flavor.DDTRACE, NODE_VERSIONS["ddtrace"])
    names = {"glibc": "gnu", "musl": "musl"}
    installed = {platform: set(lock.installed_on(platform)) for platform in PLATFORMS}
    for platform, paths in installed.items():
        bindings = sorted(p for p in paths if p.startswith("node_modules/@oxc-parser/binding-"))
        assert bindings == [
            f"node_modules/@oxc-parser/binding-linux-{platform.cpu}-{names[platform.libc]}"
        ]
        assert not any(p.startswith("node_modules/@emnapi/") for p in paths)
        assert "node_modules/dd-trace" in paths
        assert "node_modules/@datadog/native-appsec" in paths
    common = set.intersection(*installed.values())
    assert all(len(paths - common) == 1 for paths in installed.values())


@pytest.mark.network  # the npm registry (its metadata, on a cold npm cache)
@pytest.mark.parametrize("flavor", FLAVORS_LISTED)
def test_a_fresh_lock_pins_the_committed_release_and_writing_it_again_changes_nothing(
    flavor: str, tmp_path: Path
) -> None:
    """Locked afresh by npm from the registry, the release's package.json is the committed one
    byte for byte, and the flavor's package has the committed version, URL and integrity (the
    packages below it may have newer releases since: their ranges allow it). Locking again
    resolves from the new lock and keeps it."""
    version = NODE_VERSIONS[flavor]
    args = (f"--flavor={flavor}", f"--version={version}", f"--locks={tmp_path}")
    first = _lock(*args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["changed"] is True
    name = f"{flavor}-{version}"
    committed, fresh = NODE_LOCKS / name, tmp_path / name
    assert (fresh / PACKAGE_JSON).read_bytes() == (committed / PACKAGE_JSON).read_bytes()
    tracer = f"node_modules/{FLAVORS[Flavor(flavor)].tracer}"
    keys = ("version", "resolved", "integrity")
    theirs, ours = _packages(fresh)[tracer], _packages(committed)[tracer]
    assert {k: theirs[k] for k in keys} == {k: ours[k] for k in keys}
    assert report["integrity"] == ours["integrity"]
    again = _lock(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] is False


@pytest.mark.network  # npm may ask the registry while it checks the lock
def test_the_committed_lock_is_what_npm_keeps(tmp_path: Path) -> None:
    """Locking a release whose lock is committed resolves again from that lock: npm changes
    nothing, and neither file is touched."""
    name = f"ddtrace-{NODE_VERSIONS['ddtrace']}"
    shutil.copytree(NODE_LOCKS / name, tmp_path / name)
    result = _lock(
        "--flavor=ddtrace", f"--version={NODE_VERSIONS['ddtrace']}", f"--locks={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changed"] is False
    for file in (PACKAGE_JSON, PACKAGE_LOCK):
        assert (tmp_path / name / file).read_bytes() == (NODE_LOCKS / name / file).read_bytes()


@pytest.mark.network  # npm asks the registry for dd-trace's releases to fix the lock
def test_a_lock_npm_would_change_is_never_replaced(tmp_path: Path) -> None:
    """A lock edited to pin another dd-trace than its package.json asks for is an alarm, not a
    refresh: the command fails saying what npm would change and leaves the lock as it was."""
    version = NODE_VERSIONS["ddtrace"]
    name = f"ddtrace-{version}"
    shutil.copytree(NODE_LOCKS / name, tmp_path / name)
    lock_file = tmp_path / name / PACKAGE_LOCK
    document = json.loads(lock_file.read_text())
    document["packages"]["node_modules/dd-trace"]["version"] = "6.20.0"
    planted = json.dumps(document, indent=2) + "\n"
    lock_file.write_text(planted)
    result = _lock("--flavor=ddtrace", f"--version={version}", f"--locks={tmp_path}")
    assert result.returncode == 2
    assert f"{lock_file} is not what npm resolves from it (dd-trace " in result.stderr
    assert "the lock is left as it is" in result.stderr
    assert lock_file.read_text() == planted
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "no scratch directory is left"


def test_a_lock_of_another_release_is_refused(tmp_path: Path) -> None:
    """A lock is read for the release it is named after: the OpenTelemetry lock copied under
    the ddtrace release's name stops the build, saying why."""
    version = NODE_VERSIONS["ddtrace"]
    shutil.copytree(
        NODE_LOCKS / f"opentelemetry-{NODE_VERSIONS['opentelemetry']}",
        tmp_path / f"ddtrace-{version}",
    )
    with pytest.raises(
        BundleError, match=r"is not the package\.json `libinject lock nodejs` writes"
    ):
        read(tmp_path, Flavor.DDTRACE, version)


def test_the_lock_package_json_names_the_flavors_package_exactly() -> None:
    document = json.loads(manifest(Flavor.OPENTELEMETRY, "0.82.0"))
    assert document["dependencies"] == {"@opentelemetry/auto-instrumentations-node": "0.82.0"}
    assert document["private"] is True


ENTRY = {"version": "1.0.0", "resolved": "https://r/a.tgz", "integrity": "sha512-x"}


@pytest.mark.parametrize(
    ("packages", "problem"),
    [
        ({"node_modules/t": {**ENTRY, "version": "0.9.0"}}, "it installs t 0.9.0, not 1.0.0"),
        ({}, "it installs t (none), not 1.0.0"),
        ({"node_modules/t": ENTRY, "node_modules/a": {**ENTRY, "integrity": ""}},
         "node_modules/a has no integrity: npm would install it unchecked"),
        ({"node_modules/t": ENTRY, "node_modules/a": {"version": "2.0.0"}},
         "node_modules/a has no resolved, integrity"),
        ({"node_modules/t": ENTRY, "node_modules/t/node_modules/b": {"inBundle": True}}, None),
        ({"node_modules/t": ENTRY, "node_modules/d": {"dev": True}}, None),
    ],
)  # fmt: skip
def test_a_lock_must_pin_the_release_and_every_package_with_a_hash(
    packages: dict[str, dict[str, Any]], problem: str | None
) -> None:
    """The lock check (pure): the flavor's package at the release's version, and a version,
    URL and integrity hash for every package npm would fetch (not one bundled inside another's
    tarball, not a dev one, which the bundle never installs)."""
    found = unpinned({"": {}, **packages}, tracer="t", version="1.0.0")
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


def test_differences_say_what_moved_briefly() -> None:
    old = {f"node_modules/p{i}": {"version": "1.0.0"} for i in range(8)}
    new = {**old, "node_modules/p0": {"version": "1.0.1"}, "node_modules/q": {"version": "1"}}
    new["node_modules/p1"] = {"version": "1.0.0", "integrity": "sha512-y"}
    del new["node_modules/p2"]
    assert differences(old, new) == "p0 1.0.0 -> 1.0.1; p1: integrity differ; p2 removed; q added"
    many = {f"node_modules/n{i}": {"version": "1"} for i in range(7)}
    assert differences({}, many).endswith("n4 added; and 2 more")


@pytest.mark.parametrize(
    ("fields", "installed"),
    [
        ({}, {"x64-glibc", "x64-musl", "arm64-glibc", "arm64-musl"}),
        ({"os": ["linux"], "cpu": ["arm64"], "libc": ["musl"]}, {"arm64-musl"}),
        ({"cpu": ["!arm64"]}, {"x64-glibc", "x64-musl"}),
        ({"os": ["darwin", "win32"]}, set()),
        ({"os": ["!win32"], "libc": ["glibc"]}, {"x64-glibc", "arm64-glibc"}),
        ({"cpu": "x64"}, {"x64-glibc", "x64-musl"}),
    ],
)
def test_platforms_read_os_cpu_and_libc_as_npm_does(
    fields: dict[str, Any], installed: set[str]
) -> None:
    """A listed value allows only the values listed, `!value` excludes one (npm's rule)."""
    found = {f"{p.cpu}-{p.libc}" for p in PLATFORMS if Platform(p.cpu, p.libc).installs(fields)}
    assert found == installed


@pytest.mark.parametrize("version", ["../../../etc/passwd", "6.21.0/../x", "latest", ""])
def test_a_version_that_is_not_a_release_gets_no_lock(version: str, tmp_path: Path) -> None:
    result = _lock("--flavor=ddtrace", f"--version={version}", f"--locks={tmp_path}")
    assert result.returncode == 2
    assert re.search(r"--version: .* is not a release version", result.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"lockfileVersion": 1, "dependencies": {}}',
        '{"lockfileVersion": 3, "packages": {"node_modules/dd-trace": {}}}',
        '{"lockfileVersion": "3", "packages": {"": {}}}',
    ],
)
def test_a_file_that_is_not_an_npm_lock_of_version_2_or_later_is_refused(
    text: str, tmp_path: Path
) -> None:
    """Only npm 7+'s lock lists every installed package with its hash; anything else (not JSON,
    npm 6's format, no root entry) is refused with the file named, never read half-way."""
    directory = tmp_path / f"ddtrace-{NODE_VERSIONS['ddtrace']}"
    directory.mkdir()
    (directory / PACKAGE_JSON).write_bytes(manifest(Flavor.DDTRACE, NODE_VERSIONS["ddtrace"]))
    (directory / PACKAGE_LOCK).write_text(text)
    with pytest.raises(
        BundleError, match=f"^{re.escape(str(directory / PACKAGE_LOCK))} is not an npm lock"
    ):
        read(tmp_path, Flavor.DDTRACE, NODE_VERSIONS["ddtrace"])
