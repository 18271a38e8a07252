"""What makes each runtime load its library: data, one entry per language and flavor.

Adding a language is one entry here and one row in the tests' tables; the delivery modes and the
container step never branch on the language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase

from libinject.api.types import Flavor, Language, LoadVariableName


class Join(Enum):
    """How our value meets a value the container already sets."""

    PATH_PREPEND = "path-prepend"  # a:b:c list, ours first so our sitecustomize is found
    PATH_APPEND = "path-append"  # a:b:c list, ours last
    OPTION_APPEND = "option-append"  # space-separated options, ours last
    EXACT = "exact"  # one value only: theirs must be absent or equal to ours


@dataclass(frozen=True)
class LoadVariable:
    """One variable of the load step. `{root}` in `value` is the library's mount path."""

    name: str  # one of the API's LoadVariableName (reserved: a policy's env cannot set them)
    value: str
    join: Join
    keep_default: bool = False  # PATH_APPEND only: a leading ':' keeps the runtime's default list

    def for_root(self, root: str) -> str:
        return self.value.replace("{root}", root)


# Rules are made only here, from the API's names (kept as plain strings: they go into pods).
def _path(name: LoadVariableName, value: str) -> LoadVariable:
    return LoadVariable(name.value, value, Join.PATH_PREPEND)


def _option(name: LoadVariableName, value: str) -> LoadVariable:
    return LoadVariable(name.value, value, Join.OPTION_APPEND)


def _exact(name: LoadVariableName, value: str) -> LoadVariable:
    return LoadVariable(name.value, value, Join.EXACT)


def _ini_dir(name: LoadVariableName, value: str) -> LoadVariable:
    return LoadVariable(name.value, value, Join.PATH_APPEND, keep_default=True)


_V = LoadVariableName

# Java's load variable names our launcher agent, the same file in every Java bundle: a JVM aborts
# when a -javaagent jar is missing or fails, so the launcher checks the JVM and the bundle first
# and hands over to the flavor's agent beside it only when both fit (libinject.bundle.java).
JAVA_LAUNCHER = "libinject-launcher.jar"
# Node's load variable names our loader, the same file in every Node bundle: Node aborts when a
# --require file is missing or throws, so the loader checks the runtime and the bundle first and
# starts the flavor's tracer beside it only when both fit (libinject.bundle.nodejs).
NODE_LOADER = "libinject-loader.js"

_CORECLR_DD = "{846F5F1C-F9AE-4B07-969E-05C26BC060D8}"
_CORECLR_OTEL = "{918728DD-259F-4A6A-AC2B-B85E1B658318}"

# The native profiler differs per CPU architecture, and the runtime picks it: an arm64 CoreCLR
# reads CORECLR_PROFILER_PATH_ARM64 first, any 64-bit one then CORECLR_PROFILER_PATH_64, and
# the unsuffixed CORECLR_PROFILER_PATH last (dotnet/runtime, profilinghelper.cpp). So both
# per-arch paths are set and each process loads its own, whatever the node. The library image
# holds each architecture's build in its runtime-identifier directory (linux-x64, linux-arm64),
# the layout both tracers' Linux packages use.
_PROFILER_DIRS = (
    (_V.CORECLR_PROFILER_PATH_64, "linux-x64"),
    (_V.CORECLR_PROFILER_PATH_ARM64, "linux-arm64"),
)


def _profiler(clsid: str, library: str) -> tuple[LoadVariable, ...]:
    """Profiling on, the profiler's CLSID, and its native library for each architecture."""
    return (
        _exact(_V.CORECLR_ENABLE_PROFILING, "1"),
        _exact(_V.CORECLR_PROFILER, clsid),
        *(_exact(name, f"{{root}}/{rid}/{library}") for name, rid in _PROFILER_DIRS),
    )


