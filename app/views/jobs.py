"""The background-job plumbing shared by the views that run long computations (the
iterative descrambler, the optimised inversion, the dataset-wide surgery analyses).

Run writes a fresh nonce to the job's run store (a clientside callback); the job (a Dash
background callback: a process forked by the app's DiskcacheManager, or a task on a Celery
worker in a lab deployment, app/web/deploy.py) reports throttled progress and writes
{"nonce", "status", "key", "message"} to the job's done store, status being "done",
"cancelled" or "error" (message: `services.error_message`). Cancel kills the
job (Dash) and raises a flag keyed by session + nonce (`services.jobs.request_cancel`, in the
shared cache: the filesystem or Redis, which every process sees) that the job polls
through `should_stop`, so it stops either way. A job whose process dies (killed, out of
memory) is reported by the app's job manager (app/web/job_manager.py) to the job's ``on_error``
handler, `job_failure`, which writes a failed run ("error", `LOST_MESSAGE`) to the done
store: the page says so instead of silently dropping the progress bar.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html

from app import ids
from app.ids import JobIds
from app.services.jobs import LOST_MESSAGE, is_lost_job, lost_job_args
from app.storage.session import current_session_id, session_from_cookies
from app.views.common import alert

__all__ = [
    "PROGRESS_EVERY_S",
    "cancelled_alert",
    "failed_alert",
    "job_failure",
    "last_status",
    "register_job",
    "run_controls",
    "stores",
]

PROGRESS_EVERY_S = 0.25  # throttle of progress reports and cancel-flag checks in a job

_NONCE_JS = """function (clicks) {
            const nonce = Date.now().toString(36) + Math.random().toString(36).slice(2);
            return {nonce: nonce, clicks: clicks};
        }"""

# (session, selection, *values) -> (cache key, run); run(progress, should_stop) computes
# the result and returns True when the job stopped early (cancelled, nothing kept).
Prepare = Callable[..., tuple[Any, Callable[[Callable[..., None], Callable[[], bool]], bool]]]


def stores(job: JobIds) -> list[dcc.Store]:
    """The job's two stores: the nonce of the latest Run and the job's last result."""
    return [
        dcc.Store(id=job.run_store, storage_type="memory"),
        dcc.Store(id=job.done_store, storage_type="memory"),
    ]


def run_controls(job: JobIds, *, run_label: str = "Run") -> list[html.Div]:
    """The job's Run / Cancel buttons and its progress row (shown while the job runs)."""
    buttons = html.Div(
        [
            html.Button(run_label, id=job.run, className="button-run"),
            html.Button("Cancel", id=job.cancel, disabled=True, className="button-cancel"),
        ],
        className="button-row",
    )
    progress = html.Div(
        [
            html.Progress(id=job.progress, value="0", max="1"),
            html.Span(id=job.text, className="progress-text"),
        ],
        id=job.progress_div,
        className="progress-row",
        style={"display": "none"},
    )
    return [buttons, progress]


def cancelled_alert(
    step: Any,
    total: Any,
    *,
    what: str,
    at: str = "at step {step:,} of {total:,}",
    kept: str = "no result was kept",
) -> html.Div:
    """The warning shown for a cancelled run: "The {what} was cancelled {at}; {kept}. …"."""
    where = ""
    if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 1:
        where = " " + at.format(step=int(step), total=int(total))
    return alert(
        f"The {what} was cancelled{where}; {kept}. Press Run to start it again.",
        kind="warning",
        title="Cancelled",
    )


def last_status(done: dict | None, key: Any) -> str | None:
    """The status of the job's last result (its done store) when it was for `key`."""
    return done.get("status") if done and done.get("key") == key else None


def failed_alert(done: dict) -> html.Div:
    """The error alert of a failed job's result."""
    return alert(done.get("message") or "The run failed.")


def job_failure(
    services: Any, err: BaseException, key: Callable[[str | None, list[Any]], Any]
) -> dict[str, Any]:
    """The done-store value of a job that failed outside its own code (an ``on_error``
    handler): its process died (`LOST_MESSAGE`) or it could not be started. `key(session,
    states)` gives the result's cache key from the callback's state values, as the job does,
    so that the view shows the failure for the options on screen. The values come from the
    job manager (`lost_job_args`: the renderer's polls carry none), else from the request."""
    values = lost_job_args()
    if values is None:
        values = [i.get("value") for i in ctx.inputs_list if isinstance(i, dict)]
        values += [s.get("value") for s in ctx.states_list if isinstance(s, dict)]
    started = values[0] if values and isinstance(values[0], dict) else {}
    states = values[1:]
    session = current_session_id()
    message = LOST_MESSAGE if is_lost_job(err) else services.error_message(err)
    result: dict[str, Any] = {
        "nonce": str(started.get("nonce")),
        "status": "error",
        "message": message,
        "key": None,
    }
    with contextlib.suppress(Exception):  # options that no longer resolve: no key
        result["key"] = key(session, states)
    return result


def register_job(
    app: dash.Dash,
    services: Any,
    job: JobIds,
    *,
    states: Sequence[State],
    requires: str,
    prepare: Prepare,
    progress_text: Callable[..., str],
    cancelled: Callable[[Any, Any], Any],
) -> None:
    """Register the Run nonce, the background job and the Cancel callback of `job`.

    The job's states are the selection then `states`; it starts only when the selection
    has `requires` ("model" or "layer"). `progress_text(step, total, *rest)` words a
    progress report; `cancelled(step, total)` is what Cancel shows in `job.status`. A job
    whose process dies ends as a failed run (`job_failure`).
    """

    def job_failed(err: Exception) -> dict[str, Any]:
        return job_failure(services, err, lambda session, st: prepare(session, *st)[0])

    app.clientside_callback(  # a fresh nonce per Run click: names the job's cancel flag
        _NONCE_JS,
        Output(job.run_store, "data"),
        Input(job.run, "n_clicks"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(job.done_store, "data"),
        Input(job.run_store, "data"),
        State(ids.STORE_SELECTION_STATE, "data"),
        *states,
        background=True,
        running=[
            (Output(job.run, "disabled"), True, False),
            (Output(job.cancel, "disabled"), False, True),
            (Output(job.progress_div, "style"), {"display": "flex"}, {"display": "none"}),
        ],
        progress=[
            Output(job.progress, "value"),
            Output(job.progress, "max"),
            Output(job.text, "children"),
        ],
        progress_default=[0, 1, ""],
        cancel=[Input(job.cancel, "n_clicks")],
        interval=400,
        prevent_initial_call=True,
        on_error=job_failed,
    )
    def run_job(set_progress, started: dict | None, selection: dict | None, *values: Any):
        """The background job: one long computation, reported as it goes."""
        import torch  # the job is a forked process: one thread, no contention with the server

        torch.set_num_threads(1)
        if not started or not selection or not selection.get(requires):
            raise dash.exceptions.PreventUpdate
        session = current_session_id() or session_from_cookies(ctx.cookies)
        nonce = str(started.get("nonce"))
        progress, should_stop = _throttled(services, set_progress, progress_text, session, nonce)
        result: dict[str, Any] = {"nonce": nonce, "status": "done", "message": ""}
        try:
            result["key"], compute = prepare(session, selection, *values)
            if compute(progress, should_stop):
                result["status"] = "cancelled"
        except Exception as err:
            result.update(status="error", message=services.error_message(err))
        return result

    @app.callback(
        Output(job.status, "children", allow_duplicate=True),
        Input(job.cancel, "n_clicks"),
        State(job.run_store, "data"),
        State(job.progress, "value"),
        State(job.progress, "max"),
        prevent_initial_call=True,
    )
    def cancel_job(clicks: int | None, started: dict | None, step: Any, total: Any) -> Any:
        """Raise the job's cancel flag (Dash kills the job as well) and say so on the page."""
        if not clicks or not started:
            raise dash.exceptions.PreventUpdate
        services.jobs.request_cancel(current_session_id(), str(started.get("nonce")))
        return cancelled(step, total)


def _throttled(
    services: Any,
    set_progress: Callable[[tuple], None],
    text: Callable[..., str],
    session: str | None,
    nonce: str,
) -> tuple[Callable[..., None], Callable[[], bool]]:
    """The job's `progress` and `should_stop`, each acting at most every PROGRESS_EVERY_S."""
    last = {"report": 0.0, "check": 0.0}
    server = os.getppid()

    def progress(step: int, total: int, *rest: Any) -> None:
        now = time.monotonic()
        if step == total or now - last["report"] >= PROGRESS_EVERY_S:
            last["report"] = now
            set_progress((step, total, text(step, total, *rest)))

    def should_stop() -> bool:  # Cancel's flag, or the server is gone (orphaned job)
        now = time.monotonic()
        if now - last["check"] < PROGRESS_EVERY_S:
            return False
        last["check"] = now
        return os.getppid() != server or services.jobs.cancel_requested(session, nonce)

    return progress, should_stop
