"""csi-test's csi-sanity (the CSI conformance suite) against libinject's CSI node plugin.

What csi-sanity v5.6.0 does with a node-only, ephemeral-only driver (read from pkg/sanity, and
watched against a throw-away node-only driver that logged every call):

- Version: v5.6.0 (tests/cluster/versions.py). Up to v5.4.0 the Node Service specs' BeforeEach
  calls ControllerGetCapabilities unconditionally (for controllerExpansionSupported), so every
  Node spec fails on a driver without a Controller service. From v5.5 both controller lookups
  sit behind `GetPluginCapabilities` offering CONTROLLER_SERVICE; without it they are skipped.
- Flags: `--csi.endpoint unix://<socket>`, `--csi.mountdir DIR`, `--csi.stagingdir DIR` (there is
  no --csi.mountpoint). csi-sanity makes both directories with a single mkdir (the parent must
  exist, the directory must not) before every spec and removes them after it (an rmdir: whatever
  the driver leaves inside survives and the next spec's mkdir then fails).
- Skipped with `--ginkgo.skip`: "Controller Server" and "GroupController" (every Controller and
  GroupController spec, including the snapshot, expansion and health ones), and
  "Node Service NodeUnpublishVolume should remove target path": that spec calls CreateVolume with
  no capability check (in v5.6.0 too) and fails with UNIMPLEMENTED on a node-only driver. The
  node specs for NodeStage/Unstage, NodeGetVolumeStats, NodeExpandVolume, volume and storage
  health, single-node-multi-writer and "should work"/"should be idempotent" skip themselves from
  the capabilities (the last two need a Controller service to create volumes).
- What is left and must pass: Identity GetPluginCapabilities, Probe, GetPluginInfo (the name must
  match ^[a-zA-Z][A-Za-z0-9-.\\_]{0,61}[a-zA-Z]$); Node NodeGetCapabilities (an unknown
  capability fails), NodeGetInfo (node id not empty, max_volumes_per_node >= 0), and five calls
  that must fail with INVALID_ARGUMENT:
    NodePublishVolume {}                                          (no volume id, no target path)
    NodePublishVolume {volume_id}                                 (no target path)
    NodePublishVolume {volume_id, target_path}                    (no volume capability)
    NodeUnpublishVolume {}
    NodeUnpublishVolume {volume_id}                               (no target path)
  volume_id is "fake-vol-id-" + 10 characters of a UUID, fresh for each call; target_path is
  `<mountdir>/target` (a path inside the mountdir, not created). None of them carries a
  volume_context, a volume capability with mount flags, secrets or a staging path.
- So csi-sanity never makes a NodePublishVolume call that could succeed, and sends no
  volume_context at all: volume attributes reach NodePublishVolume only from a CreateVolume
  response (sanity's `--csi.testvolumeparameters` YAML is CreateVolume's `parameters`, used only
  with a Controller service). A driver that refuses a request without volume attributes with
  INVALID_ARGUMENT passes whatever order it checks things in, provided it checks before it pulls
  or mounts anything. Real publishes (image, language/flavor/version) are not exercised here.

The plugin runs under `unshare --mount --propagation private` so that whatever it mounts stays
out of the host's mount table; csi-sanity runs outside and only sees directories.
"""

from __future__ import annotations

import socket
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster import harness
from cluster.libraries import LIBINJECT
from cluster.registry import Registry, spawn, stop

pytestmark = pytest.mark.live

NODE_ID = "sanity-node"
SANITY_TIMEOUT = 300.0  # seconds; the run itself takes well under one
SKIP = (
    "Controller Server",
    "GroupController",
    # Calls CreateVolume unconditionally: UNIMPLEMENTED on a node-only driver.
    "Node Service NodeUnpublishVolume should remove target path",
)
# Every spec a node-only, ephemeral-only driver without optional node capabilities must pass.
REQUIRED = frozenset(
    {
        "Identity Service GetPluginCapabilities should return appropriate capabilities",
        "Identity Service Probe should return appropriate information",
        "Identity Service GetPluginInfo should return appropriate information",
        "Node Service NodeGetCapabilities should return appropriate capabilities",
        "Node Service NodeGetInfo should return appropriate values",
        "Node Service NodePublishVolume should fail when no volume id is provided",
        "Node Service NodePublishVolume should fail when no target path is provided",
        "Node Service NodePublishVolume should fail when no volume capability is provided",
        "Node Service NodeUnpublishVolume should fail when no volume id is provided",
        "Node Service NodeUnpublishVolume should fail when no target path is provided",
    }
)