LOAD_RULES: dict[tuple[Language, Flavor], tuple[LoadVariable, ...]] = {
    # Both Python flavors: the image's sitecustomize.py picks the build for the interpreter.
    (Language.PYTHON, Flavor.DDTRACE): (_path(_V.PYTHONPATH, "{root}"),),
    (Language.PYTHON, Flavor.OPENTELEMETRY): (_path(_V.PYTHONPATH, "{root}"),),
    (Language.JAVA, Flavor.DDTRACE): (
        _option(_V.JAVA_TOOL_OPTIONS, f"-javaagent:{{root}}/{JAVA_LAUNCHER}"),
    ),
    (Language.JAVA, Flavor.OPENTELEMETRY): (
        _option(_V.JAVA_TOOL_OPTIONS, f"-javaagent:{{root}}/{JAVA_LAUNCHER}"),
    ),
    (Language.NODEJS, Flavor.DDTRACE): (
        _option(_V.NODE_OPTIONS, f"--require={{root}}/{NODE_LOADER}"),
    ),
    (Language.NODEJS, Flavor.OPENTELEMETRY): (
        _option(_V.NODE_OPTIONS, f"--require={{root}}/{NODE_LOADER}"),
    ),
    # Datadog's profiler under linux-x64 / linux-arm64 is its native loader, built for glibc
    # and musl at once (dd-trace-dotnet 3.x), which then loads the tracer for the container's C
    # library: one value fits both.
    (Language.DOTNET, Flavor.DDTRACE): (
        *_profiler(_CORECLR_DD, "Datadog.Trace.ClrProfiler.Native.so"),
        _exact(_V.DD_DOTNET_TRACER_HOME, "{root}"),
    ),
    # OpenTelemetry's profiler is built per C library, and no variable the runtime reads can
    # tell glibc from musl: its image must hold, under linux-x64 / linux-arm64, the build for the
    # C library of the containers it serves (the README's .NET section says so).
    (Language.DOTNET, Flavor.OPENTELEMETRY): (
        *_profiler(_CORECLR_OTEL, "OpenTelemetry.AutoInstrumentation.Native.so"),
        _path(
            _V.DOTNET_STARTUP_HOOKS, "{root}/net/OpenTelemetry.AutoInstrumentation.StartupHook.dll"
        ),
        _path(_V.DOTNET_ADDITIONAL_DEPS, "{root}/AdditionalDeps"),
        _path(_V.DOTNET_SHARED_STORE, "{root}/store"),
        _exact(_V.OTEL_DOTNET_AUTO_HOME, "{root}"),
    ),
    (Language.RUBY, Flavor.DDTRACE): (_option(_V.RUBYOPT, "-r{root}/auto_inject"),),
    (Language.RUBY, Flavor.OPENTELEMETRY): (_option(_V.RUBYOPT, "-r{root}/auto_inject"),),
    (Language.PHP, Flavor.DDTRACE): (_ini_dir(_V.PHP_INI_SCAN_DIR, "{root}/conf.d"),),
    (Language.PHP, Flavor.OPENTELEMETRY): (_ini_dir(_V.PHP_INI_SCAN_DIR, "{root}/conf.d"),),
}


def load_rules(language: Language, flavor: Flavor) -> tuple[LoadVariable, ...]:
    return LOAD_RULES[(language, flavor)]


@dataclass(frozen=True)
class OwnTracers:
    """How a container of one language shows that it starts a tracer of its own: an option
    loading one of the tracers, in a variable the runtime reads at start or in the container's
    command or args. Such a container is skipped: never two tracers."""

    option: re.Pattern[str]  # group `tracer`: the name the patterns are matched against
    variables: tuple[str, ...]
    tracers: tuple[str, ...]  # fnmatch patterns of the tracers' names

    def found(self, text: str) -> str | None:
        """The first option in `text` that loads one of the tracers, e.g. `-javaagent:/a.jar`."""
        for match in self.option.finditer(text):
            if any(fnmatchcase(match.group("tracer"), pattern) for pattern in self.tracers):
                return match.group(0)
        return None


OWN_TRACERS: dict[Language, OwnTracers] = {
    # `-javaagent:<jar>[=<options>]`, maybe quoted inside a shell command line; the jar's file
    # name tells the agent. Both variables are read by the JVM itself (JDK_JAVA_OPTIONS by the
    # `java` launcher, Java 9 and later).
    Language.JAVA: OwnTracers(
        option=re.compile(r"-javaagent:[\"']?(?:[^\s\"'=]*/)?(?P<tracer>[^\s\"'=/]+)"),
        variables=("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS"),
        tracers=("dd-java-agent*.jar", "opentelemetry-javaagent*.jar"),
    ),
    # A module Node preloads (`--require`/`-r`, `--import`, `--loader`), `=` or a space before
    # it, as a package specifier (`dd-trace/init`) or a path into a node_modules directory: the
    # package it names tells the tracer. Any @opentelemetry package preloaded is the app's own
    # SDK set-up (its ESM hook, its auto-instrumentations), as the loader judges it too.
    Language.NODEJS: OwnTracers(
        option=re.compile(
            r"(?<![\w-])(?:--require|--import|--loader|--experimental-loader|-r)(?:=|\s+)"
            r"[\"']?(?:[^\s\"']*/node_modules/|node_modules/)?"
            r"(?P<tracer>(?:@[\w.-]+/)?[\w.-]+)[^\s\"']*"
        ),
        variables=("NODE_OPTIONS",),
        tracers=("dd-trace", "@opentelemetry/*"),
    ),
}


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
