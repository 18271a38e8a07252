"""What makes each runtime load its library: data, one entry per language and flavor.

Adding a language is one entry here and one row in the tests' tables; the delivery modes and the
container step never branch on the language.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from libinject.api.types import Flavor, Language


class Join(Enum):
    """How our value meets a value the container already sets."""

    PATH_PREPEND = "path-prepend"  # a:b:c list, ours first so our sitecustomize is found
    PATH_APPEND = "path-append"  # a:b:c list, ours last
    OPTION_APPEND = "option-append"  # space-separated options, ours last
    EXACT = "exact"  # one value only: theirs must be absent or equal to ours


@dataclass(frozen=True)
class LoadVariable:
    """One variable of the load step. `{root}` in `value` is the library's mount path."""

    name: str
    value: str
    join: Join
    keep_default: bool = False  # PATH_APPEND only: a leading ':' keeps the runtime's default list

    def for_root(self, root: str) -> str:
        return self.value.replace("{root}", root)


def _path(name: str, value: str) -> LoadVariable:
    return LoadVariable(name, value, Join.PATH_PREPEND)


def _option(name: str, value: str) -> LoadVariable:
    return LoadVariable(name, value, Join.OPTION_APPEND)


def _exact(name: str, value: str) -> LoadVariable:
    return LoadVariable(name, value, Join.EXACT)


_CORECLR_DD = "{846F5F1C-F9AE-4B07-969E-05C26BC060D8}"
_CORECLR_OTEL = "{918728DD-259F-4A6A-AC2B-B85E1B658318}"

LOAD_RULES: dict[tuple[Language, Flavor], tuple[LoadVariable, ...]] = {
    # Both Python flavors: the image's sitecustomize.py picks the build for the interpreter.
    (Language.PYTHON, Flavor.DDTRACE): (_path("PYTHONPATH", "{root}"),),
    (Language.PYTHON, Flavor.OPENTELEMETRY): (_path("PYTHONPATH", "{root}"),),
    (Language.JAVA, Flavor.DDTRACE): (
        _option("JAVA_TOOL_OPTIONS", "-javaagent:{root}/dd-java-agent.jar"),
    ),
    (Language.JAVA, Flavor.OPENTELEMETRY): (
        _option("JAVA_TOOL_OPTIONS", "-javaagent:{root}/opentelemetry-javaagent.jar"),
    ),
    (Language.NODEJS, Flavor.DDTRACE): (
        _option("NODE_OPTIONS", "--require={root}/node_modules/dd-trace/init"),
    ),
    (Language.NODEJS, Flavor.OPENTELEMETRY): (
        _option("NODE_OPTIONS", "--require={root}/autoinstrumentation.js"),
    ),
    (Language.DOTNET, Flavor.DDTRACE): (
        _exact("CORECLR_ENABLE_PROFILING", "1"),
        _exact("CORECLR_PROFILER", _CORECLR_DD),
        _exact("CORECLR_PROFILER_PATH", "{root}/linux-x64/Datadog.Trace.ClrProfiler.Native.so"),
        _exact("DD_DOTNET_TRACER_HOME", "{root}"),
    ),
    (Language.DOTNET, Flavor.OPENTELEMETRY): (
        _exact("CORECLR_ENABLE_PROFILING", "1"),
        _exact("CORECLR_PROFILER", _CORECLR_OTEL),
        _exact(
            "CORECLR_PROFILER_PATH", "{root}/linux-x64/OpenTelemetry.AutoInstrumentation.Native.so"
        ),
        _path(
            "DOTNET_STARTUP_HOOKS", "{root}/net/OpenTelemetry.AutoInstrumentation.StartupHook.dll"
        ),
        _path("DOTNET_ADDITIONAL_DEPS", "{root}/AdditionalDeps"),
        _path("DOTNET_SHARED_STORE", "{root}/store"),
        _exact("OTEL_DOTNET_AUTO_HOME", "{root}"),
    ),
    (Language.RUBY, Flavor.DDTRACE): (_option("RUBYOPT", "-r{root}/auto_inject"),),
    (Language.RUBY, Flavor.OPENTELEMETRY): (_option("RUBYOPT", "-r{root}/auto_inject"),),
    (Language.PHP, Flavor.DDTRACE): (
        LoadVariable("PHP_INI_SCAN_DIR", "{root}/conf.d", Join.PATH_APPEND, keep_default=True),
    ),
    (Language.PHP, Flavor.OPENTELEMETRY): (
        LoadVariable("PHP_INI_SCAN_DIR", "{root}/conf.d", Join.PATH_APPEND, keep_default=True),
    ),
}


def load_rules(language: Language, flavor: Flavor) -> tuple[LoadVariable, ...]:
    return LOAD_RULES[(language, flavor)]


class VariableClashError(Exception):
    """The container's value of an EXACT variable differs from ours."""


def combine(rule: LoadVariable, ours: str, current: str | None) -> str:
    """The value the variable must have so that both the user's setting and ours take effect.

    Idempotent: combining again with the result returns the result unchanged.
    """
    if not current:
        return (":" + ours) if rule.keep_default else ours
    if rule.join is Join.EXACT:
        if current != ours:
            raise VariableClashError(current)
        return current
    if rule.join is Join.OPTION_APPEND:
        return current if ours in current.split() else f"{current} {ours}"
    if ours in current.split(":"):
        return current
    return f"{ours}:{current}" if rule.join is Join.PATH_PREPEND else f"{current}:{ours}"
