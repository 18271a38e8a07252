"""What a container runs and as whom, as Kubernetes and the runtime decide it from the pod and
the image: command/args over entrypoint/cmd, user and groups, working directory, environment."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.podrunner.containers import (
    DEFAULT_PATH,
    Identity,
    Image,
    argv,
    environment,
    identity,
    working_dir,
)
from cluster.podrunner.errors import ContainerConfigError
from cluster.podrunner.images import _repository, image_from_config

IMAGE = Image(entrypoint=("/entry", "-x"), cmd=("serve", "--port=80"))
ENV = {"PORT": "8080", "NAME": "web"}
PASSWD = ["root:x:0:0:root:/root:/bin/sh", "app:x:1000:1001::/home/app:/bin/sh"]


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({}, ["/entry", "-x", "serve", "--port=80"]),
        ({"args": ["run", "--port=$(PORT)"]}, ["/entry", "-x", "run", "--port=8080"]),
        ({"command": ["/bin/app"]}, ["/bin/app"]),
        ({"command": ["/bin/app", "$(NAME)"], "args": ["$$(NAME)", "$(NOPE)"]},
         ["/bin/app", "web", "$(NAME)", "$(NOPE)"]),
    ],
)  # fmt: skip
def test_command_and_args_over_the_image(container: dict[str, Any], expected: list[str]) -> None:
    """command replaces the entrypoint and drops cmd; args alone replace cmd; only the pod's
    strings are expanded."""
    assert argv(container, IMAGE, env=ENV) == expected


def test_nothing_to_run_is_refused() -> None:
    """A container with no command and an image with no entrypoint or cmd cannot start."""
    with pytest.raises(ContainerConfigError, match="'empty' has no command"):
        argv({"name": "empty"}, Image(), env={})


def test_environment_layers() -> None:
    """The runtime's default PATH, then its base (HOSTNAME), the image's env, the container's."""
    image = Image(env={"PATH": "/venv/bin:/usr/bin", "LANG": "C.UTF-8", "HOSTNAME": "image"})
    env = environment({"HOSTNAME": "web-1"}, image=image, env={"LANG": "en_US.UTF-8", "X": "1"})
    assert env == {
        "PATH": "/venv/bin:/usr/bin",
        "HOSTNAME": "image",
        "LANG": "en_US.UTF-8",
        "X": "1",
    }
    assert environment({}, image=Image(), env={})["PATH"] == DEFAULT_PATH


def test_working_directory() -> None:
    """workingDir, else the image's, else /."""
    assert working_dir({"workingDir": "/srv"}, Image(working_dir="/app")) == "/srv"
    assert working_dir({}, Image(working_dir="/app")) == "/app"
    assert working_dir({}, Image()) == "/"


def pod(context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": {"securityContext": context or {}}}


@pytest.mark.parametrize(
    ("pod_context", "container_context", "user", "expected"),
    [
        ({}, {}, "", Identity(0, 0, (0,))),
        ({}, {}, "1000", Identity(1000, 1001, (1001,))),
        ({}, {}, "app", Identity(1000, 1001, (1001,))),
        ({}, {}, "app:5", Identity(1000, 5, (5,))),
        ({}, {}, "4242", Identity(4242, 0, (0,))),
        ({"runAsUser": 4242}, {}, "app:5", Identity(4242, 0, (0,))),
        ({"runAsUser": 4242}, {"runAsUser": 1000}, "", Identity(1000, 1001, (1001,))),
        ({"runAsUser": 4242, "runAsGroup": 7}, {"runAsGroup": 8}, "", Identity(4242, 8, (8,))),
        ({"runAsUser": 10, "supplementalGroups": [30, 20], "fsGroup": 40}, {}, "",
         Identity(10, 0, (0, 20, 30, 40))),
    ],
)  # fmt: skip
def test_identity(
    pod_context: dict[str, Any], container_context: dict[str, Any], user: str, expected: Identity
) -> None:
    """runAsUser/runAsGroup, the container's over the pod's, replace the image's USER; an unsaid
    group is the user's primary group in the image's /etc/passwd, else 0; the pod's
    supplementalGroups and fsGroup are added."""
    container = {"securityContext": container_context}
    assert identity(pod(pod_context), container, image=Image(user=user), passwd=PASSWD) == expected


def test_unknown_image_user_is_refused() -> None:
    """A USER name the image's /etc/passwd lacks cannot be run as."""
    with pytest.raises(ContainerConfigError, match="'nobody-here'"):
        identity(pod(), {}, image=Image(user="nobody-here"), passwd=PASSWD)


def test_image_config() -> None:
    """The parts of an OCI image config that decide how a container starts."""
    document = {
        "config": {
            "Env": ["PATH=/usr/bin:/bin", "EQUALS=a=b"],
            "Entrypoint": ["/bin/busybox"],
            "Cmd": ["sh"],
            "WorkingDir": "/work",
            "User": "65532",
        }
    }
    assert image_from_config(document) == Image(
        env={"PATH": "/usr/bin:/bin", "EQUALS": "a=b"},
        entrypoint=("/bin/busybox",),
        cmd=("sh",),
        working_dir="/work",
        user="65532",
    )
    assert image_from_config({"config": {}}) == Image()


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        ("127.0.0.1:5000/busybox-test:1", "127.0.0.1:5000/busybox-test"),
        ("127.0.0.1:5000/busybox-test", "127.0.0.1:5000/busybox-test"),
        ("127.0.0.1:5000/a/b:v1.2", "127.0.0.1:5000/a/b"),
        ("busybox:1", "busybox"),
    ],
)
def test_repository_of_a_reference(reference: str, repository: str) -> None:
    """A tag is dropped, a registry's port is not."""
    assert _repository(reference) == repository
