"""Property tests: `inject` over generated pods, namespaces, policies and settings.

The strategies build valid Kubernetes inputs (unique container and volume names, unique mount
paths, mounts of existing volumes) that stress the engine's edges: load variables set by the user
(literal, empty, equal to ours, or from a source), mounts and volumes and containers that take our
names, native sidecars, ephemeral containers, resources small enough to refuse the copy step, and
version requests. Each property then holds for every generated input.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonpatch
import jsonpointer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libinject.api.parse import InvalidPolicyError, parse_policy
from libinject.api.types import LOAD_VARIABLES, InstrumentationPolicy, Language, Mode
from libinject.engine.index import Namespace, PolicyIndex
from libinject.engine.inject import (
    INJECTED_ANNOTATION,
    INSTRUMENTED_LABEL,
    SKIPPED_ANNOTATION,
    Result,
    inject,
)
from libinject.engine.languages import LOAD_RULES, Join
from libinject.engine.patch import escape
from libinject.engine.settings import EngineSettings, LibrarySettings, NamespaceSettings

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LANGUAGES = [language.value for language in Language]
MOUNT_ROOT = LibrarySettings().mount_root
OWNED_ANNOTATIONS = {INJECTED_ANNOTATION, SKIPPED_ANNOTATION}
OWNED_LABELS = {INSTRUMENTED_LABEL}
KINDS = ("initContainers", "containers", "ephemeralContainers")
JOINS = {rule.name: rule.join for rules in LOAD_RULES.values() for rule in rules}

# Names a user may pick, including the ones the engine uses for its own objects.
OUR_NAMES = [f"libinject-{language}" for language in LANGUAGES]
CONTAINER_NAMES = ["app", "web", "worker", "api", "proxy", "migrate", "debug", "c1", "c2", "c3"]
VOLUME_NAMES = ["data", "config", "cache", "tmp", "secrets"]
MOUNT_PATHS = ["/data", "/config", "/tmp", "/var/run", "/opt/libinject", "/libinject-target"] + [
    f"{MOUNT_ROOT}/{language}" for language in LANGUAGES
]
OTHER_ENV = ["FOO", "BAR", "DD_SERVICE", "DD_AGENT_HOST", "OTEL_SERVICE_NAME", "DD_TRACE_DEBUG"]
# Values equal to ours (so EXACT variables can match) and values that are already combined.
OUR_VALUES = sorted(
    {
        rule.for_root(f"{MOUNT_ROOT}/{language}")
        for (language, _), rules in LOAD_RULES.items()
        for rule in rules
    }
)
LITERALS = ["", "1", "0", "/app/lib", "/a:/b", "-Xmx1g", "--max-old-space-size=512", " ", ":"]
LABEL_KEYS = [
    "app",
    "tier",
    "team",
    "tags.datadoghq.com/service",
    "tags.datadoghq.com/env",
    "tags.datadoghq.com/version",
    "app.kubernetes.io/name",
    "app.kubernetes.io/version",
]
LABEL_VALUES = ["web", "api", "a", "b", "v1"]
VERSIONS = ["1", "1.2", "1.2.3", "2.0.0", "2.9.1", "3.12.0", "1.40.0-rc.1"]
VERSION_GLOBS = ["*", "1.*", "2.*", "2.9.*", "3.*", "1.2.3"]


# --- pods ---------------------------------------------------------------------------------------


def env_values(name: str) -> st.SearchStrategy[dict[str, Any]]:
    value_from = st.sampled_from(
        [
            {"fieldRef": {"fieldPath": "metadata.name"}},
            {"secretKeyRef": {"name": "s", "key": "k"}},
            {"configMapKeyRef": {"name": "cm", "key": name.lower()}},
        ]
    )
    literal = st.one_of(
        st.sampled_from(LITERALS),
        st.sampled_from(OUR_VALUES),
        st.text(alphabet="ab/:-= 1", max_size=12),
    )
    return st.one_of(
        literal.map(lambda value: {"name": name, "value": value}),
        value_from.map(lambda source: {"name": name, "valueFrom": source}),
        st.just({"name": name}),
    )


@st.composite
def env_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(
        st.lists(
            st.sampled_from(list(LOAD_VARIABLES) + OTHER_ENV),
            max_size=6,
            unique=draw(st.booleans()),
        )
    )
    return [draw(env_values(name)) for name in names]


def quantity_maps() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            # Small amounts too: below the copy step's floor (50m, 100Mi) it is refused.
            "cpu": st.one_of(st.integers(1, 60), st.integers(1, 4000)).map(lambda n: f"{n}m"),
            "memory": st.one_of(st.integers(1, 120), st.integers(1, 4096)).map(lambda n: f"{n}Mi"),
        },
    )


def resource_requirements() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {}, optional={"requests": quantity_maps(), "limits": quantity_maps()}
    )


@st.composite
def containers(
    draw: st.DrawFn,
    name: str,
    volumes: list[str],
    *,
    sidecar: bool = False,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": f"registry.example/{name}:1"}
    env = draw(env_lists())
    if env:
        container["env"] = env
    paths = draw(st.lists(st.sampled_from(MOUNT_PATHS), unique=True, max_size=3))
    if paths and volumes:
        container["volumeMounts"] = [
            {"name": draw(st.sampled_from(volumes)), "mountPath": path}
            | ({"readOnly": True} if draw(st.booleans()) else {})
            for path in paths
        ]
    if resources is not None:
        container["resources"] = copy.deepcopy(resources)  # JSON never aliases
    elif draw(st.booleans()):
        container["resources"] = draw(resource_requirements())
    if draw(st.integers(0, 5)) == 0:
        container["envFrom"] = [{"configMapRef": {"name": "settings"}}]
    if sidecar:
        container["restartPolicy"] = "Always"
    return container


# The user's volume sources; none is one the engine makes (its emptyDirs are 64Mi, 300Mi or 1Gi).
USER_VOLUME_SOURCES: list[dict[str, Any]] = [
    {"emptyDir": {}},
    {"emptyDir": {"sizeLimit": "2Gi"}},
    {"configMap": {"name": "settings"}},
    {"secret": {"secretName": "creds"}},
]


def volume_specs(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from([{"name": name, **source} for source in USER_VOLUME_SOURCES])


def is_user_volume(volume: Mapping[str, Any]) -> bool:
    return {k: v for k, v in volume.items() if k != "name"} in USER_VOLUME_SOURCES


def metadata_maps() -> st.SearchStrategy[tuple[dict[str, str], dict[str, str]]]:
    labels = st.dictionaries(
        st.sampled_from([*LABEL_KEYS, INSTRUMENTED_LABEL]),
        st.sampled_from(LABEL_VALUES),
        max_size=4,
    )
    annotation_keys = st.sampled_from(
        [f"libinject.dev/{language}.version" for language in LANGUAGES]
        + ["libinject.dev/inject", "example.com/owner", SKIPPED_ANNOTATION]
    )
    annotation_values = st.sampled_from([*VERSIONS, "true", "false", "someone"])
    annotations = st.dictionaries(annotation_keys, annotation_values, max_size=4)
    return st.tuples(labels, annotations)


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    """A valid pod: unique container names across kinds, unique volumes, mounts of them."""
    volume_names = draw(
        st.lists(st.sampled_from(VOLUME_NAMES * 2 + OUR_NAMES), unique=True, max_size=4)
    )
    volumes = [draw(volume_specs(name)) for name in volume_names]
    counts = draw(
        st.tuples(st.integers(1, 6), st.integers(0, 2), st.integers(0, 2), st.integers(0, 1))
    )
    apps, inits, sidecars, _ = counts
    names = draw(
        st.lists(
            st.sampled_from(CONTAINER_NAMES * 2 + OUR_NAMES),
            unique=True,
            min_size=sum(counts),
            max_size=sum(counts),
        )
    )
    app_names, rest = names[:apps], names[apps:]
    init_names, rest = rest[:inits], rest[inits:]
    sidecar_names, ephemeral_names = rest[:sidecars], rest[sidecars:]
    # Sometimes every container declares the same resources (a Guaranteed pod, say): only then
    # does the pod have limits, which can be too small for the copy step.
    shared = draw(st.one_of(st.none(), resource_requirements()))
    spec: dict[str, Any] = {
        "containers": [draw(containers(name, volume_names, resources=shared)) for name in app_names]
    }
    init_list = [draw(containers(name, volume_names, resources=shared)) for name in init_names]
    init_list += [
        draw(containers(name, volume_names, sidecar=True, resources=shared))
        for name in sidecar_names
    ]
    if init_list:
        spec["initContainers"] = draw(st.permutations(init_list))
    if ephemeral_names:
        spec["ephemeralContainers"] = [
            {"name": name, "image": "busybox:1", "targetContainerName": app_names[0]}
            for name in ephemeral_names
        ]
    if volumes:
        spec["volumes"] = volumes
    if draw(st.booleans()):
        spec["securityContext"] = {"runAsUser": draw(st.sampled_from([0, 1000]))}
    metadata: dict[str, Any] = {"name": "web", "namespace": "apps"}
    labels, annotations = draw(metadata_maps())
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


# --- namespaces and settings --------------------------------------------------------------------


@st.composite
def namespaces(draw: st.DrawFn) -> Namespace:
    name = draw(st.sampled_from(["apps"] * 4 + ["team-a", "web", "kube-system"]))
    labels: dict[str, str] = {}
    inject_label = draw(st.sampled_from(["enabled"] * 6 + ["disabled", None]))
    if inject_label:
        labels["libinject.dev/inject"] = inject_label
    enforce = draw(st.sampled_from(["restricted", "baseline", None]))
    if enforce:
        labels["pod-security.kubernetes.io/enforce"] = enforce
    team = draw(st.sampled_from(["a", "b", None]))
    if team:
        labels["team"] = team
    return Namespace(name, labels)


@st.composite
def engine_settings(draw: st.DrawFn) -> EngineSettings:
    return EngineSettings(
        namespaces=NamespaceSettings(mutate_unlabelled=draw(st.booleans())),
        libraries=LibrarySettings(
            default_mode=draw(st.sampled_from([Mode.INIT_CONTAINER, Mode.CSI, Mode.IMAGE_VOLUME])),
            csi_registered=draw(st.booleans()),
        ),
    )


# --- policies -----------------------------------------------------------------------------------


@st.composite
def libraries(draw: st.DrawFn, language: str) -> dict[str, Any]:
    library: dict[str, Any] = {"language": language, "version": draw(st.sampled_from(VERSIONS))}
    if draw(st.booleans()):
        library["flavor"] = draw(st.sampled_from(["ddtrace", "opentelemetry"]))
    if draw(st.integers(0, 4)) == 0:
        library["image"] = f"registry.example/{language}-custom:1"
    elif draw(st.booleans()):
        library["allowedVersions"] = draw(
            st.lists(st.sampled_from(VERSION_GLOBS), unique=True, min_size=1, max_size=3)
        )
    return library


def namespace_selectors() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [
            {},
            {},
            {"matchNames": ["apps"]},
            {"matchNames": ["web", "team-a"]},
            {"matchLabels": {"team": "a"}},
            {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]},
            {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]},
        ]
    )


def pod_selectors() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [
            {},
            {},
            {"matchLabels": {"app": "web"}},
            {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]},
        ]
    )


def injections() -> st.SearchStrategy[dict[str, Any]]:
    mode = st.sampled_from([mode.value for mode in Mode])
    plain = st.fixed_dictionaries(
        {}, optional={"mode": mode, "sizeLimit": st.sampled_from(["64Mi", "300Mi"])}
    )
    with_resources = st.fixed_dictionaries(
        {
            "mode": st.sampled_from(["auto", "init-container"]),
            "resources": resource_requirements(),
        }
    )
    return st.one_of(plain, with_resources)


def agents() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {"mode": st.just("hostIP")}, optional={"port": st.integers(1, 65535)}
        ),
        st.just(
            {"mode": "service", "service": {"name": "agent", "namespace": "obs", "port": 8126}}
        ),
        st.just({"mode": "url", "url": "http://collector.obs:4318"}),
    )


@st.composite
def policy_specs(draw: st.DrawFn) -> dict[str, Any]:
    languages = draw(st.lists(st.sampled_from(LANGUAGES), unique=True, min_size=1, max_size=3))
    spec: dict[str, Any] = {"libraries": [draw(libraries(language)) for language in languages]}
    optional = {
        "namespaceSelector": namespace_selectors(),
        "podSelector": pod_selectors(),
        "containerNames": st.lists(
            st.sampled_from(CONTAINER_NAMES + OUR_NAMES), unique=True, min_size=1, max_size=4
        ),
        "injection": injections(),
        "env": st.lists(
            st.sampled_from(["DD_TRACE_DEBUG", "DD_SERVICE", "OTEL_LOGS_EXPORTER", "FOO"]),
            unique=True,
            max_size=3,
        ).map(lambda names: [{"name": name, "value": f"{name.lower()}-v"} for name in names]),
        "agent": agents(),
        "priority": st.integers(-5, 5),
        "paused": st.booleans(),
    }
    for key, strategy in optional.items():
        if draw(st.integers(0, 2)) == 0:
            spec[key] = draw(strategy)
    return spec


@st.composite
def policy_lists(draw: st.DrawFn) -> list[InstrumentationPolicy]:
    """1-5 valid policies with distinct names (names are unique in a cluster)."""
    names = draw(
        st.lists(
            st.sampled_from(["p-a", "p-b", "p-c", "p-d", "p-e"]),
            unique=True,
            min_size=1,
            max_size=5,
        )
    )
    policies = []
    for name in names:
        obj = {
            "apiVersion": "libinject.dev/v1alpha1",
            "kind": "InstrumentationPolicy",
            "metadata": {"name": name},
            "spec": draw(policy_specs()),
        }
        try:
            policies.append(parse_policy(obj))
        except InvalidPolicyError as error:  # the strategies build only valid specs
            raise AssertionError(f"the strategy built an invalid policy: {error}") from error
    return policies


def run(
    pod: Mapping[str, Any],
    namespace: Namespace,
    policies: list[InstrumentationPolicy],
    engine: EngineSettings,
) -> Result:
    return inject(pod, namespace=namespace, index=PolicyIndex(policies), settings=engine)


@st.composite
def input_pods(draw: st.DrawFn) -> dict[str, Any]:
    """A fresh pod, or (one time in four) one already injected under other policies and
    settings: our names are then taken by objects we made with another image, mode or version."""
    pod = draw(pods())
    if draw(st.integers(0, 3)) == 0:
        pod = run(pod, draw(namespaces()), draw(policy_lists()), draw(engine_settings())).pod
    return pod


cases = st.tuples(input_pods(), namespaces(), policy_lists(), engine_settings())


# --- helpers ------------------------------------------------------------------------------------


def all_containers(pod: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod["spec"]
    for kind in KINDS:
        yield from spec.get(kind) or ()


def by_name(items: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items or ()}


def assert_env_kept(before: list[dict[str, Any]], after: list[dict[str, Any]], where: str) -> None:
    """The user's entries stay first, in order; only a load variable's literal value may change,
    and then the new value still holds the user's value."""
    assert len(after) >= len(before), where
    for old, new in zip(before, after, strict=False):
        assert new["name"] == old["name"], where
        if new == old:
            continue
        name = old["name"]
        assert name in JOINS, f"{where}: {name} changed from {old} to {new}"
        assert "valueFrom" not in old, f"{where}: {name} from a source was rewritten"
        assert {k: v for k, v in new.items() if k != "value"} == {
            k: v for k, v in old.items() if k != "value"
        }, where
        user, ours = old.get("value") or "", new["value"]
        if JOINS[name] is Join.EXACT:
            assert user == "", f"{where}: EXACT {name} changed from {user!r} to {ours!r}"
        elif JOINS[name] is Join.OPTION_APPEND:
            assert user in ours, f"{where}: {name} {user!r} lost in {ours!r}"
        elif user:  # an empty path list is the same as none
            assert user in ours, f"{where}: {name} {user!r} lost in {ours!r}"
            missing = set(user.split(":")) - set(ours.split(":"))
            assert not missing, f"{where}: {name} lost components {missing} ({ours!r})"


