"""`libinject inject` and `libinject explain`: stdout, document order, and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from libinject.cli.main import main

ROOT = Path(__file__).parents[2]
POLICIES = ROOT / "examples" / "policies"
WORKLOADS = ROOT / "examples" / "workloads"
POLICY = """\
apiVersion: libinject.dev/v1alpha1
kind: InstrumentationPolicy
metadata: {name: py}
spec:
  libraries: [{language: python, version: "4.16.0"}]
"""
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: app, image: registry.example/app:1}]
"""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def explain_golden(capsys: pytest.CaptureFixture[str], case: str) -> str:
    """`libinject explain` of a golden case file against the golden policies: its text."""
    golden = ROOT / "tests" / "golden"
    args = ["explain", "-f", str(golden / "cases" / case), "--policies", str(golden / "policies")]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    return out


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def test_inject_keeps_order_and_passes_other_objects_through(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "inject", "-f", str(WORKLOADS / "payments.yaml"),
                             "--policies", str(POLICIES))  # fmt: skip
    assert code == 0
    source = list(yaml.safe_load_all((WORKLOADS / "payments.yaml").read_text()))
    documents = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in documents] == [d["kind"] for d in source]
    assert documents[-1] == source[-1], "a ConfigMap passes through untouched"
    assert documents[0] == source[0], "so does the Namespace"
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert "libinject.dev/injected" in template["metadata"]["annotations"]
    assert "CronJob payments/settle: Injected" in err, "the summary goes to stderr"


def test_inject_reads_stdin(
    policy_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(POD.encode())))
    code, out, _ = run_cli(capsys, "inject", "-f", "-", "--policies", str(policy_file))
    assert code == 0
    assert yaml.safe_load(out)["spec"]["initContainers"][0]["name"] == "libinject-python"


