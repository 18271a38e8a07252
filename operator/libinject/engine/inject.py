"""The engine's one entry point: pod + namespace + policies + settings -> patch and decision.

Pure: no I/O, no clients, no Kopf. The webhook and the CLI are shells around `inject`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from libinject.api.types import InstrumentationPolicy, Language, Mode, is_version
from libinject.engine import containers, delivery, environment, patch, shape
from libinject.engine.choice import choose, explain_candidates, library_of
from libinject.engine.decision import (
    Code,
    ContainerVerdict,
    Decision,
    LanguageDecision,
    LibraryChoice,
    Reason,
)
from libinject.engine.detection import NOT_KNOWN, Detected
from libinject.engine.digests import pinned
from libinject.engine.eligibility import namespace_reason, pod_reason
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.languages import OWN_TRACERS, load_rules
from libinject.engine.limits import size_reason
from libinject.engine.modes import csi_pulls, requested_mode
from libinject.engine.owners import Workload, workload_of
from libinject.engine.patch import Operation
from libinject.engine.resources import Resources, copy_resources, pod_share
from libinject.engine.settings import EngineSettings, LibrarySettings
from libinject.engine.versions import (
    container_version_annotation,
    container_versions,
    image_for,
    resolve_version,
)

INJECTED_ANNOTATION = "libinject.dev/injected"
EXCLUDE_CONTAINERS_ANNOTATION = "libinject.dev/exclude-containers"
SKIPPED_ANNOTATION = "libinject.dev/injection-skipped"
INSTRUMENTED_LABEL = "libinject.dev/instrumented"
PSA_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
MALFORMED_NAME = "<malformed pod>"  # the decision's pod name when the metadata is unreadable


@dataclass(frozen=True)
class Result:
    """The mutated pod, the patch from the input to it, and why.

    `pod` shares every subtree the engine left unchanged with the input, and `patch` holds
    `pod`'s own values: treat the input, `pod` and `patch` as read-only.
    """

    pod: dict[str, Any]
    patch: list[Operation]
    decision: Decision


def inject(
    pod: Mapping[str, Any],
    *,
    namespace: Namespace,
    index: PolicyIndex,
    settings: EngineSettings,
    explain: bool = False,
    workload: Workload | None = None,
) -> Result:
    """Decide for one pod (or pod template) and return the mutated copy, its patch and why.

    With `explain`, every policy's verdict is recorded too (slower: it visits every policy).
    `workload` is the one whose template `pod` is (the CLI's documents); a pod the webhook sees
    names its own in its ownerReferences, which win.
    """
    ns_reason = namespace_reason(namespace, settings.namespaces)
    if ns_reason.code is not Code.NAMESPACE_ENABLED:  # never touched, not even with a record
        return Result(dict(pod), [], Decision(pod_name(pod), namespace.name, ns_reason))
    # Size first: it reads only list lengths, so a pod too large to decide costs no more. Then
    # the shape: everything after it trusts the type of what it reads.
    refused = size_reason(pod) or _malformed(pod) or pod_reason(pod)
    if refused is not None:
        return skip(pod, namespace=namespace.name, reason=refused)
    name = pod_name(pod)
    mutated = _editable_copy(pod)
    ops: list[Operation] = []
    labels = _labels(pod)
    winners = choose(index.plan(namespace), labels)
    owner = workload_of(pod) or workload
    languages = _inject_all(
        mutated, ops=ops, winners=winners, namespace=namespace, settings=settings, workload=owner
    )
    if explain:
        languages = _with_candidates(index, namespace, labels, winners, languages)
    injected = [d.injected for d in languages if d.injected is not None]
    warnings = _env_from_warnings(pod, injected) + _unknown_exclusions(pod)
    service_from = None
    if injected and owner is not None and environment.service_tags(labels).service is None:
        service_from = f"{owner.kind} {owner.name}"
    outcome = _outcome(languages)
    decision = Decision(name, namespace.name, outcome, tuple(languages), warnings, service_from)
    return _finish(mutated, decision, ops)


def skip(pod: Mapping[str, Any], *, namespace: str, reason: Reason) -> Result:
    """The pod as it came, plus the skip record (annotation and label) saying why: for a
    refusal made before the engine could decide, such as an operator that is not ready. A pod
    whose metadata cannot hold the record is left exactly as it came."""
    decision = Decision(pod_name(pod), namespace, reason)
    if not shape.recordable(pod):
        return Result(dict(pod), [], decision)
    return _finish(dict(pod), decision, [])


def _malformed(pod: Mapping[str, Any]) -> Reason | None:
    """MalformedPod naming the first field of the wrong type, else None."""
    problem = shape.pod_problem(pod)
    return None if problem is None else Reason(Code.MALFORMED_POD, str(problem), problem.path)


def _editable_copy(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A copy that owns the spec and the container dicts the engine edits, and shares everything
    else with the input; below them, an edit copies what it changes first (`engine.patch`, and
    `engine.containers.Edits` for a container's env and mounts)."""
    copy = dict(pod)
    if isinstance(pod.get("spec"), Mapping):
        spec = copy["spec"] = dict(pod["spec"])
        for kind in ("containers", "initContainers"):
            if isinstance(spec.get(kind), list):
                spec[kind] = [dict(container) for container in spec[kind]]
    return copy


def pod_name(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    if not isinstance(meta, Mapping):
        return MALFORMED_NAME
    return str(meta.get("name") or (meta.get("generateName") or "<pod template>"))


# A container that takes the library: its edits, its load variables' values, and the delivery
# of its version.
Target = tuple[containers.Edits, dict[str, str], delivery.Delivery]


@dataclass(frozen=True)
class _PodContext:
    """What the delivery of every library into one pod shares, computed once per pod."""

    pod: dict[str, Any]
    namespace: Namespace
    settings: EngineSettings
    ours: frozenset[str]  # the object names of all libraries this pod may get
    share: Resources  # what the pod already reserves, for the copy containers
    tags: environment.Tags
    token_mount: dict[str, Any] | None  # the ServiceAccount plugin's, for the copy containers
    excluded: frozenset[str]  # the containers the pod's exclude-containers annotation names
    # The edits of each container a library may go into, by name: made once per pod, each one
    # edited by every library in turn.
    apps: dict[str, containers.Edits]  # the app containers
    inits: dict[str, containers.Edits]  # the user's init containers (ours left out)
    # The verdicts for a policy without containerNames, which names every app container: the
    # init containers not named so, the same for every library.
    unnamed: tuple[ContainerVerdict, ...]
    # The verdict of an instrumented container, by name: one object for every library.
    instrumented: dict[str, ContainerVerdict] = field(default_factory=dict)


def _pod_context(
    pod: dict[str, Any],
    *,
    winners: Mapping[Language, InstrumentationPolicy],
    namespace: Namespace,
    settings: EngineSettings,
    workload: Workload | None,
) -> _PodContext:
    spec = pod["spec"]
    ours = frozenset(delivery.object_name(language) for language in winners) | _version_objects(
        pod, languages=winners
    )
    inits = {
        c["name"]: containers.Edits(c)
        for c in spec.get("initContainers") or ()
        if c["name"] not in ours
    }
    apps = {c["name"]: containers.Edits(c) for c in spec["containers"]}
    return _PodContext(
        pod=pod,
        namespace=namespace,
        settings=settings,
        ours=ours,
        share=pod_share(spec, ours),
        tags=environment.service_tags(_labels(pod), workload=workload),
        token_mount=delivery.token_mount(spec),
        excluded=excluded_containers(pod),
        apps=apps,
        inits=inits,
        unnamed=tuple(_not_named(name) for name in inits if name not in apps),
    )


def _version_objects(pod: Mapping[str, Any], *, languages: Iterable[Language]) -> frozenset[str]:
    """The names of the objects a container's own version of each language would have: ours
    too, never a user's init container to instrument (a request refused still names one, which
    no user's container has)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if not annotations:
        return frozenset()
    names = [
        c["name"] for kind in ("containers", "initContainers") for c in pod["spec"].get(kind) or ()
    ]
    return frozenset(
        delivery.object_name(language, version)
        for language in languages
        for name in names
        if is_version(version := annotations.get(container_version_annotation(name, language)))
    )


def _inject_all(
    pod: dict[str, Any],
    *,
    ops: list[Operation],
    winners: Mapping[Language, InstrumentationPolicy],
    namespace: Namespace,
    settings: EngineSettings,
    workload: Workload | None,
) -> list[LanguageDecision]:
    """Deliver each library in language order; then write every container's edits, at the
    paths the containers have once all the copy containers are in."""
    if not winners:
        return []
    context = _pod_context(
        pod, winners=winners, namespace=namespace, settings=settings, workload=workload
    )
    decisions = []
    for language, policy in sorted(winners.items()):
        choice = _choose_library(
            pod, policy, language, settings=settings, names=[*context.apps, *context.inits]
        )
        if choice.skipped is None:
            choice = _deliver(context, choice, policy, ops=ops)
        decisions.append(LanguageDecision(language, choice))
    edits = [*context.inits.values(), *context.apps.values()]
    containers.write(edits, ops, paths=_container_paths(pod["spec"]))
    return decisions


def _choose_library(
    pod: Mapping[str, Any],
    policy: InstrumentationPolicy,
    language: Language,
    *,
    settings: EngineSettings,
    names: list[str],
) -> LibraryChoice:
    library = library_of(policy, language)
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    version, version_reason = resolve_version(library, annotations)
    own, own_reasons = container_versions(library, annotations, names=names, default=version)
    mode, mode_reason = resolve_mode(policy.spec.injection.mode, settings.libraries)
    image = image_for(library, version=version, registry=settings.libraries.registry)
    pin = pinned(image, settings.libraries.digests)
    requested, mode_request = requested_mode(
        policy.spec.injection, annotations, image=pin.image, libraries=settings.libraries
    )
    if requested is not None:
        mode, mode_reason = requested, None
    elif mode is Mode.CSI and policy.spec.injection.mode is Mode.AUTO:
        mode, mode_reason = _csi_or_copy(pin.image, why=mode_reason, libraries=settings.libraries)
    return LibraryChoice(
        language=language,
        flavor=library.flavor,
        version=version,
        image=pin.image,
        mode=mode,
        policy=policy.name,
        spec_hash=policy.spec_hash,
        version_reason=version_reason,
        container_versions=tuple(own.items()),
        container_version_reasons=tuple(own_reasons.items()),
        mode_reason=mode_reason,
        mode_request=mode_request,
        digest=pin.digest,
        digest_note=pin.note,
        env=policy.spec.env,
        tracing=policy.spec.tracing,
        skipped=pin.refused,
    )


def resolve_mode(mode: Mode, libraries: LibrarySettings) -> tuple[Mode, str | None]:
    """What a policy's mode means here, and for `auto` why: the cheapest the cluster serves,
    csi once our driver is registered, else image volumes where every node mounts them, else
    the operator's default mode."""
    if mode is not Mode.AUTO:
        return mode, None
    if libraries.csi_registered:
        return Mode.CSI, f"the CSI driver {libraries.csi_driver} is registered"
    images = libraries.image_volumes
    if images.available and libraries.auto_image_volumes:
        return Mode.IMAGE_VOLUME, f"no CSI driver; image volumes: {images.reason}"
    if images.available:
        why = "image volumes are turned off for auto (autoImageVolumes)"
    else:
        why = f"no image volumes: {images.reason}"
    return libraries.default_mode, f"no CSI driver; {why}; the default mode"


def _csi_or_copy(image: str, *, why: str | None, libraries: LibrarySettings) -> tuple[Mode, str]:
    """What `auto` means for an image the CSI plugin may not serve (modes.csi_pulls): a copy
    container serves it."""
    if csi_pulls(image, libraries=libraries):
        return Mode.CSI, why or ""
    return Mode.INIT_CONTAINER, (
        f"{why}, but its plugin pulls only under {libraries.registry} and {image} is not there: "
        "init-container"
    )


def _deliver(
    context: _PodContext,
    choice: LibraryChoice,
    policy: InstrumentationPolicy,
    *,
    ops: list[Operation],
) -> LibraryChoice:
    """Check everything for one library, then edit the pod (the pod-level objects' operations
    into `ops`, the containers' into their edits), or record why not."""
    spec = context.pod["spec"]
    settings = context.settings
    resources, too_small = copy_resources(
        context.share, override=policy.spec.injection.resources, minimums=settings.init_containers
    )
    security_context, not_restricted = _copy_security_context(context, policy)
    plan_for = functools.partial(
        delivery.delivery,
        language=choice.language,
        mode=choice.mode,
        namespace=context.namespace.name,
        size_limit=policy.spec.injection.size_limit,
        resources=resources,
        security_context=security_context,
        settings=settings.libraries,
        token_mount=context.token_mount,
    )
    plans = {choice.version: plan_for(image=choice.image)}
    own = dict(choice.container_versions)
    for version in sorted(set(own.values())):
        image = _version_image(policy, choice, version=version, libraries=settings.libraries)
        plans[version] = plan_for(version=version, image=image)
    targets, verdicts, unsure = _containers(
        context, choice, policy=policy, plan_of=lambda name: plans[own.get(name, choice.version)]
    )
    choice = replace(choice, containers=tuple(verdicts), not_detected=tuple(unsure))
    used = [plan for plan in plans.values() if any(target[2] is plan for target in targets)]
    skipped = _pod_level_skip(
        spec, used, targets=targets, verdicts=verdicts, refusals=(too_small, not_restricted)
    )
    if skipped is not None:
        return replace(choice, skipped=skipped)
    for plan in used:
        _add_pod_objects(spec, plan, ours=context.ours, ops=ops)
    env_for = environment.library_env(
        choice.flavor,
        language=choice.language,
        spec=policy.spec,
        defaults=settings.agent,
        tags=context.tags,
    )
    for edit, values, plan in targets:
        edit.apply(values=values, mount=plan.mount, env=env_for(edit.container["name"]))
    return choice


def _version_image(
    policy: InstrumentationPolicy,
    choice: LibraryChoice,
    *,
    version: str,
    libraries: LibrarySettings,
) -> str:
    """The image of a version a container asked for: a default image (a policy that names its
    own image grants no other version), pinned where the operator resolved it."""
    library = library_of(policy, choice.language)
    return pinned(
        image_for(library, version=version, registry=libraries.registry), libraries.digests
    ).image


def _copy_security_context(
    context: _PodContext, policy: InstrumentationPolicy
) -> tuple[dict[str, Any], Reason | None]:
    """The copy container's securityContext: libinject's, or the policy's as given; and why
    the policy's cannot go in a namespace that enforces restricted."""
    pod_context = context.pod["spec"].get("securityContext") or {}
    restricted = context.namespace.labels.get(PSA_ENFORCE_LABEL) == "restricted"
    given = policy.spec.injection.security_context
    if given is None:
        ours = delivery.security_context(
            restricted=restricted, pod_run_as_user=pod_context.get("runAsUser")
        )
        return ours, None
    security_context = delivery.given_security_context(given)
    failures = delivery.restricted_failures(security_context, pod=pod_context) if restricted else []
    if not failures:
        return security_context, None
    why = (
        "the policy's securityContext for the copy container would fail the namespace's "
        f"restricted Pod Security: {'; '.join(failures)}"
    )
    return security_context, Reason(Code.SECURITY_CONTEXT_NOT_RESTRICTED, why)


def _labels(pod: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = (pod.get("metadata") or {}).get("labels") or {}
    return labels


def _containers(
    context: _PodContext,
    choice: LibraryChoice,
    *,
    policy: InstrumentationPolicy,
    plan_of: Callable[[str], delivery.Delivery],
) -> tuple[list[Target], list[ContainerVerdict], list[tuple[str, str]]]:
    """Which containers get the library (with their load values and the delivery of their
    version, `plan_of` them), a verdict for each, and those it goes into without a detection of
    their language to go by (with why not)."""
    rules = load_rules(choice.language, choice.flavor)
    loads: dict[str, containers.Load] = {}  # by mount path: one per version in the pod
    own = OWN_TRACERS.get(choice.language)
    wanted = policy.spec.container_names
    verdicts = _unnamed(context, wanted) if wanted else list(context.unnamed)
    targets = []
    unsure = []
    for name in wanted or context.apps:
        edit = context.apps.get(name) or context.inits.get(name)
        if name in context.excluded:
            verdicts.append(ContainerVerdict(name, _excluded(name)))
            continue
        if edit is None:
            missing = Reason(
                Code.CONTAINER_NAME_MISSING, "named in containerNames but absent", name
            )
            verdicts.append(ContainerVerdict(name, missing))
            continue
        detected = _detected(context, edit.container, policy=policy)
        if detected is not None and _runs_others(detected, choice.language):
            verdicts.append(ContainerVerdict(name, _other_languages(detected)))
            continue
        plan = plan_of(name)
        root = plan.mount["mountPath"]
        load = loads.get(root) or loads.setdefault(root, containers.prepare(rules, root=root))
        values = containers.load_values(edit, load=load, mount=plan.mount, own=own)
        if isinstance(values, Reason):
            verdicts.append(ContainerVerdict(name, values))
        else:
            verdicts.append(context.instrumented.get(name) or _instrumented(context, name))
            targets.append((edit, values, plan))
            if detected is not None and not detected.languages:
                unsure.append((name, detected.evidence))
    return targets, verdicts, unsure


def _detected(
    context: _PodContext, container: Mapping[str, Any], *, policy: InstrumentationPolicy
) -> Detected | None:
    """What the container's image config says, NOT_KNOWN when the operator has not read it
    yet; None where nothing is detected (the operator's switch, or the policy's)."""
    table = context.settings.libraries.detection
    if table is None or not policy.spec.detect_languages:
        return None
    return table.get(str(container.get("image")), NOT_KNOWN)


def _runs_others(detected: Detected, language: Language) -> bool:
    """Whether the image names languages, and not this one (one that names none may run any)."""
    return bool(detected.languages) and language not in detected.languages


def _other_languages(detected: Detected) -> Reason:
    languages = ", ".join(sorted(detected.languages))
    return Reason(Code.LANGUAGE_NOT_DETECTED, f"its image runs {languages} ({detected.evidence})")


def _unnamed(context: _PodContext, wanted: tuple[str, ...]) -> list[ContainerVerdict]:
    """The verdicts of the containers a policy's containerNames leaves out."""
    named = frozenset(wanted)  # a set: membership for each container must not scan the names
    return [_not_named(name) for name in {**context.inits, **context.apps} if name not in named]


def excluded_containers(pod: Mapping[str, Any]) -> frozenset[str]:
    """The container names the pod's exclude-containers annotation lists (comma-separated; a
    value that is no text names none: the API server allows only text, a manifest may not)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(EXCLUDE_CONTAINERS_ANNOTATION)
    if not isinstance(value, str):
        return frozenset()
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def _excluded(name: str) -> Reason:
    why = f"excluded by the pod's {EXCLUDE_CONTAINERS_ANNOTATION} annotation"
    return Reason(Code.CONTAINER_EXCLUDED, why, name)


def _not_named(name: str) -> ContainerVerdict:
    return ContainerVerdict(name, Reason(Code.CONTAINER_NOT_NAMED, "not in containerNames", name))


def _instrumented(context: _PodContext, name: str) -> ContainerVerdict:
    """The verdict is data, equal for every library: made for the first library that goes into
    the container, then found in `context.instrumented`."""
    reason = Reason(Code.CONTAINER_INSTRUMENTED, "instrumented", name)
    verdict = context.instrumented[name] = ContainerVerdict(name, reason)
    return verdict


def _pod_level_skip(
    spec: Mapping[str, Any],
    plans: list[delivery.Delivery],
    *,
    targets: list[Target],
    verdicts: list[ContainerVerdict],
    refusals: tuple[Reason | None, ...],
) -> Reason | None:
    """Why the library cannot go in at all (in any of its versions `plans`); `refusals` are the
    copy containers' own, which count only where there are some."""
    if not targets:
        return Reason(Code.NO_CONTAINER_SELECTED, _none_can_take(verdicts))
    if plans[0].init_container is not None:  # every version comes the same way
        refused = next((reason for reason in refusals if reason is not None), None)
        if refused is not None:
            return refused
    return next(filter(None, (_name_taken(spec, plan) for plan in plans)), None)


def _name_taken(spec: Mapping[str, Any], plan: delivery.Delivery) -> Reason | None:
    """NameTaken where the pod has a volume or container of the delivery's name that is not
    the one it would add (a pod that comes back injected has exactly those)."""
    name = plan.volume["name"]
    for volume in spec.get("volumes") or ():
        if volume.get("name") == name and not covers(volume, plan.volume):
            return Reason(Code.NAME_TAKEN, f"the pod already has a different volume named {name}")
    if plan.init_container is not None:
        for container in _all_containers(spec):
            if container.get("name") == name and not covers(container, plan.init_container):
                return Reason(Code.NAME_TAKEN, f"the pod already has a container named {name}")
    return None


def _none_can_take(verdicts: list[ContainerVerdict]) -> str:
    """Why no container took the library: the first container's own reason (a pod with one
    container says all there is) and how many more, so the message stays short."""
    refused = [v for v in verdicts if v.reason.code is not Code.CONTAINER_NOT_NAMED]
    if not refused:
        return "no container can take the library"
    more = f"; and {len(refused) - 1} more" if len(refused) > 1 else ""
    return f"no container can take the library ({refused[0].container}: {refused[0].reason}{more})"


def covers(existing: Any, planned: Any) -> bool:
    """Whether `existing` is what we would add: every field we set, with our value. Admission
    adds to what we add (defaults such as terminationMessagePath; the ServiceAccount plugin's
    token mount in every container), so a pod that comes back through reinvocation must still be
    recognised as ours, not as a clash or a missing part. Lists of objects may gain items; lists
    of values (a command) must be equal."""
    if isinstance(existing, Mapping) and isinstance(planned, Mapping):
        return all(key in existing and covers(existing[key], planned[key]) for key in planned)
    if isinstance(existing, list) and isinstance(planned, list) and existing != planned:
        objects = all(isinstance(item, Mapping) for item in (*existing, *planned))
        return objects and all(any(covers(e, p) for e in existing) for p in planned)
    return bool(existing == planned)


def _env_from_warnings(pod: Mapping[str, Any], injected: list[LibraryChoice]) -> tuple[str, ...]:
    # Only containers with envFrom warn: most pods have none, and then no choice is visited.
    with_env_from = {c["name"]: c for c in _all_containers(pod["spec"]) if c.get("envFrom")}
    return tuple(
        containers.env_from_warning(with_env_from[name], load_rules(choice.language, choice.flavor))
        for choice in injected
        for name in choice.instrumented
        if name in with_env_from
    )


def _unknown_exclusions(pod: Mapping[str, Any]) -> tuple[str, ...]:
    """A name the exclude-containers annotation lists that no container has: a typo would
    otherwise leave the container it meant instrumented without a word."""
    names = {c.get("name") for c in _all_containers(pod["spec"])}
    unknown = sorted(excluded_containers(pod) - names)
    if not unknown:
        return ()
    listed = ", ".join(unknown)
    return (f"{EXCLUDE_CONTAINERS_ANNOTATION} names {listed}: no container of this pod",)


def _all_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    kinds = ("initContainers", "containers", "ephemeralContainers")
    return [c for kind in kinds for c in spec.get(kind) or ()]


def _add_pod_objects(
    spec: dict[str, Any],
    plan: delivery.Delivery,
    *,
    ours: frozenset[str],
    ops: list[Operation],
) -> None:
    """Add the volume, and put the copy container first, after our other copy containers:
    running before every user init container and native sidecar, it needs no extra resources."""
    if not _has(spec.get("volumes") or [], plan.volume):
        patch.append(ops, spec, "volumes", [plan.volume], at="/spec")
    init = plan.init_container
    inits = spec.get("initContainers") or []
    if init is not None and not _has(inits, init):
        position = 0
        while position < len(inits) and inits[position].get("name") in ours:
            position += 1
        patch.insert(ops, spec, "initContainers", init, index=position, at="/spec")


def _container_paths(spec: Mapping[str, Any]) -> dict[int, str]:
    """The path of every container the engine may edit, by identity (the engine's own copies,
    alive while the map is): where each one is now, after the copy containers added so far."""
    return {
        id(container): f"/spec/{kind}/{index}"
        for kind in ("initContainers", "containers")
        for index, container in enumerate(spec.get(kind) or ())
    }


def _has(items: list[Any], planned: Mapping[str, Any]) -> bool:
    """Whether one of `items` covers `planned`; only those of its name can (a cheap test first)."""
    name = planned["name"]
    return any(item.get("name") == name and covers(item, planned) for item in items)


def _with_candidates(
    index: PolicyIndex,
    namespace: Namespace,
    labels: Mapping[str, str],
    winners: Mapping[Language, InstrumentationPolicy],
    languages: list[LanguageDecision],
) -> list[LanguageDecision]:
    chosen = {d.language: d.choice for d in languages}
    return [
        replace(d, choice=chosen.get(d.language))
        for d in explain_candidates(index, namespace=namespace, pod_labels=labels, winners=winners)
    ]


def _outcome(languages: list[LanguageDecision]) -> Reason:
    """The pod-level reason: what was injected, else why each language was skipped."""
    injected = [d.injected for d in languages if d.injected is not None]
    if injected:
        summary = ", ".join(f"{c.language} {c.version} from {c.policy}" for c in injected)
        return Reason(Code.INJECTED, summary)
    return _skipped_languages(languages) or Reason(
        Code.NO_MATCHING_POLICY, "no policy selects this pod for any language"
    )


def _skipped_languages(languages: Sequence[LanguageDecision]) -> Reason | None:
    """Why each language a policy chose for this pod was not delivered, or None."""
    skips = [(d.language, d.choice.skipped) for d in languages if d.choice and d.choice.skipped]
    if not skips:
        return None
    message = "; ".join(f"{language}: {reason}" for language, reason in skips)
    return Reason(skips[0][1].code, message)


def _finish(pod: dict[str, Any], decision: Decision, ops: list[Operation]) -> Result:
    """Record the outcome on the pod (the engine's copy of it) and in the patch."""
    annotations: dict[str, str | None]
    if decision.injected:
        # A language that was chosen but could go into no container is said beside the others.
        skipped = _skipped_languages(decision.languages)
        annotations = {
            INJECTED_ANNOTATION: _injected_record(decision),
            SKIPPED_ANNOTATION: None if skipped is None else str(skipped),
        }
    else:
        annotations = {SKIPPED_ANNOTATION: str(decision.reason)}
    labels = {INSTRUMENTED_LABEL: "true" if decision.injected else "false"}
    patch.update(ops, pod, "metadata", {"annotations": annotations, "labels": labels}, at="")
    return Result(pod, ops, decision)


def _container_versions_record(choice: LibraryChoice) -> dict[str, dict[str, str]]:
    """The versions containers asked for: those they got (containerVersions), those refused."""
    instrumented = set(choice.instrumented)
    got = {name: v for name, v in choice.container_versions if name in instrumented}
    refused = {
        name: reason.message
        for name, reason in choice.container_version_reasons
        if reason.code is Code.VERSION_NOT_ALLOWED
    }
    record = {}
    if got:
        record["containerVersions"] = got
    if refused:
        record["containerVersionsRefused"] = refused
    return record


def _injected_record(decision: Decision) -> str:
    records = []
    for choice in decision.injected:
        record: dict[str, Any] = {
            "language": choice.language.value,
            "flavor": choice.flavor.value,
            "version": choice.version,
            "policy": choice.policy,
            "specHash": choice.spec_hash,
            "mode": choice.mode.value,
            "containers": list(choice.instrumented),
        }
        if choice.mode_reason is not None:
            record["modeReason"] = choice.mode_reason
        if choice.digest is not None:
            record["digest"] = choice.digest
        if choice.digest_note is not None:
            record["digestNote"] = choice.digest_note
        skipped = {
            v.container: v.reason.code.value
            for v in choice.containers
            if v.reason.code not in (Code.CONTAINER_INSTRUMENTED, Code.CONTAINER_NOT_NAMED)
        }
        if skipped:
            record["skippedContainers"] = skipped
        if choice.not_detected:
            record["notDetected"] = dict(choice.not_detected)
        if (
            choice.version_reason is not None
            and choice.version_reason.code is Code.VERSION_NOT_ALLOWED
        ):
            record["versionRefused"] = choice.version_reason.message
        record.update(_container_versions_record(choice))
        if choice.mode_request is not None:
            key = (
                "modeRequested"
                if choice.mode_request.code is Code.MODE_REQUESTED
                else "modeRefused"
            )
            record[key] = choice.mode_request.message
        records.append(record)
    return json.dumps(records, separators=(",", ":"), sort_keys=True)
