"""`libinject bundle python` as a user runs it: what it refuses, and what it never touches."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cluster.libraries import LIBINJECT, build_bundle, host_target


def _bundle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIBINJECT), "bundle", "python", *args], capture_output=True, text=True, check=False
    )


def test_an_existing_output_directory_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """Nothing of the user's is lost: a directory that exists is never written into."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _bundle("--flavor=ddtrace", "--version=4.16.0", f"--out={out}")
    assert result.returncode == 2
    assert f"{out} already exists; give a new directory" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_an_unknown_target_is_refused_before_any_install(tmp_path: Path) -> None:
    result = _bundle(
        "--flavor=ddtrace",
        "--version=4.16.0",
        f"--out={tmp_path / 'b'}",
        "--target=cp27-manylinux-x86_64",
    )
    assert result.returncode == 2
    assert "unknown target 'cp27-manylinux-x86_64'" in result.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.network  # asks PyPI
def test_a_release_that_does_not_exist_fails_with_pips_reason(tmp_path: Path) -> None:
    """A typo in the version is an error naming the target and what pip said; no bundle."""
    result = _bundle(
        "--flavor=ddtrace",
        "--version=0.0.404",
        f"--out={tmp_path / 'b'}",
        f"--target={host_target()}",
    )
    assert result.returncode == 2
    assert f"{host_target()}: pip could not install ('ddtrace==0.0.404',)" in result.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.network  # installs from PyPI on a cold cache
def test_editing_a_bundle_never_changes_the_cache_the_next_bundle_is_made_from(
    tmp_path: Path,
) -> None:
    """Bundles are copied out of the pip cache, not linked to it: a user's edit of one bundle
    does not reach the next one built from the same cache."""
    first, second = tmp_path / "first", tmp_path / "second"
    build_bundle(flavor="ddtrace", out=first, targets=[host_target()])
    module = Path("sites", host_target(), "ddtrace", "__init__.py")
    original = (first / module).read_text()
    (first / module).write_text("# edited by the user\n")
    report = build_bundle(flavor="ddtrace", out=second, targets=[host_target()])
    assert (second / module).read_text() == original
    assert report["targets"] == [host_target()]
