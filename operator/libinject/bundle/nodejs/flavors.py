"""What each Node.js flavor's bundle installs and how the loader starts it. Pure data.

A flavor's `version` is the one release users name in policies and image tags: dd-trace's own
version, or @opentelemetry/auto-instrumentations-node's, whose dependencies bring the SDK
(@opentelemetry/sdk-node) and its OTLP exporters, configured from the `OTEL_*` variables the
engine writes. Everything below the flavor's package is pinned by the committed lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from libinject.api.types import Flavor

# Packages that, resolvable from the application, mean it ships its own tracer: the loader then
# stands down. Both flavors' in every bundle: one tracer per process, whatever the vendor. The
# OpenTelemetry API alone is not one (libraries depend on it to emit spans into whatever SDK the
# application starts); an SDK or the auto-instrumentations are.
OWN_TRACER_PACKAGES = (
    "dd-trace",
    "@opentelemetry/auto-instrumentations-node",
    "@opentelemetry/sdk-node",
    "@opentelemetry/sdk-trace-node",
)


@dataclass(frozen=True)
class NodeFlavor:
    tracer: str  # the npm package whose version is the flavor's, and whose engines.node is ours
    start: str  # what the loader requires to start the tracer (a specifier Node resolves)
    # The ESM loader hook the loader passes to module.register() before the app's ES modules
    # load, so that imports are instrumented too.
    esm_hook: str
    # Native packages a tracer feature loads with no fallback: each must ship prebuilt addons for
    # every platform of the bundle, or the bundle is refused.
    needed_native: tuple[str, ...] = ()

    def packages(self, version: str) -> dict[str, str]:
        """The dependencies of the lock's package.json: exact versions."""
        return {self.tracer: version}


FLAVORS: dict[Flavor, NodeFlavor] = {
    # dd-trace documents `--require dd-trace/init` for CommonJS and, for ES modules, its loader
    # hook. Its register.js sets that up: with Node's in-thread module hooks where they work
    # (no module.register, which Node 26 deprecates), else module.register() of loader-hook.mjs;
    # the loader requires it (a .mjs hook it would pass to module.register itself). Its native
    # addons are optional npm dependencies, each for one feature turned on by a variable:
    # application security (DD_APPSEC_ENABLED), runtime metrics (DD_RUNTIME_METRICS_ENABLED),
    # profiling (DD_PROFILING_ENABLED), IAST (DD_IAST_ENABLED), crash tracking (on by default).
    # oxc-parser is not among them: dd-trace falls back to the JavaScript parser it vendors.
    Flavor.DDTRACE: NodeFlavor(
        tracer="dd-trace",
        start="dd-trace/init",
        esm_hook="dd-trace/register.js",
        needed_native=(
            "@datadog/libdatadog-extras",
            "@datadog/native-appsec",
            "@datadog/native-iast-taint-tracking",
            "@datadog/native-metrics",
            "@datadog/pprof",
        ),
    ),
    # The auto-instrumentations' `register` entry starts the NodeSDK from the OTEL_* variables
    # (exporters, resource, sampler); OpenTelemetry's ESM support is import-in-the-middle's
    # hook, re-exported by @opentelemetry/instrumentation as hook.mjs. No native addons.
    Flavor.OPENTELEMETRY: NodeFlavor(
        tracer="@opentelemetry/auto-instrumentations-node",
        start="@opentelemetry/auto-instrumentations-node/register",
        esm_hook="@opentelemetry/instrumentation/hook.mjs",
    ),
}
