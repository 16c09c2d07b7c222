"""Inversion view (Pattichis & Pattichis, section 2.4 and Fig. 3): an input whose output is
the ideal output of a target class, by the pseudo-inverse through invertible activations
(computed in the request) or by optimising the input (a background job with progress and
Cancel, the same pattern as the iterative descrambler: see app/views/descramble/__init__.py).

The training data is the dataset chosen in the sidebar (an example network: its train
split). For a network that is not a chain of Linear layers and invertible activations (a
CNN, an exported ResNet) the pseudo-inverse is shown disabled with svdcore's sentence saying
why, and the optimisation is selected instead: it runs on every network that runs.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, html

from app import ids
from app.figures import placeholder_figure
from app.services import InversionOptions
from app.storage.session import current_session_id
from app.views import jobs
from app.views.common import Selection, alert, number, selection_ready
from app.views.inversion.render import DEFAULTS, controls, graphs, method_choices, render

PROGRESS_EVERY_S = jobs.PROGRESS_EVERY_S  # throttle of progress reports and cancel checks

__all__ = ["PROGRESS_EVERY_S", "layout", "options_from", "register"]

_HIDDEN = {"display": "none"}
_JOB = ids.JOB_INVERSION


def layout() -> html.Div:
    return html.Div(
        [
            *jobs.stores(_JOB),
            html.Div(id=ids.DIV_INVERSION_ALERT),
            controls(),
            html.Div(id=ids.JOB_INVERSION.status),
            html.Div(id=ids.DIV_INVERSION_WARNINGS),
            html.Div(id=ids.DIV_INVERSION_STATS, className="stats"),
            *graphs(),
        ],
        className="view view-inversion",
    )


def options_from(
    target: Any, method: Any, start: Any, steps: Any, lr: Any, clamp: Any
) -> InversionOptions:
    """The controls' values as InversionOptions (empty inputs fall back to the defaults)."""

    return InversionOptions(
        target=number(target, int, DEFAULTS.target),
        method=method or DEFAULTS.method,
        start=start or DEFAULTS.start,
        steps=number(steps, int, DEFAULTS.steps),
        lr=number(lr, float, DEFAULTS.lr),
        clamp="clamp" in (clamp or []),
    )


_OPTION_STATES = [
    (ids.DROPDOWN_INVERSION_TARGET, "value"),
    (ids.RADIO_INVERSION_METHOD, "value"),
    (ids.RADIO_INVERSION_START, "value"),
    (ids.INPUT_INVERSION_STEPS, "value"),
    (ids.INPUT_INVERSION_LR, "value"),
    (ids.CHECKLIST_INVERSION_CLAMP, "value"),
]


