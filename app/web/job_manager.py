"""Background-job managers: jobs whose process died are reported, and a job's progress,
result and Cancel belong to the browser session that started it.

**Lost jobs.** Dash polls a background job until its result lands; when the job's process
is gone without a result (killed, out of memory, a crashed Celery worker), Dash ends the
polling with no output at all, exactly as for a cancelled job: the page's progress bar
vanishes and nothing says why. These managers tell the two apart: a job that svdscope (or
Dash's Cancel) terminated stays silent, a job that died on its own is answered with Dash's
background-error payload carrying `LOST_JOB`, which the job's ``on_error`` handler
(`app.views.jobs.job_failure`) turns into a failed run with `LOST_MESSAGE` on the page.
The renderer's polls carry no input values, so each manager keeps the values a job was
started with (its inputs, then its states) beside the job; `lost_job_args` hands them to
the handler in the request that found the job lost.

**Session binding.** Dash signs a job's handles for the page load that started it; anyone
who copies a poll URL out of an access log could still replay it. These managers also record
the session cookie of the request that started the job and answer a request from another
session as if the job had no news: no progress, no result (which stays for its owner), no
Cancel.

**One look per poll.** Dash reads a job's result, then asks whether the job still runs, and
ends the polling (HTTP 204, no output) when it finds neither: a job that finished between
those two looks lost its result, and the page waited forever (seen on a loaded CI machine
with a 50-step job). These managers answer `job_running` from what `get_result` saw in the
same request: a job seen running there is running for this poll, and the next poll finds
its result.
"""

from __future__ import annotations

import json
from typing import Any

import dash
import flask

from app.services.jobs import found_lost_job
from app.storage.session import current_session_id

__all__ = [
    "WatchedCeleryManager",
    "WatchedDiskcacheManager",
]

_KEEP_S = 24 * 3600  # how long a job's start values, owner and termination are remembered


def _requester() -> str | None:
    """The session of the current web request; None outside one (a Celery worker)."""
    return current_session_id() if flask.has_request_context() else None


def _seen_running() -> dict[str, bool]:
    """Per request: the jobs `get_result` found still running (see "One look per poll")."""
    if not hasattr(flask.g, "svdscope_seen_running"):
        flask.g.svdscope_seen_running = {}
    return flask.g.svdscope_seen_running


class _Watched:
    """What both managers add; subclasses provide `_put`, `_get` and `_drop` on their
    result store."""

    UNDEFINED: Any

    def _put(self, name: str, value: str) -> None:
        raise NotImplementedError

    def _get(self, name: str) -> str | None:
        raise NotImplementedError

    def _drop(self, name: str) -> None:
        raise NotImplementedError

    def _remember_start(self, key: Any, args: Any) -> None:
        self._put(f"svdscope-job-args-{key}", json.dumps(args, default=str))
        owner = _requester()
        if owner is not None:
            self._put(f"svdscope-job-owner-{key}", owner)

    def _remember_job(self, key: Any, job: Any) -> None:
        owner = self._get(f"svdscope-job-owner-{key}")
        if owner is not None and job is not None:
            self._put(f"svdscope-job-owner-of-{job}", owner)

    def _foreign(self, name: str) -> bool:
        owner = self._get(name)
        return owner is not None and _requester() not in (None, owner)

    def _running_now(self, job: Any) -> bool:
        """Whether `job` runs, looked at once; recorded for this request's `job_running`."""
        running = bool(super().job_running(job))  # type: ignore[misc]
        if running and flask.has_request_context():
            _seen_running()[str(job)] = True
        return running

    def job_running(self, job: Any) -> bool:
        seen = job is not None and flask.has_request_context()
        if seen and _seen_running().pop(str(job), False):
            return True
        return bool(super().job_running(job))  # type: ignore[misc]

    def _lost_result(self, key: Any) -> dict[str, Any]:
        stored = self._get(f"svdscope-job-args-{key}")
        self._drop(f"svdscope-job-args-{key}")
        return found_lost_job(json.loads(stored) if stored else None)

    def _terminating(self, job: Any) -> None:
        """Hook: `job` (not None) is being terminated on its session's behalf."""

    def _died(self, job: Any) -> bool:
        """Whether `job`, gone without a result, died on its own (not terminated)."""
        raise NotImplementedError

    def call_job_fn(self, key: Any, job_fn: Any, args: Any, context: Any) -> Any:
        self._remember_start(key, args)
        job = super().call_job_fn(key, job_fn, args, context)  # type: ignore[misc]
        self._remember_job(key, job)
        return job

    def terminate_job(self, job: Any) -> None:
        if job is not None and self._foreign(f"svdscope-job-owner-of-{job}"):
            return  # another session's Cancel (a replayed handle): not its job
        if job is not None:
            self._terminating(job)
        super().terminate_job(job)  # type: ignore[misc]

    def get_progress(self, key: Any) -> Any:
        if self._foreign(f"svdscope-job-owner-{key}"):
            return None
        return super().get_progress(key)  # type: ignore[misc]

    def get_result(self, key: Any, job: Any) -> Any:
        if self._foreign(f"svdscope-job-owner-{key}"):
            return self.UNDEFINED  # the result stays for the session that asked for it
        result = super().get_result(key, job)  # type: ignore[misc]
        if result is not self.UNDEFINED or not job or self._running_now(job):
            return result
        # it may have finished between the two looks
        result = super().get_result(key, job)  # type: ignore[misc]
        if result is not self.UNDEFINED or not self._died(job):
            return result
        return self._lost_result(key)


class WatchedDiskcacheManager(_Watched, dash.DiskcacheManager):
    """DiskcacheManager (a forked process per job) that reports a job whose process is
    gone without a result and keeps each job to the session that started it."""

    def _put(self, name: str, value: str) -> None:
        self.handle.set(name, value, expire=_KEEP_S)

    def _get(self, name: str) -> str | None:
        return self.handle.get(name)

    def _drop(self, name: str) -> None:
        self.handle.delete(name)

    def _terminating(self, job: Any) -> None:
        # Cancel, a new Run, or a delivered result: not a lost job
        self._put(f"svdscope-terminated-{job}", "1")

    def _died(self, job: Any) -> bool:
        return self._get(f"svdscope-terminated-{job}") is None


class WatchedCeleryManager(_Watched, dash.CeleryManager):
    """CeleryManager that reports a task Celery marked failed (its worker process died:
    ``WorkerLostError``; Dash's task catches every exception itself) and keeps each job to
    the session that started it."""

    def _put(self, name: str, value: str) -> None:
        self.handle.backend.set(name, value)
        self.handle.backend.expire(name, _KEEP_S)

    def _get(self, name: str) -> str | None:
        value = self.handle.backend.get(name)
        return value.decode() if isinstance(value, bytes) else value

    def _drop(self, name: str) -> None:
        self.handle.backend.delete(name)

    def _died(self, job: Any) -> bool:
        task = self.get_task(job)
        return task is not None and task.status == "FAILURE"  # else revoked (Cancel): silent
