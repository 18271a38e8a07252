"""What injection costs a Node.js process at start, against the same tracer installed in the app
and preloaded by hand.

`make bench` writes `bench/results/nodejs-startup.json`. Two parts:

The app (per flavor, on Node 22): a web app on Node's own http (bench/apps/server.js, one route),
run as CommonJS and as an ES module (bench/apps/server.mjs imports it), timed from the process's
start to its first answered request (GET / polled every 2 ms):
  plain     no tracer
  by_hand   the flavor's packages installed in the app's own node_modules by `npm ci` from the
            committed lock (images/nodejs/locks/), preloaded as the tracer's docs say for the
            app's module system (by_hand()): for CommonJS, --require of the tracer's start; for
            an ES module, the start and the hook, dd-trace's register.js, or a file that
            module.register()s OpenTelemetry's (bench/apps/register-otel-hook.mjs)
  injected  NODE_OPTIONS=--require=<bundle>/libinject-loader.js, as the engine writes it, the
            bundle built by `libinject bundle nodejs` from the same lock; the app has no tracer
            of its own. The loader sets up the ES module hook for the ES module app only, as by
            hand.
Every case runs with the same tracer settings (nodejs.nodes.QUIET: exporters and the Datadog
agent pointed at a closed loopback port, so a connection is refused at once, and nothing is
sent at start anyway; no telemetry or remote configuration). The app checks on every request
that the case's tracer runs in it. Goal: injected at most 1.05x of by_hand, the median of the
per-round ratios with its 95% interval entirely at or under it.

The loader's own cost (per Node major: 20, the machine's, and 22, 24, 26): a hello script
(tests/nodejs/apps/hello.js) with nothing preloaded (`plain`), with a stub tracer preloaded by
hand (`stub_by_hand`: NODE_OPTIONS=--require=<its start file>), and through the loader of a
bundle whose `start` is that stub and whose `esm-hook` is a stub hook (`stub_via_loader`). The
per-round difference of the last two is what the loader adds: reading bundle.txt, its checks,
deciding that the CommonJS script needs no ES module hook, and the handover. The stub loads
worker_threads, as both real tracers do at start (tests/nodejs/test_node_handover.py checks
it), so the loader's own use of it is not counted twice. Goal: under 5 ms. On
Node 20 the loader stands down (the bundle's `node` is >=22, as the real tracers'), so there
its cost is `stub_via_loader` against `plain`: what every Node process of an injected pod on an
unsupported Node pays.

Runs are interleaved round-robin so that machine noise hits every case alike; each case's first
runs are discarded as warm-up (file cache).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.processes import Command, first_answer_ns, interleaved
from bench.stats import (
    against_by_hand,
    environment,
    median_ratio,
    paired_difference_ms,
    summarize,
    write_results,
)
from cluster.libraries import NODE_LOCKS, NODE_VERSIONS, build_node_bundle
from cluster.nodejs import MAJORS, RELEASES, node_binary, npm
from libinject.api.types import Flavor
from libinject.bundle.nodejs.flavors import FLAVORS
from nodejs.bundles import APPS, LOADER_NAME, make_stub_bundle
from nodejs.nodes import HELLO, QUIET, node_version
from tools.gobuild import cache_root

RESULTS = Path(__file__).parent / "results" / "nodejs-startup.json"
APPS_DIR = Path(__file__).parent / "apps"
ENTRIES = {"commonjs": "server.js", "esm": "server.mjs"}  # the app's module systems
OTEL_HOOK = "register-otel-hook.mjs"  # in the app with OpenTelemetry installed
APP_NODE = 22
APP_RUNS, APP_WARMUP = 20, 2
HELLO_RUNS, HELLO_WARMUP = 160, 5
RATIO_GOAL = 1.05
LOADER_GOAL_MS = 5.0
# What bench/apps/server.js reports running, per flavor.
TRACERS = {"ddtrace": "dd-trace", "opentelemetry": "opentelemetry"}
# The stub bundle's range, as the real tracers': the oldest later major the tests download.
STUB_RANGE = f">={min(RELEASES)}.0.0"


def base_env() -> dict[str, str]:
    """Only what a process needs to run (the bench's own NODE_OPTIONS, NODE_PATH or tracer
    settings must not reach the cases), plus QUIET."""
    return {"PATH": os.environ["PATH"], "HOME": str(Path.home())} | QUIET


def by_hand(flavor: str, system: str) -> str:
    """NODE_OPTIONS preloading `flavor`'s tracer as its docs say for an app of `system`; for an
    ES module app, the fastest of the documented ways (measured side by side on Node 22):
    dd-trace's init.js and --import of its register.js (its --import dd-trace/initialize.mjs
    registers the hook off the main thread and starts slower), and OpenTelemetry's start and
    hook both by --import (a --require'd start runs again in the module-hooks thread, as every
    --require does, and costs the SDK's start twice)."""
    recipe = FLAVORS[Flavor(flavor)]
    if system == "commonjs":
        return f"--require {recipe.start}"
    if flavor == "ddtrace":
        return f"--require {recipe.start} --import {recipe.esm_hook}"
    return f"--import {recipe.start} --import ./{OTEL_HOOK}"


def app_cases(
    flavor: str, *, system: str, node: Path, bundle: Path, scratch: Path
) -> dict[str, Command]:
    plain_app, own_app = scratch / "app", scratch / f"app-with-{flavor}"
    entry = ENTRIES[system]
    env = base_env() | {"BENCH_TRACER": TRACERS[flavor]}
    injected = f"--require={bundle / LOADER_NAME}"
    return {
        "plain": Command(
            [str(node), str(plain_app / entry)], base_env() | {"BENCH_TRACER": "none"}, plain_app
        ),
        # Node resolves a preloaded package from the working directory: each app runs in its own.
        "by_hand": Command(
            [str(node), str(own_app / entry)],
            env | {"NODE_OPTIONS": by_hand(flavor, system)},
            own_app,
        ),
        "injected": Command(
            [str(node), str(plain_app / entry)], env | {"NODE_OPTIONS": injected}, plain_app
        ),
    }


def copy_app(out: Path) -> None:
    """The app's files (both entry points) into a new directory `out`."""
    out.mkdir()
    for name in ENTRIES.values():
        shutil.copyfile(APPS_DIR / name, out / name)


def installed_app(flavor: str, out: Path) -> None:
    """The app with the flavor's packages in its node_modules: `npm ci` of the committed lock,
    from the npm cache the bundle's build just filled."""
    copy_app(out)
    shutil.copyfile(APPS_DIR / OTEL_HOOK, out / OTEL_HOOK)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NODE_LOCKS / f"{flavor}-{NODE_VERSIONS[flavor]}" / name, out / name)
    cache = cache_root() / "npm"
    npm("ci", "--offline", f"--cache={cache}", "--omit=dev", "--ignore-scripts", cwd=out)


def app_report(flavor: str, scratch: Path) -> dict[str, object]:
    """Per module system: the by-hand preload and the verdict, against plain too."""
    bundle = scratch / flavor
    build_node_bundle(flavor=flavor, out=bundle)
    installed_app(flavor, scratch / f"app-with-{flavor}")
    report: dict[str, object] = {"version": NODE_VERSIONS[flavor]}
    for system in ENTRIES:
        commands = app_cases(
            flavor, system=system, node=node_binary(APP_NODE), bundle=bundle, scratch=scratch
        )
        timings = interleaved(commands, runs=APP_RUNS, warmup=APP_WARMUP, timed=first_answer_ns)
        report[system] = {
            "by_hand_node_options": commands["by_hand"].env["NODE_OPTIONS"],
            **against_by_hand(timings, goal=RATIO_GOAL),
            "tracer_over_plain": median_ratio(timings["by_hand"], timings["plain"]),
        }
    return report


def hello_cases(node: Path, *, stub: Path, loader: Path, stands_down: bool) -> dict[str, Command]:
    """The hello script's cases; BENCH_TRACERS is the `tracers:` line each must print (read by
    hello_ns, not by Node)."""
    hello = [str(node), str(APPS / "hello.js")]
    env = base_env()
    stubbed = "stub x1"
    return {
        "plain": Command(hello, env | {"BENCH_TRACERS": "none"}),
        "stub_by_hand": Command(
            hello, env | {"NODE_OPTIONS": f"--require={stub}", "BENCH_TRACERS": stubbed}
        ),
        "stub_via_loader": Command(
            hello,
            env
            | {
                "NODE_OPTIONS": f"--require={loader}",
                "BENCH_TRACERS": "none" if stands_down else stubbed,
            },
        ),
    }


