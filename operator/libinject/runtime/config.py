"""The running operator's settings: defaults, then a config file (the mounted ConfigMap), then
`LIBINJECT_*` environment variables, then flags; each later source wins.

Every option is declared once in `OPTIONS` (its config key, flag, environment variable, parser and
where it lands), so the three sources cannot drift apart. A bad value anywhere is a `ConfigError`
naming its source and key; the operator refuses to start rather than run half-configured.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from libinject.api.types import Mode
from libinject.engine import references
from libinject.engine.settings import EngineSettings, NamespaceSettings

ENV_PREFIX = "LIBINJECT_"
MAX_PRIORITY = 2**31  # what Kopf's random pick below stays under, and JSON carries exactly


class ConfigError(ValueError):
    """A setting that cannot be used; the message names where it came from."""


@dataclass(frozen=True)
class WebhookSettings:
    """How the admission webhook is served and secured."""

    port: int = 9443
    """Port of the HTTPS admission endpoint (path /mutate-pods)."""

    host: str = "libinject-webhook.libinject-system.svc"
    """The name (or IP) the API server calls: the generated serving certificate covers it."""

    cert_file: Path | None = None
    """A serving certificate to use as is (e.g. from cert-manager); reloaded when it changes."""

    key_file: Path | None = None
    """The private key of `cert_file`."""

    cert_dir: Path = Path("/var/run/libinject/tls")
    """Where generated certificates are written for the TLS listener."""

    secret: str = "libinject-webhook-tls"
    """The Secret in the operator's namespace that holds generated certificates for all replicas."""

    configuration: str = "libinject"
    """The MutatingWebhookConfiguration whose caBundle the operator keeps current."""

    deadline: float = 2.0
    """Seconds an admission may take before the pod is admitted without a library: below the
    webhook's timeoutSeconds (3), so the API server never waits for us to time out."""


@dataclass(frozen=True)
class DigestSettings:
    """Pinning library images by digest (libinject.engine.digests, libinject.runtime.digests)."""

    pin: bool = False
    """Resolve each policy's image tags to digests in the background and give pods
    `<image>@<digest>`; a tag that cannot be resolved makes its policy Ready=False."""

    crane: Path = Path("crane")
    """go-containerregistry's crane, which resolves them (`crane digest`; the image has it);
    it also reads image configs for detect_languages."""

    interval: float = 60.0
    """Seconds between two resolutions of every tag: how soon a moved tag is followed."""


