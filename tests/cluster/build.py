"""Builds the control plane's binaries from the Go module proxy, cached by version outside git.

No registry ships a kube-apiserver binary, so each product is built from a throw-away Go module
that requires it. Kubernetes needs one more step: its go.mod requires the staging modules
(`k8s.io/api v0.0.0`, ...) that only exist inside its own repository, so the throw-away module
replaces each one with its published `v0.<minor>.<patch>` (the list is read from that version's
go.mod, so a new minor's new staging modules are picked up).

Cache: <cache root>/testbin/<product>-<version>-<digest of the recipe>/ (see
tools.gobuild.cache_root), so changing how a product is built rebuilds it. A product is
built into a temporary directory and renamed into place, so a half-built one is never used; a lock
file keeps two test runs from building the same thing at once.

Run `python -m cluster.build` (with tests/ on sys.path) to build with progress on the terminal;
it also fetches the other tools the tests run (cluster.debian, cluster.testagent).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cluster import versions
from tools.gobuild import BuildError, cache_root, go_binary

# Upstream's release flags: static, reproducible, no debug info; `notest` drops test-only code.
BUILD_FLAGS = ("-trimpath", "-tags", "selinux,notest")
STAGING_REQUIREMENT = re.compile(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*$", re.MULTILINE)
PROGRESS_EVERY = 15.0  # seconds between progress lines while the compiler is quiet


@dataclass(frozen=True)
class Product:
    """One Go module version and the commands built from it."""

    name: str
    module: str
    version: str
    commands: Mapping[str, str]  # binary name -> package
    ldflags: tuple[str, ...] = ()
    staging: bool = False  # requires Kubernetes staging modules, replaced by published tags
    # Files the commands need at run time, read from the module itself: output name -> the
    # module's files, concatenated as YAML documents.
    data: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    goarch: str | None = None  # cross-built for this architecture; None: the host's

    @property
    def key(self) -> str:
        """The cache directory's name: the version, and a digest of how it is built."""
        recipe = [self.commands, self.ldflags, self.staging, self.data]
        if self.goarch is not None:  # absent for the host's, so its existing caches stay valid
            recipe.append(self.goarch)
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.name}-{self.version}-{digest}"


def kubernetes() -> Product:
    version = versions.KUBERNETES
    major, minor, _ = version.removeprefix("v").split(".")
    stamp = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    ldflags = tuple(
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in stamp.items()
    )
    commands = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
    return Product(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=version,
        commands={name: f"k8s.io/kubernetes/cmd/{name}" for name in commands},
        ldflags=ldflags,
        staging=True,
    )


def etcd() -> Product:
    # The server module's root package is etcd's main.
    return Product(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=versions.ETCD,
        commands={"etcd": "go.etcd.io/etcd/server/v3"},
    )


def kwok() -> Product:
    return Product(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version=versions.KWOK,
        commands={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        # kwok runs only the stages its config names; these are the ones kwokctl uses by default
        # (nodes become Ready and keep a lease; scheduled pods become Running and Ready).
        data={
            "kwok.yaml": (
                "kustomize/stage/node/fast/node-initialize.yaml",
                "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
                "kustomize/stage/pod/fast/pod-ready.yaml",
                "kustomize/stage/pod/fast/pod-complete.yaml",
                "kustomize/stage/pod/fast/pod-delete.yaml",
            )
        },
    )


def crane(goarch: str | None = None) -> Product:
    """Images without Docker: the tests build, push and read back images with it. `goarch`
    cross-builds it (static, no cgo) for the operator image's other platforms."""
    return Product(
        name="crane",
        module="github.com/google/go-containerregistry",
        version=versions.CRANE,
        commands={"crane": "github.com/google/go-containerregistry/cmd/crane"},
        # What `crane version` prints; unset, it reports the throw-away module's "(devel)".
        ldflags=(
            f"-X github.com/google/go-containerregistry/cmd/crane/cmd.Version={versions.CRANE}",
        ),
        goarch=goarch,
    )


def csi_sanity() -> Product:
    # The CSI conformance suite, run against libinject's CSI node plugin (tests/live).
    return Product(
        name="csi-sanity",
        module="github.com/kubernetes-csi/csi-test/v5",
        version=versions.CSI_SANITY,
        commands={"csi-sanity": "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity"},
        # What `csi-sanity --version` prints; unset, it reports "(dev)".
        ldflags=(f"-X main.VERSION={versions.CSI_SANITY}",),
    )


def helm() -> Product:
    """Helm, to lint and render charts/libinject as a user would."""
    module = "helm.sh/helm/v4"
    return Product(
        name="helm",
        module=module,
        version=versions.HELM,
        commands={"helm": f"{module}/cmd/helm"},
        # What `helm version` prints; unset, it reports the throw-away module's "v4.0+unreleased".
        ldflags=(f"-X {module}/internal/version.version={versions.HELM}",),
    )


def otel_operator() -> Product:
    """The OpenTelemetry Operator (the peer in bench/webhook.py), with its Instrumentation CRD.
    Built only by the bench: the tests never run it."""
    module = "github.com/open-telemetry/opentelemetry-operator"
    release = versions.OTEL_OPERATOR.removeprefix("v")
    return Product(
        name="opentelemetry-operator",
        module=module,
        version=versions.OTEL_OPERATOR,
        commands={"opentelemetry-operator": module},
        # What its logs and /version say; its release build sets the same variable.
        ldflags=(f"-X {module}/internal/version.version={release}",),
        data={
            "instrumentations-crd.yaml": (
                "config/crd/bases/opentelemetry.io_instrumentations.yaml",
            )
        },
    )


def staging_replaces() -> dict[str, str]:
    """`k8s.io/<staging>` -> its published tag, for every staging module Kubernetes requires."""
    module = f"k8s.io/kubernetes@{versions.KUBERNETES}"
    go_mod = Path(_go_json("mod", "download", "-json", module)["GoMod"])
    modules = STAGING_REQUIREMENT.findall(go_mod.read_text())
    if not modules:
        raise BuildError(f"{module}: no staging modules found in its go.mod")
    return dict.fromkeys(sorted(modules), versions.STAGING)


def binaries() -> dict[str, Path]:
    """Every control-plane binary (and data file), crane, csi-sanity and helm by name, building
    what the cache lacks."""
    paths: dict[str, Path] = {}
    for product in (etcd(), kwok(), crane(), csi_sanity(), helm(), kubernetes()):
        paths |= ensure(product)
    return paths


def ensure(product: Product) -> dict[str, Path]:
    target = _target(key=product.key)
    if not target.is_dir():
        with locked(target.parent / ".lock"):
            if not target.is_dir():  # another run may have built it while we waited
                _build(product, target)
    return _paths(target)


def _target(*, key: str) -> Path:
    return cache_root() / "testbin" / key


def _paths(target: Path) -> dict[str, Path]:
    return {path.name: path for path in sorted(target.iterdir()) if path.is_file()}


def _build(product: Product, target: Path) -> None:
    go = go_binary()
    started = time.monotonic()
    say(f"building {product.key} from the Go module proxy into {target}")
    with tempfile.TemporaryDirectory(prefix=f".{product.key}-", dir=target.parent) as work:
        module = Path(work) / "module"
        module.mkdir()
        _write_module(product, module)
        run([go, "mod", "tidy"], cwd=module, label=f"{product.key}: resolving", unit="downloads")
        out = Path(work) / "bin"
        for name, package in product.commands.items():
            flags = [*BUILD_FLAGS, "-ldflags", " ".join(("-s", "-w", *product.ldflags))]
            command = [go, "build", "-v", *flags, "-o", str(out / name), package]
            run(
                command,
                cwd=module,
                label=f"{product.key}: {name}",
                unit="packages",
                goarch=product.goarch,
            )
        _copy_data(product, out)
        out.rename(target)  # atomic: a half-built product is never cached
    say(f"built {product.key} in {elapsed(started)}")


def _copy_data(product: Product, out: Path) -> None:
    if not product.data:
        return
    source = Path(
        _go_json("mod", "download", "-json", f"{product.module}@{product.version}")["Dir"]
    )
    for name, parts in product.data.items():
        documents = [(source / part).read_text().strip() for part in parts]
        (out / name).write_text("\n---\n".join(documents) + "\n")


def _write_module(product: Product, directory: Path) -> None:
    staging = staging_replaces() if product.staging else {}
    replaces = "".join(f"\t{name} => {name} {tag}\n" for name, tag in staging.items())
    go_mod = (
        f"module libinject.dev/testbin\n\ngo 1.26.0\n\nrequire {product.module} {product.version}\n"
    )
    if replaces:
        go_mod += f"\nreplace (\n{replaces})\n"
    (directory / "go.mod").write_text(go_mod)
    # A file that is never compiled but makes `go mod tidy` keep what the commands import.
    imports = "".join(f'\t_ "{package}"\n' for package in product.commands.values())
    (directory / "tools.go").write_text(
        f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n"
    )


def run(command: list[str], *, cwd: Path, label: str, unit: str, goarch: str | None = None) -> None:
    """Runs a go command, printing a progress line every few seconds and its output on failure."""
    started = time.monotonic()
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    if goarch is not None:
        env["GOARCH"] = goarch
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    with _ticker(label=label, started=started, progress=lambda: f"{len(lines)} {unit}"):
        lines.extend(process.stdout)
    if process.wait() != 0:
        tail = "".join(lines[-40:])
        raise BuildError(f"{label} failed ({' '.join(command)}):\n{tail}")
    say(f"{label}: done in {elapsed(started)} ({len(lines)} {unit})")


@contextmanager
def _ticker(*, label: str, started: float, progress: Callable[[], str]) -> Iterator[None]:
    """Prints how far a long, quiet step has got until the block ends."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(PROGRESS_EVERY):
            say(f"{label}: {progress()} so far, {elapsed(started)}")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _go_json(*args: str) -> dict[str, str]:
    result = subprocess.run([go_binary(), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"go {' '.join(args)} failed:\n{result.stderr}")
    return dict(json.loads(result.stdout))


def elapsed(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def say(message: str) -> None:
    print(f"[testbin] {message}", file=sys.stderr, flush=True)


def main() -> int:
    # The other prepared tools, so that a test run starts with everything in the cache.
    from cluster import debian, javaapp, nodeapp, nodejs, testagent  # noqa: PLC0415 (they import this module)
    from java import agents, jvms  # noqa: PLC0415 (tests/java: the launcher's tests)
    from nodejs.bundles import npm_installs  # noqa: PLC0415 (tests/nodejs: the loader's tests)

    try:
        for name, path in binaries().items():
            say(f"{name}: {path}")
        say(f"busybox: {debian.busybox()}")
        say(f"docker-registry: {debian.docker_registry()}")
        say(f"ddapm-test-agent: {testagent.venv()}")
        for flavor in agents.VERSIONS:
            say(f"{flavor} Java agent: {agents.maven_agent(flavor)}")
        say(f"Java web app: {javaapp.java_webapp()}")
        say(f"Java 8: {jvms.java8().java}")
        for major in nodejs.RELEASES:
            say(f"Node {major}: {nodejs.node_binary(major)}")
        for packages in npm_installs():
            say(f"npm {' '.join(packages)}: {nodejs.npm_installed(packages)}")
        say(f"Node.js web app: {nodeapp.node_webapp()}")
    except BuildError as error:
        say(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
