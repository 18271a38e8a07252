"""The Dockerfile (for users with a Docker engine) describes the image `make image` builds:
the same Debian suite and packages, the same locked wheels in the same directory, crane at the
same version and path, and the same environment, user, ports and entrypoint. Both are held to
libinject.images.operatorimage; the built image's config is checked against it in
tests/live/test_operator_image.py."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from cluster import versions
from libinject.images import operatorimage as spec

DOCKERFILE = Path(__file__).parents[2] / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    return steps[starts[-1] :]


def only(steps: list[tuple[str, str]], keyword: str) -> str:
    values = [value for key, value in steps if key == keyword]
    assert len(values) == 1, f"expected one {keyword} in the final stage, found {values}"
    return values[0]


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_the_base_is_the_same_debian_suite_with_the_same_packages(
    steps: list[tuple[str, str]],
) -> None:
    args = dict(value.split("=", 1) for key, value in steps if key == "ARG")
    assert args["DEBIAN_IMAGE"] == f"debian:{spec.DEBIAN_SUITE}-slim"
    final = final_stage(steps)
    assert final[0] == ("FROM", "${DEBIAN_IMAGE}")
    (install,) = [v for k, v in final if k == "RUN" and "apt-get install" in v]
    command = install.split("apt-get install", 1)[1].split("&&")[0]
    packages = [word for word in shlex.split(command) if not word.startswith("-")]
    assert packages == list(spec.DEBIAN_PACKAGES)


def test_the_locked_wheels_go_where_the_image_has_them(steps: list[tuple[str, str]]) -> None:
    runs = [value for key, value in steps if key == "RUN"]
    (locked,) = [run for run in runs if "-r /tmp/requirements.lock" in run]
    for flag in ("--no-deps", "--only-binary=:all:", f"--target {spec.SITE_PACKAGES}",
                 "--no-compile"):  # fmt: skip
        assert flag in locked, flag
    assert locked.startswith(f"python{spec.PYTHON} -m pip install")
    assert ("COPY", "requirements.lock /tmp/requirements.lock") in steps
    final = final_stage(steps)
    assert ("COPY", f"--from=builder {spec.SITE_PACKAGES} {spec.SITE_PACKAGES}") in final
    compiled = [run for run in runs if "compileall" in run]
    assert compiled
    assert "--invalidation-mode unchecked-hash" in compiled[0]


def test_crane_is_the_same_version_at_the_same_path(steps: list[tuple[str, str]]) -> None:
    runs = [value for key, value in steps if key == "RUN"]
    assert any(f"cmd/crane@{versions.CRANE}" in run for run in runs)
    assert ("COPY", f"--from=crane /out/crane {spec.CRANE}") in final_stage(steps)


def test_the_environment_user_ports_and_entrypoint_are_the_images(
    steps: list[tuple[str, str]],
) -> None:
    final = final_stage(steps)
    env = dict(pair.split("=", 1) for pair in shlex.split(only(final, "ENV")))
    assert env == spec.ENV
    assert only(final, "USER") == spec.USER
    assert only(final, "WORKDIR") == "/"
    assert sorted(only(final, "EXPOSE").split()) == sorted(spec.EXPOSED_PORTS)
    assert json.loads(only(final, "ENTRYPOINT")) == list(spec.ENTRYPOINT)
    assert json.loads(only(final, "CMD")) == list(spec.CMD)


def test_a_drifted_dockerfile_is_caught() -> None:
    """The parsing above reads what it should: a Dockerfile with another user or entrypoint
    would not pass."""
    drifted = DOCKERFILE.read_text().replace(f"USER {spec.USER}", "USER 1000:1000")
    drifted = drifted.replace('"-P", ', "")
    final = final_stage(instructions(drifted))
    assert only(final, "USER") != spec.USER
    assert json.loads(only(final, "ENTRYPOINT")) != list(spec.ENTRYPOINT)