@dataclass(frozen=True)
class RuntimeSettings:
    """Everything `libinject run` needs."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    digests: DigestSettings = field(default_factory=DigestSettings)

    probe_port: int = 8080
    """Port of /healthz, /readyz and /metrics (plain HTTP)."""

    log_format: str = "json"
    """json (one object a line, for the cluster) or console (for people)."""

    peering: str = "libinject"
    """The ClusterKopfPeering through which replicas agree on one active reconciler."""

    peering_priority: int | None = None
    """This replica's peering priority: the live replica with the highest reconciles. Random
    when unset. Equal priorities leave every replica active (Kopf warns), so a value shared by
    all replicas of a Deployment (its ConfigMap, its env) defeats the election: set it only for
    replicas run apart, such as a second Deployment that should take over last."""

    detect_languages: bool = False
    """Fetch the config of each image pods name, in the background, so that a container whose
    image runs other languages than a library's gets no copy of it (policies may turn it off);
    crane (DigestSettings.crane) reads the configs, and the operator then needs egress to the
    registries of every app image."""

    csi_key_secret: str = "libinject-csi-key"
    """The Secret in the operator's namespace holding the key CSI volumes are signed with (made
    at start if absent; the CSI plugin reads it to serve only volumes the webhook wrote)."""

    @property
    def namespace(self) -> str:
        return self.engine.namespaces.operator_namespace


def _boolean(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _text(value: Any) -> str:
    """A non-empty string (YAML's null or a mapping must not become the text 'None')."""
    if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    raise ValueError(f"expected a non-empty string, got {value!r}")


def _names(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"expected a list of names or a comma-separated string, got {value!r}")
    return frozenset(_text(item) for item in items if str(item).strip())


def _port(value: Any) -> int:
    # int() would turn 8080.7 into 8080 and true into 1: take whole numbers only.
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError(f"expected a port number, got {value!r}")
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(f"a port is 1-65535, got {port}")
    return port


def _registry(value: Any) -> str:
    # Every default image is `<registry>/<language>-<flavor>:<version>`: a prefix outside the
    # reference grammar would give every injected pod an image it cannot pull.
    return references.check_prefix(_text(value))


def _mode(value: Any) -> Mode:
    mode = Mode(_text(value))
    if mode is Mode.AUTO:  # it is what `auto` resolves to: it cannot be `auto` itself
        raise ValueError("expected init-container, csi or image-volume, got 'auto'")
    return mode


def _path(value: Any) -> Path:
    return Path(_text(value))


def _priority(value: Any) -> int:
    # Kopf keeps it in the peering object as a JSON number; whole numbers only, as for ports.
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError(f"expected a whole number, got {value!r}")
    priority = int(value)
    if not 1 <= priority <= MAX_PRIORITY:
        raise ValueError(f"a peering priority is 1-{MAX_PRIORITY}, got {priority}")
    return priority


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected seconds, got {value!r}")
    seconds = float(value)
    if not 0 < seconds <= 30:
        raise ValueError(f"expected 0-30 seconds, got {seconds}")
    return seconds


def _interval(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected seconds, got {value!r}")
    seconds = float(value)
    if not 1 <= seconds <= 3600:
        raise ValueError(f"expected 1-3600 seconds, got {seconds}")
    return seconds


def _log_format(value: Any) -> str:
    if value not in {"json", "console"}:
        raise ValueError(f"expected json or console, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class Option:
    key: str  # in the config file; the flag and variable derive from it
    parse: Callable[[Any], Any]
    target: tuple[str, ...]  # attribute path inside RuntimeSettings
    help: str
    env: str | None = None  # overrides the derived variable name

    @property
    def flag(self) -> str:
        return "--" + "".join(f"-{c.lower()}" if c.isupper() else c for c in self.key)

    @property
    def variable(self) -> str:
        return self.env or ENV_PREFIX + self.flag[2:].replace("-", "_").upper()


OPTIONS: tuple[Option, ...] = (
    Option("registry", _registry, ("engine", "libraries", "registry"), "library image prefix"),
    Option(
        "defaultMode",
        _mode,
        ("engine", "libraries", "default_mode"),
        "what `auto` means without the CSI driver",
    ),
    Option(
        "autoImageVolumes",
        _boolean,
        ("engine", "libraries", "auto_image_volumes"),
        "let `auto` mean image-volume where every node mounts them and the CSI driver is absent",
    ),
    Option(
        "mutateUnlabelled",
        _boolean,
        ("engine", "namespaces", "mutate_unlabelled"),
        "inject into namespaces without the libinject.dev/inject label",
    ),
    Option(
        "excludedNamespaces",
        _names,
        ("engine", "namespaces", "excluded"),
        "namespaces never mutated, added to kube-system, kube-public, kube-node-lease and "
        "libinject-csi",
    ),
    Option(
        "operatorNamespace",
        _text,
        ("engine", "namespaces", "operator_namespace"),
        "the operator's namespace (never mutated)",
        env="POD_NAMESPACE",
    ),
    Option(
        "agentPortDdtrace",
        _port,
        ("engine", "agent", "ddtrace_port"),
        "Datadog agent port for policies that name none",
    ),
    Option(
        "agentPortOtlp",
        _port,
        ("engine", "agent", "otlp_port"),
        "OTLP/HTTP collector port for policies that name none",
    ),
    Option("webhookPort", _port, ("webhook", "port"), "HTTPS port of the admission webhook"),
    Option("webhookHost", _text, ("webhook", "host"), "name the API server calls the webhook by"),
    Option("tlsCertFile", _path, ("webhook", "cert_file"), "serving certificate file to use"),
    Option("tlsKeyFile", _path, ("webhook", "key_file"), "its private key"),
    Option("certDir", _path, ("webhook", "cert_dir"), "where generated certificates are written"),
    Option("tlsSecret", _text, ("webhook", "secret"), "Secret holding generated certificates"),
    Option(
        "webhookConfiguration",
        _text,
        ("webhook", "configuration"),
        "MutatingWebhookConfiguration whose caBundle is kept current",
    ),
    Option("admissionDeadline", _seconds, ("webhook", "deadline"), "seconds per admission"),
    Option("probePort", _port, ("probe_port",), "HTTP port of /healthz, /readyz, /metrics"),
    Option("logFormat", _log_format, ("log_format",), "json or console"),
    Option("peering", _text, ("peering",), "ClusterKopfPeering name"),
    Option(
        "peeringPriority",
        _priority,
        ("peering_priority",),
        "this replica's peering priority (the highest live one reconciles; random if unset; "
        "never the same value for every replica, which leaves them all active)",
    ),
    Option("csiKeySecret", _text, ("csi_key_secret",), "Secret holding the CSI signing key"),
    Option(
        "pinDigests",
        _boolean,
        ("digests", "pin"),
        "resolve policy image tags to digests in the background and inject image@digest",
    ),
    Option(
        "detectLanguages",
        _boolean,
        ("detect_languages",),
        "read the config of each image pods name in the background, and give a container only "
        "the libraries of the languages its image runs",
    ),
    Option(
        "crane",
        _path,
        ("digests", "crane"),
        "go-containerregistry crane, for --pin-digests and --detect-languages",
    ),
    Option(
        "digestInterval",
        _interval,
        ("digests", "interval"),
        "seconds between two resolutions of every policy image tag",
    ),
)
_BY_KEY = {option.key: option for option in OPTIONS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds `--config` and one flag per option; unset flags stay None (absent)."""
    parser.add_argument("--config", type=Path, help="a YAML file of settings (the ConfigMap)")
    for option in OPTIONS:
        parser.add_argument(option.flag, dest=option.key, default=None, help=option.help)


def load(*, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> RuntimeSettings:
    """Settings from `flags` (parsed arguments as a mapping), the environment and the file that
    `flags["config"]` names."""
    environ = os.environ if environ is None else environ
    values: dict[str, tuple[str, Any]] = {}  # key -> (source, raw value)
    config = flags.get("config")
    if config is not None:
        values.update(_from_file(Path(config)))
    for option in OPTIONS:
        if option.variable in environ:
            values[option.key] = (
                f"environment variable {option.variable}",
                environ[option.variable],
            )
        if flags.get(option.key) is not None:
            values[option.key] = (f"flag {option.flag}", flags[option.key])
    return _build(values)


def _from_file(path: Path) -> dict[str, tuple[str, Any]]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read settings: {error}") from error
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: expected a mapping of settings")
    unknown = sorted(str(key) for key in set(document) - set(_BY_KEY))
    if unknown:
        known = ", ".join(sorted(_BY_KEY))
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)} (known: {known})")
    return {key: (f"{path}: {key}", value) for key, value in document.items()}


def _build(values: Mapping[str, tuple[str, Any]]) -> RuntimeSettings:
    settings = RuntimeSettings()
    for key, (source, raw) in values.items():
        option = _BY_KEY[key]
        try:
            value = option.parse(raw)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{source}: {error}") from error
        if key == "excludedNamespaces":
            value = NamespaceSettings().excluded | value
        settings = _replace_at(settings, option.target, value=value)
    _check(settings)
    return settings


def _replace_at(obj: Any, path: Sequence[str], *, value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    inner = _replace_at(getattr(obj, path[0]), path[1:], value=value)
    return dataclasses.replace(obj, **{path[0]: inner})


def _check(settings: RuntimeSettings) -> None:
    webhook = settings.webhook
    if (webhook.cert_file is None) != (webhook.key_file is None):
        raise ConfigError("settings: tlsCertFile and tlsKeyFile go together: give both or neither")
    if webhook.port == settings.probe_port:
        raise ConfigError(f"settings: webhookPort and probePort are both {webhook.port}")
