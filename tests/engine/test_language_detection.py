"""Languages from image configs (engine.detection) and what the engine does with them: a
container whose image names other languages gets no copy of a library; one whose config names
none, or is not known yet, gets it as without detection, and the record says so."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

from builders import JAVA, PYTHON, container, pod, policy, run
from libinject.api.types import Language
from libinject.engine.decision import Code
from libinject.engine.detection import NOTHING, Detected, detect
from libinject.engine.settings import EngineSettings, LibrarySettings

# The config objects of real images, abridged to what detection reads.
PYTHON_SLIM = {
    "Env": [
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "LANG=C.UTF-8",
        "PYTHON_VERSION=3.12.8",
        "PYTHON_SHA256=c909",
    ],
    "Cmd": ["python3"],
}
TEMURIN = {
    "Env": [
        "PATH=/opt/java/openjdk/bin:/usr/bin:/bin",
        "JAVA_HOME=/opt/java/openjdk",
        "JAVA_VERSION=jdk-21.0.5+11",
    ],
    "Entrypoint": ["/__cacert_entrypoint.sh"],
}
NODE = {
    "Env": ["PATH=/usr/local/bin:/usr/bin", "NODE_VERSION=20.18.1", "YARN_VERSION=1.22.22"],
    "Entrypoint": ["docker-entrypoint.sh"],
    "Cmd": ["node"],
}
DISTROLESS = {"Env": ["PATH=/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
              "Entrypoint": ["/app"]}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "languages", "evidence"),
    [
        (PYTHON_SLIM, {Language.PYTHON}, "PYTHON_VERSION in its environment"),
        (TEMURIN, {Language.JAVA}, "JAVA_HOME in its environment"),
        (NODE, {Language.NODEJS}, "NODE_VERSION in its environment"),
        ({"Cmd": ["/usr/local/bin/gunicorn", "app:app"]}, {Language.PYTHON},
         "its cmd runs gunicorn"),
        ({"Entrypoint": ["/bin/sh", "-c", "exec java -jar /app.jar"]}, {Language.JAVA},
         "its entrypoint runs java"),
        ({"Entrypoint": ["tini", "--", "python3.12", "main.py"]}, {Language.PYTHON},
         "its entrypoint runs python3.12"),
        ({"Env": ["PATH=/usr/lib/jvm/java-17/bin:/usr/bin"]}, {Language.JAVA},
         "/usr/lib/jvm/ on its PATH"),
        ({**PYTHON_SLIM, "Env": [*PYTHON_SLIM["Env"], "NODE_VERSION=20"]},
         {Language.PYTHON, Language.NODEJS}, "NODE_VERSION"),
    ],
    ids=["python-image", "temurin", "node-image", "gunicorn", "sh-c-java", "tini-python",
         "jvm-on-path", "two-runtimes"],
)  # fmt: skip
def test_a_config_names_its_languages_and_why(
    config: dict[str, Any], languages: set[Language], evidence: str
) -> None:
    found = detect(config)
    assert found.languages == languages
    assert evidence in found.evidence


@pytest.mark.parametrize(
    "config",
    [DISTROLESS, {}, {"Env": "PYTHON_VERSION=3"}, {"Env": [7, None]}, {"Cmd": "python"},
     {"Entrypoint": ["/docker-entrypoint.sh", "python"]}],
    ids=["distroless", "empty", "env-not-a-list", "env-not-text", "cmd-not-a-list",
         "start-script"],
)  # fmt: skip
def test_a_config_that_names_no_language_detects_nothing(config: dict[str, Any]) -> None:
    """Nothing it does not see: a start script's program is unknown, odd shapes are no names."""
    assert detect(config) == NOTHING


TABLE = MappingProxyType(
    {
        "registry.example/api:1": detect(PYTHON_SLIM),
        "registry.example/jvm:1": detect(TEMURIN),
        "registry.example/static:1": detect(DISTROLESS),
    }
)
DETECTING = EngineSettings(libraries=LibrarySettings(detection=TABLE))
BOTH = policy(libraries=[PYTHON, JAVA])


def _record(result: Any) -> dict[str, dict[str, Any]]:
    records = json.loads(result.pod["metadata"]["annotations"]["libinject.dev/injected"])
    return {record["language"]: record for record in records}


def _inits(result: Any) -> list[str]:
    return [c["name"] for c in result.pod["spec"].get("initContainers", [])]


def test_each_container_gets_only_the_languages_its_image_runs() -> None:
    two = pod(container("api", image="registry.example/api:1"),
              container("jvm", image="registry.example/jvm:1"))  # fmt: skip
    result = run(two, BOTH, settings=DETECTING)
    records = _record(result)
    assert records["python"]["containers"] == ["api"]
    assert records["python"]["skippedContainers"] == {"jvm": "LanguageNotDetected"}
    assert records["java"]["containers"] == ["jvm"]
    assert "notDetected" not in records["python"]


def test_a_jvm_pod_gets_no_python_copy() -> None:
    """The point of it: no Python bundle copied into a pod that runs only Java."""
    result = run(pod(container("jvm", image="registry.example/jvm:1")), BOTH, settings=DETECTING)
    assert _inits(result) == ["libinject-java"]
    [python] = [d for d in result.decision.languages if d.language is Language.PYTHON]
    assert python.choice is not None
    assert python.choice.skipped is not None
    assert python.choice.skipped.code is Code.NO_CONTAINER_SELECTED
    assert "its image runs java (JAVA_HOME in its environment" in python.choice.skipped.message


@pytest.mark.parametrize(
    ("image", "why"),
    [("registry.example/static:1", "its config names no language"),
     ("registry.example/unseen:1", "its config is not known yet")],
)  # fmt: skip
def test_no_detection_to_go_by_injects_as_the_policy_says_and_records_it(
    image: str, why: str
) -> None:
    """A config that names nothing, or one the operator has not fetched yet (the first pod of an
    image): both libraries go in, and each record names the container as notDetected, and why."""
    result = run(pod(container("app", image=image)), BOTH, settings=DETECTING)
    assert _inits(result) == ["libinject-java", "libinject-python"]
    for record in _record(result).values():
        assert record["notDetected"] == {"app": why}


def test_a_policy_can_turn_detection_off() -> None:
    rule = policy(libraries=[PYTHON, JAVA], detectLanguages=False)
    result = run(pod(container("jvm", image="registry.example/jvm:1")), rule, settings=DETECTING)
    assert _inits(result) == ["libinject-java", "libinject-python"]
    assert all("notDetected" not in r for r in _record(result).values())


def test_without_detection_nothing_changes_or_is_recorded() -> None:
    result = run(pod(container("jvm", image="registry.example/jvm:1")), BOTH)
    assert _inits(result) == ["libinject-java", "libinject-python"]
    assert all("notDetected" not in r for r in _record(result).values())


def test_a_detected_language_is_never_narrowed_to_a_partial_match() -> None:
    """A config naming Python and Node.js takes both; Java still goes to none of it."""
    table = {"registry.example/mixed:1": Detected(frozenset({Language.PYTHON, Language.NODEJS}),
                                                  "test")}  # fmt: skip
    settings = EngineSettings(libraries=LibrarySettings(detection=MappingProxyType(table)))
    result = run(pod(container("app", image="registry.example/mixed:1")), BOTH, settings=settings)
    assert _inits(result) == ["libinject-python"]
