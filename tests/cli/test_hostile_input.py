"""Hostile input through the real `libinject` process: every case exits 2 promptly, names the
file, the document and the field (or line), and writes nothing to stdout. Nothing may hang, grow
without bound or end in a traceback."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostile import MALFORMED_PODS, WRONG_VALUES
from libinject.api.parse import InvalidPolicyError
from libinject.cli import bounds, documents
from libinject.cli.errors import InputError
from libinject.engine.checks import usable_policy

LIBINJECT = str(Path(sys.executable).parent / "libinject")
HANG_GUARD = 120  # seconds: a hang guard for a loaded machine, not a timing assertion
POLICY = b"""\
apiVersion: libinject.dev/v1alpha1
kind: InstrumentationPolicy
metadata: {name: py}
spec:
  libraries: [{language: python, version: "4.16.0"}]
"""
POD = b"apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: app, image: a}]\n"


def _laughs(levels: int) -> bytes:
    """A ConfigMap of nested aliases: ~1 KB written, 9**levels strings expanded."""
    lines = [b"apiVersion: v1", b"kind: ConfigMap", b"metadata: {name: lol}", b"data:",
             b'  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']  # fmt: skip
    for level in range(1, levels):
        alias = f"*l{level - 1}".encode()
        lines.append(f"  l{level}: &l{level} [".encode() + b",".join([alias] * 9) + b"]")
    return b"\n".join(lines) + b"\n"


def _nested(depth: int, *, mapping: bool) -> bytes:
    if mapping:
        body = "".join("  " * level + "a:\n" for level in range(depth)) + "  " * depth + "x\n"
        return (
            "kind: ConfigMap\nmetadata: {name: deep}\ndata:\n" + body.replace("\n", "\n  ", depth)
        ).encode()
    return b"kind: ConfigMap\nmetadata: {name: deep}\ndata: " + b"[" * depth + b"]" * depth + b"\n"


def _as_doc(obj: dict[str, Any]) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False).encode()


def _pod_doc(target: dict[str, Any]) -> bytes:
    return _as_doc({"apiVersion": "v1", "kind": "Pod", **target})


# (id, content, what stderr must say after "<file>, ")
YAML_CASES: list[tuple[str, bytes, str]] = [
    ("billion-laughs", _laughs(9), "document 1: data.l5[0]: line 10: its aliases expand"),
    ("billion-laughs-second-document", POD + b"---\n" + _laughs(9), "document 2: data.l5[0]: line 16"),
    ("laughs-in-one-deep-list", b"kind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: &a [x,x,x,x,x,x,x,x,x,x]\n"
     b"  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     b"  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", "its aliases expand"),
    ("recursive-alias-list", b"kind: ConfigMap\nmetadata: {name: x}\ndata: &a [*a]\n",
     "document 1: data[0]: line 3: the alias *a is inside the node it names"),
    ("recursive-alias-mapping", b"kind: ConfigMap\nmetadata: {name: x}\ndata: &a {b: {c: *a}}\n",
     "document 1: data.b.c: line 3: the alias *a is inside"),
    ("recursive-merge", b"kind: ConfigMap\nmetadata: {name: x}\ndata: &a {<<: *a}\n",
     "document 1: data.<<: line 3: the alias *a is inside"),
    ("recursive-merge-list", b"kind: ConfigMap\nmetadata: {name: x}\ndata: &a\n  <<: [*a]\n", "the alias *a is inside"),
    # libyaml stops at 1,000 levels itself, scanning ahead of the events; PyYAML's parser does not.
    ("nested-lists-10k", _nested(10_000, mapping=False), "nest"),
    ("nested-lists-150", _nested(150, mapping=False), "nested deeper than 100 levels"),
    ("nested-maps-150", _nested(150, mapping=True), "nested deeper than 100 levels"),
    ("nested-maps-10k", _nested(10_000, mapping=True), "document 1: "),
    ("binary", bytes(range(256)) * 4, "not UTF-8 text: byte 0x80 at offset 128"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text: byte 0x89 at offset 0"),
    ("latin-1", "kind: Pod\nmetadata: {name: caf\u00e9}\n".encode("latin-1"), "not UTF-8 text: byte 0xe9"),
    ("utf-16-odd-length", b"\xff\xfek\x00i\x00n", "not UTF-16 text"),
    ("nul-character", b"kind: Pod\x00\n", "characters are not allowed"),
    ("number-100k-digits", b"kind: ConfigMap\nmetadata: {name: x}\ndata:\n  n: " + b"9" * 100_000 + b"\n",
     "document 1: data.n: line 4: a number of 100000 characters"),
    ("hex-number-5k-digits", b"kind: ConfigMap\nmetadata: {name: x}\nspec: {n: 0x" + b"f" * 5_000 + b"}\n",
     "document 1: spec.n: line 3: a number of 5002 characters"),
    ("tagged-long-number", b"kind: ConfigMap\nmetadata: {name: x}\nn: !!int '" + b"1" * 200 + b"'\n",
     "document 1: n: line 3: a number of 200 characters"),
    ("ordered-map", b"kind: ConfigMap\nmetadata: {name: x}\ndata: !!omap [a: 1]\n", "has no JSON form"),
    ("unknown-tag", b"kind: ConfigMap\nmetadata: {name: x}\ndata: !foo 1\n", "document 1: line 3: not valid YAML"),
    ("undefined-alias", b"kind: ConfigMap\nmetadata: {name: x}\ndata: *nope\n", "not valid YAML"),
    ("scalar-document", POD + b"---\n42\n", "document 2: not a Kubernetes object"),
    ("unhashable-key", b"kind: ConfigMap\nmetadata: {name: x}\ndata: {[a]: b}\n", "not valid YAML"),
]  # fmt: skip

# Objects around the pod: workloads, Lists, Namespaces.
OBJECT_CASES: list[tuple[str, bytes, str]] = [
    ("kind-list", b"kind: [Pod]\nmetadata: {name: x}\n", "document 1: kind: expected a string, got a list"),
    ("api-version-int", b"apiVersion: 1\nkind: ConfigMap\n", "document 1: apiVersion: expected a string"),
    ("configmap-metadata-string", b"kind: ConfigMap\nmetadata: x\n", "document 1: metadata: expected a mapping"),
    ("namespace-labels-list", b"kind: Namespace\nmetadata: {name: n, labels: [a]}\n", "document 1: metadata.labels:"),
    ("namespace-label-value-list", b"kind: Namespace\nmetadata: {name: n, labels: {a: [b]}}\n",
     "document 1: metadata.labels[a]: expected a string, got a list"),
    ("namespace-name-int", b"kind: Namespace\nmetadata: {name: 5}\n", "document 1: metadata.name: expected a string"),
    ("deployment-spec-list", b"kind: Deployment\nmetadata: {name: d}\nspec: [template]\n", "document 1: spec: expected a mapping"),
    ("deployment-template-string", b"kind: Deployment\nmetadata: {name: d}\nspec: {template: x}\n",
     "document 1: spec.template: expected a mapping"),
    ("deployment-env-value-int", b"kind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n"
     b"      containers: [{name: a, env: [{name: A, value: 1}]}]\n",
     "document 1: spec.template.spec.containers[0].env[0].value: expected a string, got an integer (1)"),
    ("cronjob-template-metadata-string", b"kind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n"
     b"      template:\n        metadata: x\n        spec: {containers: [{name: a}]}\n",
     "document 1: spec.jobTemplate.spec.template.metadata: expected a mapping, got a string"),
    ("cronjob-job-template-list", b"kind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: []}\n",
     "document 1: spec.jobTemplate: expected a mapping, got a list"),
    ("list-items-mapping", b"kind: List\nitems: {a: b}\n", "document 1: items: expected a list"),
    ("list-items-int", b"kind: List\nitems: 5\n", "document 1: items: expected a list, got an integer"),
    ("list-item-string", b"kind: List\nitems: [x]\n", "document 1: items[0]: expected a mapping"),
    ("list-item-pod-malformed", b"kind: List\nitems:\n- kind: Pod\n  metadata: {name: p}\n  spec: {containers: [{name: a, env: x}]}\n",
     "document 1: items[0].spec.containers[0].env: expected a list, got a string"),
    ("nested-list", b"kind: List\nitems:\n- kind: PodList\n  items: [{kind: Pod, spec: [x]}]\n",
     "document 1: items[0].items[0].spec: expected a mapping"),
]  # fmt: skip

POD_CASES = [
    (name, _pod_doc(target), f"document 1: {field}: ") for name, target, field in MALFORMED_PODS
]

POLICY_CASES: list[tuple[str, bytes, str]] = [
    ("generation-string", POLICY.replace(b"{name: py}", b"{name: py, generation: abc}"),
     'document 1: InstrumentationPolicy \'py\' is invalid: metadata.generation: Invalid value: "string": must be of type integer'),
    ("generation-negative", POLICY.replace(b"{name: py}", b"{name: py, generation: -1}"), "metadata.generation: Invalid value: -1"),
    ("policy-bomb", POLICY + b"---\n" + _laughs(9), "document 2: data.l5[0]: line 16"),
    ("policy-binary", b"\xff\x00\xfe" * 10, "not UTF-8 text"),
    ("policy-list-items-int", b"kind: InstrumentationPolicyList\nitems: 1\n", "document 1: items: expected a list"),
    ("policy-metadata-list", POLICY.replace(b"{name: py}", b"[py]"), "document 1: metadata: expected a mapping"),
]  # fmt: skip


def _run(tmp_path: Path, *, manifests: bytes = POD, policies: bytes = POLICY, command: str = "inject",
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    (tmp_path / "in.yaml").write_bytes(manifests)
    (tmp_path / "policies.yaml").write_bytes(policies)
    return subprocess.run(
        [LIBINJECT, command, "-f", str(tmp_path / "in.yaml"), "--policies", str(tmp_path / "policies.yaml")],
        capture_output=True, text=True, check=False, timeout=HANG_GUARD,
    )  # fmt: skip


def _refused(done: subprocess.CompletedProcess[str], file: Path, message: str) -> None:
    assert done.stdout == ""
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"libinject: {file}, ") or done.stderr.startswith(
        f"libinject: {file}: "
    )
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, "one line"


CASES = YAML_CASES + OBJECT_CASES + POD_CASES


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_manifests_exit_2_naming_where(
    content: bytes, message: str, tmp_path: Path
) -> None:
    _refused(_run(tmp_path, manifests=content), tmp_path / "in.yaml", message)


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in POLICY_CASES],
                         ids=[c[0] for c in POLICY_CASES])  # fmt: skip
def test_hostile_policies_exit_2_naming_where(content: bytes, message: str, tmp_path: Path) -> None:
    _refused(_run(tmp_path, policies=content), tmp_path / "policies.yaml", message)


def test_explain_refuses_the_same_way(tmp_path: Path) -> None:
    done = _run(tmp_path, manifests=_laughs(9), command="explain")
    _refused(done, tmp_path / "in.yaml", "its aliases expand")


def test_stdin_is_bytes_too(tmp_path: Path) -> None:
    """Non-UTF-8 on stdin is refused like a file, not decoded by Python's text layer."""
    (tmp_path / "policies.yaml").write_bytes(POLICY)
    done = subprocess.run(
        [LIBINJECT, "inject", "-f", "-", "--policies", str(tmp_path / "policies.yaml")],
        input=b"kind: \xc3\x28\n", capture_output=True, check=False, timeout=HANG_GUARD,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, b"")
    assert b"libinject: <stdin>: not UTF-8 text: byte 0xc3 at offset 6" in done.stderr


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_yaml_encodings_with_a_byte_order_mark_are_read(encoding: str, tmp_path: Path) -> None:
    done = _run(tmp_path, manifests=POD.decode().encode(encoding))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["spec"]["initContainers"][0]["name"] == "libinject-python"


