"""Debian packages the tests run, unpacked into the cache, never installed.

`apt-get download` fetches the candidate version's .deb and `dpkg-deb -x` extracts its files: no
maintainer scripts run, the dpkg database and the host's /usr stay as they were, and no service
starts. What gets used is whatever version Debian's lists offer (nothing here can pin it); that
version is part of the cache directory's name, so a newer one is unpacked beside the old one.

Cache: <cache root>/debian/<package>-<version>/ (see tools.gobuild.cache_root; an epoch's ':' is
written '%3a', as apt names its files), the package's root file system. It is unpacked in a
temporary directory and renamed into place, under the same lock file discipline as cluster.build.
On a fresh machine without apt's lists, `apt-get update` runs once (it needs root).

A package of another Debian suite (`suite="sid"`: the last OpenJDK 8 is only there) comes through
apt with a configuration of its own under <cache root>/debian/apt-<suite>/: that suite's sources
(signed by the host's Debian archive keyring), its own lists and an empty package status, so the
host's apt configuration, lists and dpkg database are neither read nor changed. With an
`architecture` too (`closure`: the operator image's packages for each of its platforms), that
configuration is under apt-<suite>-<architecture>/ and treats the architecture as native; a
stable suite then comes with its security updates.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cluster.build import elapsed, locked, say
from libinject.engine.platforms import by_platform, node_platform
from libinject.images.elf import is_static
from libinject.images.operatorimage import DEBIAN_SUITE
from tools.gobuild import BuildError, cache_root, checked_output

ARCHIVE = "http://deb.debian.org/debian"
SECURITY_ARCHIVE = "http://deb.debian.org/debian-security"
UNSTABLE = "sid"  # no security suite of its own
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def unpacked(package: str, *, suite: str | None = None, architecture: str | None = None) -> Path:
    """The root of `package`'s files (its candidate version in the host's lists, or in `suite`'s
    for `architecture`), downloading what the cache lacks."""
    apt = _apt_options(suite, architecture)
    version = _candidate(package, apt)
    name = f"{package}-{version.replace(':', '%3a')}"
    target = cache_root() / "debian" / (name if architecture is None else f"{name}-{architecture}")
    if not target.is_dir():
        with locked(target.parent / ".lock"):
            if not target.is_dir():  # another run may have unpacked it while we waited
                _unpack(package, version, target, apt)
    return target


def closure(packages: Sequence[str], *, suite: str, architecture: str) -> list[Path]:
    """The .deb files of `packages` and of everything they depend on (Depends and Pre-Depends,
    not Recommends) for `architecture`, as apt resolves them for an empty system; downloaded
    into the suite's cache (checked against the signed lists) unless already there."""
    apt = _apt_options(suite, architecture)
    archives = cache_root() / "debian" / f"apt-{suite}-{architecture}" / "archives"
    install = ["install", "--no-install-recommends", "--yes", *packages]
    # apt's own cache directory stays empty, so --print-uris always lists every file.
    plan = ["apt-get", *apt, "--print-uris", *install]
    download = ["apt-get", *apt, "-o", f"Dir::Cache::Archives={archives}", "--download-only",
                *install]  # fmt: skip
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    with locked(archives.parent / ".lock"):
        for attempt in range(2):
            try:
                files = _planned_files(plan)
                checked_output(download)
                break
            except BuildError as error:
                if attempt == 1:
                    raise
                _update(f"apt-get cannot fetch {' '.join(packages)} ({error})", apt)
    return [archives / name for name in files]


def _planned_files(command: list[str]) -> list[str]:
    """The .deb file names apt would fetch (`--print-uris` lines: 'URI' FILE SIZE HASH)."""
    printed = checked_output(command)
    names = [line.split()[1] for line in printed.splitlines() if line.startswith("'")]
    if not names:
        raise BuildError(f"{' '.join(command)} planned no package:\n{printed}")
    return sorted(names)


def busybox(platform: str | None = None) -> Path:
    """Debian's static busybox (package busybox-static), which runs in an image with nothing
    else: this machine's from the host's lists, or `platform`'s (linux/arm64) from the operator
    image's suite (bookworm)."""
    if platform is None or platform == node_platform():
        binary = unpacked("busybox-static") / "bin" / "busybox"
    else:
        architecture = by_platform(platform).architecture
        root = unpacked("busybox-static", suite=DEBIAN_SUITE, architecture=architecture)
        binary = root / "bin" / "busybox"
    if not is_static(binary):
        raise BuildError(f"{binary} is not a statically linked executable")
    return binary


