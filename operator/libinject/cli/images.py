"""`libinject bundle python|java|nodejs`, `libinject lock java|nodejs` and `libinject image`:
the library side, built offline."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from libinject.api.types import Flavor, is_version
from libinject.bundle import python as bundle
from libinject.bundle.java import build as java_bundle
from libinject.bundle.java import locks as java_locks
from libinject.bundle.nodejs import build as node_bundle
from libinject.bundle.nodejs import locks as node_locks
from libinject.bundle.nodejs.platforms import Platform as NodePlatform
from libinject.bundle.nodejs.platforms import of_cpu
from libinject.bundle.stages import BundleError
from libinject.bundle.targets import Target, all_targets, for_platform, parse_tag
from libinject.cli.errors import InputError
from libinject.engine.platforms import Machine, by_platform
from libinject.images import crane, layer


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bundle_cmd = commands.add_parser("bundle", help="build a library bundle from wheels")
    languages = bundle_cmd.add_subparsers(required=True, metavar="LANGUAGE")
    python_cmd = languages.add_parser("python", help="a Python bundle (every 3.9-3.14 target)")
    python_cmd.add_argument("--flavor", required=True, choices=[str(f) for f in Flavor])
    python_cmd.add_argument("--version", required=True, help="ddtrace's or OpenTelemetry's")
    python_cmd.add_argument("--out", required=True, type=Path, help="a directory to create")
    python_cmd.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="TAG",
        help="only this target, e.g. cp311-manylinux-x86_64 (repeatable; default: all)",
    )
    _platform_argument(python_cmd)
    python_cmd.add_argument(
        "--cache", type=Path, default=_default_cache("bundles"), help="pip stages"
    )
    python_cmd.set_defaults(run=_run_bundle_python)
    java_cmd = languages.add_parser("java", help="a Java bundle (the agent and the launcher)")
    _java_release_arguments(java_cmd)
    java_cmd.add_argument("--out", required=True, type=Path, help="a directory to create")
    java_cmd.set_defaults(run=_run_bundle_java)
    node_cmd = languages.add_parser(
        "nodejs", help="a Node.js bundle (the flavor's npm packages and the loader)"
    )
    _node_release_arguments(node_cmd)
    node_cmd.add_argument("--out", required=True, type=Path, help="a directory to create")
    _platform_argument(node_cmd)
    node_cmd.set_defaults(run=_run_bundle_nodejs)

    lock_cmd = commands.add_parser("lock", help="check a release and write its committed lock")
    lock_languages = lock_cmd.add_subparsers(required=True, metavar="LANGUAGE")
    lock_java = lock_languages.add_parser(
        "java", help="an agent jar from Maven Central, checked against its published checksums"
    )
    _java_release_arguments(lock_java)
    lock_java.set_defaults(run=_run_lock_java)
    lock_node = lock_languages.add_parser(
        "nodejs", help="a flavor's npm packages, resolved by npm with their integrity hashes"
    )
    _node_release_arguments(lock_node)
    lock_node.set_defaults(run=_run_lock_nodejs)

    image_cmd = commands.add_parser(
        "image", help="push bundles as a library image: one index, one image per platform"
    )
    image_cmd.add_argument(
        "--image",
        dest="images",
        action="append",
        nargs=3,
        required=True,
        metavar=("PLATFORM", "BUNDLE", "COPY_PROGRAM"),
        help="one platform's image: linux/amd64 or linux/arm64, the bundle built for it and a "
        "static busybox for it (repeat for each platform)",
    )
    image_cmd.add_argument("--crane", required=True, type=Path, help="go-containerregistry crane")
    image_cmd.add_argument("--tag", required=True, help="e.g. 127.0.0.1:5000/python-ddtrace:4.16.0")
    image_cmd.set_defaults(run=_run_image)


def _platform_argument(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--platform",
        metavar="PLATFORM",
        help="only what linux/amd64 or linux/arm64 runs: one platform's image "
        "(default: both, for one image that serves every node)",
    )


def _run_bundle_python(args: argparse.Namespace) -> str:
    try:
        targets = [parse_tag(tag) for tag in args.target] or all_targets()
    except ValueError as error:
        raise InputError("--target", str(error)) from error
    if args.platform is not None:
        targets = _platform_targets(targets, platform=args.platform, chosen=bool(args.target))
    try:
        report = bundle.build(
            flavor=Flavor(args.flavor),
            version=args.version,
            targets=targets,
            out=args.out,
            cache=args.cache,
            say=_say,
        )
    except BundleError as error:
        raise InputError("bundle", str(error)) from error
    return json.dumps(report.as_dict(), indent=2) + "\n"


def _platform_targets(targets: list[Target], *, platform: str, chosen: bool) -> list[Target]:
    """Of `targets`, those `platform` serves; targets named with --target must all be."""
    try:
        served = for_platform(platform)
    except ValueError as error:
        raise InputError("--platform", str(error)) from error
    outside = [target.tag for target in targets if target not in served]
    if chosen and outside:
        raise InputError("--target", f"{', '.join(outside)}: not run by {platform} nodes")
    return [target for target in targets if target in served]


def _java_release_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--flavor", required=True, choices=[str(f) for f in Flavor])
    cmd.add_argument("--version", required=True, help="dd-java-agent's or OpenTelemetry's")
    cmd.add_argument(
        "--locks", type=Path, default=Path("images/java/locks"), help="the committed locks"
    )
    cmd.add_argument("--cache", type=Path, default=_default_cache("java"), help="agent jars")


def _run_bundle_java(args: argparse.Namespace) -> str:
    _check_version(args.version)
    try:
        report = java_bundle.build(
            flavor=Flavor(args.flavor),
            version=args.version,
            out=args.out,
            lock_dir=args.locks,
            cache_dir=args.cache,
            launcher=java_bundle.packaged_launcher(),
            say=_say,
        )
    except BundleError as error:
        raise InputError("bundle", str(error)) from error
    return json.dumps(report, indent=2) + "\n"


def _run_lock_java(args: argparse.Namespace) -> str:
    _check_version(args.version)
    try:
        report = java_locks.write(
            flavor=Flavor(args.flavor),
            version=args.version,
            locks=args.locks,
            cache_dir=args.cache,
            say=_say,
        )
    except BundleError as error:
        raise InputError("lock", str(error)) from error
    return json.dumps(report, indent=2) + "\n"


def _node_release_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--flavor", required=True, choices=[str(f) for f in Flavor])
    cmd.add_argument(
        "--version", required=True, help="dd-trace's or @opentelemetry/auto-instrumentations-node's"
    )
    cmd.add_argument(
        "--locks", type=Path, default=Path("images/nodejs/locks"), help="the committed locks"
    )
    cmd.add_argument("--cache", type=Path, default=_default_cache("npm"), help="npm's cache")


def _run_bundle_nodejs(args: argparse.Namespace) -> str:
    _check_version(args.version)
    try:
        report = node_bundle.build(
            flavor=Flavor(args.flavor),
            version=args.version,
            out=args.out,
            lock_dir=args.locks,
            cache=args.cache,
            loader=node_bundle.packaged_loader(),
            served=_node_platforms(args.platform),
            say=_say,
        )
    except BundleError as error:
        raise InputError("bundle", str(error)) from error
    return json.dumps(report, indent=2) + "\n"


def _node_platforms(platform: str | None) -> tuple[NodePlatform, ...]:
    """The Node.js platforms a bundle for `platform` serves (every one for None)."""
    try:
        return of_cpu(None if platform is None else by_platform(platform).npm)
    except ValueError as error:
        raise InputError("--platform", str(error)) from error


def _run_lock_nodejs(args: argparse.Namespace) -> str:
    _check_version(args.version)
    try:
        report = node_locks.write(
            flavor=Flavor(args.flavor),
            version=args.version,
            locks=args.locks,
            cache=args.cache,
            say=_say,
        )
    except BundleError as error:
        raise InputError("lock", str(error)) from error
    return json.dumps(report, indent=2) + "\n"


def _check_version(version: str) -> None:
    """The version names files and a download's path: only a release version will do."""
    if not is_version(version):
        raise InputError("--version", f"{version!r} is not a release version such as 1.2.3")


