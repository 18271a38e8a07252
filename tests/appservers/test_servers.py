"""Stock app servers from PyPI under the loader, both flavors: gunicorn + Flask, uvicorn +
FastAPI, a `django-admin startproject` app under runserver, gunicorn and uvicorn, celery with a
local transport.

Each app runs from a cached virtualenv of exact PyPI releases (its "image") with the environment
an injected container gets (`traced`). Every server listens on 127.0.0.1 on a free port, in a
process group of its own that the test stops, pass or fail. What each test checks could fail:
every request answered 200, the spans at the test agent (count, name, service), exactly one
tracer start in the process that runs the app and none in the workers it forks (they inherit
it), and never a second OpenTelemetry SDK in one process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from appservers.conftest import Traced, loader_lines, service_name, starts
from cluster import harness, poll
from cluster.apps import image_env, virtualenv
from cluster.registry import spawn, stop
from cluster.testagent import TestAgent, repeated_field

pytestmark = pytest.mark.network  # the apps' virtualenvs come from PyPI (cached after)

FLAVORS = ("ddtrace", "opentelemetry")
GUNICORN = "gunicorn==27.0.1"
UVICORN = "uvicorn==0.55.0"
FLASK_APP = (GUNICORN, "flask==3.1.3")
FASTAPI_APP = (UVICORN, "fastapi==0.165.0")
DJANGO_APP = (GUNICORN, UVICORN, "django==5.2.19")
CELERY_APP = ("celery==5.7.0",)
REQUESTS = 3
# What the OpenTelemetry API logs when a process sets up a second SDK (two tracer starts).
SECOND_SDK = "Overriding of current TracerProvider is not allowed"
# The loader's line when the OpenTelemetry flavor has instrumented Django (at django.setup()).
DJANGO_INSTRUMENTED = "instrumented django at django.setup()"

# Each view answers with the pid of the process that served it: a forked worker, not the master.
FLASK_SOURCE = """\
import os

from flask import Flask

app = Flask(__name__)


@app.route("/hello")
def hello():
    return str(os.getpid())
"""
FASTAPI_SOURCE = """\
import os

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/hello", response_class=PlainTextResponse)
def hello():
    return str(os.getpid())
"""
DJANGO_VIEW = """\
import os

from django.http import HttpResponse


def hello(request):
    return HttpResponse(str(os.getpid()))
"""
# Appended to the project's urls.py (which imports `path` and defines urlpatterns).
DJANGO_URL = """
from mysite import views

urlpatterns.append(path("hello/", views.hello))
"""
# What code sees after django.setup(): the variable as the user set it, whether OpenTelemetry's
# middleware is in, and DEBUG (True in the project's own settings, False in Django's defaults).
SETUP_PROBE = """\
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()
from django.conf import settings
print(os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"))
print(any(name.startswith("opentelemetry.") for name in settings.MIDDLEWARE))
print(settings.DEBUG)
"""
CELERY_TASKS = """\
import os

from celery import Celery

HERE = os.path.dirname(os.path.abspath(__file__))
QUEUE = os.path.join(HERE, "queue")
app = Celery("tasks", broker="filesystem://", backend="file://" + os.path.join(HERE, "results"))
app.conf.broker_transport_options = {"data_folder_in": QUEUE, "data_folder_out": QUEUE}


@app.task
def add(x, y):
    return x + y
"""
CELERY_CLIENT = """\
from tasks import add

sent = [add.delay(n, n) for n in range({count})]
print("results", [result.get(timeout=60) for result in sent])
"""

# The spans each flavor's instrumentation names, by app.
SERVER_SPANS = {
    ("flask", "ddtrace"): "flask.request",
    ("flask", "opentelemetry"): "GET /hello",
    ("fastapi", "ddtrace"): "fastapi.request",
    ("fastapi", "opentelemetry"): "GET /hello",
    ("django", "ddtrace"): "django.request",
    ("django", "opentelemetry"): "GET hello/",
}
CELERY_SPANS = {
    "ddtrace": {"producer": "celery.apply", "consumer": "celery.run"},
    "opentelemetry": {"producer": "apply_async/tasks.add", "consumer": "run/tasks.add"},
}


# --- Running an app -------------------------------------------------------------------------


@contextmanager
def serving(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path, port: int
) -> Iterator[harness.Process]:
    """`command` in a process group of its own until it listens on `port`; the group is
    stopped when the block ends, pass or fail."""
    process = spawn(Path(command[0]).name, command, log=log, env=env, cwd=cwd)
    try:
        harness.wait_until(process, lambda: listening(port))
        yield process
    finally:
        stop(process)


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def get(port: int, path: str, count: int = REQUESTS) -> list[tuple[int, str]]:
    """(status, body) of `count` GET requests, one connection each (so each is its own trace)."""
    answers = []
    for _ in range(count):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:
                answers.append((answer.status, answer.read().decode()))
        except urllib.error.HTTPError as error:
            answers.append((error.code, error.read().decode(errors="replace")[:300]))
    return answers


def app_dir(tmp_path: Path, name: str, source: str) -> Path:
    where = tmp_path / "app"
    where.mkdir()
    (where / name).write_text(source)
    return where


# --- What arrived at the test agent ---------------------------------------------------------


def spans(agent: TestAgent, flavor: str, kind: str) -> list[tuple[str, str]]:
    """(service, name) of every span of `kind` (server, producer, consumer) the agent holds."""
    if flavor == "ddtrace":
        return [
            (span["service"], span["name"])
            for trace in agent.traces()
            for span in trace
            if span.get("meta", {}).get("span.kind") == kind
        ]
    return [
        (service_name(resource), span["name"])
        for request in agent.otlp_traces()
        for resource in repeated_field(request, "resource_spans")
        for scope in repeated_field(resource, "scope_spans")
        for span in scope.get("spans", [])
        if span.get("kind") == f"SPAN_KIND_{kind.upper()}"
    ]


def arrived(agent: TestAgent, flavor: str, kind: str, count: int) -> list[tuple[str, str]]:
    """The spans of `kind` once at least `count` of them arrived (every one of them)."""

    def enough() -> list[tuple[str, str]]:
        found = spans(agent, flavor, kind)
        return found if len(found) >= count else []

    try:
        return poll.until(enough, what=f"{count} {kind} spans", timeout=30)
    except TimeoutError as error:
        raise AssertionError(f"{error}; arrived: {spans(agent, flavor, kind)}") from None


def check_one_start(process: harness.Process) -> None:
    """The loader started a tracer exactly once, in the process the test started."""
    output = process.log.read_text(errors="replace")
    assert starts(output) == {process.popen.pid: 1}, output[-3000:]


# --- gunicorn + Flask -----------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_gunicorn_flask(flavor: str, traced: Traced, agent: TestAgent, tmp_path: Path) -> None:
    """gunicorn with 2 sync workers serves a Flask app: every request answered, one server span
    each with the service's name, the tracer started once in the master and inherited by the
    workers that served (they fork: no start of their own)."""
    venv = virtualenv(FLASK_APP)
    where = app_dir(tmp_path, "app.py", FLASK_SOURCE)
    port = harness.free_port()
    env = traced(flavor, service="flask-app", base=image_env(venv))
    command = [str(venv / "bin" / "gunicorn"), "--workers=2", f"--bind=127.0.0.1:{port}", "app:app"]
    with serving(command, env=env, cwd=where, log=tmp_path / "server.log", port=port) as server:
        answers = get(port, "/hello")
        assert [status for status, _ in answers] == [200] * REQUESTS, answers
        check_one_start(server)  # first: a refused start would only show as missing spans
        found = arrived(agent, flavor, "server", REQUESTS)
    output = server.log.read_text(errors="replace")
    assert SECOND_SDK not in output
    assert found == [("flask-app", SERVER_SPANS["flask", flavor])] * REQUESTS
    workers = {int(body) for _, body in answers}
    assert server.popen.pid not in workers  # the workers served, with the master's tracer
    assert not workers & set(loader_lines(output))


# --- uvicorn + FastAPI ----------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_uvicorn_fastapi(flavor: str, traced: Traced, agent: TestAgent, tmp_path: Path) -> None:
    """uvicorn serves a current FastAPI app: traced by both flavors. FastAPI pulls in a newer
    opentelemetry-api than the OpenTelemetry bundle's own: a patch or minor release of that
    stable API must not turn tracing off."""
    venv = virtualenv(FASTAPI_APP)
    where = app_dir(tmp_path, "app.py", FASTAPI_SOURCE)
    port = harness.free_port()
    env = traced(flavor, service="fastapi-app", base=image_env(venv))
    command = [str(venv / "bin" / "uvicorn"), "--host=127.0.0.1", f"--port={port}", "app:app"]
    with serving(command, env=env, cwd=where, log=tmp_path / "server.log", port=port) as server:
        answers = get(port, "/hello")
        assert [status for status, _ in answers] == [200] * REQUESTS, answers
        check_one_start(server)  # first: a refused start would only show as missing spans
        found = arrived(agent, flavor, "server", REQUESTS)
    output = server.log.read_text(errors="replace")
    assert SECOND_SDK not in output
    assert found == [("fastapi-app", SERVER_SPANS["fastapi", flavor])] * REQUESTS


# --- A django-admin startproject app --------------------------------------------------------


@pytest.fixture(scope="module")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A stock project made by the app venv's own django-admin (settings untouched: DEBUG on,
    ALLOWED_HOSTS empty, which Django allows for local hosts), plus one view; the venv and
    the project's directory."""
    venv = virtualenv(DJANGO_APP)
    where = tmp_path_factory.mktemp("django")
    subprocess.run(
        [str(venv / "bin" / "django-admin"), "startproject", "mysite", str(where)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=True,
    )
    (where / "mysite" / "views.py").write_text(DJANGO_VIEW)
    with (where / "mysite" / "urls.py").open("a") as urls:
        urls.write(DJANGO_URL)
    return venv, where


def django_command(server: str, venv: Path, port: int) -> list[str]:
    """The project served by Django's own runserver, gunicorn (wsgi.py) or uvicorn (asgi.py)."""
    host = "127.0.0.1"
    if server == "runserver":
        manage = [str(venv / "bin" / "python"), "manage.py"]
        return [*manage, "runserver", "--noreload", f"{host}:{port}"]
    if server == "gunicorn":
        gunicorn = str(venv / "bin" / "gunicorn")
        return [gunicorn, "--workers=2", f"--bind={host}:{port}", "mysite.wsgi:application"]
    uvicorn = str(venv / "bin" / "uvicorn")
    return [uvicorn, f"--host={host}", f"--port={port}", "mysite.asgi:application"]


@pytest.mark.parametrize("server", ["runserver", "gunicorn", "uvicorn"])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_django_project(
    flavor: str,
    server: str,
    traced: Traced,
    agent: TestAgent,
    django_project: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """A stock Django project runs with its own settings under both flavors, whichever entry
    point sets it up (manage.py, wsgi.py and asgi.py set DJANGO_SETTINGS_MODULE only after the
    loader ran: configured with Django's defaults instead, runserver exits for want of
    ALLOWED_HOSTS and gunicorn answers 500), and every request is traced; OpenTelemetry
    instruments Django once per process, at django.setup()."""
    venv, where = django_project
    port = harness.free_port()
    env = traced(flavor, service="django-app", base=image_env(venv))
    command = django_command(server, venv, port)
    with serving(command, env=env, cwd=where, log=tmp_path / "server.log", port=port) as proc:
        answers = get(port, "/hello/")
        assert [status for status, _ in answers] == [200] * REQUESTS, answers
        check_one_start(proc)  # first: a refused start would only show as missing spans
        found = arrived(agent, flavor, "server", REQUESTS)
    output = proc.log.read_text(errors="replace")
    assert SECOND_SDK not in output
    assert "ALLOWED_HOSTS" not in output
    assert found == [("django-app", SERVER_SPANS["django", flavor])] * REQUESTS
    if flavor == "opentelemetry":
        assert "django not instrumented" not in output
        instrumented = [
            pid
            for pid, lines in loader_lines(output).items()
            for line in lines
            if line.startswith(DJANGO_INSTRUMENTED)
        ]
        if server != "gunicorn":  # runserver calls django.setup() twice: instrumented once
            assert instrumented == [proc.popen.pid], output[-3000:]
        else:  # each worker sets Django up when it loads the app, after the fork
            assert len(instrumented) == len(set(instrumented)), output[-3000:]
            assert proc.popen.pid not in instrumented
            assert {int(body) for _, body in answers} <= set(instrumented)


@pytest.mark.parametrize(
    ("disabled", "instrumented"),
    [(None, True), ("redis", True), (" redis , django", False), ("*", False)],
)
def test_opentelemetry_django_respects_disabled_instrumentations(
    disabled: str | None,
    instrumented: bool,
    traced: Traced,
    django_project: tuple[Path, Path],
) -> None:
    """The loader keeps Django out of OpenTelemetry's start only for the while of the start:
    the application and its children see OTEL_PYTHON_DISABLED_INSTRUMENTATIONS as the user set
    it (or unset), Django is instrumented at django.setup() (its middleware) unless the user
    disabled it, by name or with "*", and its own settings hold either way."""
    venv, where = django_project
    env = traced("opentelemetry", service="django-app", base=image_env(venv))
    if disabled is not None:
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = disabled
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SETUP_PROBE],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [str(disabled), str(instrumented), "True"]
    assert list(starts(done.stderr).values()) == [1], done.stderr
    assert (DJANGO_INSTRUMENTED in done.stderr) == instrumented


@pytest.mark.parametrize("flavor", FLAVORS)
def test_django_setup_error_is_the_apps_own(
    flavor: str, traced: Traced, django_project: tuple[Path, Path]
) -> None:
    """Settings that cannot be imported fail django.setup() with the application's own error,
    exactly as without the tracer (configured with Django's defaults beforehand, setup would
    have succeeded and the app would have run without its settings)."""
    venv, where = django_project
    command = [str(venv / "bin" / "python"), "-c", SETUP_PROBE]
    outcomes = []
    for env in (image_env(venv), traced(flavor, service="django-app", base=image_env(venv))):
        env["DJANGO_SETTINGS_MODULE"] = "mysite.missing_settings"
        done = subprocess.run(
            command, env=env, cwd=where, capture_output=True, text=True, timeout=120, check=False
        )
        outcomes.append((done.returncode, done.stdout, done.stderr.splitlines()[-1]))
    assert outcomes[1] == outcomes[0]
    assert outcomes[0][2] == "ModuleNotFoundError: No module named 'mysite.missing_settings'"


# --- celery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_celery(flavor: str, traced: Traced, agent: TestAgent, tmp_path: Path) -> None:
    """A celery worker (prefork) and a client sending tasks over kombu's filesystem transport:
    every task runs and returns, the client's sends and the worker's runs are spans at the
    agent, one tracer start in the worker's main process and one in the client."""
    venv = virtualenv(CELERY_APP)
    where = app_dir(tmp_path, "tasks.py", CELERY_TASKS)
    (where / "client.py").write_text(CELERY_CLIENT.format(count=REQUESTS))
    for folder in ("queue", "results"):
        (where / folder).mkdir()
    env = traced(flavor, service="celery-app", base=image_env(venv))
    worker_command = [
        str(venv / "bin" / "celery"),
        "--app=tasks",
        "worker",
        "--concurrency=1",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    worker = spawn("celery", worker_command, log=tmp_path / "worker.log", env=env, cwd=where)
    try:
        client = subprocess.run(
            [str(venv / "bin" / "python"), "client.py"],
            env=env,
            cwd=where,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert client.returncode == 0, client.stderr[-3000:] + worker.log_tail()
        assert f"results {[n + n for n in range(REQUESTS)]}" in client.stdout
        check_one_start(worker)
        assert list(starts(client.stderr).values()) == [1], client.stderr[-3000:]
        sent = arrived(agent, flavor, "producer", REQUESTS)
        ran = arrived(agent, flavor, "consumer", REQUESTS)
    finally:
        stop(worker)
    assert SECOND_SDK not in worker.log.read_text(errors="replace") + client.stderr
    names = CELERY_SPANS[flavor]
    assert sent == [("celery-app", names["producer"])] * REQUESTS
    assert ran == [("celery-app", names["consumer"])] * REQUESTS