def test_the_deepest_allowed_nesting_goes_through_engine_and_writer(tmp_path: Path) -> None:
    """At exactly the depth bound, inside a pod the engine edits, everything that recurses (the
    composer, the engine's diff and copies, the writer) still works, with room to spare."""
    deep: Any = "x"
    for _ in range(bounds.MAX_DEPTH - 4):  # the pod itself, spec, containers, containers[0]
        deep = [deep]
    target: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "deep"},
              "spec": {"containers": [{"name": "app", "image": "a", "ports": deep}]}}  # fmt: skip
    done = _run(tmp_path, manifests=documents.dump_documents([target]).encode())
    assert done.returncode == 0, done.stderr
    out = yaml.safe_load(done.stdout)
    assert out["spec"]["containers"][0]["ports"] == deep
    target["spec"]["containers"][0]["ports"] = [deep]
    deeper = documents.dump_documents([target]).encode()
    _refused(_run(tmp_path, manifests=deeper), tmp_path / "in.yaml", "nested deeper than 100")


def test_timestamps_stay_text_as_kubectl_reads_them(tmp_path: Path) -> None:
    """An unquoted date is a string in a Kubernetes object (kubectl keeps it so), in an
    annotation too; an impossible one is no error (it used to end in a ValueError)."""
    manifests = POD.replace(b"{name: web}", b"{name: web, annotations: {built: 2024-01-02}}")
    done = _run(tmp_path, manifests=manifests + b"---\nkind: ConfigMap\ndata: {d: 2024-13-45}\n")
    assert done.returncode == 0, done.stderr
    pod, config = yaml.safe_load_all(done.stdout)
    assert pod["metadata"]["annotations"]["built"] == "2024-01-02"
    assert config["data"] == {"d": "2024-13-45"}