# --- properties ---------------------------------------------------------------------------------


@PROPERTY
@given(cases)
def test_patch_applies_and_input_is_untouched(case: Any) -> None:
    """The RFC 6902 patch turns the input pod into result.pod exactly, and `inject` never
    modifies the pod it is given."""
    pod, namespace, policies, engine = case
    before = copy.deepcopy(pod)
    result = run(pod, namespace, policies, engine)
    assert pod == before
    # Copies on both sides: the patch's values may be the result's own objects.
    expected = copy.deepcopy(result.pod)
    assert jsonpatch.apply_patch(copy.deepcopy(pod), copy.deepcopy(result.patch)) == expected
    assert result.pod == expected


# What the patch may change rather than add: a load variable's value, and our own record.
CHANGED_VALUE = re.compile(r"/spec/(initContainers|containers)/\d+/env/\d+/value")
OUR_RECORD = {
    f"/metadata/{field}/{escape(key)}"
    for field, keys in (("annotations", OWNED_ANNOTATIONS), ("labels", OWNED_LABELS))
    for key in keys
}


@PROPERTY
@given(cases)
def test_the_patch_adds_and_creates_each_list_or_map_once(case: Any) -> None:
    """Every operation adds, except a `replace` of a load variable's value or of our record, and
    a `remove` of our record; an `add` of a whole list or map only ever fills a member that is
    absent or null at that point of the patch: what one language created, the next one adds to
    at its indexes instead of writing it again."""
    pod, namespace, policies, engine = case
    result = run(pod, namespace, policies, engine)
    document = copy.deepcopy(pod)
    for op in result.patch:
        if op["op"] == "replace":
            assert CHANGED_VALUE.fullmatch(op["path"]) or op["path"] in OUR_RECORD, op
        elif op["op"] == "remove":
            assert op["path"] in OUR_RECORD, op
        else:
            assert op["op"] == "add", op
        parent_path, _, member = op["path"].rpartition("/")
        if isinstance(op.get("value"), dict | list) and not member.isdigit():
            parent = jsonpointer.resolve_pointer(document, parent_path)
            assert parent.get(unescape(member)) is None, op["path"]
        document = jsonpatch.apply_patch(document, [op])


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


