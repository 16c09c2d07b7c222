"""Helpers of the deployment tests (fixtures: conftest.py): a real redis-server, real Celery
workers and gunicorn, each a subprocess of its own process group.

Without redis-server the tests that need it are skipped, unless SVDSCOPE_REQUIRE_REDIS is
set (`make test` sets it): then they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

REDIS_DATABASES = 64  # each test that asks for `redis_url` gets a database of its own
VENV_BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait until 127.0.0.1:`port` accepts connections (fail if `proc` exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group that `proc` leads (started with start_new_session=True),
    then SIGKILL it if it has not exited within `timeout`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # its job processes
        os.killpg(proc.pid, signal.SIGKILL)


def redis_binary() -> str:
    """The redis-server binary, or skip/fail (SVDSCOPE_REQUIRE_REDIS) with the reason."""
    found = shutil.which("redis-server")
    if found is None:
        reason = (
            "redis-server is not installed (Debian: apt-get install redis-server; "
            "scripts/setup-env.sh test installs it)"
        )
        if os.environ.get("SVDSCOPE_REQUIRE_REDIS"):
            pytest.fail(reason + " and SVDSCOPE_REQUIRE_REDIS is set", pytrace=False)
        pytest.skip(reason)
    return found


def start_redis(
    folder: Path, extra: Sequence[str] = (), command: Sequence[str] | None = None
) -> tuple[subprocess.Popen, int]:
    """Start redis-server (or `command`, a redis-server command line) on a free loopback
    port, keeping its files in `folder`; returns the process and the port."""
    folder.mkdir(parents=True, exist_ok=True)
    argv = list(command) if command else [redis_binary()]
    if argv[0] == "redis-server":
        argv[0] = redis_binary()
    for _attempt in range(3):  # the free port may be taken between choosing and binding
        port = free_port()
        proc = subprocess.Popen(
            [
                *argv,
                *extra,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=open(folder / "redis.log", "ab"),  # noqa: SIM115 (the child keeps it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(port, proc, timeout=10)
            return proc, port
        except RuntimeError:
            continue
    raise RuntimeError(f"redis-server did not start; see {folder / 'redis.log'}")


def worker_env(base: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """The environment for a worker / gunicorn subprocess: the venv's bin first on PATH,
    one BLAS thread, no output buffering, then `base` and `overrides`."""
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        # the code under test: the checkout this test process imports `app` from (the
        # venv's console scripts may belong to another editable checkout of the project)
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.update(base)
    env.update(overrides)
    return env


def ping_worker(url: str, timeout: float = 60.0) -> list[dict]:
    """Wait until some Celery worker on broker `url` answers a ping; its replies."""
    from app.web.deploy import make_celery

    control = make_celery(url).control
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = control.ping(timeout=1.0)
        if replies:
            return replies
    raise TimeoutError(f"no Celery worker answered on {url} within {timeout} s")


def start_worker(
    env: Mapping[str, str], log: Path, argv: Sequence[str] | None = None
) -> subprocess.Popen:
    """Start `argv` (default: svdscope worker --concurrency 1) with `env`, output in `log`."""
    argv = list(argv or ["svdscope", "worker", "--concurrency", "1"])
    if argv[0] == "svdscope":
        argv[0] = str(VENV_BIN / "svdscope")
    return subprocess.Popen(
        argv,
        env=dict(env),
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )
