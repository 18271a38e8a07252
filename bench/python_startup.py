"""What injection costs a Python process at start, against the tracer installed the usual way.

`make bench` writes `bench/results/python-startup.json`. Every case starts a fresh interpreter
that runs `pass` and exits, so the number is the start-up cost alone. Cases, per flavor:
  baseline       the app's interpreter, nothing injected
  loader_alone   + the bundle on PYTHONPATH, every check and the path set, tracer not started
  injected       + the bundle on PYTHONPATH: the tracer starts (what an injected pod pays)
  pip_launcher   the same tracer pip-installed in the app, run by its own launcher
                 (ddtrace-run / opentelemetry-instrument), as its docs say to run it
  pip_in_process the same tracer pip-installed, started by an import in the app (no launcher)
Runs are interleaved round-robin so that machine noise hits every case alike; each case's
first runs are discarded as warm-up (file cache). The loader alone is also timed by the
interpreter (`-X importtime`, `loader_import`). Goals: loader alone under 5 ms; injected under
1.05x of pip_launcher (both at the median).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.stats import environment, summarize, write_results
from cluster.apps import FLASK, virtualenv
from cluster.libraries import VERSIONS, build_bundle, host_target
from libinject.api.types import Flavor
from libinject.bundle.flavors import recipe

RESULTS = Path(__file__).parent / "results" / "python-startup.json"
RUNS = 40
WARMUP = 5
LOADER_GOAL_MS = 5.0
RATIO_GOAL = 1.05
# No network at start or exit: telemetry off, exporters pointed at a closed loopback port.
QUIET = {
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_TRACE_AGENT_URL": "http://127.0.0.1:9",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}
LAUNCHERS = {"ddtrace": "ddtrace-run", "opentelemetry": "opentelemetry-instrument"}
IN_PROCESS = {
    "ddtrace": "import ddtrace.auto",
    "opentelemetry": "from opentelemetry.instrumentation.auto_instrumentation import initialize;"
    " initialize()",
}

Command = tuple[list[str], dict[str, str]]


def cases(flavor: str, bundle: Path) -> dict[str, Command]:
    app = virtualenv(FLASK) / "bin" / "python"
    # The pip-installed side gets exactly what the bundle holds (the same instrumentations).
    tracer = virtualenv((*FLASK, *recipe(Flavor(flavor), VERSIONS[flavor]).requirements)) / "bin"
    base = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | QUIET
    injected = base | {"PYTHONPATH": str(bundle)}
    return {
        "baseline": ([str(app), "-c", "pass"], base),
        "loader_alone": ([str(app), "-c", "pass"], injected | {"LIBINJECT_START_TRACER": "false"}),
        "injected": ([str(app), "-c", "pass"], injected),
        "pip_launcher": (
            [str(tracer / LAUNCHERS[flavor]), str(tracer / "python"), "-c", "pass"],
            base,
        ),
        "pip_in_process": ([str(tracer / "python"), "-c", IN_PROCESS[flavor]], base),
    }


def measure(commands: dict[str, Command]) -> dict[str, dict[str, float]]:
    timings: dict[str, list[int]] = {name: [] for name in commands}
    for run in range(WARMUP + RUNS):
        for name, (argv, env) in commands.items():
            started = time.perf_counter_ns()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            if run >= WARMUP:
                timings[name].append(time.perf_counter_ns() - started)
    return {name: summarize(samples) for name, samples in timings.items()}


def loader_import(command: Command) -> dict[str, float]:
    """The loader's own cost, read from the interpreter itself: `-X importtime`'s cumulative
    microseconds for `sitecustomize` (the wall-clock difference of two process starts is
    smaller than the machine's noise)."""
    argv, env = command
    samples = []
    for _ in range(RUNS):
        run = subprocess.run(
            [argv[0], "-X", "importtime", *argv[1:]],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        lines = run.stderr.splitlines()
        line = next(line for line in lines if line.split("|")[-1].strip() == "sitecustomize")
        samples.append(int(line.split("|")[1]) * 1000)  # cumulative, microseconds -> ns
    return summarize(samples)


def verdict(results: dict[str, dict[str, float]]) -> dict[str, float | bool]:
    def ms(name: str) -> float:
        return results[name]["p50_us"] / 1000

    loader = round(ms("loader_import"), 2)
    ratio = round(ms("injected") / ms("pip_launcher"), 3)
    return {
        "loader_alone_ms": loader,
        "loader_alone_wall_difference_ms": round(ms("loader_alone") - ms("baseline"), 2),
        "loader_goal_ms": LOADER_GOAL_MS,
        "loader_goal_met": loader < LOADER_GOAL_MS,
        "injected_over_pip_launcher": ratio,
        "injected_over_pip_in_process": round(ms("injected") / ms("pip_in_process"), 3),
        "ratio_goal": RATIO_GOAL,
        "ratio_goal_met": ratio < RATIO_GOAL,
    }


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as scratch:
        for flavor in VERSIONS:
            bundle = Path(scratch) / flavor
            build_bundle(flavor=flavor, out=bundle, targets=[host_target()])
            commands = cases(flavor, bundle)
            results = measure(commands)
            results["loader_import"] = loader_import(commands["loader_alone"])
            report[flavor] = {"version": VERSIONS[flavor], "cases": results, **verdict(results)}
            print(f"{flavor}: {json.dumps(verdict(results))}")
    document = {
        "benchmark": "Python start-up: injected bundle vs the tracer pip-installed",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(
            runs=f"{RUNS} per case after {WARMUP} warm-up runs, interleaved",
            clock="time.perf_counter_ns around each process, `python -c pass`",
        ),
        "wall_seconds": round(time.perf_counter() - clock, 1),
        **report,
    }
    write_results(RESULTS, document)
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
