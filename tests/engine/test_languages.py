"""Each runtime's load variables: combined with the user's value, never overwriting it."""

from __future__ import annotations

import pytest

from builders import container, env_of, pod, policy, run
from libinject.api.types import LOAD_VARIABLES, Flavor, Language
from libinject.engine.decision import Code
from libinject.engine.languages import LOAD_RULES, Join, LoadVariable, VariableClashError, combine

PREPEND = LoadVariable("P", "ours", Join.PATH_PREPEND)
APPEND = LoadVariable("A", "ours", Join.PATH_APPEND, keep_default=True)
OPTION = LoadVariable("O", "-ours", Join.OPTION_APPEND)
EXACT = LoadVariable("E", "1", Join.EXACT)


@pytest.mark.parametrize(
    ("rule", "current", "expected"),
    [
        (PREPEND, None, "ours"),
        (PREPEND, "", "ours"),
        (PREPEND, "/app", "ours:/app"),
        (PREPEND, "/app:ours", "/app:ours"),
        (APPEND, None, ":ours"),
        (APPEND, "/etc/php", "/etc/php:ours"),
        (OPTION, "-Xmx1g", "-Xmx1g -ours"),
        (OPTION, "-ours -Xmx1g", "-ours -Xmx1g"),
        (EXACT, None, "1"),
        (EXACT, "1", "1"),
    ],
)
def test_combine(rule: LoadVariable, current: str | None, expected: str) -> None:
    value = combine(rule, rule.value, current)
    assert value == expected
    assert combine(rule, rule.value, value) == value, "combining twice must change nothing"


def test_exact_variable_clash() -> None:
    with pytest.raises(VariableClashError):
        combine(EXACT, "1", "0")


def test_the_api_reserves_exactly_the_load_variables() -> None:
    """A policy's env may not set what the engine builds (the CRD rule lists these names), and
    the API reserves no name the engine never sets: the rules name their variables by the API's
    LoadVariableName, so both lists are one."""
    names = {rule.name for rules in LOAD_RULES.values() for rule in rules}
    assert names == set(LOAD_VARIABLES)


def test_every_language_and_flavor_has_rules() -> None:
    assert set(LOAD_RULES) == {(lang, flavor) for lang in Language for flavor in Flavor}


# (language, flavor, variable, user's value, expected value)
CASES = [
    ("python", "ddtrace", "PYTHONPATH", "/srv", "/opt/libinject/python:/srv"),
    ("python", "opentelemetry", "PYTHONPATH", None, "/opt/libinject/python"),
    ("java", "ddtrace", "JAVA_TOOL_OPTIONS", "-Xmx1g",
     "-Xmx1g -javaagent:/opt/libinject/java/libinject-launcher.jar"),
    ("java", "opentelemetry", "JAVA_TOOL_OPTIONS", None,
     "-javaagent:/opt/libinject/java/libinject-launcher.jar"),
    ("nodejs", "ddtrace", "NODE_OPTIONS", "--max-old-space-size=512",
     "--max-old-space-size=512 --require=/opt/libinject/nodejs/libinject-loader.js"),
    ("nodejs", "opentelemetry", "NODE_OPTIONS", None,
     "--require=/opt/libinject/nodejs/libinject-loader.js"),
    ("dotnet", "ddtrace", "CORECLR_PROFILER", None, "{846F5F1C-F9AE-4B07-969E-05C26BC060D8}"),
    ("dotnet", "ddtrace", "CORECLR_PROFILER_PATH_64", None,
     "/opt/libinject/dotnet/linux-x64/Datadog.Trace.ClrProfiler.Native.so"),
    ("dotnet", "ddtrace", "CORECLR_PROFILER_PATH_ARM64", None,
     "/opt/libinject/dotnet/linux-arm64/Datadog.Trace.ClrProfiler.Native.so"),
    ("dotnet", "opentelemetry", "CORECLR_PROFILER_PATH_ARM64", None,
     "/opt/libinject/dotnet/linux-arm64/OpenTelemetry.AutoInstrumentation.Native.so"),
    ("dotnet", "opentelemetry", "DOTNET_STARTUP_HOOKS", None,
     "/opt/libinject/dotnet/net/OpenTelemetry.AutoInstrumentation.StartupHook.dll"),
    ("ruby", "ddtrace", "RUBYOPT", "-W0", "-W0 -r/opt/libinject/ruby/auto_inject"),
    ("php", "ddtrace", "PHP_INI_SCAN_DIR", None, ":/opt/libinject/php/conf.d"),
    ("php", "opentelemetry", "PHP_INI_SCAN_DIR", "/etc/php.d",
     "/etc/php.d:/opt/libinject/php/conf.d"),
]  # fmt: skip


