"""The operator's and the CSI plugin's own API client (runtime.kube) against the real API server:
errors carry the server's status and message, an unreachable server is an error too (never a
hang or a raw transport exception), and a rejected token is read again from the kubeconfig once,
as a pod's rotated ServiceAccount token must be."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import harness
from libinject.runtime import kube

SECRETS = "/api/v1/namespaces/libinject-system/secrets"


def _kubeconfig(plane: harness.ControlPlane, path: Path, token: str) -> Path:
    path.write_text(
        harness.kubeconfig(server=plane.server, ca=plane.keys.ca.certificate, user={"token": token})
    )
    return path


def test_an_error_carries_the_status_and_the_servers_message(admin_api: kube.Api) -> None:
    with pytest.raises(kube.ApiError) as missing:
        admin_api.get(f"{SECRETS}/no-such-secret")
    assert missing.value.status == 404
    assert 'secrets "no-such-secret" not found' in str(missing.value)


def test_an_unreachable_server_is_an_api_error_with_status_0(
    control_plane: harness.ControlPlane, tmp_path: Path
) -> None:
    path = tmp_path / "kubeconfig"
    server = f"https://127.0.0.1:{harness.free_port()}"  # nothing listens there
    path.write_text(
        harness.kubeconfig(server=server, ca=control_plane.keys.ca.certificate, user={})
    )
    with pytest.raises(kube.ApiError) as unreachable:
        kube.Api(path).get("/version")
    assert unreachable.value.status == 0
    assert "GET /version" in str(unreachable.value)


def test_a_rejected_token_is_read_again_once(
    control_plane: harness.ControlPlane, operator_token: str, tmp_path: Path
) -> None:
    """The client starts with a token the server rejects; the kubeconfig then gets a valid one
    (as the kubelet rotates a pod's token file): the next call succeeds after one reload. With
    a token that stays bad, the 401 is the error."""
    path = _kubeconfig(control_plane, tmp_path / "kubeconfig", "not-a-token")
    api = kube.Api(path)
    _kubeconfig(control_plane, path, operator_token)
    assert api.get("/apis/libinject.dev/v1alpha1/instrumentationpolicies")["items"] is not None
    stale = kube.Api(_kubeconfig(control_plane, tmp_path / "stale", "not-a-token"))
    with pytest.raises(kube.ApiError) as rejected:
        stale.get("/apis/libinject.dev/v1alpha1/instrumentationpolicies")
    assert rejected.value.status == 401
