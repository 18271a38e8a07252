"""Builds the operator image without a Docker engine and pushes it as one OCI index.

    make image IMAGE=localhost:5000/libinject/operator:0.1.0
    (python -m cluster.operatorimage REFERENCE, from tests/)

For each platform of libinject.images.operatorimage.PLATFORMS, three layers, written by
write_tree_layer (name order, root-owned, dated 0):
  1. system: Debian bookworm's python3.11 and what it depends on (cluster.debian.closure, for
     that architecture), unpacked without maintainer scripts; each package's control file in
     /var/lib/dpkg/status.d/ (as distroless images keep them, for scanners); man pages and
     locales dropped; the accounts root and nonroot (65532); /tmp.
  2. dependencies: requirements.lock's wheels for that platform (pip download --platform),
     installed into SITE_PACKAGES.
  3. libinject: the package's wheel, built from this checkout (the CSI stubs included), and
     crane built for that architecture from the Go module proxy (cluster.build).
Every .py gets its bytecode at build (the root is read-only at run time), compiled by this
Python 3.11 with PYTHONHASHSEED=0 and unchecked-hash pycs, so the bytes do not depend on when
or where the build ran. The same inputs (Debian's package versions, the lock, the checkout,
crane) give the same digests; the packages and wheels stay cached under the libinject cache.

Each platform's image is pushed as REFERENCE-<arch> and the index over them as REFERENCE
(libinject.images.crane, as library images are); `crane mutate` sets the platform, entrypoint,
cmd, env, user and ports.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cluster import build, debian
from libinject.engine.platforms import node_platform
from libinject.images import crane as images
from libinject.images import operatorimage as spec
from tools.gobuild import BuildError, cache_root, checked_output

CHECKOUT = Path(__file__).parents[2]
LOCK = CHECKOUT / "requirements.lock"
DPKG_STATUS = "var/lib/dpkg/status.d"


@dataclass(frozen=True)
class PlatformImage:
    platform: spec.Platform
    reference: str  # by digest
    layer_bytes: int  # the three layers' uncompressed tars (bench/operator_image.py: on disk)


@dataclass(frozen=True)
class OperatorImage:
    reference: str  # the index, by digest
    images: tuple[PlatformImage, ...]


def build_image(*, reference: str, crane: Path) -> OperatorImage:
    """Builds every platform's image, pushes them and the index over them to `reference`
    (a tag); returns what was pushed, by digest."""
    images.split_tag(reference)  # refused before the build, not after it
    _require_python()
    with tempfile.TemporaryDirectory(prefix="libinject-operator-image-") as directory:
        work = Path(directory)
        wheel = _libinject_wheel(work / "wheel")
        built = [
            _platform_image(platform, wheel=wheel, work=work / platform.name)
            for platform in spec.PLATFORMS
        ]
        sizes = [sum(tar.stat().st_size for tar in image.layers) for image in built]
        try:
            index, *pushed = images.push_index(crane=crane, images=built, reference=reference)
        except images.PushError as error:
            raise BuildError(str(error)) from error
    platforms = zip(spec.PLATFORMS, pushed, sizes, strict=True)
    return OperatorImage(
        reference=index,
        images=tuple(PlatformImage(*platform) for platform in platforms),
    )


def _platform_image(platform: spec.Platform, *, wheel: Path, work: Path) -> images.PlatformImage:
    layers = [
        _system_layer(platform, work / "system"),
        _dependencies_layer(platform, work / "dependencies"),
        _libinject_layer(platform, wheel=wheel, root=work / "libinject"),
    ]
    tars = []
    for root in layers:
        tar = root.with_suffix(".tar")
        spec.write_tree_layer(root, tar)
        tars.append(tar)
    return images.PlatformImage(
        platform=platform.oci, layers=tuple(tars), config=tuple(_config_flags())
    )


def _config_flags() -> list[str]:
    env = [f"--env={name}={value}" for name, value in spec.ENV.items()]
    return [
        f"--entrypoint={','.join(spec.ENTRYPOINT)}",
        f"--cmd={','.join(spec.CMD)}",
        *env,
        f"--user={spec.USER}",
        "--workdir=/",
        f"--exposed-ports={','.join(spec.EXPOSED_PORTS)}",
    ]


def _system_layer(platform: spec.Platform, root: Path) -> Path:
    packages = debian.closure(
        spec.DEBIAN_PACKAGES, suite=spec.DEBIAN_SUITE, architecture=platform.name
    )
    status = root / DPKG_STATUS
    status.mkdir(parents=True)
    for package in packages:
        checked_output(["dpkg-deb", "-x", str(package), str(root)])
        control = checked_output(["dpkg-deb", "-f", str(package)])
        name = checked_output(["dpkg-deb", "-f", str(package), "Package"]).strip()
        (status / name).write_text(control)
    _prune(root)
    (root / "etc" / "passwd").write_text(spec.PASSWD)
    (root / "etc" / "group").write_text(spec.GROUP)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    stdlib = f"/usr/lib/python{spec.PYTHON}"
    _compile(root / stdlib.lstrip("/"), as_path=stdlib)
    return root


def _prune(root: Path) -> None:
    for path in spec.PRUNED:
        shutil.rmtree(root / path, ignore_errors=True)
    for package in (root / spec.DOC).iterdir():  # the licenses stay
        for entry in package.iterdir():
            if entry.name != "copyright":
                _remove(entry)


def _dependencies_layer(platform: spec.Platform, root: Path) -> Path:
    wheels = cache_root() / "operator-image" / "wheels" / platform.name
    _pip("download", "--dest", str(wheels), *_platform_flags(platform), "-r", str(LOCK))
    _pip_install(platform, root, "--find-links", str(wheels), "-r", str(LOCK))
    return root


def _libinject_layer(platform: spec.Platform, *, wheel: Path, root: Path) -> Path:
    # By name from its directory: a path would be recorded (direct_url.json), and differ per build.
    name = wheel.name.split("-")[0]
    version = wheel.name.split("-")[1]
    _pip_install(platform, root, "--find-links", str(wheel.parent), f"{name}=={version}")
    goarch = None if platform.oci == node_platform() else platform.name
    crane = build.ensure(build.crane(goarch))["crane"]
    target = root / spec.CRANE.lstrip("/")
    target.parent.mkdir(parents=True)
    shutil.copy2(crane, target)
    target.chmod(0o755)
    return root


def _pip_install(platform: spec.Platform, root: Path, *requirements: str) -> None:
    site = root / spec.SITE_PACKAGES.lstrip("/")
    _pip("install", "--no-index", "--no-compile", "--target", str(site),
         *_platform_flags(platform), *requirements)  # fmt: skip
    # Console scripts name this host's interpreter; the image runs `python -m libinject`.
    shutil.rmtree(site / "bin", ignore_errors=True)
    _compile(site, as_path=spec.SITE_PACKAGES)


def _platform_flags(platform: spec.Platform) -> list[str]:
    tags = [f"--platform={tag}" for tag in platform.wheel_platforms()]
    abis = [f"--abi={abi}" for abi in ("cp311", "abi3", "none")]
    version = f"--python-version={spec.PYTHON}"
    return ["--no-deps", "--only-binary=:all:", *tags, version, "--implementation=cp", *abis]


def _libinject_wheel(directory: Path) -> Path:
    """The package's wheel, built from a copy of the sources (the checkout gets no build files)."""
    source = directory / "source"
    shutil.copytree(CHECKOUT / "operator", source / "operator",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
    shutil.copy2(CHECKOUT / "pyproject.toml", source / "pyproject.toml")
    if not (source / "operator" / "libinject" / "csi" / "generated" / "csi_pb2.py").is_file():
        raise BuildError("the CSI stubs are missing: run `make .venv/.installed` first")
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(directory),
         str(source))  # fmt: skip
    (wheel,) = directory.glob("libinject-*.whl")
    return wheel


def _compile(directory: Path, *, as_path: str) -> None:
    """Bytecode for every .py under `directory`, named as `as_path` in tracebacks."""
    command = [sys.executable, "-m", "compileall", "-q", "-q", "-j", "0",
               "--invalidation-mode", "unchecked-hash", "-d", as_path, str(directory)]  # fmt: skip
    # A failing file (a template, a Python 2 test fixture) is left without bytecode: Python
    # would compile it too, and fail the same way, only if something imported it.
    subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}, check=False)


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    checked_output(command)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _require_python() -> None:
    if f"{sys.version_info.major}.{sys.version_info.minor}" != spec.PYTHON:
        raise BuildError(f"the image's bytecode is compiled by Python {spec.PYTHON}; this is "
                         f"{sys.version.split()[0]}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="make image", description=__doc__.split("\n")[0])
    parser.add_argument("reference", help="where to push, with a tag")
    args = parser.parse_args()
    try:
        image = build_image(reference=args.reference, crane=build.ensure(build.crane())["crane"])
    except (BuildError, ValueError) as error:
        print(f"make image: {error}", file=sys.stderr)
        return 1
    for each in image.images:
        print(f"{each.platform.oci}: {each.reference}")
    print(image.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