def _run_image(args: argparse.Namespace) -> str:
    """Pushes the index; prints its tag with its digest, then each platform's image by digest."""
    try:
        crane.split_tag(args.tag)
    except ValueError as error:
        raise InputError("--tag", str(error)) from error
    machines = _machines([platform for platform, _, _ in args.images])
    bundles = [Path(bundle_dir) for _, bundle_dir, _ in args.images]
    labels = _labels(bundles)
    with tempfile.TemporaryDirectory(prefix="libinject-layer-") as work:
        images = []
        for machine, (_, bundle_dir, copy_program) in zip(machines, args.images, strict=True):
            tar = Path(work) / f"{machine.architecture}.tar"
            try:
                layer.write_layer(
                    bundle=Path(bundle_dir),
                    copy_program=Path(copy_program),
                    machine=machine,
                    out=tar,
                )
            except ValueError as error:
                raise InputError("--image", str(error)) from error
            images.append(crane.PlatformImage(machine.platform, (tar,), labels))
        try:
            index, *pushed = crane.push_index(crane=args.crane, images=images, reference=args.tag)
        except crane.PushError as error:
            raise InputError("image", str(error)) from error
    digest = index.partition("@")[2]
    platforms = (f"{m.platform} {ref}" for m, ref in zip(machines, pushed, strict=True))
    lines = [f"{args.tag}@{digest}", *platforms]
    return "".join(f"{line}\n" for line in lines)


def _machines(names: list[str]) -> list[Machine]:
    """The machines of the platforms given, each once."""
    try:
        machines = [by_platform(name) for name in names]
    except ValueError as error:
        raise InputError("--image", str(error)) from error
    if len(set(machines)) != len(machines):
        raise InputError("--image", f"each platform once: {' '.join(names)}")
    return machines


def _labels(bundles: list[Path]) -> tuple[str, ...]:
    """The images' labels, from the bundles' manifests, which must name one release."""
    releases = {(m.get("flavor", ""), m.get("version", "")) for m in map(_manifest, bundles)}
    if len(releases) != 1:
        named = ", ".join(f"{flavor} {version}" for flavor, version in sorted(releases))
        raise InputError("--image", f"the bundles are of different releases ({named})")
    ((flavor, version),) = releases
    return (
        f"--label=org.opencontainers.image.version={version}",
        f"--label=dev.libinject.flavor={flavor}",
    )


def _manifest(root: Path) -> dict[str, str]:
    path = root / bundle.MANIFEST
    if not path.is_file():
        raise InputError(str(root), f"not a bundle: no {bundle.MANIFEST}")
    pairs = (line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
    return dict(pairs)


def _default_cache(kind: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(base) / "libinject" / kind


def _say(message: str) -> None:
    print(f"libinject: {message}", file=sys.stderr, flush=True)
