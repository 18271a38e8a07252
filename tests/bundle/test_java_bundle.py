"""`libinject bundle java` as a user runs it: the real agents from Maven Central, checked against
the committed locks, and what it refuses (writing nothing)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from cluster.libraries import JAVA_LOCKS, JAVA_VERSIONS, LIBINJECT, build_java_bundle
from libinject.api.types import Flavor
from libinject.bundle.java.agents import AGENTS
from libinject.bundle.java.build import packaged_launcher
from libinject.bundle.java.locks import parse
from libinject.engine.languages import JAVA_LAUNCHER

FLAVORS = sorted(JAVA_VERSIONS)


def _bundle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIBINJECT), "bundle", "java", *args], capture_output=True, text=True, check=False
    )


def _manifest(bundle: Path) -> dict[str, str]:
    lines = (bundle / "bundle.txt").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tampered_locks(tmp_path: Path, flavor: str) -> Path:
    """A copy of the committed locks with this flavor's SHA-256 changed in its last digit."""
    locks = tmp_path / "locks"
    shutil.copytree(JAVA_LOCKS, locks)
    lock = locks / f"{flavor}-{JAVA_VERSIONS[flavor]}.lock"
    text = lock.read_text()
    digest = parse(text).sha256
    lock.write_text(text.replace(digest, digest[:-1] + ("0" if digest[-1] != "0" else "1")))
    return locks


@pytest.fixture
def launcher() -> Path:
    """The launcher jar libinject ships; the bundle refuses to go without it."""
    return packaged_launcher()


