"""The records' index of targets (libinject.csi.publications): which volumes a target holds, by
real path, the same after a restart (read from the records) as before, and kept with them."""

from __future__ import annotations

from pathlib import Path

from libinject.csi.publications import Publication, Publications

DIGEST = "sha256:" + "a" * 64


def test_targets_are_found_by_real_path_and_after_a_restart(tmp_path: Path) -> None:
    pods = tmp_path / "pods"
    (pods / "pod-a").mkdir(parents=True)
    (pods / "alias").symlink_to(pods / "pod-a")
    records = Publications(tmp_path)
    target = pods / "pod-a" / "mount"
    records.put(Publication("csi-a", str(target), "ref", DIGEST))
    assert records.at_target(str(target)) == ["csi-a"]
    assert records.at_target(str(pods / "pod-b" / "mount")) == []

    restarted = Publications(tmp_path)  # a new process: the index comes from the records
    assert restarted.at_target(str(target)) == ["csi-a"]
    restarted.put(Publication("csi-b", str(pods / "alias" / "mount"), "ref", DIGEST))
    assert restarted.at_target(str(target)) == ["csi-a", "csi-b"]
    restarted.remove("csi-a")
    restarted.remove("csi-b")
    assert restarted.at_target(str(target)) == []
    assert Publications(tmp_path).at_target(str(target)) == []
