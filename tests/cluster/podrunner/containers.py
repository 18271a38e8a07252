"""What a container runs, and as whom: command and args over the image's entrypoint and cmd,
the user and groups, the working directory, the environment over the image's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.podrunner.errors import ContainerConfigError
from cluster.podrunner.expansion import expand

Pod = Mapping[str, Any]
Container = Mapping[str, Any]
# What container runtimes put on PATH when the image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Image:
    """The parts of an image's config that decide how its containers start."""

    env: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""  # "uid", "uid:gid", "name" or "name:group", as Docker's USER


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def argv(container: Container, image: Image, *, env: Mapping[str, str]) -> list[str]:
    """command replaces the entrypoint (and drops the image's cmd); args replace cmd. Only what
    the pod says is expanded, as the kubelet does before the runtime sees it."""
    command = [expand(part, env) for part in container.get("command") or ()]
    args = [expand(part, env) for part in container.get("args") or ()]
    result = command + args if command else [*image.entrypoint, *(args or image.cmd)]
    if not result:
        raise ContainerConfigError(f"container {container.get('name')!r} has no command to run")
    return result


def environment(base: Mapping[str, str], *, image: Image, env: Mapping[str, str]) -> dict[str, str]:
    """The process environment: the runtime's base, the image's, then the container's."""
    return {"PATH": DEFAULT_PATH, **base, **image.env, **env}


def working_dir(container: Container, image: Image) -> str:
    return str(container.get("workingDir") or image.working_dir or "/")


def security_setting(pod: Pod, container: Container, *, key: str) -> Any:
    """A securityContext field: the container's, else the pod's (which is the default)."""
    own = (container.get("securityContext") or {}).get(key)
    if own is not None:
        return own
    return (pod.get("spec", {}).get("securityContext") or {}).get(key)


def identity(
    pod: Pod, container: Container, *, image: Image, passwd: Sequence[str] = ()
) -> Identity:
    """runAsUser/runAsGroup (container over pod), else the image's USER; a group left unsaid is
    the user's primary group in the image's /etc/passwd lines (`passwd`), else 0.
    Supplementary groups: the pod's supplementalGroups and fsGroup."""
    run_as_user = security_setting(pod, container, key="runAsUser")
    run_as_group = security_setting(pod, container, key="runAsGroup")
    if run_as_user is not None:  # replaces the image's USER, group included (as containerd)
        user, group = int(run_as_user), None
    else:
        user, group = _image_user(image.user, passwd)
    if run_as_group is not None:
        group = int(run_as_group)
    primary = group if group is not None else _primary_group(user, passwd)
    return Identity(uid=user, gid=primary, groups=_supplementary(pod, primary))


def _supplementary(pod: Pod, primary: int) -> tuple[int, ...]:
    context = pod.get("spec", {}).get("securityContext") or {}
    extra = [int(gid) for gid in context.get("supplementalGroups") or ()]
    if context.get("fsGroup") is not None:
        extra.append(int(context["fsGroup"]))
    return tuple(sorted({primary, *extra}))


def _image_user(text: str, passwd: Sequence[str]) -> tuple[int, int | None]:
    """USER as (uid, gid or None); names are looked up in the image's /etc/passwd."""
    if not text:
        return 0, None
    name, _, group = text.partition(":")
    uid = int(name) if name.isdigit() else _uid_of(name, passwd)
    if not group:
        return uid, None
    return uid, int(group) if group.isdigit() else _group_id(group)


def _group_id(name: str) -> int:
    # Group names would need the image's /etc/group; no image the tests build uses one.
    raise ContainerConfigError(f"image USER group {name!r}: only numeric groups are supported")


def _primary_group(uid: int, passwd: Sequence[str]) -> int:
    for line in passwd:
        fields = line.split(":")
        if len(fields) > 3 and fields[2] == str(uid) and fields[3].isdigit():
            return int(fields[3])
    return 0


def _uid_of(name: str, passwd: Sequence[str]) -> int:
    for line in passwd:
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    raise ContainerConfigError(f"image USER {name!r} is not in the image's /etc/passwd")