@PROPERTY
@given(cases)
def test_injection_is_idempotent(case: Any) -> None:
    """Injecting an already injected pod (same namespace, policies, settings) changes nothing:
    an empty patch and the same pod, so webhook reinvocation and re-admission are safe."""
    pod, namespace, policies, engine = case
    first = run(pod, namespace, policies, engine)
    injected = copy.deepcopy(first.pod)
    second = run(first.pod, namespace, policies, engine)
    assert second.patch == []
    assert second.pod == injected
    assert first.pod == injected  # the second pass did not edit its input either


TOKEN_MOUNT = {
    "name": "kube-api-access-x1",
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    "readOnly": True,
}


def server_defaults(pod: dict[str, Any]) -> dict[str, Any]:
    """What admission adds to every container before storing a pod: v1 defaults, and the
    ServiceAccount plugin's token mount (whose addition is what triggers our reinvocation)."""
    defaulted = copy.deepcopy(pod)
    for kind in ("initContainers", "containers"):
        for item in defaulted["spec"].get(kind) or ():
            item.setdefault("terminationMessagePath", "/dev/termination-log")
            item.setdefault("terminationMessagePolicy", "File")
            item.setdefault("imagePullPolicy", "IfNotPresent")
            item["volumeMounts"] = [*(item.get("volumeMounts") or []), TOKEN_MOUNT]
    return defaulted


