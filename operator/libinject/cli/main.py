"""`libinject`: the offline commands (inject, explain, bundle, image), the CRD and `run`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from libinject import coverage
from libinject.api.crd import crd
from libinject.api.types import Mode
from libinject.cli import cluster, csi, images
from libinject.cli import explain as render
from libinject.cli.documents import dump_documents, load_documents, read_source
from libinject.cli.errors import InputError
from libinject.cli.policies import load_policies
from libinject.cli.workloads import namespace_of, pod_slots
from libinject.engine import references
from libinject.engine.decision import Decision
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import inject
from libinject.engine.settings import (
    EngineSettings,
    ImageVolumeSupport,
    LibrarySettings,
    NamespaceSettings,
)
from libinject.runtime import config, logs
from libinject.runtime.detection import Detector
from libinject.runtime.kube import Api, KubeconfigError

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.run is None:
        return _run_operator(args)
    try:
        output = args.run(args)
    except InputError as error:
        print(f"libinject: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(output)
    return 0


def _run_operator(args: argparse.Namespace) -> int:
    # Imported here: the offline commands must not pay for Kopf's import.
    from libinject.runtime import main as runtime  # noqa: PLC0415

    try:
        settings = config.load(flags=vars(args))
    except config.ConfigError as error:
        print(f"libinject: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return runtime.run(settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="libinject", description="Inject tracing libraries into Kubernetes pods."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    inject_cmd = commands.add_parser(
        "inject", help="write the manifests as the webhook would mutate them"
    )
    _offline_arguments(inject_cmd)
    inject_cmd.set_defaults(run=_run_inject)
    explain_cmd = commands.add_parser(
        "explain",
        help="say which policy wins for each pod, and why: for manifests (-f), or for objects "
        "of a running cluster (KIND/NAME, a namespace's workloads, or -A for every namespace)",
    )
    _offline_arguments(explain_cmd, live=True)
    explain_cmd.add_argument("-o", "--output", choices=["text", "json"], default="text")
    explain_cmd.set_defaults(run=_run_explain)
    crd_cmd = commands.add_parser("crd", help="print the InstrumentationPolicy CRD")
    crd_cmd.set_defaults(run=_run_crd)
    images.add_commands(commands)
    csi.add_commands(commands)
    run_cmd = commands.add_parser("run", help="run the operator (webhook and reconciler)")
    config.add_arguments(run_cmd)
    run_cmd.set_defaults(run=None)
    return parser


def _offline_arguments(cmd: argparse.ArgumentParser, *, live: bool = False) -> None:
    cmd.add_argument(
        "-f", "--filename", required=not live, help="manifests: a file, a directory or -"
    )
    cmd.add_argument(
        "--policies",
        required=not live,
        help="InstrumentationPolicy file or directory"
        + (" (with -f; a cluster's own are read from it)" if live else ""),
    )
    cmd.add_argument(
        "-n",
        "--namespace",
        help="namespace of objects that name none (default: default"
        + ("; of a cluster's objects, the kubeconfig context's)" if live else ")"),
    )
    if live:
        _live_arguments(cmd)
    cmd.add_argument(
        "--namespace-labels",
        default="libinject.dev/inject=enabled",
        help="labels of namespaces not defined in the input, as k=v,k=v "
        "(default: libinject.dev/inject=enabled)",
    )
    cmd.add_argument("--registry", default=LibrarySettings.registry, help="library image registry")
    cmd.add_argument(
        "--default-mode",
        choices=[m.value for m in Mode if m is not Mode.AUTO],
        default=LibrarySettings.default_mode.value,
        help="what a policy's 'auto' mode means without the CSI driver",
    )
    cmd.add_argument(
        "--csi-driver-registered",
        action="store_true",
        help="as on a cluster where the libinject CSI driver is registered ('auto' means csi)",
    )
    cmd.add_argument(
        "--image-volumes",
        action="store_true",
        help="as on a cluster whose API server and nodes mount image volumes ('auto' means "
        "image-volume where the CSI driver is not registered)",
    )
    cmd.add_argument(
        "--detect-languages",
        action="store_true",
        help="read each container image's config from its registry (with crane), as the "
        "operator's --detect-languages does, and give a container only the libraries of the "
        "languages its image runs",
    )
    cmd.add_argument("--crane", default="crane", help="crane, for --detect-languages")
    cmd.add_argument(
        "--mutate-unlabelled-namespaces",
        action="store_true",
        help="also inject into namespaces without the libinject.dev/inject label",
    )


def _live_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "object",
        nargs="?",
        help="KIND/NAME of the cluster (deployment/checkout, pod/web-1, cronjob/nightly); "
        "without it and without -f, every workload of the namespace",
    )
    cmd.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every workload of every namespace"
    )
    cmd.add_argument("--kubeconfig", help="the cluster's kubeconfig (default: $KUBECONFIG)")


@dataclass
class Outcome:
    documents: list[Any]
    decisions: list[tuple[str, Decision]]
    # A cluster's pods: how each policy that covers one counts it in its status, by label.
    counted: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def _process(args: argparse.Namespace, *, explain: bool) -> Outcome:
    """Read everything first (any error exits before output), then run the engine per pod."""
    index = PolicyIndex(load_policies(args.policies))
    settings = _settings(args)
    default_labels = _parse_labels(args.namespace_labels)
    sources = [(name, load_documents(name, data)) for name, data in read_source(args.filename)]
    namespaces = _declared_namespaces(doc for _, docs in sources for _, doc in docs)
    return _decide(
        sources,
        index=index,
        settings=_with_detection(args, sources, settings=settings),
        namespaces=namespaces,
        default_labels=default_labels,
        default_namespace=args.namespace or "default",
        explain=explain,
    )


def _process_cluster(args: argparse.Namespace) -> Outcome:
    """As _process, with the objects, policies, namespaces and `auto` read from the cluster."""
    if args.filename is not None or args.policies is not None:
        raise InputError(
            "-f", "give manifests (-f and --policies) or a cluster's objects, not both"
        )
    settings = _settings(args)
    try:
        api = Api(Path(args.kubeconfig) if args.kubeconfig else None)
    except KubeconfigError as error:
        raise InputError("--kubeconfig", str(error)) from None
    namespace = args.namespace or api.namespace
    view = cluster.read(
        api,
        target=args.object,
        namespace=None if args.all_namespaces else namespace,
        csi_driver=settings.libraries.csi_driver,
    )
    for why in view.invalid_policies:
        print(f"libinject: left out, as the operator leaves it: {why}", file=sys.stderr)
    libraries = replace(
        settings.libraries,
        csi_registered=settings.libraries.csi_registered or view.csi_registered,
        image_volumes=view.image_volumes,
    )
    sources = [(cluster.SOURCE, list(enumerate(view.documents, start=1)))]
    return _decide(
        sources,
        index=PolicyIndex(view.policies),
        settings=_with_detection(args, sources, settings=replace(settings, libraries=libraries)),
        namespaces=view.namespaces,
        default_labels={},
        default_namespace=namespace,
        explain=True,
        count=True,
    )


def _decide(
    sources: list[tuple[str, list[tuple[int, Any]]]],
    *,
    index: PolicyIndex,
    settings: EngineSettings,
    namespaces: dict[str, dict[str, str]],
    default_labels: dict[str, str],
    default_namespace: str,
    explain: bool,
    count: bool = False,
) -> Outcome:
    """Each pod's decision; with `count`, also how the policies covering a Pod object count it
    (read before the engine writes its own record on the copy)."""
    outcome = Outcome([], [])
    for name, documents in sources:
        for number, doc in documents:
            for slot in list(pod_slots(doc, source=name, document=number)):
                ns_name = namespace_of(slot.owner, default_namespace)
                namespace = Namespace(ns_name, namespaces.get(ns_name, default_labels))
                if count and doc.get("kind") == "Pod":
                    outcome.counted[slot.label] = _counted(
                        slot.pod, namespace=namespace, index=index, settings=settings.namespaces
                    )
                result = inject(
                    slot.pod,
                    namespace=namespace,
                    index=index,
                    settings=settings,
                    explain=explain,
                    workload=slot.workload,
                )
                slot.replace(result.pod)
                outcome.decisions.append((slot.label, result.decision))
            outcome.documents.append(doc)
    return outcome


def _counted(
    pod: dict[str, Any], *, namespace: Namespace, index: PolicyIndex, settings: NamespaceSettings
) -> tuple[tuple[str, str], ...]:
    """(policy, state) as each policy covering the pod counts it (libinject.coverage)."""
    summary = coverage.summarize(pod)  # a cluster's pod names its namespace
    if summary is None:
        return ()
    labels = {namespace.name: dict(namespace.labels)}
    chosen = coverage.winners(summary, index=index, namespaces=labels, settings=settings)
    return coverage.states(summary, chosen)


def _with_detection(
    args: argparse.Namespace,
    sources: list[tuple[str, list[tuple[int, Any]]]],
    *,
    settings: EngineSettings,
) -> EngineSettings:
    """`settings` with what the configs of every image the pods name say (with
    --detect-languages), read before any pod is decided: the operator learns them one admission
    late, here nothing waits."""
    if not args.detect_languages:
        return settings
    # The detector logs each read as the operator's does; here the output says it all, and
    # stdout is the manifests'.
    logs.configure("console", level=logging.WARNING)
    detector = Detector(crane=Path(args.crane), capacity=sys.maxsize, pending_limit=sys.maxsize)
    for name, documents in sources:
        for number, doc in documents:
            for slot in pod_slots(doc, source=name, document=number):
                detector.want(slot.pod)
    asyncio.run(detector.fetch_wanted())
    libraries = replace(settings.libraries, detection=detector.table)
    return replace(settings, libraries=libraries)


def _declared_namespaces(documents: Any) -> dict[str, dict[str, str]]:
    """Namespace objects in the input give their own labels (their shape is checked already)."""
    return {
        doc["metadata"]["name"]: dict(doc["metadata"].get("labels") or {})
        for doc in documents
        if doc.get("kind") == "Namespace" and (doc.get("metadata") or {}).get("name")
    }


def _settings(args: argparse.Namespace) -> EngineSettings:
    return EngineSettings(
        libraries=LibrarySettings(
            registry=_registry(args.registry),
            default_mode=Mode(args.default_mode),
            csi_registered=args.csi_driver_registered,
            image_volumes=ImageVolumeSupport(available=True, reason="as --image-volumes says")
            if args.image_volumes
            else ImageVolumeSupport(),
        ),
        namespaces=NamespaceSettings(mutate_unlabelled=args.mutate_unlabelled_namespaces),
    )


def _registry(text: str) -> str:
    try:
        return references.check_prefix(text)
    except references.ReferenceError as error:
        raise InputError("--registry", str(error)) from None


def _parse_labels(text: str) -> dict[str, str]:
    labels = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError("--namespace-labels", f"{pair!r} is not key=value")
        labels[key] = value
    return labels


# The CLI holds no signing key (only the operator and the CSI plugin do): say so where it wrote
# a CSI volume the plugin will refuse.
UNSIGNED_CSI = (
    "{label}: its {languages} CSI volume is unsigned (the offline CLI has no signing key) and "
    "the libinject CSI plugin will refuse it; let the webhook inject this pod, or choose "
    "--default-mode init-container or image-volume"
)


def _run_inject(args: argparse.Namespace) -> str:
    outcome = _process(args, explain=False)
    for label, decision in outcome.decisions:
        print(f"{label}: {decision.reason}", file=sys.stderr)
        csi = [str(choice.language) for choice in decision.injected if choice.mode is Mode.CSI]
        if csi:
            print(UNSIGNED_CSI.format(label=label, languages="/".join(csi)), file=sys.stderr)
    return dump_documents(outcome.documents)


def _run_explain(args: argparse.Namespace) -> str:
    live = args.object is not None or args.all_namespaces or args.filename is None
    if not live and args.policies is None:
        raise InputError("--policies", "required with -f (the policies the manifests meet)")
    outcome = _process_cluster(args) if live else _process(args, explain=True)
    rendered = [(label, d, outcome.counted.get(label)) for label, d in outcome.decisions]
    if args.output == "json":
        return render.dumps([render.to_json(*r[:2], counted=r[2]) for r in rendered]) + "\n"
    return "\n\n".join(render.to_text(*r[:2], counted=r[2]) for r in rendered) + "\n"


def _run_crd(args: argparse.Namespace) -> str:
    del args
    return dump_documents([crd()])


if __name__ == "__main__":
    sys.exit(main())