def _empty(message: str = "") -> tuple[Any, ...]:
    return placeholder_figure(message), placeholder_figure(), placeholder_figure(), _HIDDEN, []


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.DROPDOWN_INVERSION_TARGET, "options"),
        Output(ids.DROPDOWN_INVERSION_TARGET, "value"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        State(ids.DROPDOWN_INVERSION_TARGET, "value"),
    )
    def update_targets(selection: Selection | None, current: Any) -> Any:
        """The classes of the training data (the main callback says why when there are none)."""
        if not selection_ready(selection, ids.TAB_INVERSION) or not selection.get("model"):
            raise dash.exceptions.PreventUpdate
        try:
            _, names = services.inversion.training(
                selection["model"], selection.get("dataset"), current_session_id()
            )
        except Exception:
            return [], None
        options = [{"label": f"class {name}", "value": i} for i, name in enumerate(names)]
        return options, current if current in range(len(names)) else 0

    @app.callback(
        Output(ids.RADIO_INVERSION_METHOD, "options"),
        Output(ids.RADIO_INVERSION_METHOD, "value"),
        Output(ids.DIV_INVERSION_METHOD_NOTE, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        State(ids.RADIO_INVERSION_METHOD, "value"),
    )
    def update_methods(selection: Selection | None, current: Any) -> Any:
        """The methods that apply to the model (the pseudo-inverse needs an invertible
        chain); a selected one that does not apply gives way to the optimisation."""
        if not selection_ready(selection, ids.TAB_INVERSION) or not selection.get("model"):
            raise dash.exceptions.PreventUpdate
        try:
            refusals = services.inversion.refusals(selection["model"], current_session_id())
        except Exception:  # weights only, unreadable: the main callback says why
            refusals = {}
        options, select, note = method_choices(refusals, current)
        return options, dash.no_update if select is None else select, note

    app.clientside_callback(
        "function (method) { return {display: method === 'optimise' ? 'flex' : 'none'}; }",
        Output(ids.DIV_INVERSION_OPTIMISE, "style"),
        Input(ids.RADIO_INVERSION_METHOD, "value"),
    )

    @app.callback(
        Output(ids.GRAPH_INVERSION_INPUT, "figure"),
        Output(ids.GRAPH_INVERSION_OUTPUT, "figure"),
        Output(ids.GRAPH_INVERSION_HISTORY, "figure"),
        Output(ids.DIV_INVERSION_HISTORY, "style"),
        Output(ids.DIV_INVERSION_STATS, "children"),
        Output(ids.DIV_INVERSION_WARNINGS, "children"),
        Output(ids.JOB_INVERSION.status, "children"),
        Output(ids.DIV_INVERSION_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        *[Input(cid, prop) for cid, prop in _OPTION_STATES],
        Input(ids.JOB_INVERSION.done_store, "data"),
    )
    def update_inversion(selection: Selection | None, *values: Any) -> tuple[Any, ...]:
        if not selection_ready(selection, ids.TAB_INVERSION):
            raise dash.exceptions.PreventUpdate
        *option_values, done = values
        if not selection.get("model"):
            return (*_empty("Choose a model."), None, None, None)
        if option_values[0] is None:  # the target list is not filled in yet (or empty)
            option_values[0] = 0
        session = current_session_id()
        options = options_from(*option_values)
        optimise = options.method == "optimise"
        model, dataset = selection["model"], selection.get("dataset")
        try:
            data = services.inversion.run(model, options, dataset, session, compute=not optimise)
            key = services.inversion.key(model, options, dataset, session)
        except Exception as err:
            return (*_empty(), None, None, alert(services.error_message(err)))
        last = jobs.last_status(done, key)
        if last == "error":
            return (*_empty(), None, None, jobs.failed_alert(done))
        if data is None:
            status = alert(
                "No optimisation result for these options yet: press Run to start it.",
                kind="info",
            )
            if last == "cancelled":
                status = _cancelled_alert(None, None)
            return (*_empty("Press Run to start the optimisation."), None, status, None)
        entry = services.registry.model_entry(model, session)
        name = entry.id if entry.kind == "zoo" else entry.label.removeprefix("⇪ ")
        image, bars, history, style, stats, warnings = render(data, name)
        note = f"Ideal output from {data.n_train:,} training samples of {data.data_name}."
        status = html.Div(note, className="caption")
        return image, bars, history, style, stats, warnings, status, None

    def prepare(session: str | None, selection: Selection, *values: Any) -> Any:
        values = list(values)
        values[0] = 0 if values[0] is None else values[0]
        args = (selection["model"], options_from(*values), selection.get("dataset"), session)

        def compute(progress: Any, should_stop: Any) -> bool:
            data = services.inversion.run(*args, progress=progress, should_stop=should_stop)
            return data is not None and data.stopped

        return services.inversion.key(*args), compute

    jobs.register_job(
        app,
        services,
        _JOB,
        states=[State(cid, prop) for cid, prop in _OPTION_STATES],
        requires="model",
        prepare=prepare,
        progress_text=lambda step, total, distance: (
            f"step {step:,} of {total:,} · distance {distance:.6g}"
        ),
        cancelled=_cancelled_alert,
    )


def _cancelled_alert(step: Any, total: Any) -> html.Div:
    return jobs.cancelled_alert(step, total, what="optimisation")