@PROPERTY
@given(cases)
def test_reinvocation_after_server_defaults_changes_nothing(case: Any) -> None:
    """Webhook reinvocation sees our pod after the API server defaulted it: the copy containers
    we added now carry fields we never set. They are still recognised as ours: an empty patch,
    not a NameTaken skip or a second copy container. (Found on the real control plane.)"""
    pod, namespace, policies, engine = case
    first = run(pod, namespace, policies, engine)
    second = run(server_defaults(first.pod), namespace, policies, engine)
    assert second.patch == []


@PROPERTY
@given(cases)
def test_nothing_the_pod_had_is_lost(case: Any) -> None:
    """Every container, init container, ephemeral container, volume, volumeMount and env entry
    of the input survives, in order; env values are kept except load variables, which still hold
    the user's value; every other container field (resources, image, ...) and pod field is
    unchanged; user labels and annotations are unchanged except the keys the engine owns."""
    pod, namespace, policies, engine = case
    result = run(pod, namespace, policies, engine)
    old_spec, new_spec = pod["spec"], result.pod["spec"]
    for key, value in old_spec.items():
        if key not in (*KINDS, "volumes"):
            assert new_spec[key] == value, key
    for volume in old_spec.get("volumes") or ():
        assert volume in new_spec["volumes"]
    for kind in KINDS:
        old_list, new_list = old_spec.get(kind) or [], new_spec.get(kind) or []
        old_names = [c["name"] for c in old_list]
        assert [c["name"] for c in new_list if c["name"] in old_names] == old_names, kind
        new_by_name = by_name(new_list)
        for old in old_list:
            new = new_by_name[old["name"]]
            where = f"{kind}/{old['name']}"
            for key, value in old.items():
                if key not in ("env", "volumeMounts"):
                    assert new.get(key) == value, f"{where}.{key}"
            for mount in old.get("volumeMounts") or ():
                assert mount in new["volumeMounts"], where
            assert_env_kept(old.get("env") or [], new.get("env") or [], where)
    for field, owned in (("labels", OWNED_LABELS), ("annotations", OWNED_ANNOTATIONS)):
        old_map = pod["metadata"].get(field) or {}
        new_map = result.pod["metadata"].get(field) or {}
        for key, value in old_map.items():
            if key not in owned:
                assert new_map.get(key) == value, f"{field}[{key}]"
        added = set(new_map) - set(old_map)
        assert added <= owned, f"{field}: unexpected keys {added - owned}"


