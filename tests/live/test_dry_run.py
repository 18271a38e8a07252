"""What `libinject inject` produces is accepted by a real API server: a server-side dry-run
create of every pod and workload of the corpus (the golden cases, the examples, and every pod
shape of the Pod Security tests in every mode), in a namespace enforcing the Pod Security level
the source namespace had: restricted where the engine applied the restricted profile, baseline
elsewhere. The server must keep every field we added and warn about nothing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from builders import JAVA, MODES, PYTHON, plain_pods, policy_object, restricted_pods
from cluster.fixtures import NamespaceFactory
from cluster.kubectl import Kubectl
from libinject.cli.main import main
from libinject.cli.workloads import namespace_of, pod_slots

REPO = Path(__file__).parents[2]
GOLDEN = REPO / "tests" / "golden"
ENFORCE = "pod-security.kubernetes.io/enforce"
INJECTED = "libinject.dev/injected"


@dataclass(frozen=True)
class Corpus:
    """Inputs for `libinject inject` and the policies to inject them with."""

    inputs: Path
    policies: Path


def _namespace(name: str, level: str) -> dict[str, Any]:
    labels = {"libinject.dev/inject": "enabled", ENFORCE: level}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _as_pod(template: dict[str, Any], index: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", **template, "metadata": {"name": f"p{index}"}}


def _as_deployment(template: dict[str, Any], index: int) -> dict[str, Any]:
    labels = {"app": f"d{index}"}
    template = {**template, "metadata": {"labels": labels}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"d{index}"},
        "spec": {"selector": {"matchLabels": labels}, "template": template},
    }


def _matrix(directory: Path, mode: str) -> Corpus:
    """Every pod shape of the engine's Pod Security tests, as Pods and as Deployments, in a
    restricted and in a baseline namespace, injected with Python and Java in `mode`."""
    documents: list[dict[str, Any]] = []
    for level, pods in (("restricted", restricted_pods()), ("baseline", plain_pods())):
        documents.append(_namespace(level, level))
        for index, shape in enumerate(pods):
            for build in (_as_pod, _as_deployment):
                document = build(shape, index)
                document["metadata"]["namespace"] = level
                documents.append(document)
    inputs, policies = directory / f"{mode}.yaml", directory / f"{mode}-policy.yaml"
    inputs.write_text(yaml.safe_dump_all(documents))
    rule = policy_object("matrix", libraries=[PYTHON, JAVA], injection={"mode": mode})
    policies.write_text(yaml.safe_dump(rule))
    return Corpus(inputs, policies)


CORPORA = {
    **{
        f"golden-{p.stem}": Corpus(p, GOLDEN / "policies")
        for p in sorted((GOLDEN / "cases").glob("*.yaml"))
        if ".injected" not in p.name
    },
    "examples": Corpus(REPO / "examples" / "workloads", REPO / "examples" / "policies"),
}


@dataclass(frozen=True)
class Candidate:
    """One object given to `libinject inject`, what it made of it, and the Pod Security level
    of the namespace it came from."""

    before: dict[str, Any]
    after: dict[str, Any]
    level: str


def _inject(corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> list[Candidate]:
    capsys.readouterr()
    assert main(["inject", "-f", str(corpus.inputs), "--policies", str(corpus.policies)]) == 0
    output = list(_objects(yaml.safe_load_all(capsys.readouterr().out)))
    sources = sorted(corpus.inputs.rglob("*.yaml")) if corpus.inputs.is_dir() else [corpus.inputs]
    inputs = [d for source in sources for d in _objects(yaml.safe_load_all(source.read_text()))]
    levels = {
        d["metadata"]["name"]: d["metadata"].get("labels", {}).get(ENFORCE, "baseline")
        for d in inputs
        if d["kind"] == "Namespace"
    }
    return [
        Candidate(before, after, levels.get(namespace_of(after, "default"), "baseline"))
        for before, after in zip(inputs, output, strict=True)
        if after["kind"] != "Namespace"
    ]


def _objects(documents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Each object on its own, in order: a List's items are created one by one."""
    for document in documents:
        if not document:
            continue
        if document["kind"].endswith("List"):
            yield from _objects(document["items"])
        else:
            yield document


