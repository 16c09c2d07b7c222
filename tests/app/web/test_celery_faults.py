"""A lab deployment's Celery worker process killed in the middle of a job: Celery marks the
task failed (WorkerLostError), the web app reports the run as failed with a message instead
of ending it silently, and the worker (re-forked by Celery) and the app keep serving."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest
from deploy_helpers import REDIS_DATABASES, ping_worker, start_worker, stop_process, worker_env
from test_celery_jobs import MODEL, Page, _poll, _start_descramble

from app import ids
from app.services.jobs import LOST_MESSAGE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    folder = tmp_path_factory.mktemp("celery-faults")
    env = {
        "SVDSCOPE_REDIS_URL": f"{redis_server}/{REDIS_DATABASES - 1}",  # none else uses it
        "SVDSCOPE_MODELS": MODEL,
        "SVDSCOPE_UPLOAD_DIR": str(folder / "uploads"),
        "SVDSCOPE_CACHE_DIR": str(folder / "cache"),
    }
    log = folder / "worker.log"
    proc = start_worker(worker_env(env), log)
    try:
        ping_worker(env["SVDSCOPE_REDIS_URL"], timeout=90)
    except TimeoutError:
        stop_process(proc)
        pytest.fail("the Celery worker did not start:\n" + log.read_text()[-4000:])
    try:
        yield env, proc
    finally:
        stop_process(proc)


def _pool(proc) -> list[psutil.Process]:
    """The worker's prefork pool processes (the job runs in one of them)."""
    return psutil.Process(proc.pid).children(recursive=True)


def test_a_killed_celery_job_is_reported_failed(worker):
    env, proc = worker
    page = Page(env)
    body, handles = _start_descramble(page, "nonce-lost", steps=100_000)
    bar = f"{ids.JOB_DESCRAMBLE.progress}.value"
    _, progress = _poll(page, body, handles, until=lambda seen: any(p.get(bar) for p in seen))
    assert progress, "the job reported no progress"
    for child in _pool(proc):  # the job's process dies (SIGKILL, as the OOM killer sends)
        child.kill()
    started = time.monotonic()
    done, _ = _poll(page, body, handles, timeout=60)
    assert done["status"] == "error" and done["message"] == LOST_MESSAGE, done
    assert done["nonce"] == "nonce-lost" and done["key"], done
    assert time.monotonic() - started < 30
    # the worker serves the next job
    body, handles = _start_descramble(page, "nonce-after", steps=50)
    done, _ = _poll(page, body, handles, timeout=120)
    assert done["status"] == "done", done