def hello_ns(command: Command) -> int:
    started = time.perf_counter_ns()
    done = subprocess.run(
        command.argv, env=command.env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter_ns() - started
    # Every case must have run the app, with the stub where it belongs, or the difference means
    # nothing.
    lines = done.stdout.splitlines()
    wanted = f"tracers: {command.env['BENCH_TRACERS']}"
    if done.returncode != 0 or HELLO not in lines or wanted not in lines:
        raise RuntimeError(
            f"{command.env.get('NODE_OPTIONS', '')} {command.argv} did not print {wanted!r}"
            f" (exit code {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return elapsed


def loader_verdict(timings: Mapping[str, Sequence[int]], *, stands_down: bool) -> dict[str, object]:
    """The loader's own cost from the hello cases (sampled in the same rounds): what it adds to
    the same stub started by hand; or, where it stands down, what it adds to nothing."""
    cases = {name: summarize(samples) for name, samples in timings.items()}
    if stands_down:
        return {
            "cases": cases,
            "loader_stands_down": True,
            "stand_down_ms": paired_difference_ms(timings["stub_via_loader"], timings["plain"]),
        }
    own = paired_difference_ms(timings["stub_via_loader"], timings["stub_by_hand"])
    return {
        "cases": cases,
        "loader_stands_down": False,
        "loader_own_ms": own,
        "loader_goal_ms": LOADER_GOAL_MS,
        "loader_goal_met": own["ci95_high"] < LOADER_GOAL_MS,
    }


def loader_report(major: int, scratch: Path) -> dict[str, object]:
    loader = make_stub_bundle(
        scratch / f"stub-bundle-{major}", node=STUB_RANGE, hook=APPS / "stub-hook.js"
    )
    stub = loader.parent / "node_modules" / "stub" / "start.js"
    stands_down = major < min(RELEASES)
    node = node_binary(major)
    commands = hello_cases(node, stub=stub, loader=loader, stands_down=stands_down)
    timings = interleaved(commands, runs=HELLO_RUNS, warmup=HELLO_WARMUP, timed=hello_ns)
    return {"node": node_version(node), **loader_verdict(timings, stands_down=stands_down)}


def headline(outcome: Mapping[str, object]) -> str:
    """A report without its per-case summaries, for the terminal."""
    return json.dumps({key: value for key, value in outcome.items() if key != "cases"})


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as scratch:
        root = Path(scratch)
        copy_app(root / "app")
        apps = {flavor: app_report(flavor, root) for flavor in NODE_VERSIONS}
        for flavor, outcome in apps.items():
            print(f"{flavor}: {headline(outcome)}")
        loaders = {}
        for major in MAJORS:
            loaders[f"node{major}"] = outcome = loader_report(major, root)
            print(f"loader on Node {major}: {headline(outcome)}")
    document = {
        "benchmark": "Node.js start-up: the tracer injected by libinject vs preloaded by hand",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(
            node=node_version(node_binary(APP_NODE)),
            app="bench/apps/server.js (node:http, one route) run as CommonJS and from"
            f" bench/apps/server.mjs as an ES module, on Node {APP_NODE}",
            tracer_env_note="the same for every app case: exporters and the Datadog agent at a"
            " closed loopback port (connection refused), no telemetry, remote configuration,"
            " metrics or logs exporter",
            app_runs=f"{APP_RUNS} per case after {APP_WARMUP} warm-up runs, interleaved",
            hello_runs=f"{HELLO_RUNS} per case after {HELLO_WARMUP} warm-up runs, interleaved",
            clock="time.perf_counter_ns from the process's start to its first 200 response"
            " (app) or its exit (hello)",
        ),
        "tracer_env": QUIET,
        "wall_seconds": round(time.perf_counter() - clock, 1),
        "app": apps,
        "loader": loaders,
    }
    write_results(RESULTS, document)
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