def _names(pod: dict[str, Any]) -> dict[str, list[str]]:
    """What we add, by name: containers, init containers, volumes and every container's env."""
    spec = pod["spec"]
    everything = spec["containers"] + spec.get("initContainers", [])
    keys = ("containers", "initContainers", "volumes")
    names = {key: [item["name"] for item in spec.get(key, [])] for key in keys}
    names |= {f"env:{c['name']}": [e["name"] for e in c.get("env", [])] for c in everything}
    return names


def _kept(ours: dict[str, Any], stored: dict[str, Any]) -> dict[str, list[str]]:
    """Our names as the server stored them, in its order; admission may add its own (the
    ServiceAccount plugin's token volume), which are left out."""
    mine, theirs = _names(ours), _names(stored)
    return {key: [n for n in theirs.get(key, []) if n in names] for key, names in mine.items()}


def _pods_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [slot.pod for slot in pod_slots(document, source="dry-run", document=1)]


def _create(kubectl: Kubectl, document: dict[str, Any], namespace: str) -> Any:
    document = {**document, "metadata": {**document["metadata"], "namespace": namespace}}
    return kubectl(
        "create",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        stdin=json.dumps(document),
        check=False,
    )


def _dry_run(kubectl: Kubectl, document: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object as the server would store it; fails on any refusal or warning."""
    result = _create(kubectl, document, namespace)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr  # e.g. "would violate PodSecurity"
    stored: dict[str, Any] = json.loads(result.stdout)
    return stored


def _level(candidate: Candidate, kubectl: Kubectl, restricted: str) -> str:
    """restricted where the source namespace enforces it and the application's own pods meet
    it. Where the application breaks restricted by itself, the injected pod is still refused,
    but never for anything we added; it is then held to baseline."""
    if candidate.level != "restricted":
        return "baseline"
    pairs = zip(_pods_of(candidate.before), _pods_of(candidate.after), strict=True)
    for before, after in pairs:
        if _create(kubectl, _as_pod(before, 0), restricted).returncode != 0:
            refusal = _create(kubectl, _as_pod(after, 0), restricted).stderr
            assert "violates PodSecurity" in refusal
            assert "libinject" not in refusal, refusal
            return "baseline"
    return "restricted"


def _check_corpus(
    candidates: list[Candidate], kubectl: Kubectl, namespaces: NamespaceFactory
) -> Counter[tuple[str, bool]]:
    """Dry-runs every output object, and each pod template as a Pod (Pod Security warns about
    workloads but enforces on pods); counts pods by (level, injected)."""
    targets = {level: namespaces(labels={ENFORCE: level}) for level in ("restricted", "baseline")}
    checked: Counter[tuple[str, bool]] = Counter()
    for candidate in candidates:
        level = _level(candidate, kubectl, targets["restricted"])
        stored = _dry_run(kubectl, candidate.after, targets[level])
        for ours, theirs in zip(_pods_of(candidate.after), _pods_of(stored), strict=True):
            assert _kept(ours, theirs) == _names(ours), "the server dropped or reordered something"
            if candidate.after["kind"] != "Pod":
                _dry_run(kubectl, _as_pod(ours, 0), targets[level])
            checked[level, INJECTED in ours.get("metadata", {}).get("annotations", {})] += 1
    return checked


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_cli_corpus_passes_dry_run(
    name: str, kubectl: Kubectl, namespaces: NamespaceFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    checked = _check_corpus(_inject(CORPORA[name], capsys), kubectl, namespaces)
    assert checked["baseline", True] + checked["restricted", True] > 0, "nothing was injected"


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_passes_dry_run(
    mode: str,
    tmp_path: Path,
    kubectl: Kubectl,
    namespaces: NamespaceFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every pod of the matrix is injected and passes: restricted ones at restricted."""
    candidates = _inject(_matrix(tmp_path, mode), capsys)
    checked = _check_corpus(candidates, kubectl, namespaces)
    restricted_shapes, plain_shapes = len(restricted_pods()), len(plain_pods())
    assert checked == {
        ("restricted", True): 2 * restricted_shapes,
        ("baseline", True): 2 * plain_shapes,
    }
