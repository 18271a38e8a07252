"""The CSI plugin's request rules (libinject.csi.validate): what it accepts, what it refuses, and
with which gRPC code."""

from __future__ import annotations

import pytest

from libinject.csi import validate
from libinject.csi.validate import Code, Reason, RefusedError, Rules
from libinject.engine import signature

PODS = "/var/lib/kubelet/pods"
RULES = Rules(allowed_repositories=("127.0.0.1:5000/libinject",))
DIGEST = "sha256:" + "a" * 64
KEY = b"k" * 64
IMAGE = "127.0.0.1:5000/libinject/python-ddtrace:4.16.0"


def signed(
    image: str = IMAGE, *, namespace: str = "shop", language: str = "python", key: bytes = KEY
) -> dict[str, str]:
    """What the kubelet passes for a volume the webhook wrote into a pod of `namespace`."""
    return {
        "image": image,
        "language": language,
        "signature": signature.sign(key, namespace=namespace, image=image, language=language),
        validate.POD_NAMESPACE: namespace,
        "csi.storage.k8s.io/pod.name": "web-0",
        "csi.storage.k8s.io/ephemeral": "true",
    }


@pytest.mark.parametrize(
    "value",
    [
        "csi-3f9a0c1e2d",
        "csi-" + "0123456789abcdef" * 4,
        "sanity.node_1-x",
        "A" * validate.MAX_VOLUME_ID,
    ],
)
def test_volume_ids_accepted(value: str) -> None:
    """Kubelet's ephemeral ids (csi-<sha256>) and other plain names pass unchanged."""
    assert validate.volume_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "/etc/passwd",
        "x\0y",
        ".hidden",
        "-flag",
        "a b",
        "é",
        "A" * (validate.MAX_VOLUME_ID + 1),
    ],
)
def test_hostile_volume_ids_refused(value: str) -> None:
    """A volume id becomes a file name: no separators, dots-only names, NUL, leading dot or dash,
    non-ASCII or over-long ids; each refused as INVALID_ARGUMENT."""
    with pytest.raises(RefusedError) as refused:
        validate.volume_id(value)
    assert refused.value.code is Code.INVALID_ARGUMENT
    assert refused.value.field == "volume_id"


def test_target_path_under_the_kubelet_pods_directory() -> None:
    """A kubelet target path (pods/<uid>/volumes/kubernetes.io~csi/<name>/mount) passes."""
    path = f"{PODS}/0b6f/volumes/kubernetes.io~csi/libinject-python/mount"
    assert validate.target_path(path, [PODS]) == path


@pytest.mark.parametrize(
    "value",
    [
        "",
        "var/lib/kubelet/pods/x/mount",  # relative
        "/var/lib/kubelet/pods/../../etc",  # escapes with ..
        "/var/lib/kubelet/pods/x/../../../etc",
        "/var/lib/kubelet/pods/./x",  # not normalized
        "/var/lib/kubelet/pods//x",
        "/var/lib/kubelet/pods/x/",
        "/var/lib/kubelet/pods",  # the root itself
        "/var/lib/kubelet/podsX/y",  # a sibling sharing the prefix
        "/etc/kubernetes",
        "/",
        "/var/lib/kubelet/pods/x\0/y",
        "/var/lib/kubelet/pods/" + "x" * validate.MAX_PATH,
    ],
)
def test_hostile_target_paths_refused(value: str) -> None:
    """Target paths that are relative, not normalized, escape with `..`, are outside (or are)
    the allowed root, hold a NUL or are too long: refused as INVALID_ARGUMENT."""
    with pytest.raises(RefusedError) as refused:
        validate.target_path(value, [PODS])
    assert refused.value.code is Code.INVALID_ARGUMENT
    assert refused.value.field == "target_path"


def test_target_roots_are_configurable() -> None:
    """Tests and csi-sanity use a temporary directory as the root."""
    assert validate.target_path("/tmp/t1/m", ["/tmp/t1"]) == "/tmp/t1/m"
    with pytest.raises(RefusedError):
        validate.target_path("/tmp/t1/m", [PODS])


@pytest.mark.parametrize(
    "value",
    [
        IMAGE,
        f"127.0.0.1:5000/libinject/python-ddtrace@{DIGEST}",
        f"127.0.0.1:5000/libinject/python-ddtrace:4.16.0@{DIGEST}",
        "127.0.0.1:5000/libinject/team/python__x-y:1",  # deeper, OCI separators
    ],
)
def test_image_references_accepted(value: str) -> None:
    """Tags, digests, or both, in a repository under the allowed path."""
    assert validate.image_reference(value, RULES.allowed_repositories) == value


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("evil.example.com/libinject/python-ddtrace:1", Code.PERMISSION_DENIED),
        ("127.0.0.1:5000/other/python-ddtrace:1", Code.PERMISSION_DENIED),  # another team's
        ("127.0.0.1:5000/libinjectx/python-ddtrace:1", Code.PERMISSION_DENIED),  # not a segment
        ("127.0.0.1:5000/libinject:1", Code.PERMISSION_DENIED),  # the prefix itself
        ("127.0.0.1:5001/libinject/python-ddtrace:1", Code.PERMISSION_DENIED),
        ("127.0.0.1:5000/libinject/python-ddtrace", Code.INVALID_ARGUMENT),  # no tag
        ("127.0.0.1:5000/libinject/../python:1", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject//python:1", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/python-ddtrace@sha256:abc", Code.INVALID_ARGUMENT),
        (f"127.0.0.1:5000/libinject/p@{DIGEST.upper()}", Code.INVALID_ARGUMENT),
        (f"127.0.0.1:5000/libinject/p@sha512:{'a' * 128}", Code.INVALID_ARGUMENT),
        (f"127.0.0.1:5000/libinject/p@{DIGEST}@{DIGEST}", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p:1:2", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p:-1", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p:.1", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p:" + "1" * 129, Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p:1 ", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/Python:1", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p--:1", Code.INVALID_ARGUMENT),
        ("python-ddtrace:1", Code.INVALID_ARGUMENT),
        ("", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p:1\0", Code.INVALID_ARGUMENT),
    ],
)
def test_image_references_refused(value: str, code: Code) -> None:
    """Images outside the allowed repository path (another registry, another repository of the
    same registry, a sibling sharing a prefix but not a path segment) are PERMISSION_DENIED;
    references whose name, tag or digest break the grammar are INVALID_ARGUMENT."""
    with pytest.raises(RefusedError) as refused:
        validate.image_reference(value, RULES.allowed_repositories)
    assert refused.value.code is code
    if code is Code.PERMISSION_DENIED:
        assert refused.value.reason is Reason.REPOSITORY


def test_the_webhooks_signed_volume_is_accepted() -> None:
    """What the webhook writes (libinject.engine.delivery) plus what the kubelet adds: served."""
    assert validate.image_for(signed(), RULES, keys=[KEY]) == IMAGE


def test_a_key_among_several_verifies() -> None:
    """The keys are tried in turn (the plugin's held key, then a fresh read of it)."""
    assert validate.image_for(signed(), RULES, keys=[b"x" * 64, KEY]) == IMAGE


def _without(attributes: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k != key}


@pytest.mark.parametrize(
    ("attributes", "code", "reason"),
    [
        pytest.param({}, Code.INVALID_ARGUMENT, Reason.INVALID, id="nothing"),
        pytest.param(
            _without(signed(), "signature"), Code.PERMISSION_DENIED, Reason.UNSIGNED, id="unsigned"
        ),
        pytest.param(
            _without(signed(), validate.POD_NAMESPACE),
            Code.PERMISSION_DENIED,
            Reason.UNSIGNED,
            id="no-pod-namespace",
        ),
        pytest.param(
            {**signed(namespace="shop"), validate.POD_NAMESPACE: "other-team"},
            Code.PERMISSION_DENIED,
            Reason.SIGNATURE,
            id="signature-of-another-namespace",
        ),
        pytest.param(
            {**signed(), "image": "127.0.0.1:5000/libinject/python-ddtrace:4.15.0"},
            Code.PERMISSION_DENIED,
            Reason.SIGNATURE,
            id="image-changed",
        ),
        pytest.param(
            {**signed(), "language": "java"},
            Code.PERMISSION_DENIED,
            Reason.SIGNATURE,
            id="language-changed",
        ),
        pytest.param(
            signed(key=b"z" * 64), Code.PERMISSION_DENIED, Reason.SIGNATURE, id="another-key"
        ),
        pytest.param(
            {**signed(), "signature": "v1." + "0" * 64},
            Code.PERMISSION_DENIED,
            Reason.SIGNATURE,
            id="forged",
        ),
        pytest.param(
            {**signed(), "signature": ""}, Code.PERMISSION_DENIED, Reason.SIGNATURE, id="empty"
        ),
        pytest.param(
            {**signed(), "signature": "é"}, Code.PERMISSION_DENIED, Reason.SIGNATURE, id="non-ascii"
        ),
        pytest.param(
            signed("127.0.0.1:5000/other/python-ddtrace:1"),
            Code.PERMISSION_DENIED,
            Reason.REPOSITORY,
            id="signed-but-another-repository",
        ),
        pytest.param(
            {**signed(), "writable": "true"}, Code.INVALID_ARGUMENT, Reason.WRITABLE, id="writable"
        ),
        pytest.param(
            {**signed(), "writable": "false"},
            Code.INVALID_ARGUMENT,
            Reason.WRITABLE,
            id="writable-false",
        ),
        pytest.param(
            {**signed(), "extra": "1"}, Code.INVALID_ARGUMENT, Reason.INVALID, id="unknown"
        ),
        pytest.param(
            _without(signed(), "language"), Code.INVALID_ARGUMENT, Reason.INVALID, id="no-language"
        ),
        pytest.param(
            {**signed(), "language": "../x"},
            Code.INVALID_ARGUMENT,
            Reason.INVALID,
            id="bad-language",
        ),
        pytest.param(
            {"language": "python", "flavor": "ddtrace", "version": "4.16.0"},
            Code.INVALID_ARGUMENT,
            Reason.INVALID,
            id="language-flavor-version",
        ),
    ],
)
def test_volumes_not_written_by_the_webhook_refused(
    attributes: dict[str, str], code: Code, reason: Reason
) -> None:
    """Only the webhook's volumes are served: without a signature, or the kubelet's pod
    namespace to check it against, or with one made for another namespace, image, language or
    key, PERMISSION_DENIED; a signed image outside the allowed repositories too; writable
    volumes (not served), unknown, missing or malformed attributes INVALID_ARGUMENT."""
    with pytest.raises(RefusedError) as refused:
        validate.image_for(attributes, RULES, keys=[KEY])
    assert refused.value.code is code
    assert refused.value.reason is reason


def test_no_key_verifies_nothing() -> None:
    """An empty key never verifies, even a signature made with the empty key."""
    with pytest.raises(RefusedError) as refused:
        validate.image_for(signed(key=b""), RULES, keys=[b""])
    assert refused.value.reason is Reason.SIGNATURE


@pytest.mark.parametrize(
    "entry", ["", "http://x", "x/../y", "host:port/x", "/x", "127.0.0.1:5000", "registry.example/"]
)
def test_bad_configuration_refused(entry: str) -> None:
    """The node's own allowed-repository entries are checked at start-up; a bare registry host
    (which would admit every repository of it) is refused."""
    with pytest.raises(ValueError, match="repository"):
        Rules(allowed_repositories=(entry,))


def test_a_trailing_slash_is_the_same_repository_path() -> None:
    """`reg/libinject/` (the path written as a directory) allows what `reg/libinject` does."""
    rules = Rules(allowed_repositories=("127.0.0.1:5000/libinject/",))
    assert rules.allowed_repositories == ("127.0.0.1:5000/libinject",)
    assert validate.image_reference(IMAGE, rules.allowed_repositories) == IMAGE