@dataclass(frozen=True)
class Spec:
    name: str  # the spec's full text, without Ginkgo's "[It] " prefix
    status: str  # passed, failed, skipped, pending, panicked, ...

    @property
    def service(self) -> str:
        """Identity, Node, Controller, ...: the first word of the spec's text."""
        return self.name.split(" ", 1)[0]


def read_junit(path: Path) -> list[Spec]:
    specs = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "").removeprefix("[It] ")
        specs.append(Spec(name=name, status=case.get("status", "")))
    return specs


def sanity_command(
    csi_sanity: Path, *, endpoint: str, mountdir: Path, stagingdir: Path, junit: Path
) -> list[str]:
    return [
        str(csi_sanity),
        f"--csi.endpoint={endpoint}",
        f"--csi.mountdir={mountdir}",
        f"--csi.stagingdir={stagingdir}",
        f"--ginkgo.skip={'|'.join(SKIP)}",
        f"--ginkgo.junit-report={junit}",
        "--ginkgo.no-color",
    ]


def serving(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket at `path`."""
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))  # OSError until the plugin listens; wait_until retries
    return True


@pytest.fixture
def plugin(tmp_path: Path, registry: Registry, crane: Path) -> Iterator[Callable[[Path], str]]:
    """Starts the plugin with its targets under the given root; returns its endpoint."""
    started: list[harness.Process] = []

    def start(target_root: Path) -> str:
        sock = tmp_path / "csi.sock"
        endpoint = f"unix://{sock}"
        key = tmp_path / "key"  # csi-sanity sends no attributes: nothing it publishes is signed
        key.write_text("0" * 64)
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            str(LIBINJECT),
            "csi",
            f"--endpoint={endpoint}",
            f"--root={tmp_path / 'plugin'}",
            f"--node-id={NODE_ID}",
            f"--allowed-repository={registry.address}/libinject",
            f"--key-file={key}",
            f"--target-root={target_root}",
            f"--crane={crane}",
            "--publish-timeout=60",
        ]
        process = spawn("libinject csi", command, log=tmp_path / "plugin.log")
        started.append(process)
        harness.wait_until(process, lambda: serving(sock))
        return endpoint

    yield start
    for process in started:
        stop(process)


def test_csi_sanity_passes(
    tmp_path: Path,
    csi_sanity: Path,
    plugin: Callable[[Path], str],
    report: Callable[[str], None],
) -> None:
    targets = tmp_path / "targets"  # the plugin's target root; csi-sanity's mountdir is inside
    targets.mkdir()
    endpoint = plugin(targets)
    junit = tmp_path / "junit.xml"
    command = sanity_command(
        csi_sanity,
        endpoint=endpoint,
        mountdir=targets / "mount",
        stagingdir=tmp_path / "staging",
        junit=junit,
    )
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=SANITY_TIMEOUT, check=False
    )
    output = result.stdout + result.stderr
    plugin_log = (tmp_path / "plugin.log").read_text(errors="replace")
    assert junit.exists(), f"csi-sanity wrote no report:\n{output}\n--- plugin ---\n{plugin_log}"

    specs = read_junit(junit)
    statuses = Counter(spec.status for spec in specs)
    ran = [spec for spec in specs if spec.status not in {"skipped", "pending"}]
    by_service = Counter(f"{spec.service} {spec.status}" for spec in ran)
    report(
        f"csi-sanity: {len(specs)} specs, "
        + ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        + "; ran: "
        + ", ".join(f"{count} {key}" for key, count in sorted(by_service.items()))
    )

    failed = [spec.name for spec in ran if spec.status != "passed"]
    assert not failed, f"failed: {failed}\n{output[-6000:]}\n--- plugin ---\n{plugin_log[-4000:]}"
    assert result.returncode == 0, output[-6000:]
    passed = {spec.name for spec in ran}
    assert not REQUIRED - passed, f"did not run: {sorted(REQUIRED - passed)}"
    # Only the Identity and Node services were tested; the controller's specs all skipped.
    assert {spec.service for spec in ran} == {"Identity", "Node"}
    # csi-sanity removed its mountdir after each spec: the plugin left nothing behind.
    assert list(targets.iterdir()) == []
