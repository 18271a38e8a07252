"""The pure parts of the operator image's build: the wheel tags each platform accepts, and the
layer writer (what makes the same inputs give the same digest)."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from libinject.images.operatorimage import PLATFORMS, write_tree_layer


def test_each_platform_accepts_manylinux_wheels_up_to_bookworms_glibc_and_the_legacy_names() -> (
    None
):
    amd64, arm64 = PLATFORMS
    tags = amd64.wheel_platforms()
    assert tags[0] == "manylinux_2_36_x86_64"
    assert tags[-1] == "manylinux1_x86_64"
    assert "manylinux_2_5_x86_64" in tags
    assert "manylinux2014_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags  # newer than bookworm's glibc 2.36
    arm = arm64.wheel_platforms()
    assert arm[0] == "manylinux_2_36_aarch64"
    assert "manylinux2014_aarch64" in arm
    # aarch64 wheels start at glibc 2.17: no 2010 or manylinux1 names for it.
    assert not [tag for tag in arm if "manylinux1" in tag or "2010" in tag or "2_16" in tag]
    assert all(tag.endswith("_aarch64") for tag in arm)


def tree(root: Path, *, stamp: int) -> Path:
    (root / "usr" / "bin").mkdir(parents=True)
    program = root / "usr" / "bin" / "python3.11"
    program.write_bytes(b"\x7fELF...")
    program.chmod(0o755)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("nonroot:x:65532:65532::/:/sbin/nologin\n")
    os.link(program, root / "usr" / "bin" / "python3")
    (root / "usr" / "bin" / "python").symlink_to("python3.11")
    for path in root.rglob("*"):
        os.utime(path, (stamp, stamp), follow_symlinks=False)
    return root


def test_a_layer_keeps_modes_and_links_with_owners_and_dates_normalized(tmp_path: Path) -> None:
    out = tmp_path / "layer.tar"
    write_tree_layer(tree(tmp_path / "root", stamp=1_700_000_000), out)
    with tarfile.open(out) as layer:
        members = {member.name: member for member in layer.getmembers()}
    names = list(members)
    assert names == sorted(names, key=lambda name: name.split("/"))  # name order, parents first
    assert members["tmp"].mode == 0o1777
    assert members["usr/bin/python3.11"].mode == 0o755
    assert members["usr/bin/python"].issym()
    assert members["usr/bin/python"].linkname == "python3.11"
    linked = [members["usr/bin/python3"], members["usr/bin/python3.11"]]
    assert sum(member.islnk() for member in linked) == 1  # one file, two names
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members.values()} == {
        (0, 0, "", "", 0)
    }


def test_the_same_tree_gives_the_same_bytes_whenever_it_was_made(tmp_path: Path) -> None:
    first, second = tmp_path / "first.tar", tmp_path / "second.tar"
    write_tree_layer(tree(tmp_path / "a", stamp=1_600_000_000), first)
    write_tree_layer(tree(tmp_path / "b", stamp=1_700_000_000), second)
    digest = [hashlib.sha256(path.read_bytes()).hexdigest() for path in (first, second)]
    assert digest[0] == digest[1]


def test_an_empty_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        write_tree_layer(tmp_path / "empty", tmp_path / "layer.tar")
