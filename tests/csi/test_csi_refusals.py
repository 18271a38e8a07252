"""Who may publish, for real: the plugin over its socket in a private mount namespace
(`csi/plugin.py`), called as the kubelet calls it. Only volumes the webhook wrote (signed for the
pod's namespace), only images in the allowed repository path, never a writable volume, never a
second volume over a held target. Each refusal has its gRPC code, its log line and its count in
`libinject_csi_refused_publishes_total{reason}`, and leaves nothing behind: no record, no mount,
no pull."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import grpc
import pytest

from cluster.registry import Registry
from csi.plugin import KEY, Plugin, scrape, signed, target_of
from libinject.cli.main import EXIT_BAD_INPUT, main

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")

REFUSED = "libinject_csi_refused_publishes_total"


@pytest.fixture(scope="module")
def other_teams_image(ddtrace_image: str, registry: Registry, crane: Path) -> str:
    """A real image in another repository of the same registry (`<registry>/otherteam/...`),
    copied from the library image: what the plugin must not pull, even signed."""
    reference = f"{registry.address}/otherteam/python-ddtrace:{ddtrace_image.rsplit(':', 1)[1]}"
    subprocess.run([str(crane), "copy", ddtrace_image, reference], check=True, capture_output=True)
    return reference


def refused(
    plugin: Plugin, volume_id: str, target: Path, attributes: dict[str, str]
) -> grpc.RpcError:
    """Publishes, expecting a refusal; checks nothing was recorded or mounted for it."""
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish(volume_id, target, attributes)
    assert plugin.record(volume_id) is None
    assert not plugin.mounted(target)
    return error.value


def refusals(port: int, reason: str) -> float:
    return scrape(port).get((REFUSED, (("reason", reason),)), 0.0)


def test_unsigned_and_misdirected_volumes_refused(
    metered: Plugin, metrics_port: int, ddtrace_image: str
) -> None:
    """A pod anywhere may name the driver: a volume with no signature, one whose signature was
    made for another namespace (copied from an injected pod), one signed with another key, and
    one with no pod namespace from the kubelet are PERMISSION_DENIED, counted by reason, logged
    with the pod; nothing is pulled."""
    cases = {
        "unsigned": {k: v for k, v in signed(ddtrace_image).items() if k != "signature"},
        "copied": {
            **signed(ddtrace_image, namespace="shop"),
            "csi.storage.k8s.io/pod.namespace": "evil",
        },
        "forged": signed(ddtrace_image, key=b"f" * 64),
        "no-namespace": {
            k: v for k, v in signed(ddtrace_image).items() if not k.startswith("csi.storage")
        },
    }
    for name, attributes in cases.items():
        error = refused(metered, f"csi-{name}", target_of(metered, name), attributes)
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, name
    assert refusals(metrics_port, "unsigned") == 2
    assert refusals(metrics_port, "signature") == 2
    assert metered.pulls() == 0
    assert metered.cached() == []
    log = metered.log()
    assert log.count('"publish refused"') == 4
    assert '"reason": "unsigned"' in log
    assert '"reason": "signature"' in log


def test_a_signed_image_in_another_repository_refused(
    metered: Plugin, metrics_port: int, other_teams_image: str
) -> None:
    """Another team's image in a different repository of the same registry (really there):
    refused PERMISSION_DENIED even with a valid signature, never pulled."""
    error = refused(metered, "csi-other", target_of(metered, "other"), signed(other_teams_image))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "not in an allowed repository" in (error.details() or "")
    assert refusals(metrics_port, "repository") == 1
    assert metered.pulls() == 0
    assert metered.cached() == []


def test_writable_volumes_refused(metered: Plugin, metrics_port: int, ddtrace_image: str) -> None:
    """`writable` (either value) is INVALID_ARGUMENT: the pod's writes would land on the node's
    disk outside its ephemeral-storage accounting; no overlay directory appears."""
    for value in ("true", "false"):
        attributes = {**signed(ddtrace_image), "writable": value}
        error = refused(metered, f"csi-w-{value}", target_of(metered, f"w-{value}"), attributes)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "ephemeral-storage" in (error.details() or "")
    assert refusals(metrics_port, "writable") == 2
    assert not (metered.root / "overlays").exists()


def test_a_second_volume_at_a_held_target_refused(
    metered: Plugin, metrics_port: int, ddtrace_image: str
) -> None:
    """Volume A published at T; volume B at T is ALREADY_EXISTS and A's mount stays, serving
    the library. B's unpublish at T is OK and leaves A's layer mounted; A's own unpublish then
    unmounts it. Also when A's mount is gone but its record still names T (a crash between the
    two): B is refused, so A's later unpublish can never take B's layer."""
    target = target_of(metered, "pod-a")
    metered.publish("csi-a", target, signed(ddtrace_image))
    error = refused_keep_mount(metered, "csi-b", target, signed(ddtrace_image))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "csi-a" in (error.details() or "")
    metered.unpublish("csi-b", target)  # not B's target: nothing touched
    assert metered.mounted(target)
    assert (metered.inside(target) / "sitecustomize.py").is_file()
    assert metered.sh(f"umount {target}").returncode == 0  # A's record stays, its mount goes
    error = refused_keep_mount(metered, "csi-b", target, signed(ddtrace_image), mounted=False)
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert refusals(metrics_port, "target_in_use") == 2
    metered.unpublish("csi-a", target)
    assert metered.record("csi-a") is None
    assert not target.exists()


def test_a_held_target_named_through_a_symlink_refused(
    metered: Plugin, metrics_port: int, ddtrace_image: str
) -> None:
    """The same directory spelt through a symlink inside the pods root is the same target: a
    second volume there is ALREADY_EXISTS, and the first stays mounted and readable."""
    target = target_of(metered, "pod-a")
    metered.publish("csi-a", target, signed(ddtrace_image))
    (metered.pods / "alias").symlink_to(metered.pods / "pod-a")
    alias = target_of(metered, "alias")
    with pytest.raises(grpc.RpcError) as error:
        metered.publish("csi-b", alias, signed(ddtrace_image))
    assert error.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert metered.record("csi-b") is None
    assert refusals(metrics_port, "target_in_use") == 1
    metered.unpublish("csi-b", alias)
    assert (metered.inside(target) / "sitecustomize.py").is_file()
    metered.unpublish("csi-a", target)
    assert not metered.mounted(target)


def refused_keep_mount(
    plugin: Plugin,
    volume_id: str,
    target: Path,
    attributes: dict[str, str],
    *,
    mounted: bool = True,
) -> grpc.RpcError:
    """Publishes at a held target, expecting a refusal that changed nothing there."""
    mounts_before = plugin.sh(f"grep -c ' {target} ' /proc/self/mountinfo").stdout
    with pytest.raises(grpc.RpcError) as error:
        plugin.publish(volume_id, target, attributes)
    assert plugin.record(volume_id) is None
    assert plugin.mounted(target) is mounted
    assert plugin.sh(f"grep -c ' {target} ' /proc/self/mountinfo").stdout == mounts_before
    return error.value


def test_no_key_yet_is_unavailable_then_served(metered: Plugin, ddtrace_image: str) -> None:
    """Until the key can be read (the operator has not made its Secret yet) a publish is
    UNAVAILABLE, which the kubelet retries; once the key is there, the same publish succeeds
    without a restart."""
    metered.key_file.unlink()
    target = target_of(metered, "pod-k")
    error = refused(metered, "csi-k", target, signed(ddtrace_image))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "no signing key" in (error.details() or "")
    metered.key_file.write_bytes(KEY)
    metered.publish("csi-k", target, signed(ddtrace_image))
    assert (metered.inside(target) / "sitecustomize.py").is_file()
    metered.unpublish("csi-k", target)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--allowed-repository=127.0.0.1:5000", "--key-file=/k"], "not a whole registry"),
        (
            ["--allowed-repository=127.0.0.1:5000/libinject", "--key-secret=no-slash"],
            "NAMESPACE/NAME",
        ),
        (["--key-file=/k"], "at least one repository"),
        (
            ["--allowed-repository=127.0.0.1:5000/libinject", "--key-file=/k", "--platform=arm64"],
            "is not os/architecture",
        ),
        (
            [
                "--allowed-repository=127.0.0.1:5000/libinject",
                "--key-file=/k",
                "--registry-config=/nonexistent",
            ],
            "/nonexistent is not a directory",
        ),
    ],
)
def test_the_plugin_refuses_to_start_half_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    """A whole registry host as the allow-list (which admitted other teams' images), a key
    Secret not named NAMESPACE/NAME, no repository at all, a platform without its OS, or registry credentials that are not there:
    `libinject csi` exits with a clear error before serving."""
    base = [f"--endpoint=unix://{tmp_path}/csi.sock", f"--root={tmp_path}", "--node-id=n"]
    code = main(["csi", *base, "--no-events", *flags])
    assert code == EXIT_BAD_INPUT
    assert says in capsys.readouterr().err
    assert not (tmp_path / "csi.sock").exists()


def test_a_key_flag_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --key-secret or --key-file the plugin could check no signature: argparse stops."""
    with pytest.raises(SystemExit):
        main(["csi", "--endpoint=unix:///x", "--root=/x", "--node-id=n"])
    assert "--key-secret" in capsys.readouterr().err