@pytest.mark.parametrize(("language", "flavor", "variable", "theirs", "expected"), CASES)
def test_load_variable_per_language(
    language: str, flavor: str, variable: str, theirs: str | None, expected: str
) -> None:
    env = [{"name": variable, "value": theirs}] if theirs is not None else []
    lib = {"language": language, "flavor": flavor, "version": "1.0.0"}
    result = run(pod(container(env=env)), policy(libraries=[lib]))
    assert env_of(result)[variable] == expected
    assert (
        result.pod["spec"]["containers"][0]["env"].count({"name": variable, "value": expected}) == 1
    ), "the user's entry is updated in place, never duplicated"


def test_value_from_load_variable_skips_the_container() -> None:
    """We cannot see a valueFrom's value, so we cannot combine it: skip, and say so."""
    from_secret = {"name": "PYTHONPATH", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    result = run(pod(container("app", env=[from_secret]), container("side")), policy())
    (choice,) = result.decision.injected
    verdicts = {v.container: v.reason.code for v in choice.containers}
    assert verdicts == {"app": Code.LOAD_VARIABLE_FROM_SOURCE, "side": Code.CONTAINER_INSTRUMENTED}
    assert result.pod["spec"]["containers"][0]["env"] == [from_secret]
    assert (
        '"skippedContainers":{"app":"LoadVariableFromSource"}'
        in (result.pod["metadata"]["annotations"]["libinject.dev/injected"])
    )


def test_another_profiler_blocks_dotnet() -> None:
    other = {"name": "CORECLR_PROFILER", "value": "{00000000-0000-0000-0000-000000000000}"}
    lib = {"language": "dotnet", "version": "3.0.0"}
    result = run(pod(container(env=[other])), policy(libraries=[lib]))
    assert result.decision.reason.code is Code.NO_CONTAINER_SELECTED
    assert result.pod["spec"]["containers"][0]["env"] == [other]
    assert "volumes" not in result.pod["spec"]


def test_env_from_is_warned_about() -> None:
    """A load variable may hide in an envFrom ConfigMap the engine cannot read: warn."""
    source = [{"configMapRef": {"name": "settings"}}]
    result = run(pod(container(envFrom=source)), policy())
    assert any("envFrom" in warning for warning in result.decision.warnings)


def _profiler_coreclr_loads(env: dict[str, str], arch: str) -> str | None:
    """Which profiler path a 64-bit CoreCLR on Linux reads (dotnet/runtime, profilinghelper.cpp):
    on arm64 CORECLR_PROFILER_PATH_ARM64 first; then CORECLR_PROFILER_PATH_64; then the
    unsuffixed CORECLR_PROFILER_PATH."""
    order = ["CORECLR_PROFILER_PATH_64", "CORECLR_PROFILER_PATH"]
    if arch == "arm64":
        order.insert(0, "CORECLR_PROFILER_PATH_ARM64")
    return next((env[name] for name in order if name in env), None)


@pytest.mark.parametrize("flavor", ["ddtrace", "opentelemetry"])
@pytest.mark.parametrize(("arch", "rid"), [("x64", "linux-x64"), ("arm64", "linux-arm64")])
def test_each_architecture_loads_its_own_profiler(flavor: str, arch: str, rid: str) -> None:
    """One pod spec serves every node: the runtime of each architecture finds the native profiler
    built for it. Fails before the fix, where CORECLR_PROFILER_PATH named linux-x64 for all."""
    lib = {"language": "dotnet", "flavor": flavor, "version": "3.0.0"}
    env = env_of(run(pod(), policy(libraries=[lib])))
    loaded = _profiler_coreclr_loads(env, arch)
    assert loaded is not None
    assert loaded.startswith(f"/opt/libinject/dotnet/{rid}/")
    assert loaded.endswith("Native.so")


def test_a_users_own_arm64_profiler_blocks_dotnet() -> None:
    """A container that already names a profiler for one architecture gets no second one: the
    per-arch variables are EXACT like the CLSID, so a different value skips the container."""
    theirs = {"name": "CORECLR_PROFILER_PATH_ARM64", "value": "/other/profiler.so"}
    lib = {"language": "dotnet", "version": "3.0.0"}
    result = run(pod(container(env=[theirs])), policy(libraries=[lib]))
    assert result.decision.reason.code is Code.NO_CONTAINER_SELECTED
    assert result.pod["spec"]["containers"][0]["env"] == [theirs]
