"""`libinject image` and `libinject bundle --platform` refuse, before anything is built or
pushed, what would make a library image a node cannot use: a platform no image is built for, a
platform twice, bundles of different releases, a tag that is a digest, a bundle or a copy program
for another machine, a Python target another platform runs. Each says which input and why; no
crane runs (the one given does not exist)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from libinject.cli.main import EXIT_BAD_INPUT, main

AMD64_ELF, ARM64_ELF = 62, 183


def _static(path: Path, machine: int) -> Path:
    """A minimal static 64-bit ELF for `machine` (no program headers, so no interpreter)."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    header[18:20] = machine.to_bytes(2, "little")
    path.write_bytes(bytes(header))
    return path


def _bundle(root: Path, *, version: str = "4.16.0", native: int | None = None) -> Path:
    root.mkdir()
    (root / "bundle.txt").write_text(f"flavor ddtrace\nversion {version}\n")
    if native is not None:
        _static(root / "_native.so", native)
    return root


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    return {
        "amd64": str(_bundle(tmp_path / "amd64", native=AMD64_ELF)),
        "arm64": str(_bundle(tmp_path / "arm64", native=ARM64_ELF)),
        "busybox-amd64": str(_static(tmp_path / "busybox-amd64", AMD64_ELF)),
        "busybox-arm64": str(_static(tmp_path / "busybox-arm64", ARM64_ELF)),
        "old": str(_bundle(tmp_path / "old", version="4.15.0")),
        "crane": str(tmp_path / "no-crane"),
    }


def _image(capsys: pytest.CaptureFixture[str], inputs: dict[str, str], *images: str) -> str:
    """Runs `libinject image` with `images` (PLATFORM BUNDLE BUSYBOX triples, names of
    `inputs`); its error, asserting it refused."""
    args = ["image", "--crane", inputs["crane"], "--tag", "127.0.0.1:5000/libinject/p:1"]
    for platform, bundle, busybox in zip(images[::3], images[1::3], images[2::3], strict=True):
        args += ["--image", platform, inputs.get(bundle, bundle), inputs.get(busybox, busybox)]
    assert main(args) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


@pytest.mark.parametrize(
    ("images", "why"),
    [
        (("linux/s390x", "amd64", "busybox-amd64"), "no library images are built for platform"),
        (("linux/amd64", "amd64", "busybox-amd64") * 2, "each platform once"),
        (("linux/amd64", "amd64", "busybox-amd64", "linux/arm64", "old", "busybox-arm64"),
         r"different releases \(ddtrace 4.15.0, ddtrace 4.16.0\)"),
        (("linux/arm64", "amd64", "busybox-arm64"),
         r"native code for another machine than linux/arm64 \(_native.so\)"),
        (("linux/amd64", "amd64", "busybox-arm64"), "is not a program for linux/amd64"),
    ],
)  # fmt: skip
def test_an_image_no_node_could_use_is_refused(
    capsys: pytest.CaptureFixture[str], inputs: dict[str, str], images: tuple[str, ...], why: str
) -> None:
    assert re.search(why, _image(capsys, inputs, *images))


def test_a_tag_that_is_a_digest_is_refused(
    capsys: pytest.CaptureFixture[str], inputs: dict[str, str]
) -> None:
    pinned = "127.0.0.1:5000/libinject/p@sha256:" + "a" * 64
    args = ["image", "--crane", inputs["crane"], "--tag", pinned]
    args += ["--image", "linux/amd64", inputs["amd64"], inputs["busybox-amd64"]]
    assert main(args) == EXIT_BAD_INPUT
    assert "--tag" in capsys.readouterr().err


def test_a_python_target_of_another_platform_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--platform linux/arm64 --target cp311-manylinux-x86_64` asks for code arm64 nodes never
    run: refused before pip runs, and nothing is written."""
    out = tmp_path / "bundle"
    args = ["bundle", "python", "--flavor", "ddtrace", "--version", "4.16.0", "--out", str(out),
            "--platform", "linux/arm64", "--target", "cp311-manylinux-x86_64"]  # fmt: skip
    assert main(args) == EXIT_BAD_INPUT
    assert "cp311-manylinux-x86_64: not run by linux/arm64 nodes" in capsys.readouterr().err
    assert not out.exists()
    args[-3:] = ["linux/riscv64"]
    assert main(args) == EXIT_BAD_INPUT
    assert "no library images are built for platform 'linux/riscv64'" in capsys.readouterr().err
