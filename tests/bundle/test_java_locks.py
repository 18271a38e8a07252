"""`libinject lock java` and the committed locks: each is what Maven Central publishes for the
release images/java/versions lists, and a lock is never replaced by other bytes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cluster.libraries import JAVA_LOCKS, JAVA_VERSIONS, LIBINJECT
from libinject.bundle.java.locks import Lock, parse, unpublished
from libinject.bundle.java.maven import Digests
from tools.gobuild import cache_root

FLAVORS = sorted(JAVA_VERSIONS)


def _lock(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(LIBINJECT), "lock", "java", f"--cache={cache_root() / 'java'}", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_every_listed_version_has_a_lock_and_every_lock_is_of_a_listed_version() -> None:
    """The image list and the locks move together: a version without its lock could not be
    built, and a lock without a listed version is left over."""
    listed = {f"{flavor}-{version}.lock" for flavor, version in JAVA_VERSIONS.items()}
    assert {p.name for p in JAVA_LOCKS.iterdir()} == listed


@pytest.mark.network  # asks Maven Central for its checksums (and the jar on a cold cache)
@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_committed_lock_is_what_maven_central_publishes(flavor: str, tmp_path: Path) -> None:
    """Written afresh from Maven Central, after checking its published SHA-1 and SHA-256, the
    lock is byte for byte the committed one; writing it again changes nothing."""
    version = JAVA_VERSIONS[flavor]
    args = (f"--flavor={flavor}", f"--version={version}", f"--locks={tmp_path}")
    first = _lock(*args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["checked_against"] == ["sha1", "sha256"]
    assert report["changed"] is True
    name = f"{flavor}-{version}.lock"
    assert (tmp_path / name).read_text() == (JAVA_LOCKS / name).read_text()
    again = _lock(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] is False


@pytest.mark.network  # asks Maven Central for its checksums
def test_a_lock_with_other_bytes_is_never_replaced(tmp_path: Path) -> None:
    """A lock that pins other bytes than Maven Central now serves is an alarm, not a refresh:
    the command fails naming both digests and leaves the lock exactly as it was."""
    version = JAVA_VERSIONS["ddtrace"]
    name = f"ddtrace-{version}.lock"
    shutil.copy(JAVA_LOCKS / name, tmp_path / name)
    committed = parse((tmp_path / name).read_text())
    planted = (tmp_path / name).read_text().replace(committed.sha256, "0" * 64)
    (tmp_path / name).write_text(planted)
    result = _lock("--flavor=ddtrace", f"--version={version}", f"--locks={tmp_path}")
    assert result.returncode == 2
    assert f"with sha256 {'0' * 64}, but Maven Central now serves" in result.stderr
    assert f"with sha256 {committed.sha256}" in result.stderr
    assert (tmp_path / name).read_text() == planted


@pytest.mark.network  # asks Maven Central
def test_a_release_maven_central_does_not_have_gets_no_lock(tmp_path: Path) -> None:
    result = _lock("--flavor=opentelemetry", "--version=0.0.404", f"--locks={tmp_path}")
    assert result.returncode == 2
    assert (
        "Maven Central has no io.opentelemetry.javaagent:opentelemetry-javaagent:0.0.404"
        in result.stderr
    )
    assert list(tmp_path.iterdir()) == []


DIGESTS = Digests(size=3, sha1="a" * 40, sha256="b" * 64)


@pytest.mark.parametrize(
    ("published", "refused"),
    [
        ({"sha1": "a" * 40, "sha256": "b" * 64}, None),
        ({"sha1": "a" * 40, "sha256": None}, None),  # a repository without .sha256 files
        ({"sha1": "c" * 40, "sha256": "b" * 64}, f"has sha1 {'a' * 40}, but Maven Central publishes {'c' * 40}"),
        ({"sha1": "a" * 40, "sha256": "d" * 64}, f"has sha256 {'b' * 64}, but Maven Central publishes {'d' * 64}"),
    ],
)  # fmt: skip
def test_bytes_are_locked_only_when_every_published_checksum_agrees(
    published: dict[str, str | None], refused: str | None
) -> None:
    """The lock writer's check (pure): any published checksum that differs refuses the bytes."""
    found = unpublished(DIGESTS, published=published, url="https://repo/a.jar")
    if refused is None:
        assert found is None
    else:
        assert found == f"https://repo/a.jar {refused}: refusing to lock it"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("artifact a:b:1\nsize 3\n", "it has no sha256"),
        (f"artifact a:b:1\nsize 3\nsha256 {'B' * 64}\n", "is not 64 lower-case hex digits"),
        (f"artifact a:b:1\nsize 3\nsha256 {'b' * 63}\n", "is not 64 lower-case hex digits"),
        (f"artifact a:b:1\nsize -3\nsha256 {'b' * 64}\n", "is not a number of bytes"),
        ("# only a comment\n", "it has no artifact, size, sha256"),
    ],
)
def test_a_lock_that_does_not_pin_exact_bytes_is_refused(text: str, problem: str) -> None:
    """A lock must name the artifact, its size and a full SHA-256, or nothing is checked."""
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse(text)


def test_a_lock_reads_back_what_it_renders() -> None:
    lock = Lock("com.example:agent:1.2.3", 3, "b" * 64)
    assert parse(lock.render()) == lock
