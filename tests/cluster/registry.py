"""A local OCI registry on loopback: Debian's build of distribution (package docker-registry).

Images for the tests are pushed to it with crane and pulled from it by the tools under test. It
keeps its blobs on the file system under its own directory, has no authentication (unless given
credentials: then HTTP basic auth, as a private registry asks), allows deletes and listens on
127.0.0.1 only. Like the control plane's components, it dies with the
process that started it, unless started `detached` (the demo's, which outlives the demo).

`spawn` and `stop` run one service process the way the harness runs the control plane's, and are
shared with cluster.testagent.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import yaml

from cluster import debian, harness, poll


def spawn(
    name: str,
    command: list[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    detached: bool = False,
) -> harness.Process:
    """Starts `command` in a process group of its own, its output in `log`; it dies with us
    unless `detached`."""
    with log.open("wb") as output:
        popen = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own group: `stop` signals it and its children
            preexec_fn=None if detached else harness.die_with_parent,  # noqa: PLW1509
        )
    return harness.Process(name=name, popen=popen, log=log)


def stop(process: harness.Process) -> None:
    """Stops a process from `spawn` and all of its process group; safe to call twice.

    SIGTERM to the group, then SIGKILL to whatever is left of it: the process if it did not exit
    in time, children that outlived it. The process is reaped only after that, so its id (the
    group's) cannot have been reused by anyone else when the group is signalled.
    """
    popen = process.popen
    if popen.returncode is not None:
        return  # reaped already
    _signal_group(popen.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        poll.until(
            lambda: _exited(popen.pid),
            what=f"{process.name} to stop",
            timeout=harness.STOP_TIMEOUT,
            interval=0.05,
        )
    _signal_group(popen.pid, signal.SIGKILL)
    popen.wait()


def _exited(pid: int) -> bool:
    """Whether our child `pid` has exited, leaving it unreaped."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


@dataclass
class Registry(harness.Service):
    """A registry on 127.0.0.1:`port` (a free one if 0); a context manager, or call start and
    stop.

    Its configuration, storage and log live in `directory` (a temporary one, removed on stop,
    when not given). A `detached` one outlives this process.
    """

    directory: Path | None = None
    port: int = 0
    process: harness.Process | None = None
    _temporary: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    detached: bool = False
    # (user, password): every request needs them (HTTP basic auth, distribution's htpasswd),
    # as a private registry does; without, anyone on loopback may push and pull.
    credentials: tuple[str, str] | None = None

    @property
    def address(self) -> str:
        """host:port, the prefix of image references in this registry."""
        if not self.port:
            raise RuntimeError("the registry has not been started")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> None:
        binary = debian.docker_registry()  # first: a download must not eat the start-up time
        if self.directory is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="libinject-registry-")
            self.directory = Path(self._temporary.name)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or harness.free_port()
        config = self.directory / "config.yml"
        config.write_text(yaml.safe_dump(self._config(self.directory / "storage")))
        self.process = spawn(
            "docker-registry",
            [str(binary), "serve", str(config)],
            log=self.directory / "registry.log",
            # Distribution reads REGISTRY_* variables as overrides of the file: none of ours.
            env={k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
            detached=self.detached,
        )
        try:
            harness.wait_until(self.process, self.answers)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = self.directory = None

    def answers(self) -> bool:
        """Whether a registry serves the API on `address` now (asking for credentials counts)."""
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=1):
                return True
        except urllib.error.HTTPError as error:
            return error.code == HTTPStatus.UNAUTHORIZED and self.credentials is not None
        except OSError:
            return False

    def docker_config(self, directory: Path, *, password: str | None = None) -> Path:
        """`directory` holding a Docker config.json with this registry's credentials (what a
        kubernetes.io/dockerconfigjson Secret holds), for crane's DOCKER_CONFIG; `password`
        replaces the right one."""
        assert self.credentials is not None
        user, right = self.credentials
        token = base64.b64encode(f"{user}:{password or right}".encode()).decode()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(
            json.dumps({"auths": {self.address: {"auth": token}}})
        )
        return directory

    def _config(self, storage: Path) -> dict[str, object]:
        return {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(storage)},
                "delete": {"enabled": True},
                # Purging old uploads is a background job with nothing to do in a test run.
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.address, "headers": {"X-Content-Type-Options": ["nosniff"]}},
            **self._auth(),
        }

    def _auth(self) -> dict[str, object]:
        """The `auth` section for `credentials` (none: anyone on loopback may push and pull)."""
        if self.credentials is None:
            return {}
        assert self.directory is not None
        user, password = self.credentials
        passwords = self.directory / "htpasswd"
        passwords.write_text(f"{user}:{bcrypt(password)}\n")
        return {"auth": {"htpasswd": {"realm": "libinject-tests", "path": str(passwords)}}}


def bcrypt(password: str) -> str:
    """A bcrypt hash (distribution's htpasswd reads no other), by the system's libcrypt
    (libxcrypt): Python's `crypt` module is gone from 3.13."""
    library = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    library.crypt_gensalt.restype = library.crypt.restype = ctypes.c_char_p
    library.crypt_gensalt.argtypes = [
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    library.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = library.crypt_gensalt(b"$2b$", 10, None, 0)
    hashed = library.crypt(password.encode(), salt) if salt else None
    if not hashed or not hashed.startswith(b"$2b$"):
        raise RuntimeError("this system's libcrypt makes no bcrypt hashes")
    return str(hashed.decode())