@PROPERTY
@given(cases)
def test_names_never_collide(case: Any) -> None:
    """Container names are unique across init, app and ephemeral containers; volume names are
    unique; in every container, env names stay unique when they were, and mount paths are
    unique."""
    pod, namespace, policies, engine = case
    result = run(pod, namespace, policies, engine)
    names = [c["name"] for c in all_containers(result.pod)]
    assert len(names) == len(set(names)), names
    volumes = [v["name"] for v in result.pod["spec"].get("volumes") or ()]
    assert len(volumes) == len(set(volumes)), volumes
    before = {c["name"]: c for c in all_containers(pod)}
    for container in all_containers(result.pod):
        env = [e["name"] for e in container.get("env") or ()]
        old_env = [e["name"] for e in (before.get(container["name"]) or {}).get("env") or ()]
        if len(old_env) == len(set(old_env)):
            assert len(env) == len(set(env)), (container["name"], env)
        paths = [m["mountPath"] for m in container.get("volumeMounts") or ()]
        assert len(paths) == len(set(paths)), (container["name"], paths)


@PROPERTY
@given(cases)
def test_mounts_reference_existing_volumes(case: Any) -> None:
    """Every volumeMount of every container (the instrumented ones and our copy init containers
    included) names a volume of the pod, and every mount the engine adds names a volume the
    engine made (now or in an earlier pass), never a user's volume that shares our name."""
    pod, namespace, policies, engine = case
    result = run(pod, namespace, policies, engine)
    volumes = by_name(result.pod["spec"].get("volumes"))
    user_volumes = by_name(pod["spec"].get("volumes"))
    before = {c["name"]: c for c in all_containers(pod)}
    for container in all_containers(result.pod):
        old_mounts = (before.get(container["name"]) or {}).get("volumeMounts") or []
        for mount in container.get("volumeMounts") or ():
            assert mount["name"] in volumes, (container["name"], mount)
            if mount not in old_mounts and mount["name"] in user_volumes:
                assert not is_user_volume(user_volumes[mount["name"]]), (container["name"], mount)


