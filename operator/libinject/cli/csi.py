"""`libinject csi`: the CSI node plugin (Identity and Node over gRPC on a unix socket)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libinject.cli.errors import InputError

if TYPE_CHECKING:  # the plugin's modules load grpc; the other commands must not pay for it
    from libinject.csi.events import EventPoster
    from libinject.csi.keys import Keys


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = commands.add_parser("csi", help="run the CSI node plugin (libraries from a node cache)")
    cmd.add_argument("--endpoint", required=True, help="unix:///path/to/csi.sock")
    cmd.add_argument("--root", required=True, type=Path, help="the node cache and the records")
    cmd.add_argument("--node-id", required=True, help="this node's name (NodeGetInfo)")
    cmd.add_argument(
        "--allowed-repository",
        action="append",
        default=[],
        metavar="HOST[:PORT]/PATH",
        help="images may come only from repositories under this path, e.g. "
        "registry.example/libinject (repeatable; at least one; never a whole registry)",
    )
    key = cmd.add_mutually_exclusive_group(required=True)
    key.add_argument(
        "--key-secret",
        metavar="NAMESPACE/NAME",
        help="the Secret holding the key the webhook signs volumes with (data key 'key'), read "
        "through the API (the operator makes libinject-system/libinject-csi-key)",
    )
    key.add_argument(
        "--key-file",
        type=Path,
        help="a file holding that key instead (e.g. the Secret mounted)",
    )
    cmd.add_argument(
        "--target-root",
        action="append",
        default=[],
        metavar="DIR",
        help="target paths must be under this (repeatable; default /var/lib/kubelet/pods)",
    )
    cmd.add_argument("--crane", default="crane", type=Path, help="go-containerregistry crane")
    cmd.add_argument(
        "--registry-config",
        type=Path,
        default=None,
        metavar="DIR",
        help="a directory whose config.json (Docker's format: a kubernetes.io/dockerconfigjson "
        "Secret's key mounted as config.json) has the credentials of private registries; read "
        "at every pull",
    )
    cmd.add_argument(
        "--platform",
        default=None,
        help="the image to unpack from a multi-platform library image, os/architecture "
        "(default: this node's, e.g. linux/arm64)",
    )
    cmd.add_argument(
        "--publish-timeout",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="past this a publish mounts an empty volume (the pull goes on)",
    )
    cmd.add_argument(
        "--pull-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="a pull (resolve, download, unpack) that takes longer fails",
    )
    cmd.add_argument(
        "--gc-grace",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="a cached version no volume uses is removed once unused this long",
    )
    cmd.add_argument(
        "--gc-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often unused versions are looked for (also once at start)",
    )
    cmd.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="PORT",
        help="serve Prometheus metrics at http://ADDRESS:PORT/metrics (0: off)",
    )
    cmd.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="the address the metrics endpoint listens on",
    )
    cmd.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="for Events on pods (default: in-cluster configuration when in a pod)",
    )
    cmd.add_argument(
        "--events",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="post a Warning Event on a pod whose volume is published empty (default: on "
        "when a Kubernetes configuration loads)",
    )
    cmd.add_argument("--log-format", choices=["json", "text"], default="json")
    cmd.set_defaults(run=_run_csi)


def _run_csi(args: argparse.Namespace) -> str:
    # Imported here: the other commands must not pay for grpc's import.
    from libinject.bundle.java.launcher import LAUNCHER_JAR  # noqa: PLC0415
    from libinject.bundle.nodejs.build import packaged_loader  # noqa: PLC0415
    from libinject.csi import metrics, server, validate  # noqa: PLC0415
    from libinject.csi.cache import CranePuller  # noqa: PLC0415
    from libinject.csi.node import NodeConfig  # noqa: PLC0415
    from libinject.runtime import logs  # noqa: PLC0415

    if not args.allowed_repository:
        raise InputError("--allowed-repository", "name at least one repository path to serve")
    try:
        rules = validate.Rules(
            allowed_repositories=tuple(args.allowed_repository),
            target_roots=tuple(args.target_root) or (validate.KUBELET_PODS,),
        )
        server.socket_path(args.endpoint)
    except ValueError as error:
        raise InputError("csi", str(error)) from error
    platform = _platform(args.platform)
    if args.registry_config is not None and not args.registry_config.is_dir():
        raise InputError("--registry-config", f"{args.registry_config} is not a directory")
    if args.publish_timeout <= 0 or args.pull_timeout <= 0:
        raise InputError("--publish-timeout/--pull-timeout", "must be positive")
    if args.gc_grace < 0 or args.gc_interval <= 0:
        raise InputError("--gc-grace/--gc-interval", "grace >= 0, interval > 0")
    if not 0 <= args.metrics_port <= 65535:
        raise InputError("--metrics-port", "0 (off) to 65535")
    logs.configure(args.log_format)
    config = NodeConfig(node_id=args.node_id, rules=rules, publish_timeout=args.publish_timeout)
    secret = _key_secret(args.key_secret) if args.key_secret is not None else None
    api = _api_client(args)
    poster = _event_poster(args, api)
    settings = server.Settings(
        pull_timeout=args.pull_timeout,
        gc_grace=args.gc_grace,
        gc_interval=args.gc_interval,
        on_empty=poster.report if poster else None,
        on_refused=poster.refused if poster else None,
        not_ready_files=(LAUNCHER_JAR, packaged_loader()),
    )
    if args.metrics_port:
        try:
            metrics.serve(args.metrics_port, args.metrics_address)
        except OSError as error:
            raise InputError("--metrics-port", str(error)) from error
    try:
        server.serve(
            endpoint=args.endpoint,
            root=args.root,
            config=config,
            puller=CranePuller(args.crane, platform=platform, docker_config=args.registry_config),
            keys=_keys(args.key_file, secret, api),
            settings=settings,
        )
    except server.EndpointError as error:
        raise InputError("--endpoint", str(error)) from error
    return ""


def _platform(given: str | None) -> str:
    from libinject.engine import platforms  # noqa: PLC0415

    if given is None:
        try:
            return platforms.node_platform()
        except ValueError as error:
            raise InputError("--platform", str(error)) from error
    os_name, slash, architecture = given.partition("/")
    if not (os_name and slash and architecture) or "/" in architecture:
        raise InputError("--platform", f"{given!r} is not os/architecture, e.g. linux/arm64")
    return given


def _api_client(args: argparse.Namespace) -> Any:
    """A Kubernetes client, or None when none is needed (no Events, a key file) or none loads
    while Events are only on by default; InputError when one is needed and none loads."""
    from libinject.csi import events  # noqa: PLC0415
    from libinject.runtime import logs  # noqa: PLC0415

    if args.events is False and args.key_secret is None:
        return None
    try:
        return events.api_client(args.kubeconfig)
    except events.ConfigError as error:
        if args.key_secret is not None:
            raise InputError("--key-secret", str(error)) from error
        if args.events or args.kubeconfig is not None:
            raise InputError("--events", str(error)) from error
        logs.get("libinject.csi").info("events off", why=str(error))
        return None


def _key_secret(value: str) -> tuple[str, str]:
    namespace, slash, name = value.partition("/")
    if not (namespace and slash and name) or "/" in name:
        raise InputError("--key-secret", f"{value!r}: expected NAMESPACE/NAME")
    return namespace, name


def _keys(key_file: Path | None, secret: tuple[str, str] | None, api: Any) -> Keys:
    from libinject.csi import keys  # noqa: PLC0415

    if key_file is not None:
        return keys.from_file(key_file)
    assert secret is not None  # argparse requires one of the two
    return keys.from_secret(api, namespace=secret[0], name=secret[1])


def _event_poster(args: argparse.Namespace, api: Any) -> EventPoster | None:
    """The Event poster, started; None when Events are off or cannot be posted."""
    from libinject.csi import events  # noqa: PLC0415

    if args.events is False or api is None:
        return None
    poster = events.EventPoster(api, node_id=args.node_id)
    poster.start()
    return poster
