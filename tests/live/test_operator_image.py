"""The operator image, built without a Docker engine (cluster.operatorimage, `make image`): one
OCI index for linux/amd64 and linux/arm64, each image with its own platform's files and nothing
missing, reproducible, and a replica run from it exactly as the Deployment says."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from cluster import operatorimage
from cluster.imagefiles import ELF_MACHINES, crane_json, elf_machine, files_of, index_images
from cluster.imageoperator import ImageOperator, ImageOperatorFactory
from cluster.podrunner.process import group_members
from cluster.registry import Registry
from libinject.images import operatorimage as spec

LIBRARY_DIRECTORIES = {
    "linux/amd64": ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64"),
    "linux/arm64": ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib"),
}
DT_NEEDED = 1


def needed(content: bytes) -> list[str]:
    """An ELF's DT_NEEDED names, read through its section headers (.dynamic, .dynstr)."""
    shoff = struct.unpack_from("<Q", content, 0x28)[0]
    entsize, count, _names_index = struct.unpack_from("<HHH", content, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", content, shoff + i * entsize)
                for i in range(count)]  # fmt: skip
    dynamic = [s for s in sections if s[1] == 6]  # SHT_DYNAMIC
    if not dynamic:
        return []
    _, _, _, _, offset, size, link, *_ = dynamic[0]
    strings = sections[link][4]
    result = []
    for entry in range(offset, offset + size, 16):
        tag, value = struct.unpack_from("<qQ", content, entry)
        if tag == 0:
            break
        if tag == DT_NEEDED:
            end = content.index(b"\0", strings + value)
            result.append(content[strings + value : end].decode())
    return result


@pytest.fixture(scope="module")
def platform_files(
    operator_image: operatorimage.OperatorImage, crane: Path
) -> dict[str, dict[str, bytes]]:
    return {image.platform.oci: files_of(crane, image.reference) for image in operator_image.images}


def test_the_index_has_one_image_per_platform_with_the_images_config(
    operator_image: operatorimage.OperatorImage, crane: Path
) -> None:
    platforms = index_images(crane, operator_image.reference)
    assert platforms == {image.platform.oci: image.reference for image in operator_image.images}
    assert set(platforms) == {platform.oci for platform in spec.PLATFORMS}
    for image in operator_image.images:
        config = crane_json(crane, "config", image.reference)
        assert config["architecture"] == image.platform.name
        settings = config["config"]
        assert settings["Entrypoint"] == list(spec.ENTRYPOINT)
        assert settings["Cmd"] == list(spec.CMD)
        assert settings["User"] == spec.USER
        assert dict(entry.split("=", 1) for entry in settings["Env"]) == spec.ENV
        assert sorted(settings["ExposedPorts"]) == sorted(spec.EXPOSED_PORTS)


def test_each_platform_holds_only_its_own_machine_code(
    platform_files: dict[str, dict[str, bytes]],
) -> None:
    """Python, crane and every compiled extension (grpcio, cryptography, aiohttp, ...) are built
    for the image's platform: no x86_64 file in the arm64 image, and the other way round."""
    for platform, files in platform_files.items():
        machines = {path: elf_machine(content) for path, content in files.items()}
        elves = {path: machine for path, machine in machines.items() if machine is not None}
        assert PurePosixPath(spec.PYTHON_BINARY).relative_to("/").as_posix() in elves
        assert spec.CRANE.lstrip("/") in elves
        assert any("/grpc/_cython/" in path for path in elves)
        foreign = {path for path, machine in elves.items() if machine != ELF_MACHINES[platform]}
        assert foreign == set(), f"{platform}: {sorted(foreign)[:5]}"


def test_every_shared_library_a_program_needs_is_in_the_image(
    platform_files: dict[str, dict[str, bytes]],
) -> None:
    """What the dynamic loader will look for, checked for both platforms without running them:
    each DT_NEEDED of the interpreter and of every extension module is in the system's library
    directories or beside the wheel that brings it (auditwheel's `<package>.libs`)."""
    for platform, files in platform_files.items():
        names = {PurePosixPath(path).name for path in files if "/" in path}
        system = {PurePosixPath(path).name for path in files
                  if str(PurePosixPath(path).parent) in LIBRARY_DIRECTORIES[platform]}  # fmt: skip
        missing = {}
        for path, content in files.items():
            if elf_machine(content) not in ELF_MACHINES.values():
                continue
            absent = [name for name in needed(content) if name not in system | names]
            if absent:
                missing[path] = absent
        assert missing == {}, f"{platform}: {missing}"
        assert "libstdc++.so.6" in system  # grpcio's, from Debian's libstdc++6


def test_every_python_file_has_its_bytecode(platform_files: dict[str, dict[str, bytes]]) -> None:
    """The root is read-only: a module without a .pyc would be compiled at every start."""
    for files in platform_files.values():
        modules = [path for path in files if path.endswith(".py") and "/libinject/" in path]
        assert modules
        for path in modules:
            source = PurePosixPath(path)
            pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
            assert pyc.as_posix() in files, path


def test_the_same_inputs_give_the_same_digests(
    operator_image: operatorimage.OperatorImage, registry: Registry, crane: Path
) -> None:
    again = operatorimage.build_image(
        reference=f"{registry.address}/libinject/operator:again", crane=crane
    )
    assert again.reference.split("@")[1] == operator_image.reference.split("@")[1]
    assert [image.reference for image in again.images] == [
        image.reference for image in operator_image.images
    ]


@pytest.fixture
def replica(image_operators: ImageOperatorFactory) -> Iterator[ImageOperator]:
    """A replica started for this test (the session's running operator is of no concern here:
    both serve the same port, and this test sends no admission)."""
    started = image_operators("inspected").wait_ready()
    yield started
    started.stop()


def test_a_replica_runs_from_the_image_as_the_deployment_says(replica: ImageOperator) -> None:
    """The process serving /readyz is the image's python, chrooted into the image's root, as
    uid and gid 65532, on a read-only root, with the Deployment's args and the pod's name as
    its identity: not this host's Python."""
    assert replica.running is not None
    assert replica.running.process is not None
    launcher = replica.running.process.pid
    processes = [pid for pid in group_members(launcher) if _uid(pid) == 65532]
    assert len(processes) == 1, processes
    (pid,) = processes
    status = Path(f"/proc/{pid}/status").read_text()
    assert "Uid:\t65532\t65532\t65532\t65532" in status
    assert "Gid:\t65532\t65532\t65532\t65532" in status
    root = Path(f"/proc/{pid}/root").resolve()
    assert root != Path("/")
    assert (root / "var" / "lib" / "dpkg" / "status.d").is_dir()
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    assert arguments == [*spec.ENTRYPOINT, "run", "--config", "/etc/libinject/config.yaml"]
    mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    (root_mount,) = [line.split() for line in mounts if line.split()[4] == "/"]
    assert "ro" in root_mount[5].split(",")
    environment = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    assert f"POD_ID={replica.pod_name}" in environment
    assert "POD_NAMESPACE=libinject-system" in environment
    assert replica.identity == replica.pod_name


def _uid(pid: int) -> int | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return None
    (line,) = [line for line in lines if line.startswith("Uid:")]
    return int(line.split()[1])