def test_aliases_within_the_bound_are_expanded(tmp_path: Path) -> None:
    """Anchors that repeat a block, as real manifests use them, still load and are written
    expanded (the writer never writes aliases)."""
    manifests = (
        b"kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        b"  - &c {name: a, image: i, env: &env [{name: A, value: '1'}]}\n"
        b"  - {<<: *c, name: b}\n"
    )
    done = _run(tmp_path, manifests=manifests)
    assert done.returncode == 0, done.stderr
    containers = yaml.safe_load(done.stdout)["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b"]
    assert "&" not in done.stdout
    assert "*" not in done.stdout


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
def test_libyaml_is_used_when_present() -> None:
    """The C parser and emitter: the pure-Python ones are several times slower."""
    assert issubclass(documents.LOADER, yaml.CSafeLoader)
    assert issubclass(documents._PlainDumper, yaml.CSafeDumper)


STRANGE_STRINGS = ["", " lead", "trail ", "yes", "0x1F", "~", "2024-01-01", "=", "<<", "a: b", "- a",
                   "x" * 300, "a " * 150, "\u00e9\u4e2d\u2028\x85\ufeff\t\r\x07", "'\"\\\n{[&*!|>%@`"]  # fmt: skip


@pytest.mark.parametrize("text", STRANGE_STRINGS, ids=range(len(STRANGE_STRINGS)))
def test_the_writer_keeps_every_string(text: str) -> None:
    """What libinject writes reads back as the same value, as a value and as a key: the
    libyaml emitter folds and quotes on its own."""
    for document in ({"k": text}, [text], {text: 1}):
        assert yaml.safe_load(documents.dump_documents([document])) == document


