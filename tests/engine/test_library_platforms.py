"""The platforms library images are built for: one machine's names in OCI, uname, npm and ELF
agree, and anything else is refused by name."""

from __future__ import annotations

import pytest

from libinject.bundle.targets import for_platform
from libinject.engine.platforms import MACHINES, by_platform, node_platform


def test_the_nodes_platform_is_named_as_oci_names_it() -> None:
    assert node_platform("x86_64") == node_platform("amd64") == "linux/amd64"
    assert node_platform("aarch64") == node_platform("arm64") == "linux/arm64"
    with pytest.raises(ValueError, match="no library images are built for machine 's390x'"):
        node_platform("s390x")


def test_each_platform_names_one_machine() -> None:
    """linux/amd64 is x86_64 to uname and Python's wheels, x64 to npm, e_machine 62 in ELF;
    linux/arm64 is aarch64, arm64 and 183."""
    amd64, arm64 = by_platform("linux/amd64"), by_platform("linux/arm64")
    assert (amd64.uname, amd64.npm, amd64.elf) == ("x86_64", "x64", 62)
    assert (arm64.uname, arm64.npm, arm64.elf) == ("aarch64", "arm64", 183)
    assert [machine.platform for machine in MACHINES] == ["linux/amd64", "linux/arm64"]


@pytest.mark.parametrize("platform", ["linux/s390x", "windows/amd64", "amd64", "linux/amd64/v2"])
def test_a_platform_no_image_is_built_for_is_refused(platform: str) -> None:
    with pytest.raises(ValueError, match=r"only linux/amd64, linux/arm64"):
        by_platform(platform)


def test_a_platforms_python_targets_are_its_machines_alone() -> None:
    """Every interpreter and C library of the platform's machine, nothing of the other's."""
    amd64 = for_platform("linux/amd64")
    assert {target.arch for target in amd64} == {"x86_64"}
    assert len(amd64) == 12  # Python 3.9 to 3.14, glibc and musl
    assert {target.tag for target in for_platform("linux/arm64")} == {
        tag.replace("x86_64", "aarch64") for tag in (target.tag for target in amd64)
    }
