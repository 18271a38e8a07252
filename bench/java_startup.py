"""What injection costs a JVM at start, against the same agent given on the command line by hand.

`make bench` writes `bench/results/java-startup.json`. Two parts:

The app (per flavor): the Jetty web app of the demo (examples/apps/java) on Java 17, timed from
the process's start to its first answered request (GET / polled every 2 ms):
  plain      no agent
  by_hand    `java -javaagent:<the bundle's agent jar> ...`, as the agent's docs say to run it
  injected   JAVA_TOOL_OPTIONS=-javaagent:<bundle>/libinject-launcher.jar, what a pod gets: the
             launcher checks, then hands over to the same jar
Both agent cases run with the same settings (no exporter, no telemetry). Goal: injected at most
1.05x of by_hand, the median of the per-round ratios with its 95% interval entirely under it.

The launcher's own cost (per installed JDK): Hello world given a stub agent (one class that
prints a line), once directly and once through the launcher of a bundle holding it. The JVM's
own charge for any -javaagent is the same on both sides, so the per-round difference is what the
launcher adds: reading bundle.txt, its checks, and the handover. Goal: under 20 ms.

Runs are interleaved round-robin so that machine noise hits every case alike; each case's first
runs are discarded as warm-up (file cache, the JVM's class data sharing archive).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
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
from cluster.javaapp import command as app_command
from cluster.javaapp import java_webapp
from cluster.libraries import JAVA_VERSIONS, build_java_bundle
from java.agents import compile_apps, make_bundle, make_stub_jars
from java.jvms import HELLO, QUIET, Jvm, installed
from libinject.bundle.java.launcher import JAR_NAME

RESULTS = Path(__file__).parent / "results" / "java-startup.json"
APP_RUNS, APP_WARMUP = 20, 2
HELLO_RUNS, HELLO_WARMUP = 40, 5
RATIO_GOAL = 1.05
LAUNCHER_GOAL_MS = 20.0


def base_env() -> dict[str, str]:
    """The bench's environment without any Java settings of its own, plus QUIET."""
    ignored = {"JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "LIBINJECT_DEBUG"}
    return {key: value for key, value in os.environ.items() if key not in ignored} | QUIET


def bundle_agent(bundle: Path) -> Path:
    """The agent jar a Java bundle holds, as its bundle.txt names it."""
    fields = dict(
        line.split(" ", 1) for line in (bundle / "bundle.txt").read_text().splitlines() if line
    )
    return bundle / fields["agent"]


def app_cases(bundle: Path) -> dict[str, Command]:
    argv = app_command(java_webapp())
    env = base_env()
    by_hand = [argv[0], f"-javaagent:{bundle_agent(bundle)}", *argv[1:]]
    injected = env | {"JAVA_TOOL_OPTIONS": f"-javaagent:{bundle / JAR_NAME}"}
    return {
        "plain": Command(argv, env),
        "by_hand": Command(by_hand, env),
        "injected": Command(argv, injected),
    }


def hello_cases(jvm: Jvm, *, classes: Path, stub: Path, launcher: Path) -> dict[str, Command]:
    hello = ["-cp", str(classes), "Hello"]
    env = base_env()
    return {
        "stub_by_hand": Command([str(jvm.java), f"-javaagent:{stub}", *hello], env),
        "stub_via_launcher": Command([str(jvm.java), f"-javaagent:{launcher}", *hello], env),
    }


def hello_ns(command: Command) -> int:
    argv = command.argv
    started = time.perf_counter_ns()
    done = subprocess.run(argv, env=command.env, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter_ns() - started
    # Both sides must have run the stub agent and then the app, or the difference means nothing.
    if not done.stdout.startswith("stub agent started") or HELLO not in done.stdout:
        raise RuntimeError(f"unexpected output of {argv}: {done.stdout}{done.stderr}")
    return elapsed


def app_report(flavor: str, scratch: Path) -> dict[str, object]:
    bundle = scratch / flavor
    build_java_bundle(flavor=flavor, out=bundle)
    timings = interleaved(
        app_cases(bundle), runs=APP_RUNS, warmup=APP_WARMUP, timed=first_answer_ns
    )
    return {
        "version": JAVA_VERSIONS[flavor],
        **against_by_hand(timings, goal=RATIO_GOAL),
        "agent_over_plain": median_ratio(timings["by_hand"], timings["plain"]),
    }


def launcher_report(jvm: Jvm, scratch: Path) -> dict[str, object]:
    classes = compile_apps(scratch / "classes")
    stub = make_stub_jars(classes, scratch)["stub"]
    launcher = make_bundle(
        scratch / "stub-bundle",
        agent=stub,
        flavor="stub",
        version="1.0",
        agent_name="stub-agent.jar",
    )
    commands = hello_cases(jvm, classes=classes, stub=stub, launcher=launcher)
    timings = interleaved(commands, runs=HELLO_RUNS, warmup=HELLO_WARMUP, timed=hello_ns)
    own = paired_difference_ms(timings["stub_via_launcher"], timings["stub_by_hand"])
    return {
        "cases": {name: summarize(samples) for name, samples in timings.items()},
        "launcher_own_ms": own,
        "launcher_goal_ms": LAUNCHER_GOAL_MS,
        "launcher_goal_met": own["ci95_high"] < LAUNCHER_GOAL_MS,
    }


def main() -> None:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="libinject-bench-") as scratch:
        root = Path(scratch)
        apps = {flavor: app_report(flavor, root) for flavor in JAVA_VERSIONS}
        for flavor, outcome in apps.items():
            print(f"{flavor}: {json.dumps({k: v for k, v in outcome.items() if k != 'cases'})}")
        launchers = {}
        for jvm in installed():
            (root / str(jvm)).mkdir()
            launchers[str(jvm)] = launcher_report(jvm, root / str(jvm))
            print(f"launcher on {jvm}: {json.dumps(launchers[str(jvm)]['launcher_own_ms'])}")
    document = {
        "benchmark": "Java start-up: the agent injected by libinject vs given by hand",
        "timestamp": started.isoformat(timespec="seconds"),
        "environment": environment(
            java=subprocess.run(
                ["java", "-version"], capture_output=True, text=True, check=True
            ).stderr.splitlines()[0],
            app_runs=f"{APP_RUNS} per case after {APP_WARMUP} warm-up runs, interleaved",
            hello_runs=f"{HELLO_RUNS} per case after {HELLO_WARMUP} warm-up runs, interleaved",
            clock="time.perf_counter_ns from the process's start to its first 200 response"
            " (app) or its exit (hello)",
        ),
        "wall_seconds": round(time.perf_counter() - clock, 1),
        "app": apps,
        "launcher": launchers,
    }
    write_results(RESULTS, document)
    print(f"  written to {RESULTS}")


if __name__ == "__main__":
    main()