def test_namespace_labels_flag_controls_opt_in(
    policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(POD)
    args = ["inject", "-f", str(pod_file), "--policies", str(policy_file)]
    code, out, err = run_cli(capsys, *args, "--namespace-labels", "")
    assert code == 0
    assert yaml.safe_load(out) == yaml.safe_load(POD)
    assert "NamespaceNotEnabled" in err
    code, out, _ = run_cli(
        capsys, *args, "--namespace-labels", "", "--mutate-unlabelled-namespaces"
    )
    assert "initContainers" in yaml.safe_load(out)["spec"]


def test_registry_and_default_mode_flags(
    policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(POD)
    _, out, _ = run_cli(capsys, "inject", "-f", str(pod_file), "--policies", str(policy_file),
                        "--registry", "mirror.example/li", "--default-mode", "csi")  # fmt: skip
    volume = yaml.safe_load(out)["spec"]["volumes"][0]
    assert volume["csi"]["volumeAttributes"]["image"] == "mirror.example/li/python-ddtrace:4.16.0"


def test_inject_says_its_csi_volumes_are_unsigned(
    policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The offline CLI has no signing key: a CSI volume it writes has no signature (the plugin
    refuses it), and stderr says so for that pod; an init-container pod gets no such note."""
    pod_file = tmp_path / "pod.yaml"
    pod_file.write_text(POD)
    args = ("inject", "-f", str(pod_file), "--policies", str(policy_file))
    _, out, err = run_cli(capsys, *args, "--default-mode", "csi")
    assert "signature" not in yaml.safe_load(out)["spec"]["volumes"][0]["csi"]["volumeAttributes"]
    assert "python CSI volume is unsigned" in err
    assert "CSI plugin will refuse it" in err
    _, _, err = run_cli(capsys, *args)
    assert "unsigned" not in err


def test_explain_text_says_why_each_policy_lost(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "explain", "-f", str(WORKLOADS), "--policies", str(POLICIES))
    assert code == 0
    assert "Deployment shop/checkout" in out
    assert "python-default: LowerPriority: shop-otel wins" in out
    assert "nodejs-canary: PolicyPaused" in out
    assert "container metrics-proxy: ContainerNotNamed" in out
    assert "Pod payments/debug-shell" in out
    assert "PodOptedOut" in out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "explain", "-o", "json", "-f", str(WORKLOADS / "shop.yaml"),
                           "--policies", str(POLICIES))  # fmt: skip
    assert code == 0
    (record,) = json.loads(out)
    assert record["object"] == "Deployment shop/checkout"
    assert record["reason"]["code"] == "Injected"
    python = next(lang for lang in record["languages"] if lang["language"] == "python")
    assert python["choice"]["policy"] == "shop-otel"


BAD_INPUTS = [
    # (id, file name, content, what the message must say)
    ("unparseable-yaml", "bad.yaml", "kind: Pod\n  metadata: [", "bad.yaml, document 1: line 2: not valid YAML"),
    ("pod-without-containers", "empty.yaml", POD + "---\nkind: Pod\nmetadata: {name: x}\nspec: {}\n",
     "empty.yaml, document 2: spec.containers: Pod -/x has no containers"),
    ("container-without-name", "noname.yaml", "kind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{image: a}]\n",
     "noname.yaml, document 1: spec.containers[0].name: required"),
    ("not-a-mapping", "scalar.yaml", "just text\n", "scalar.yaml, document 1: not a Kubernetes object"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "message"), [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])  # fmt: skip
def test_bad_manifests_exit_2_with_no_output(
    name: str, content: str, message: str, policy_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Bad input names the file and document, and no partial output reaches stdout."""
    (tmp_path / name).write_text(content)
    for command in ("inject", "explain"):
        code, out, err = run_cli(capsys, command, "-f", str(tmp_path / name),
                                 "--policies", str(policy_file))  # fmt: skip
        assert (code, out) == (2, "")
        assert message in err


BAD_POLICIES = [
    ("unknown-language", POLICY.replace("python", "cobol"),
     'document 1: InstrumentationPolicy \'py\' is invalid: spec.libraries[0].language: Unsupported value: "cobol"'),
    ("not-a-policy", POD, "document 1: expected an InstrumentationPolicy, found Pod"),
    ("defined-twice", POLICY + "---\n" + POLICY, "document 2: policy py is defined twice"),
    ("bad-yaml", "spec: [", "not valid YAML"),
    # What the webhook refuses too (its status says Invalid): explain and inject agree with it.
    ("version-not-allowed", POLICY.replace('"4.16.0"}', '"4.16.0", allowedVersions: ["2.*"]}'),
     "spec.libraries[0].version: Invalid value: \"4.16.0\": not covered by allowedVersions"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in BAD_POLICIES],
                         ids=[c[0] for c in BAD_POLICIES])  # fmt: skip
def test_bad_policies_exit_2_with_no_output(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "policies.yaml").write_text(content)
    code, out, err = run_cli(capsys, "inject", "-f", str(WORKLOADS),
                             "--policies", str(tmp_path / "policies.yaml"))  # fmt: skip
    assert (code, out) == (2, "")
    assert "policies.yaml, " + message in err if "document" in message else message in err


def test_an_error_late_in_the_input_prints_nothing_before_it(
    policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All input is read and checked before the first document is written."""
    (tmp_path / "a.yaml").write_text(POD)
    (tmp_path / "b.yaml").write_text(
        "kind: Deployment\nmetadata: {name: d}\nspec: {template: {}}\n"
    )
    code, out, err = run_cli(capsys, "inject", "-f", str(tmp_path), "--policies", str(policy_file))
    assert (code, out) == (2, "")
    assert (
        "b.yaml, document 1: spec.template.spec.containers: Deployment -/d has no containers" in err
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "/nonexistent.yaml"], "/nonexistent.yaml: No such file"),
        (["-f", "EMPTY_DIR"], "holds no .yaml"),
        (["--namespace-labels", "novalue"], "'novalue' is not key=value"),
        (["--registry", "r.io/libs@sha256:" + "a" * 64], "--registry: 'r.io/libs@sha256"),
        (["--registry", "r.io/Libs"], "not a registry and repository prefix"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], message: str, policy_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "empty").mkdir()
    (tmp_path / "pod.yaml").write_text(POD)
    args = [str(tmp_path / "empty") if a == "EMPTY_DIR" else a for a in args]
    if "-f" not in args:
        args += ["-f", str(tmp_path / "pod.yaml")]
    code, out, err = run_cli(capsys, "inject", "--policies", str(policy_file), *args)
    assert (code, out) == (2, "")
    assert message in err


def test_console_script_runs(policy_file: Path) -> None:
    """The installed `libinject` entry point works as a process, with the exit code."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "libinject"), "inject", "-f", "-",
         "--policies", str(policy_file)],
        input=POD, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "libinject-python" in done.stdout


def test_crd_command_prints_the_committed_crd(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "crd")
    assert code == 0
    committed = (ROOT / "crds" / "instrumentationpolicies.libinject.dev.yaml").read_text()
    assert yaml.safe_load(out) == yaml.safe_load(committed)


def test_explain_says_a_service_name_came_from_the_workload(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The golden workloads: the DaemonSet, the Job, the Deployment and the CronJob, whose
    templates have no service label, name their pods' service; the StatefulSet's label names its
    own, and nothing is said.
    The written templates carry the same names (tests/golden/cases/workload-kinds.injected.yaml)."""
    out = explain_golden(capsys, "workload-kinds.yaml")
    services = [line.strip() for line in out.splitlines() if line.strip().startswith("service:")]
    assert services == [
        "service: the name of its DaemonSet node-probe (no service label)",
        "service: the name of its Job backfill (no service label)",
        "service: the name of its Deployment storefront (no service label)",
        "service: the name of its CronJob nightly (no service label)",
    ]


def test_explain_shows_a_container_the_pod_excludes(capsys: pytest.CaptureFixture[str]) -> None:
    """The golden pod `worker` excludes its log shipper by annotation: explain says so for that
    container, and the worker container is instrumented."""
    out = explain_golden(capsys, "pods.yaml")
    worker = out.split("Pod web/worker")[1].split("\nPod ")[0]
    assert "container worker: ContainerInstrumented: instrumented" in worker
    assert (
        "container log-shipper: ContainerExcluded: excluded by the pod's "
        "libinject.dev/exclude-containers annotation"
    ) in worker


def test_explain_shows_each_containers_own_version(capsys: pytest.CaptureFixture[str]) -> None:
    """The golden pod `pipeline`: score asked for 4.15.0 (allowed by 4.*) and got it, in a copy
    of its own; ingest asked for 5.0.0 and kept the pod's version. The written pod has both
    copies (tests/golden/cases/pods.injected.yaml)."""
    out = explain_golden(capsys, "pods.yaml")
    pipeline = out.split("Pod web/pipeline")[1].split("\nPod ")[0]
    assert "container score: ContainerInstrumented: instrumented, version 4.15.0" in pipeline
    assert "container ingest: ContainerInstrumented: instrumented\n" in pipeline
    assert (
        "version for ingest: VersionNotAllowed: libinject.dev/ingest.python.version=5.0.0 "
        "refused: allowedVersions is [4.*]; using 4.16.0"
    ) in pipeline


def test_explain_shows_policy_env_sources_and_tracing_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The golden policies' env sources and tracing blocks, as explain words them: the Node.js
    ddtrace spelling of the single b3 header, OpenTelemetry's propagator list, and each
    variable's source."""
    pods = explain_golden(capsys, "pods.yaml")
    frontend = pods.split("Pod web/frontend")[1].split("\nPod ")[0]
    assert (
        '    tracing: DD_TRACE_SAMPLING_RULES=[{"sample_rate":0.1}], '
        "DD_TRACE_PROPAGATION_STYLE=b3 single header,tracecontext"
    ) in frontend
    jvm = explain_golden(capsys, "java-agents.yaml")
    assert "    tracing: OTEL_PROPAGATORS=tracecontext,b3multi" in jvm
    assert (
        "    env OTEL_EXPORTER_OTLP_HEADERS: key headers of Secret collector-auth "
        "(unset where the pod's namespace has none)"
    ) in jvm
    assert "    env TEAM: the pod's metadata.labels['team']" in jvm
    assert "    env JVM_MEMORY_MI: the container's limits.memory in 1Mi" in jvm


def test_explain_says_why_a_copy_context_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """The golden pod `batch` sits in a namespace that enforces restricted, and its policy's
    copy-container context lacks what restricted asks: explain names each missing piece."""
    out = explain_golden(capsys, "pods.yaml")
    batch = out.split("Pod web/batch")[1].split("\nPod ")[0]
    assert (
        "    skipped: SecurityContextNotRestricted: the policy's securityContext for the copy "
        "container would fail the namespace's restricted Pod Security: allowPrivilegeEscalation "
        "must be false; capabilities must drop ALL"
    ) in batch


def test_explain_refuses_manifests_and_cluster_objects_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """-f with a KIND/NAME, -f without --policies, a KIND explain does not read, a kubeconfig
    that is missing or is no kubeconfig: each exits 2 with the reason (never a traceback),
    before any request reaches a cluster (the kubeconfig names none that answers)."""
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    cases = [
        (["-f", str(manifest), "pod/a", "--policies", str(manifest)], "not both"),
        (["-f", str(manifest)], "--policies: required with -f"),
        (["secret/a", "--kubeconfig", str(kubeconfig)], "secret/a: expected KIND/NAME"),
        (["deployment", "--kubeconfig", str(kubeconfig)], "expected KIND/NAME"),
        (["-A", "--kubeconfig", str(tmp_path / "absent")], "no usable kubeconfig in"),
        (["-A", "--kubeconfig", str(manifest)], "it has no 'clusters'"),
    ]
    for args, message in cases:
        code, out, err = run_cli(capsys, "explain", *args)
        assert (code, out) == (2, ""), args
        assert message in err, (args, err)
