"""Descramble view: the layer's output space made smooth (exact or iterative), with the
2-D FFT views, P and phi(P), and the left singular vectors over the smooth basis.

Exact results compute in the request (milliseconds). The iterative method runs as a Dash
background callback (the app's DiskcacheManager, a forked process): Run writes a fresh
nonce to JOB_DESCRAMBLE.run_store, the job reports progress, stores its result in the shared
cache and writes {"key", "status"} to JOB_DESCRAMBLE.done_store, and `update_descramble`
draws whatever the cache holds for the options now on screen (a finished job whose
options were changed meanwhile is kept in the cache, not drawn). Cancel kills the job
(Dash) and also raises a flag the job polls (`should_stop`), so a job stops either way.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, html

from app import ids
from app.services import DescrambleOptions
from app.storage.session import current_session_id
from app.views import jobs
from app.views.common import Selection, alert, layer_title, number, selection_ready
from app.views.descramble.controls import (
    DEFAULTS,
    POSITION_LABELS,
    SOURCE_LABELS,
    choices_note,
    controls,
    fft_flags,
    graphs,
    radio_options,
)
from app.views.descramble.render import empty, render

PROGRESS_EVERY_S = jobs.PROGRESS_EVERY_S  # throttle of progress reports and cancel checks

__all__ = ["PROGRESS_EVERY_S", "layout", "options_from", "register"]

_JOB = ids.JOB_DESCRAMBLE


def layout() -> html.Div:
    return html.Div(
        [
            *jobs.stores(_JOB),
            html.Div(id=ids.DIV_DESCRAMBLE_ALERT),
            controls(),
            html.Div(id=ids.JOB_DESCRAMBLE.status),
            html.Div(id=ids.DIV_DESCRAMBLE_STATS, className="stats"),
            *graphs(),
        ],
        className="view view-descramble",
    )


def options_from(
    source: Any, samples: Any, stencil: Any, method: Any, criterion: Any, position: Any,
    det: Any, steps: Any, lr: Any, optimizer: Any = None,
) -> DescrambleOptions:  # fmt: skip
    """The controls' values as DescrambleOptions (empty inputs fall back to the defaults)."""

    return DescrambleOptions(
        source=source or DEFAULTS.source,
        samples=number(samples, int, DEFAULTS.samples),
        stencil=stencil or DEFAULTS.stencil,
        method=method or DEFAULTS.method,
        criterion=criterion or DEFAULTS.criterion,
        position=position or DEFAULTS.position,
        det_one=bool(det),
        steps=number(steps, int, DEFAULTS.steps),
        lr=number(lr, float, DEFAULTS.lr),
        optimizer=optimizer or DEFAULTS.optimizer,
    )