@pytest.mark.parametrize(
    ("content", "message"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES]
)
def test_the_pure_python_loader_has_the_same_bounds(content: bytes, message: str) -> None:
    """Without libyaml, PyYAML's own parser is bounded the same way (it has no nesting limit of
    its own)."""
    loader = documents.loader_class(libyaml=False)
    with pytest.raises(InputError) as refused:
        documents.load_documents("in.yaml", content, loader=loader)
    assert message.split(": line", maxsplit=1)[0].split(": not", maxsplit=1)[0] in str(
        refused.value
    )


# A policy that sets every field of the API, with the right types.
RICH_POLICY: dict[str, Any] = {
    "apiVersion": "libinject.dev/v1alpha1",
    "kind": "InstrumentationPolicy",
    "metadata": {"name": "rich", "generation": 3},
    "spec": {
        "priority": 10,
        "paused": False,
        "namespaceSelector": {"matchNames": ["shop"]},
        "podSelector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}],
        },
        "containerNames": ["app"],
        "libraries": [
            {"language": "python", "flavor": "opentelemetry", "version": "0.66b1",
             "allowedVersions": ["0.*"]},
            {"language": "java", "version": "1.56.0", "image": "registry.example/java:2"},
        ],
        "injection": {"mode": "init-container", "sizeLimit": "200Mi",
                      "resources": {"requests": {"cpu": "50m"}, "limits": {"memory": "128Mi"}}},
        "env": [{"name": "OTEL_X", "value": "1"}],
        "agent": {"mode": "service", "service": {"name": "c", "namespace": "o", "port": 4318}},
        "rolloutOnChange": True,
    },
}  # fmt: skip


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    return [path] + [place for key, child in items for place in _places(child, (*path, key))]


@pytest.mark.parametrize("path", _places(RICH_POLICY)[1:], ids=str)
def test_any_value_anywhere_in_a_policy_is_a_parse_error_or_fine(path: tuple[Any, ...]) -> None:
    """The policy parser's class: whatever value of whatever type sits at any field, it parses
    or raises InvalidPolicyError naming fields; nothing else escapes (metadata.generation: abc
    used to end in a ValueError)."""
    assert usable_policy(RICH_POLICY).name == "rich"
    refusals = []
    for value in WRONG_VALUES:
        target = copy.deepcopy(RICH_POLICY)
        parent = target
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
        try:
            usable_policy(target)
        except InvalidPolicyError as error:
            refusals.append(error)
    assert all(error.errors for error in refusals), "every refusal names at least one field"
