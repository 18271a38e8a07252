"""What a pushed image holds, read back from the registry with crane: the platforms its index
lists and each image's flattened file system. Independent of the code that pushed it."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tools.gobuild import checked_output

# e_machine of each platform's code, as the ELF specification numbers them (EM_X86_64,
# EM_AARCH64): read here independently of libinject.engine.platforms, which the builders use.
ELF_MACHINES = {"linux/amd64": 0x3E, "linux/arm64": 0xB7}


def crane_json(crane: Path, *args: str) -> Any:
    """What `crane <args>` prints (a manifest, a config), parsed."""
    return json.loads(checked_output([str(crane), *args]))


def index_images(crane: Path, reference: str) -> dict[str, str]:
    """`os/architecture` -> the reference by digest of that platform's image, for the OCI index
    `reference` names."""
    index = crane_json(crane, "manifest", reference)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json", index
    name = reference.partition("@")[0]
    head, _, last = name.rpartition("/")
    repository = f"{head}/{last.partition(':')[0]}"
    return {
        f"{m['platform']['os']}/{m['platform']['architecture']}": f"{repository}@{m['digest']}"
        for m in index["manifests"]
    }


def files_of(crane: Path, reference: str) -> dict[str, bytes]:
    """The image's flattened file system: regular files by path, symlinks as their target."""
    export = subprocess.run([str(crane), "export", reference, "-"], capture_output=True, check=True)
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(export.stdout)) as layer:
        for member in layer.getmembers():
            if member.issym():
                files[member.name] = b"->" + member.linkname.encode()
            elif member.isfile():
                extracted = layer.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read()
    return files


def elf_machine(content: bytes) -> int | None:
    """A 64-bit little-endian ELF file's e_machine; -1 for other ELF files (32-bit, big-endian),
    None for what is not ELF."""
    if content[:4] != b"\x7fELF":
        return None
    if content[4:6] != b"\x02\x01":
        return -1
    return int(struct.unpack_from("<H", content, 18)[0])