_OPTION_STATES = [
    (ids.RADIO_DESCRAMBLE_SOURCE, "value"),
    (ids.INPUT_DESCRAMBLE_SAMPLES, "value"),
    (ids.RADIO_DESCRAMBLE_STENCIL, "value"),
    (ids.RADIO_DESCRAMBLE_METHOD, "value"),
    (ids.RADIO_DESCRAMBLE_CRITERION, "value"),
    (ids.RADIO_DESCRAMBLE_POSITION, "value"),
    (ids.CHECKLIST_DESCRAMBLE_DET, "value"),
    (ids.INPUT_DESCRAMBLE_STEPS, "value"),
    (ids.INPUT_DESCRAMBLE_LR, "value"),
    (ids.RADIO_DESCRAMBLE_OPTIMIZER, "value"),
]


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.RADIO_DESCRAMBLE_SOURCE, "options"),
        Output(ids.RADIO_DESCRAMBLE_POSITION, "options"),
        Output(ids.DIV_DESCRAMBLE_CHOICES, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
    )
    def update_choices(selection: Selection | None) -> Any:
        """Disable the data sources / positions this model cannot offer, with the reason."""
        if not selection_ready(selection, ids.TAB_DESCRAMBLE) or not selection.get("model"):
            raise dash.exceptions.PreventUpdate
        try:
            reasons = services.descramble.choices(
                selection["model"], current_session_id(), selection.get("dataset")
            )
        except Exception:
            reasons = {}  # the model's own error is shown by the page already
        return (
            radio_options(SOURCE_LABELS, "source", reasons),
            radio_options(POSITION_LABELS, "position", reasons),
            choices_note(reasons),
        )

    app.clientside_callback(
        "function (method) { return {display: method === 'iterative' ? 'flex' : 'none'}; }",
        Output(ids.DIV_DESCRAMBLE_ITERATIVE, "style"),
        Input(ids.RADIO_DESCRAMBLE_METHOD, "value"),
    )

    @app.callback(
        Output(ids.GRAPH_DESCRAMBLE_RAW, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_DESCRAMBLED, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_FFT_RAW, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_P, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_PHI, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_OVERLAY, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_NEXT, "figure"),
        Output(ids.GRAPH_DESCRAMBLE_HISTORY, "figure"),
        Output(ids.DIV_DESCRAMBLE_NEXT, "style"),
        Output(ids.DIV_DESCRAMBLE_HISTORY, "style"),
        Output(ids.DIV_DESCRAMBLE_STATS, "children"),
        Output(ids.JOB_DESCRAMBLE.status, "children"),
        Output(ids.DIV_DESCRAMBLE_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        *[Input(cid, prop) for cid, prop in _OPTION_STATES],
        Input(ids.CHECKLIST_DESCRAMBLE_FFT, "value"),
        Input(ids.JOB_DESCRAMBLE.done_store, "data"),
    )
    def update_descramble(selection: Selection | None, *values: Any) -> tuple[Any, ...]:
        if not selection_ready(selection, ids.TAB_DESCRAMBLE):
            raise dash.exceptions.PreventUpdate
        if not selection.get("layer"):
            return (*empty("Choose a layer with a weight matrix.").outputs(), None, None)
        *option_values, fft, done = values
        session = current_session_id()
        options = options_from(*option_values)
        iterative = options.method == "iterative"
        model, layer, dataset = selection["model"], selection["layer"], selection.get("dataset")
        try:
            data = services.descramble.run(
                model, layer, options, session, compute=not iterative, dataset=dataset
            )
            key = services.descramble.key(model, layer, options, session, dataset)
        except Exception as err:
            return (*empty().outputs(), None, alert(services.error_message(err)))
        status, last = None, jobs.last_status(done, key)
        if last == "error":
            return (*empty().outputs(), None, jobs.failed_alert(done))
        if data is None:
            status = alert(
                "No iterative result for these options yet: press Run to start it.", kind="info"
            )
            if last == "cancelled":
                status = _cancelled_alert(None, None)
            return (*empty("Press Run to start the iterative descrambler.").outputs(), status, None)
        symmetrize, log = fft_flags(fft)
        ffts = services.descramble.ffts(data, symmetrize=symmetrize, log=log)
        rendered = render(data, ffts, layer_title(selection))
        notes = [data.note] if data.note else []
        if selection.get("view") not in (None, "default"):
            notes.append("Descrambling uses the layer's default matrix, not this matrix view.")
        if notes:
            status = alert(" ".join(notes), kind="info", title="Note")
        return (*rendered.outputs(), status, None)

    def prepare(session: str | None, selection: Selection, *values: Any) -> Any:
        options = options_from(*values)
        args = (selection["model"], selection["layer"], options, session)
        dataset = selection.get("dataset")
        key = services.descramble.key(*args, dataset)

        def compute(progress: Any, should_stop: Any) -> bool:
            data = services.descramble.run(
                *args, progress=progress, should_stop=should_stop, dataset=dataset
            )
            return data is not None and data.cancelled

        return key, compute

    jobs.register_job(
        app,
        services,
        _JOB,
        states=[State(cid, prop) for cid, prop in _OPTION_STATES],
        requires="layer",
        prepare=prepare,
        progress_text=lambda step, total, objective: (
            f"step {step:,} of {total:,} · objective {objective:.6g}"
        ),
        cancelled=_cancelled_alert,
    )


def _cancelled_alert(step: Any, total: Any) -> html.Div:
    return jobs.cancelled_alert(step, total, what="iterative run")