@PROPERTY
@given(cases, st.data())
def test_outcome_is_deterministic(case: Any, data: st.DataObject) -> None:
    """The same inputs give the same pod, patch and decision: twice with one index (the second
    from its plan cache), with a fresh index, with the policies in any order, and with explain
    on (explain adds verdicts, never edits)."""
    pod, namespace, policies, engine = case
    index = PolicyIndex(policies)
    first = inject(pod, namespace=namespace, index=index, settings=engine)
    again = inject(pod, namespace=namespace, index=index, settings=engine)
    shuffled = data.draw(st.permutations(policies), label="policies in another order")
    reordered = run(pod, namespace, shuffled, engine)
    explained = inject(
        pod, namespace=namespace, index=PolicyIndex(shuffled), settings=engine, explain=True
    )
    for other in (again, reordered):
        assert other.patch == first.patch
        assert other.pod == first.pod
        assert other.decision == first.decision
    assert explained.patch == first.patch
    assert explained.decision.reason == first.decision.reason


@PROPERTY
@given(cases)
def test_copy_containers_run_before_their_readers(case: Any) -> None:
    """In init-container mode, the copy container that fills a library volume comes before every
    init container (plain or native sidecar) that mounts that volume, so no container starts
    with an empty library directory."""
    pod, namespace, policies, engine = case
    result = run(pod, namespace, policies, engine)
    inits = result.pod["spec"].get("initContainers") or []
    position = {c["name"]: index for index, c in enumerate(inits)}
    copiers = {
        name: index
        for name, index in position.items()
        if name in OUR_NAMES and inits[index].get("command", [None])[0] == "/bin/busybox"
    }
    for index, container in enumerate(inits):
        for mount in container.get("volumeMounts") or ():
            if mount["name"] in copiers and container["name"] != mount["name"]:
                assert copiers[mount["name"]] < index, (container["name"], mount["name"])