@pytest.mark.network  # Maven Central on a cold cache
@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_bundle_holds_the_locked_agent_the_launcher_and_the_manifest_the_launcher_reads(
    flavor: str, launcher: Path, tmp_path: Path
) -> None:
    """Exactly three files: the agent with the locked bytes (a real agent: its manifest names a
    Premain-Class and its own version), the shipped launcher, and bundle.txt stating the facts
    the launcher checks; the JSON report says the same."""
    version = JAVA_VERSIONS[flavor]
    agent = AGENTS[Flavor(flavor)]
    out = tmp_path / "bundle"
    report = build_java_bundle(flavor=flavor, out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(["bundle.txt", JAVA_LAUNCHER, agent.jar])
    jar = out / agent.jar
    lock = parse((JAVA_LOCKS / f"{flavor}-{version}.lock").read_text())
    assert (jar.stat().st_size, _sha256(jar)) == (lock.size, lock.sha256)
    assert (out / JAVA_LAUNCHER).read_bytes() == launcher.read_bytes()
    with zipfile.ZipFile(jar) as archive:
        attributes = archive.read("META-INF/MANIFEST.MF").decode()
    assert "Premain-Class: " in attributes
    assert f"Implementation-Version: {version}" in attributes
    assert _manifest(out) == {
        "language": "java",
        "flavor": flavor,
        "version": version,
        "agent": agent.jar,
        "agent-size": str(lock.size),
        "agent-sha256": lock.sha256,
        "java-min": "8",
    }
    assert report["artifact"] == f"{agent.group}:{agent.artifact}:{version}"
    assert (report["agent_bytes"], report["agent_sha256"]) == (lock.size, lock.sha256)
    assert report["launcher_bytes"] == launcher.stat().st_size
    assert report["stored_bytes"] == sum(p.stat().st_size for p in out.iterdir())


@pytest.mark.network  # downloads the jar again: the refused bytes are never cached
def test_bytes_that_do_not_match_the_lock_are_refused_and_nothing_is_written(
    launcher: Path, tmp_path: Path
) -> None:
    """A lock whose SHA-256 differs from Maven Central's real bytes stops the build: the error
    names both digests and the lock, no bundle appears, and the refused jar is not cached."""
    flavor = "opentelemetry"  # the smaller jar
    locks = _tampered_locks(tmp_path, flavor)
    lock_file = locks / f"{flavor}-{JAVA_VERSIONS[flavor]}.lock"
    cache, out = tmp_path / "cache", tmp_path / "out" / "bundle"
    out.parent.mkdir()
    result = _bundle(
        f"--flavor={flavor}",
        f"--version={JAVA_VERSIONS[flavor]}",
        f"--out={out}",
        f"--locks={locks}",
        f"--cache={cache}",
    )
    assert result.returncode == 2
    locked = parse(lock_file.read_text())
    real = parse((JAVA_LOCKS / lock_file.name).read_text())
    assert f"has sha256 {real.sha256} ({real.size} bytes), but {lock_file} locks" in result.stderr
    assert f"sha256 {locked.sha256}" in result.stderr
    assert "nothing was written" in result.stderr
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == [], "no half-built bundle is left behind"
    assert [p for p in cache.rglob("*") if p.is_file()] == [], "refused bytes are not cached"
    assert launcher.is_file()


@pytest.mark.network  # downloads the jar again
def test_a_cached_jar_that_no_longer_matches_its_lock_is_replaced_by_a_checked_download(
    launcher: Path, tmp_path: Path
) -> None:
    """The cache is checked at each use: a copy changed on disk is never put in a bundle."""
    flavor = "opentelemetry"
    version = JAVA_VERSIONS[flavor]
    cache = tmp_path / "cache"
    cached = cache / f"{AGENTS[Flavor(flavor)].artifact}-{version}.jar"
    cache.mkdir()
    cached.write_bytes(b"not the agent")
    out = tmp_path / "bundle"
    result = _bundle(
        f"--flavor={flavor}",
        f"--version={version}",
        f"--out={out}",
        f"--locks={JAVA_LOCKS}",
        f"--cache={cache}",
    )
    assert result.returncode == 0, result.stderr
    lock = parse((JAVA_LOCKS / f"{flavor}-{version}.lock").read_text())
    assert _sha256(out / AGENTS[Flavor(flavor)].jar) == lock.sha256
    assert _sha256(cached) == lock.sha256
    assert '"downloaded": true' in result.stdout
    assert launcher.is_file()


def test_a_release_without_a_lock_is_refused_before_any_download(tmp_path: Path) -> None:
    """Never downloaded unchecked: with no lock, nothing is fetched or written, and the error
    says how to write one."""
    cache, out = tmp_path / "cache", tmp_path / "bundle"
    result = _bundle(
        "--flavor=ddtrace",
        "--version=1.0.404",
        f"--out={out}",
        f"--locks={tmp_path / 'locks'}",
        f"--cache={cache}",
    )
    assert result.returncode == 2
    assert f"no lock for ddtrace 1.0.404 ({tmp_path / 'locks' / 'ddtrace-1.0.404.lock'})" in (
        result.stderr
    )
    assert "libinject lock java --flavor ddtrace --version 1.0.404" in result.stderr
    assert not out.exists()
    assert not cache.exists()


def test_a_lock_for_another_artifact_is_refused(tmp_path: Path) -> None:
    """A lock is read for the flavor it is named after: a ddtrace lock that pins the
    OpenTelemetry agent (a copy under the wrong name) stops the build."""
    locks = tmp_path / "locks"
    locks.mkdir()
    version = JAVA_VERSIONS["ddtrace"]
    other = (JAVA_LOCKS / f"opentelemetry-{JAVA_VERSIONS['opentelemetry']}.lock").read_text()
    (locks / f"ddtrace-{version}.lock").write_text(other)
    result = _bundle(
        "--flavor=ddtrace", f"--version={version}", f"--out={tmp_path / 'b'}", f"--locks={locks}"
    )
    assert result.returncode == 2
    assert f"locks {parse(other).artifact}, not com.datadoghq:dd-java-agent:{version}" in (
        result.stderr
    )
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("version", ["../../../etc/passwd", "1.56.0/../x", "latest", ""])
def test_a_version_that_is_not_a_release_is_refused(version: str, tmp_path: Path) -> None:
    """The version names a lock file and a download path: anything but a release version is
    refused before either is touched."""
    result = _bundle("--flavor=ddtrace", f"--version={version}", f"--out={tmp_path / 'b'}")
    assert result.returncode == 2
    assert f"--version: {version!r} is not a release version" in result.stderr
    assert not (tmp_path / "b").exists()


def test_an_existing_output_directory_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _bundle("--flavor=ddtrace", f"--version={JAVA_VERSIONS['ddtrace']}", f"--out={out}")
    assert result.returncode == 2
    assert f"{out} already exists; give a new directory" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
