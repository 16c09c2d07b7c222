"""What background jobs and the services share: cancel flags and the lost-job protocol.

**Cancel.** A run's Cancel raises a flag keyed by session + nonce in the shared result
cache (`JobFlags.request_cancel`); the job polls `JobFlags.cancel_requested` between steps
and stops with `Cancelled`, carrying its partial result, which is shown but never cached.

**Lost jobs.** The job managers (app/web/job_manager.py) answer a job whose process died
with Dash's background-error payload carrying `LOST_JOB`; a view's ``on_error`` handler
(`app.views.jobs.job_failure`) recognises it with `is_lost_job` and reads the values the
job was started with from `lost_job_args`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import svdcore as sc

__all__ = [
    "LOST_JOB",
    "LOST_MESSAGE",
    "Cancelled",
    "JobFlags",
    "cached_unless_cancelled",
    "found_lost_job",
    "is_lost_job",
    "lost_job_args",
    "rows_by_entries",
]

CANCEL_FLAG_TTL_S = 3600
T = TypeVar("T")


class Cancelled(Exception):
    """A cancelled run: its partial result (`data`) is shown but never cached."""

    def __init__(self, data: Any):
        super().__init__("cancelled")
        self.data = data


def cached_unless_cancelled(
    cache: sc.cache.ResultCache,
    key: str,
    run: Callable[[], T],
    *,
    cancelled: Callable[[T], bool],
) -> T:
    """`cache.get_or_compute(key, run)`, except that a result `cancelled` says was cut
    short (a cancelled run's partial result) is returned without being cached."""

    def checked() -> T:
        data = run()
        if cancelled(data):
            raise Cancelled(data)
        return data

    try:
        return cache.get_or_compute(key, checked)
    except Cancelled as stopped:
        return stopped.data


class JobFlags:
    """Cancel flags of background runs, in `cache` (the shared result cache: every web
    and job process sees it)."""

    def __init__(self, cache: sc.cache.ResultCache) -> None:
        self.cache = cache

    def request_cancel(self, session: str | None, nonce: str) -> None:
        """Ask the background job of run `nonce` to stop (it polls `cancel_requested`)."""
        key = sc.cache.make_key("descramble-cancel", session, nonce)
        self.cache.backend.set(key, True, timeout=CANCEL_FLAG_TTL_S)

    def cancel_requested(self, session: str | None, nonce: str) -> bool:
        key = sc.cache.make_key("descramble-cancel", session, nonce)
        return bool(self.cache.backend.get(key))


LOST_JOB = "svdscope: the background job's process ended without a result"
LOST_MESSAGE = (
    "The background job stopped before it finished: its process ended unexpectedly "
    "(killed, or out of memory), so no result was kept. The rest of the page still works; "
    "press Run to try again."
)
_found = threading.local()


def found_lost_job(args: Any) -> dict[str, Any]:
    """Remember the start values of a lost job for this thread's request (see
    `lost_job_args`); the payload a job manager answers for it."""
    _found.args = args if isinstance(args, list | tuple) else None
    return {"background_callback_error": {"msg": LOST_JOB, "tb": ""}}


def is_lost_job(err: BaseException) -> bool:
    """True when `err` (handed to a callback's on_error) reports a job that died."""
    return LOST_JOB in str(err)


def lost_job_args() -> list[Any] | None:
    """The values (inputs, then states) the lost job of this request was started with;
    None when unknown. Read once."""
    args, _found.args = getattr(_found, "args", None), None
    return None if args is None else list(args)


def rows_by_entries(
    todo: list[tuple[str, int]],
    row: Callable[[str], Any],
    *,
    progress: Callable[..., None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> bool:
    """Run ``row(name)`` for each (name, entries) of ``todo`` in order (a table job: each
    row is cached by ``row`` as soon as it is done), reporting ``progress(done, total, name,
    rows_done, rows_total, elapsed_s, left_s)`` in matrix entries (the cost grows with
    them). True when ``should_stop()`` stopped it (the rows done so far are kept)."""
    total = sum(size for _, size in todo) or 1
    done, start = 0, time.monotonic()
    for i, (name, size) in enumerate(todo, start=1):
        if should_stop is not None and should_stop():
            return True
        row(name)
        done += size
        if progress is not None:
            elapsed = time.monotonic() - start
            progress(done, total, name, i, len(todo), elapsed, elapsed / done * (total - done))
    return False
