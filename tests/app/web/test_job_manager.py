"""The job managers' one-look-per-poll rule (app/web/job_manager.py): a job that finishes
between Dash's two looks (its result, then whether it still runs) must not end the polling
without its result. Dash's poll sequence is replayed here with the job finishing exactly in
that gap, on both managers, deterministically."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import flask
import pytest

from app.web.job_manager import WatchedCeleryManager, WatchedDiskcacheManager

KEY, JOB = "result-key", "4242"


class _Store(dict):
    """A result store with the calls the managers make: diskcache's keeps objects, Celery's
    Redis backend JSON text."""

    def __init__(self, *, objects: bool) -> None:
        super().__init__()
        self.objects = objects

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name, default)

    def set(self, name: str, value: Any, expire: float | None = None) -> None:
        self[name] = value

    def delete(self, name: str) -> None:
        self.pop(name, None)

    def expire(self, name: str, seconds: float) -> None:
        pass

    def touch(self, name: str, expire: float | None = None) -> None:
        pass


class _Job:
    """A job that runs until `finish()` stores its result and ends it; with
    `finish_after_first_look`, it ends right after the first look at its state (inside the
    gap before whatever the poll looks at next)."""

    def __init__(self, store: _Store, result: Any, *, finish_after_first_look: bool) -> None:
        self.store, self.result, self.running = store, result, True
        self.finish_after_first_look = finish_after_first_look

    def look(self) -> bool:
        running = self.running
        if running and self.finish_after_first_look:
            self.finish()
        return running

    def finish(self) -> None:
        self.store[KEY] = self.result if self.store.objects else json.dumps(self.result)
        self.running = False


def _celery(job: _Job, store: _Store) -> WatchedCeleryManager:
    manager = WatchedCeleryManager.__new__(WatchedCeleryManager)  # no Celery app needed
    manager.handle = SimpleNamespace(  # Dash's CeleryManager.job_running reads task.status
        backend=store,
        AsyncResult=lambda _: SimpleNamespace(status="STARTED" if job.look() else "SUCCESS"),
        control=SimpleNamespace(terminate=lambda _: None),
    )
    manager.cache_by, manager.expire = None, None
    return manager


def _diskcache(job: _Job, store: _Store) -> WatchedDiskcacheManager:
    manager = WatchedDiskcacheManager.__new__(WatchedDiskcacheManager)
    manager.handle, manager.scripted_job = store, job
    manager.cache_by, manager.expire = None, None
    manager.terminate_job = lambda _: None  # no process to end
    return manager


@pytest.fixture(autouse=True)
def _diskcache_job_state(monkeypatch):
    """Diskcache's own job_running looks at the job's process: here at the scripted job."""
    monkeypatch.setattr(
        "dash.DiskcacheManager.job_running", lambda self, _: self.scripted_job.look()
    )


def _dash_poll(manager: Any) -> tuple[Any, bool]:
    """What Dash's `_update_background_callback` asks, in its order: the result, then
    whether the job runs (it ends the polling when neither)."""
    with flask.Flask(__name__).test_request_context():
        result = manager.get_result(KEY, JOB)
        return result, manager.job_running(JOB)


@pytest.mark.parametrize("make", [_celery, _diskcache], ids=["celery", "diskcache"])
def test_a_job_finishing_between_the_two_looks_keeps_the_polling_alive(make):
    store = _Store(objects=make is _diskcache)
    manager = make(_Job(store, {"status": "done"}, finish_after_first_look=True), store)
    result, running = _dash_poll(manager)
    if result is manager.UNDEFINED:
        assert running, "Dash would end the polling (HTTP 204) and the result would be lost"
        result, running = _dash_poll(manager)  # the renderer's next poll
    assert result == {"status": "done"}
    assert not running


@pytest.mark.parametrize("make", [_celery, _diskcache], ids=["celery", "diskcache"])
def test_a_finished_job_is_not_reported_running_by_an_old_look(make):
    store = _Store(objects=make is _diskcache)
    job = _Job(store, {"status": "done"}, finish_after_first_look=False)
    manager = make(job, store)
    result, running = _dash_poll(manager)
    assert result is manager.UNDEFINED and running
    job.finish()
    result, running = _dash_poll(manager)  # the look is per request: not carried over
    assert result == {"status": "done"} and not running
