"""The CSI plugin's request rules (libinject.csi.validate): what it accepts, what it refuses, and
with which gRPC code."""

from __future__ import annotations

import pytest

from libinject.csi import validate
from libinject.csi.validate import Code, RefusedError, Rules

PODS = "/var/lib/kubelet/pods"
RULES = Rules(allowed_registries=("127.0.0.1:5000/libinject",), registry="127.0.0.1:5000/libinject")
DIGEST = "sha256:" + "a" * 64


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
        "127.0.0.1:5000/libinject/python-ddtrace:4.16.0",
        f"127.0.0.1:5000/libinject/python-ddtrace@{DIGEST}",
        f"127.0.0.1:5000/libinject/python-ddtrace:4.16.0@{DIGEST}",
    ],
)
def test_image_references_accepted(value: str) -> None:
    """Tags, digests, or both, from an allowed registry."""
    assert validate.image_reference(value, RULES.allowed_registries) == value


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("evil.example.com/libinject/python-ddtrace:1", Code.PERMISSION_DENIED),
        ("127.0.0.1:5000/other/python-ddtrace:1", Code.PERMISSION_DENIED),
        ("127.0.0.1:5000/libinjectx/python-ddtrace:1", Code.PERMISSION_DENIED),
        ("127.0.0.1:5001/libinject/python-ddtrace:1", Code.PERMISSION_DENIED),
        ("127.0.0.1:5000/libinject/python-ddtrace", Code.INVALID_ARGUMENT),  # no tag
        ("127.0.0.1:5000/libinject/../python:1", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/python-ddtrace@sha256:abc", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/Python:1", Code.INVALID_ARGUMENT),
        ("python-ddtrace:1", Code.INVALID_ARGUMENT),
        ("", Code.INVALID_ARGUMENT),
        ("127.0.0.1:5000/libinject/p:1\0", Code.INVALID_ARGUMENT),
    ],
)
def test_image_references_refused(value: str, code: Code) -> None:
    """Images from another registry (or another prefix of it) are PERMISSION_DENIED; malformed
    references are INVALID_ARGUMENT."""
    with pytest.raises(RefusedError) as refused:
        validate.image_reference(value, RULES.allowed_registries)
    assert refused.value.code is code


def test_attributes_name_the_image_as_the_engine_does() -> None:
    """language/flavor/version give `<registry>/<language>-<flavor>:<version>`; the kubelet's
    own csi.storage.k8s.io/* attributes are ignored."""
    attributes = {
        "language": "python",
        "flavor": "ddtrace",
        "version": "4.16.0",
        "csi.storage.k8s.io/pod.name": "web-0",
        "csi.storage.k8s.io/ephemeral": "true",
    }
    assert validate.image_for(attributes, RULES) == "127.0.0.1:5000/libinject/python-ddtrace:4.16.0"
    image = "127.0.0.1:5000/libinject/python-opentelemetry:0.66b1"
    assert validate.image_for({"image": image}, RULES) == image


def test_the_webhooks_attributes_are_accepted() -> None:
    """What the webhook writes (libinject.engine.delivery): the image, and its language for
    people reading the pod."""
    image = "127.0.0.1:5000/libinject/python-ddtrace:4.16.0"
    assert validate.image_for({"image": image, "language": "python"}, RULES) == image


@pytest.mark.parametrize(
    ("attributes", "code"),
    [
        ({}, Code.INVALID_ARGUMENT),
        ({"language": "python", "flavor": "ddtrace"}, Code.INVALID_ARGUMENT),
        ({"image": "127.0.0.1:5000/libinject/p:1", "flavor": "ddtrace"}, Code.INVALID_ARGUMENT),
        ({"image": "127.0.0.1:5000/libinject/p:1", "language": "../x"}, Code.INVALID_ARGUMENT),
        ({"image": "127.0.0.1:5000/libinject/p:1", "extra": "1"}, Code.INVALID_ARGUMENT),
        ({"language": "../x", "flavor": "d", "version": "1"}, Code.INVALID_ARGUMENT),
        ({"language": "python", "flavor": "d", "version": "1/../2"}, Code.INVALID_ARGUMENT),
        ({"image": "docker.io/library/python:3"}, Code.PERMISSION_DENIED),
    ],
)
def test_attributes_refused(attributes: dict[str, str], code: Code) -> None:
    """Missing, mixed, unknown or malformed attributes, and images from elsewhere."""
    with pytest.raises(RefusedError) as refused:
        validate.image_for(attributes, RULES)
    assert refused.value.code is code


def test_language_attributes_need_a_configured_registry() -> None:
    """Without --registry only a full `image` attribute can name the library."""
    rules = Rules(allowed_registries=("127.0.0.1:5000/libinject",))
    with pytest.raises(RefusedError, match="no --registry"):
        validate.image_for({"language": "python", "flavor": "d", "version": "1"}, rules)


@pytest.mark.parametrize("entry", ["", "http://x", "x/../y", "host:port/x", "/x"])
def test_bad_configuration_refused(entry: str) -> None:
    """The node's own allowed-registry entries are checked at start-up."""
    with pytest.raises(ValueError, match="registry"):
        Rules(allowed_registries=(entry,))


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({}, False),
        ({"writable": "false"}, False),
        ({"writable": "true"}, True),
    ],
)
def test_writable_attribute(attributes: dict[str, str], expected: bool) -> None:
    """`writable` is false when absent, and exactly "true" or "false" otherwise."""
    assert validate.writable(attributes) is expected


@pytest.mark.parametrize("value", ["", "True", "yes", "1", "true ", "on"])
def test_writable_values_refused(value: str) -> None:
    """Anything but "true" or "false" (no case folding, no yes/1/on) is INVALID_ARGUMENT."""
    with pytest.raises(RefusedError) as refused:
        validate.writable({"writable": value})
    assert refused.value.code is Code.INVALID_ARGUMENT
    assert refused.value.field == "volume_context"


def test_writable_goes_with_either_way_of_naming_the_image() -> None:
    """`writable` says how the library is mounted, not which one: it is not an unknown
    attribute next to `image` (and `language`) or next to language/flavor/version."""
    image = "127.0.0.1:5000/libinject/python-ddtrace:4.16.0"
    for attributes in (
        {"image": image, "writable": "true"},
        {"image": image, "language": "python", "writable": "false"},
        {"language": "python", "flavor": "ddtrace", "version": "4.16.0", "writable": "true"},
    ):
        assert validate.image_for(attributes, RULES) == image


def test_overlay_paths() -> None:
    """A path named in overlay options passes unchanged unless it holds `,` (separates the
    options), `:` (separates lower directories), `\\` (escapes) or NUL: those are refused."""
    path = "/var/lib/libinject/overlays/csi-3f9a/upper"
    assert validate.overlay_path(path, "root") == path
    for bad in ("/a,b", "/a:b", "/a\\b", "/a\0b", "/x/upper,lowerdir=/etc"):
        with pytest.raises(RefusedError) as refused:
            validate.overlay_path(bad, "root")
        assert refused.value.code is Code.INVALID_ARGUMENT
        assert refused.value.field == "root"