def docker_registry() -> Path:
    """Debian's build of the distribution registry (package docker-registry), `serve CONFIG`."""
    binary = unpacked("docker-registry") / "usr" / "bin" / "docker-registry"
    if not binary.is_file():
        raise BuildError(f"the docker-registry package has no {binary}")
    return binary


def _apt_options(suite: str | None, architecture: str | None = None) -> list[str]:
    """apt's options for `suite`'s own configuration (made on first use), none for the host's."""
    if suite is None:
        return []
    name = f"apt-{suite}" if architecture is None else f"apt-{suite}-{architecture}"
    root = cache_root() / "debian" / name
    directories = {
        "Dir::Etc::SourceParts": root / "sources.list.d",
        "Dir::Etc::Parts": root / "apt.conf.d",  # none of the host's (its DEP-11 downloads)
        "Dir::Etc::PreferencesParts": root / "preferences.d",
        "Dir::State::Lists": root / "lists",
        "Dir::Cache": root / "cache",
    }
    for directory in directories.values():
        (directory / "partial").mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    lines = [f"deb [signed-by={KEYRING}] {ARCHIVE} {suite} main"]
    if architecture is not None and suite != UNSTABLE:
        lines.append(f"deb [signed-by={KEYRING}] {SECURITY_ARCHIVE} {suite}-security main")
    sources.write_text("".join(f"{line}\n" for line in lines))
    status = root / "status"
    status.touch()  # nothing installed: the candidate is the suite's own version
    options = {
        **directories,
        "Dir::Etc::SourceList": sources,
        "Dir::State::status": status,
        "Acquire::Languages": "none",
        "APT::Sandbox::User": "root",  # the directories are root's
    }
    if architecture is not None:  # only this one: the host's foreign architectures are not asked
        options |= {"APT::Architecture": architecture, "APT::Architectures": architecture}
    return [f"-o{name}={value}" for name, value in options.items()]


def _candidate(package: str, apt: list[str]) -> str:
    """The version apt would install, from its lists; refreshes them once if they lack it."""
    for attempt in range(2):
        result = subprocess.run(
            ["apt-cache", *apt, "show", "--no-all-versions", package],
            capture_output=True,
            text=True,
            check=False,
        )
        versions = [
            line.removeprefix("Version:").strip()
            for line in result.stdout.splitlines()
            if line.startswith("Version:")
        ]
        if result.returncode == 0 and versions:
            return versions[0]
        if attempt == 0:
            _update(f"apt's lists know no {package}", apt)
    raise BuildError(f"apt-cache show {package} found no version:\n{result.stderr}")


def _update(reason: str, apt: list[str]) -> None:
    say(f"{reason}: running apt-get update once")
    result = subprocess.run(
        ["apt-get", *apt, "update"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"apt-get update failed (it needs root):\n{result.stdout}{result.stderr}")


def _unpack(package: str, version: str, target: Path, apt: list[str]) -> None:
    started = time.monotonic()
    say(f"downloading {package} {version} from Debian into {target}")
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as work:
        download = Path(work) / "download"
        download.mkdir()
        _download(package, version, download, apt)
        (deb,) = download.glob("*.deb")
        root = Path(work) / "root"
        checked_output(["dpkg-deb", "-x", str(deb), str(root)])
        root.rename(target)  # atomic: a half-unpacked package is never cached
    say(f"unpacked {package} {version} in {elapsed(started)}")


def _download(package: str, version: str, directory: Path, apt: list[str]) -> None:
    # Into a root-only directory: apt's sandbox user could not write there, so it downloads as
    # root, which it would otherwise warn about.
    command = [
        "apt-get",
        *apt,
        "download",
        "-o",
        "APT::Sandbox::User=root",
        f"{package}={version}",
    ]
    result = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # Lists older than the archive name a version it no longer serves.
        _update(f"apt-get download {package}={version} failed", apt)
        checked_output(command, cwd=directory)
