"""The operator's settings: the defaults are the dataclasses' own, a file is overridden by the
environment and both by flags (parsed by the real argument parser, so the names are tested too),
and every bad value is refused with a message naming where it came from."""

from __future__ import annotations

import argparse
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from libinject.api.types import Mode
from libinject.engine.settings import EngineSettings
from libinject.runtime.config import (
    OPTIONS,
    ConfigError,
    RuntimeSettings,
    WebhookSettings,
    add_arguments,
    load,
)

SYSTEM = frozenset({"kube-system", "kube-public", "kube-node-lease", "libinject-csi"})


def flags(*argv: str) -> dict[str, Any]:
    """What `libinject run` hands to `load`: the parsed command line as a mapping."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return vars(parser.parse_args(list(argv)))


def settings_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return str(path)


def test_without_any_source_the_defaults_are_the_dataclass_defaults(tmp_path: Path) -> None:
    for given in (flags(), flags("--config", settings_file(tmp_path, ""))):
        settings = load(flags=given, environ={})
        assert settings == RuntimeSettings()
        assert settings.engine == EngineSettings()
        assert settings.webhook == WebhookSettings()
        assert settings.namespace == "libinject-system"


# Each case: the file's, the environment's and the flag's value, then what each one yields.
@pytest.mark.parametrize(
    ("key", "variable", "flag", "field", "raw", "expected"),
    [
        pytest.param("registry", "LIBINJECT_REGISTRY", "--registry", "engine.libraries.registry",
                     ("f.io/l", "e.io/l", "c.io/l"), ("f.io/l", "e.io/l", "c.io/l"), id="registry"),
        pytest.param("defaultMode", "LIBINJECT_DEFAULT_MODE", "--default-mode", "engine.libraries.default_mode",
                     ("csi", "image-volume", "init-container"), (Mode.CSI, Mode.IMAGE_VOLUME, Mode.INIT_CONTAINER),
                     id="default-mode"),
        pytest.param("mutateUnlabelled", "LIBINJECT_MUTATE_UNLABELLED", "--mutate-unlabelled",
                     "engine.namespaces.mutate_unlabelled", ("true", "false", "true"), (True, False, True),
                     id="mutate-unlabelled"),
        pytest.param("operatorNamespace", "POD_NAMESPACE", "--operator-namespace", "namespace",
                     ("ns-f", "ns-e", "ns-c"), ("ns-f", "ns-e", "ns-c"), id="operator-namespace"),
        pytest.param("webhookPort", "LIBINJECT_WEBHOOK_PORT", "--webhook-port", "webhook.port",
                     ("9001", "9002", "9003"), (9001, 9002, 9003), id="webhook-port"),
        pytest.param("probePort", "LIBINJECT_PROBE_PORT", "--probe-port", "probe_port",
                     ("8081", "8082", "8083"), (8081, 8082, 8083), id="probe-port"),
        pytest.param("admissionDeadline", "LIBINJECT_ADMISSION_DEADLINE", "--admission-deadline",
                     "webhook.deadline", ("0.5", "1.5", "30"), (0.5, 1.5, 30.0), id="admission-deadline"),
        pytest.param("certDir", "LIBINJECT_CERT_DIR", "--cert-dir", "webhook.cert_dir",
                     ("/f", "/e", "/c"), (Path("/f"), Path("/e"), Path("/c")), id="cert-dir"),
        pytest.param("tlsSecret", "LIBINJECT_TLS_SECRET", "--tls-secret", "webhook.secret",
                     ("s-f", "s-e", "s-c"), ("s-f", "s-e", "s-c"), id="tls-secret"),
        pytest.param("csiKeySecret", "LIBINJECT_CSI_KEY_SECRET", "--csi-key-secret", "csi_key_secret",
                     ("k-f", "k-e", "k-c"), ("k-f", "k-e", "k-c"), id="csi-key-secret"),
        pytest.param("peeringPriority", "LIBINJECT_PEERING_PRIORITY", "--peering-priority",
                     "peering_priority", ("1", "20", "2147483648"), (1, 20, 2**31),
                     id="peering-priority"),
        pytest.param("logFormat", "LIBINJECT_LOG_FORMAT", "--log-format", "log_format",
                     ("console", "json", "console"), ("console", "json", "console"), id="log-format"),
    ],
)  # fmt: skip
def test_the_environment_overrides_the_file_and_a_flag_overrides_both(
    tmp_path: Path,
    key: str,
    variable: str,
    flag: str,
    field: str,
    raw: tuple[str, str, str],
    expected: tuple[Any, Any, Any],
) -> None:
    read = attrgetter(field)
    from_file, from_env, from_flag = raw
    config = ("--config", settings_file(tmp_path, f"{key}: {from_file}\n"))
    environ = {variable: from_env}
    assert read(load(flags=flags(*config), environ={})) == expected[0]
    assert read(load(flags=flags(*config), environ=environ)) == expected[1]
    assert read(load(flags=flags(*config, flag, from_flag), environ=environ)) == expected[2]


def test_pod_namespace_is_the_operator_namespace() -> None:
    """The Deployment passes its namespace through the downward API as POD_NAMESPACE."""
    settings = load(flags=flags(), environ={"POD_NAMESPACE": "observability"})
    assert settings.namespace == "observability"
    assert settings.engine.namespaces.operator_namespace == "observability"


@pytest.mark.parametrize(
    ("text", "environ", "argv", "added"),
    [
        pytest.param("excludedNamespaces: [monitoring, tools]\n", {}, (), {"monitoring", "tools"}, id="yaml-list"),
        pytest.param("", {"LIBINJECT_EXCLUDED_NAMESPACES": " monitoring, tools ,"}, (), {"monitoring", "tools"},
                     id="env-comma-separated"),
        pytest.param("", {}, ("--excluded-namespaces", "monitoring,tools"), {"monitoring", "tools"},
                     id="flag-comma-separated"),
        pytest.param("excludedNamespaces: [kube-system]\n", {}, (), set(), id="only-a-system-one"),
        pytest.param("excludedNamespaces: []\n", {}, (), set(), id="empty-list"),
        pytest.param("", {"LIBINJECT_EXCLUDED_NAMESPACES": ""}, (), set(), id="empty-env"),
    ],
)  # fmt: skip
def test_excluded_namespaces_add_to_the_system_ones_and_never_remove_them(
    tmp_path: Path, text: str, environ: dict[str, str], argv: tuple[str, ...], added: set[str]
) -> None:
    given = flags("--config", settings_file(tmp_path, text), *argv)
    assert load(flags=given, environ=environ).engine.namespaces.excluded == SYSTEM | added


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("false", False, id="false"),
        pytest.param("1", True, id="1"),
        pytest.param("0", False, id="0"),
        pytest.param(" True ", True, id="capitalised-padded"),
    ],
)
def test_booleans_from_strings(tmp_path: Path, raw: str, expected: bool) -> None:
    """The file says the opposite, so each case shows the string was read, not the default."""
    opposite = settings_file(tmp_path, f"mutateUnlabelled: {str(not expected).lower()}\n")
    environ = {"LIBINJECT_MUTATE_UNLABELLED": raw}
    settings = load(flags=flags("--config", opposite), environ=environ)
    assert settings.engine.namespaces.mutate_unlabelled is expected


# `text` None: the file named by --config does not exist. "{file}" stands for its path.
@pytest.mark.parametrize(
    ("text", "environ", "argv", "fragments"),
    [
        pytest.param("", {"LIBINJECT_WEBHOOK_PORT": "https"}, (),
                     ["environment variable LIBINJECT_WEBHOOK_PORT", "https"], id="port-not-a-number"),
        pytest.param("", {}, ("--probe-port", "0"), ["flag --probe-port", "1-65535, got 0"], id="port-0"),
        pytest.param("webhookPort: 65536\n", {}, (), ["{file}: webhookPort", "65536"], id="port-too-high"),
        pytest.param("peeringPriority: 0\n", {}, (), ["{file}: peeringPriority", "1-2147483648"],
                     id="priority-zero"),
        pytest.param("", {"LIBINJECT_PEERING_PRIORITY": "high"}, (),
                     ["environment variable LIBINJECT_PEERING_PRIORITY", "whole number"],
                     id="priority-not-a-number"),
        pytest.param("", {}, ("--default-mode", "sidecar"), ["flag --default-mode", "sidecar"], id="unknown-mode"),
        pytest.param("", {"LIBINJECT_MUTATE_UNLABELLED": "maybe"}, (),
                     ["environment variable LIBINJECT_MUTATE_UNLABELLED", "maybe"], id="bad-boolean"),
        pytest.param("registy: r.io\n", {}, (), ["{file}: unknown settings registy", "known: admissionDeadline"],
                     id="unknown-key"),
        pytest.param("- registry\n- r.io\n", {}, (), ["{file}: expected a mapping"], id="yaml-list"),
        pytest.param("just text\n", {}, (), ["{file}: expected a mapping"], id="yaml-scalar"),
        pytest.param("registry: [r.io\n", {}, (), ["{file}: cannot read settings"], id="invalid-yaml"),
        pytest.param(None, {}, (), ["{file}: cannot read settings"], id="missing-file"),
        pytest.param("admissionDeadline: 31\n", {}, (), ["{file}: admissionDeadline", "0-30"], id="deadline-too-long"),
        pytest.param("", {"LIBINJECT_ADMISSION_DEADLINE": "0"}, (), ["LIBINJECT_ADMISSION_DEADLINE", "0-30"],
                     id="deadline-zero"),
        pytest.param("", {}, ("--log-format", "text"), ["flag --log-format", "'text'"], id="bad-log-format"),
        pytest.param("tlsCertFile: /tls/tls.crt\n", {}, (), ["tlsCertFile", "tlsKeyFile"], id="cert-without-key"),
        pytest.param("", {}, ("--tls-key-file", "/tls/tls.key"), ["tlsCertFile", "tlsKeyFile"], id="key-without-cert"),
        pytest.param("", {"LIBINJECT_WEBHOOK_PORT": "8080"}, (), ["webhookPort", "probePort", "8080"],
                     id="webhook-port-is-probe-port"),
        # `auto` resolved to `auto` would reach the engine unresolved (it fell to image-volume).
        pytest.param("defaultMode: auto\n", {}, (), ["{file}: defaultMode", "'auto'"], id="default-mode-auto"),
        pytest.param("1: x\n", {}, (), ["{file}: unknown settings 1"], id="non-string-key"),
        pytest.param("registry:\n", {}, (), ["{file}: registry", "non-empty string"], id="null-registry"),
        # Every default image is built under the registry: one outside the grammar would give
        # every injected pod an image reference it cannot pull.
        pytest.param("registry: Registry.io/Libs\n", {}, (), ["{file}: registry", "'Registry.io/Libs'"],
                     id="registry-uppercase-path"),
        pytest.param("", {"LIBINJECT_REGISTRY": "r.io/libs:4.1"}, (), ["LIBINJECT_REGISTRY", "no tag or digest"],
                     id="registry-with-tag"),
        pytest.param("", {}, ("--registry", "r.io/../x"), ["flag --registry", "'r.io/../x'"], id="registry-path"),
        pytest.param("", {"POD_NAMESPACE": ""}, (), ["POD_NAMESPACE", "non-empty string"], id="empty-namespace"),
        pytest.param("excludedNamespaces: {a: b}\n", {}, (), ["{file}: excludedNamespaces"], id="names-mapping"),
        pytest.param("webhookPort: 8080.7\n", {}, (), ["{file}: webhookPort", "8080.7"], id="fractional-port"),
        pytest.param("probePort: true\n", {}, (), ["{file}: probePort", "True"], id="boolean-port"),
        pytest.param("agentPortOtlp: 0\n", {}, (), ["{file}: agentPortOtlp", "1-65535"], id="agent-port-0"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_source_and_key(
    tmp_path: Path,
    text: str | None,
    environ: dict[str, str],
    argv: tuple[str, ...],
    fragments: list[str],
) -> None:
    path = tmp_path / "settings.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load(flags=flags("--config", str(path), *argv), environ=environ)
    for fragment in fragments:
        assert fragment.format(file=path) in str(refused.value)


def test_an_unknown_key_lists_every_known_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load(flags=flags("--config", settings_file(tmp_path, "port: 1\n")), environ={})
    known = str(refused.value).split("(known: ")[1].rstrip(")")
    assert known.split(", ") == sorted(option.key for option in OPTIONS)


def test_every_option_has_its_own_flag_and_variable_and_lands_on_a_setting() -> None:
    for attribute in ("key", "flag", "variable"):
        names = [getattr(option, attribute) for option in OPTIONS]
        assert len(set(names)) == len(names), attribute
    assert "--config" not in {option.flag for option in OPTIONS}
    for option in OPTIONS:
        assert option.variable.startswith("LIBINJECT_") or option.variable == "POD_NAMESPACE"
        attrgetter(".".join(option.target))(RuntimeSettings())  # AttributeError: lands nowhere


def test_agent_ports_reach_the_engine_settings(tmp_path: Path) -> None:
    """agentPortDdtrace and agentPortOtlp set the ports the engine uses when a policy names none."""
    path = tmp_path / "settings.yaml"
    path.write_text("agentPortDdtrace: 9126\n")
    settings = load(flags=flags("--config", str(path), "--agent-port-otlp", "5318"), environ={})
    assert (settings.engine.agent.ddtrace_port, settings.engine.agent.otlp_port) == (9126, 5318)
