"""A table that a background job fills in, row by row: the Overview's spectral table and
the Compare tab's fine-tune table.

The view's `render(selection, *extra, done=, started=, start=)` returns its outputs and, last, the
job's run store (a new run, or no_update). `register_streamed` wires it: one callback on
the selection that may start the job, one on an Interval that redraws the table from the
cached rows while the job runs, one on the job's end, and the job itself
(`app.views.jobs.register_job`). Three callbacks, not one: the one that starts the job must
not listen to the job's result (a cycle through the job, which Dash would not run again),
and Dash holds back a callback while one of its inputs is the output of a running
background job, so an interval sharing a callback with the done store would never tick.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update

from app import ids
from app.ids import JobIds
from app.views import jobs

__all__ = ["REFRESH_MS", "job_section", "job_state", "register_streamed", "table_columns"]

REFRESH_MS = 1000  # how often the table is redrawn while the job fills it in


def job_section(
    job: JobIds, *, panel_id: str, note_id: str, interval_id: str, class_name: str = ""
) -> list[Any]:
    """The job's panel (hidden until rows are pending: a note, Run / Cancel, progress,
    status), its stores and the Interval that redraws the table while it runs."""
    panel = html.Div(
        [
            html.Span(id=note_id, className="hint"),
            *jobs.run_controls(job, run_label="Compute the remaining layers"),
            html.Div(id=job.status),
        ],
        id=panel_id,
        className=f"iterative-panel {class_name}".strip(),
        style={"display": "none"},
    )
    interval = dcc.Interval(id=interval_id, interval=REFRESH_MS, disabled=True)
    return [panel, *jobs.stores(job), interval]


def table_columns(columns: Sequence[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    """DataTable columns from (id, header, format): None for text, "int" for counts, else a
    dash_table Format for numbers."""
    out = []
    for cid, name, fmt in columns:
        col: dict[str, Any] = {"name": name, "id": cid}
        if fmt == "int":
            col["type"] = "numeric"
        elif fmt is not None:
            col.update(type="numeric", format=fmt)
        out.append(col)
    return out


def job_state(
    done: dict | None,
    started: dict | None,
    key: str,
    *,
    start: bool,
    cancelled: Callable[[Any, Any], Any],
) -> tuple[Any, Any, bool]:
    """(status alert, run store value, keep polling) of an incomplete table's job: a failed
    or cancelled last run is said and not restarted; otherwise a new run starts once per
    key when ``start``."""
    last = jobs.last_status(done, key)
    if last == "error":
        return jobs.failed_alert(done), no_update, False
    if last == "cancelled":
        return cancelled(None, None), no_update, False
    if start and (not started or started.get("key") != key):
        return None, {"nonce": secrets.token_urlsafe(12), "key": key}, True
    return None, no_update, True


def register_streamed(
    app: dash.Dash,
    services: Any,
    job: JobIds,
    *,
    outputs: Sequence[Output],
    render: Callable[..., tuple[Any, ...]],
    interval: str,
    prepare: jobs.Prepare,
    progress_text: Callable[..., str],
    cancelled: Callable[[Any, Any], Any],
    extra: Sequence[tuple[str, str]] = (),
) -> None:
    """Register the view's callbacks and its job (module docstring). ``extra``: further
    (component, property) inputs of the table (e.g. a chosen base model): they redraw it,
    and their values follow the selection into ``render`` and the job's ``prepare``."""
    n = len(extra)

    @app.callback(
        *outputs,
        Output(job.run_store, "data", allow_duplicate=True),
        Input(ids.STORE_SELECTION_STATE, "data"),
        *[Input(c, p) for c, p in extra],
        State(job.done_store, "data"),
        State(job.run_store, "data"),
        prevent_initial_call="initial_duplicate",
    )
    def update(selection: Any, *rest: Any) -> tuple[Any, ...]:
        values, (done, started) = rest[:n], rest[n:]
        return render(selection, *values, done=done, started=started, start=True)

    duplicates = [
        Output(o.component_id, o.component_property, allow_duplicate=True) for o in outputs
    ]

    states = [State(c, p) for c, p in extra]

    @app.callback(
        *duplicates,
        Input(interval, "n_intervals"),
        State(job.done_store, "data"),
        State(ids.STORE_SELECTION_STATE, "data"),
        *states,
        prevent_initial_call=True,
    )
    def refresh(_tick: int | None, done: dict | None, selection: Any, *values: Any):
        """Rows came in while the job runs: the table again from the cached rows."""
        return render(selection, *values, done=done, started=None, start=False)[:-1]

    @app.callback(
        *duplicates,
        Input(job.done_store, "data"),
        State(ids.STORE_SELECTION_STATE, "data"),
        *states,
        prevent_initial_call=True,
    )
    def ended(done: dict | None, selection: Any, *values: Any) -> tuple[Any, ...]:
        """The job ended: the complete table, or why not (cancelled, failed)."""
        return render(selection, *values, done=done, started=None, start=False)[:-1]

    jobs.register_job(
        app,
        services,
        job,
        states=states,
        requires="model",
        prepare=prepare,
        progress_text=progress_text,
        cancelled=cancelled,
    )
