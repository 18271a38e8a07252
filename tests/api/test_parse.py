"""The Python parser accepts what the CRD accepts, rejects what it rejects, and says where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from api.invalid_policies import INVALID, INVALID_CASES
from builders import policy_object
from libinject.api.parse import InvalidPolicyError, parse_policy
from libinject.api.types import AgentMode, Flavor, Mode

EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"


@pytest.mark.parametrize(("spec", "path"), INVALID_CASES)
def test_invalid_policy_is_rejected_naming_the_field(spec: dict[str, Any], path: str) -> None:
    """Each invalid policy raises, and one of its errors is about exactly the broken field."""
    obj = policy_object("bad")
    obj["spec"] = spec
    with pytest.raises(InvalidPolicyError) as caught:
        parse_policy(obj)
    assert path in [error.path for error in caught.value.errors], caught.value.errors
    assert path in str(caught.value)


def test_the_invalid_table_is_big_enough() -> None:
    """The issue asks for at least 15 invalid policies; ids must be unique to be reported."""
    ids = [case_id for case_id, _, _, _ in INVALID]
    assert len(ids) >= 15
    assert len(set(ids)) == len(ids)


def test_every_error_is_reported_not_only_the_first() -> None:
    obj = policy_object(
        "bad", libraries=[{"language": "go", "version": "x"}], priority=99999, paused="no"
    )
    with pytest.raises(InvalidPolicyError) as caught:
        parse_policy(obj)
    paths = {error.path for error in caught.value.errors}
    expected = {"spec.libraries[0].language", "spec.libraries[0].version", "spec.priority"}
    assert expected | {"spec.paused"} <= paths


def test_unknown_fields_are_rejected() -> None:
    """Like kubectl's strict field validation: a typo is an error, not silently dropped."""
    obj = policy_object("typo", containerName=["app"])
    with pytest.raises(InvalidPolicyError, match=r"spec\.containerName: unknown field"):
        parse_policy(obj)


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        pytest.param({**policy_object(), "apiVersion": "v1"}, "apiVersion", id="api-version"),
        pytest.param({**policy_object(), "kind": "Policy"}, "kind", id="kind"),
        pytest.param({**policy_object(), "metadata": {}}, "metadata.name", id="no-name"),
        pytest.param({**policy_object(), "metadata": {"name": "Bad_Name"}}, "metadata.name",
                     id="bad-name"),
        pytest.param({k: v for k, v in policy_object().items() if k != "spec"}, "spec",
                     id="no-spec"),
    ],
)  # fmt: skip
def test_object_envelope_is_checked(obj: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidPolicyError) as caught:
        parse_policy(obj)
    assert path in [error.path for error in caught.value.errors]


def test_defaults_are_applied() -> None:
    """The defaults the CRD declares are the ones the engine sees."""
    parsed = parse_policy(policy_object("plain"))
    spec = parsed.spec
    assert spec.libraries[0].flavor is Flavor.DDTRACE
    assert spec.injection.mode is Mode.AUTO
    assert spec.injection.size_limit == "1Gi"
    assert spec.agent.mode is AgentMode.HOST_IP
    assert spec.priority == 0
    assert spec.paused is False
    assert spec.namespace_selector.match_names == ()


def test_integer_quantities_are_kept_as_strings() -> None:
    parsed = parse_policy(policy_object("q", injection={"sizeLimit": 1073741824}))
    assert parsed.spec.injection.size_limit == "1073741824"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        assert parse_policy(doc).name == doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        (float("nan"), "must be a finite number"),
        (float("inf"), "must be a finite number"),
        (10**400, "must be <= 1"),
        (True, "must be of type number"),
    ],
    ids=["nan", "infinity", "huge-integer", "boolean"],
)
def test_numbers_json_cannot_carry_are_refused_by_the_parser(rate: object, message: str) -> None:
    """YAML (the CLI's input) has .nan, .inf and integers of any size, which JSON (the API
    server's) has not: each is a field error, never an exception or a rate of NaN."""
    with pytest.raises(InvalidPolicyError) as caught:
        parse_policy(policy_object(tracing={"sampleRate": rate}))
    [error] = caught.value.errors
    assert error.path == "spec.tracing.sampleRate"
    assert message in error.message


def test_an_integer_rate_is_a_rate() -> None:
    assert parse_policy(policy_object(tracing={"sampleRate": 1})).spec.tracing.sample_rate == 1.0


def test_an_empty_value_beside_value_from_is_no_value() -> None:
    """What Kubernetes allows in a container's env, and what policies stored while this CRD
    defaulted value to "" hold: an edit that adds valueFrom is not refused for it."""
    source = {"fieldRef": {"fieldPath": "metadata.name"}}
    parsed = parse_policy(policy_object(env=[{"name": "A", "value": "", "valueFrom": source}]))
    [var] = parsed.spec.env
    assert var.value_from is not None
