"""Inversion view: the controls (static layout) and InversionData -> figures and numbers."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

from app import ids
from app.figures import distance_history, generated_input, output_bars, placeholder_figure
from app.services import InversionData, InversionOptions
from app.views import jobs
from app.views.common import alert, axis_title, graph_panel, number_field, stat_maker

__all__ = [
    "DEFAULTS",
    "METHOD_LABELS",
    "START_LABELS",
    "controls",
    "graphs",
    "method_choices",
    "render",
]

DEFAULTS = InversionOptions()
METHOD_LABELS = {
    "pseudo-inverse": "pseudo-inverse, layer by layer: x = W⁺ f⁻¹(out)",
    "optimise": "optimisation of the input (Adam, weights frozen)",
}
START_LABELS = {
    "avg-img": "avg-img: the class's average training image",
    "min-img": "min-img: the training image closest to the ideal output",
    "avg-min-img": "avg-min-img: the average of the closest 25 %",
}


def _group(title: str, *children: Any) -> html.Fieldset:
    return html.Fieldset([html.Legend(title), *children], className="control-group")


def _radio(cid: str, labels: dict[str, str], value: str) -> dcc.RadioItems:
    return dcc.RadioItems(
        id=cid,
        options=[{"label": text, "value": key} for key, text in labels.items()],
        value=value,
        className="radio-stack",
    )


def method_choices(
    refusals: dict[str, str | None], current: str | None
) -> tuple[list[dict[str, Any]], str | None, Any]:
    """(radio options, the method to select or None to keep ``current``, the note) for
    a network's ``refusals`` (method -> None, or why it does not apply): a method that does
    not apply is shown disabled, and when it is the one selected, the first method that
    applies is selected instead and the note says why."""
    options = [
        {"label": text, "value": key, "disabled": bool(refusals.get(key))}
        for key, text in METHOD_LABELS.items()
    ]
    usable = [key for key in METHOD_LABELS if not refusals.get(key)]
    select = None
    if current not in usable and usable:
        select = usable[0]
    notes = [
        html.Div(
            [html.Strong(f"{key.capitalize()} unavailable: "), why],
            className="hint",
            id=f"text-inversion-refusal-{key}",
        )
        for key, why in refusals.items()
        if why
    ]
    return options, select, notes or None


def controls() -> html.Div:
    """Target class, method, and the optimisation panel (start, steps, lr, Run / Cancel)."""
    optimise = html.Div(
        [
            html.Div("Start", className="inline-label group-sub"),
            _radio(ids.RADIO_INVERSION_START, START_LABELS, DEFAULTS.start),
            number_field(ids.INPUT_INVERSION_STEPS, "steps", DEFAULTS.steps, min=1, step=1),
            number_field(ids.INPUT_INVERSION_LR, "learning rate", DEFAULTS.lr, min=0, step="any"),
            dcc.Checklist(
                id=ids.CHECKLIST_INVERSION_CLAMP,
                options=[{"label": "keep the input in the data's value range", "value": "clamp"}],
                value=["clamp"],
                className="radio-stack",
            ),
            *jobs.run_controls(ids.JOB_INVERSION),
        ],
        id=ids.DIV_INVERSION_OPTIMISE,
        className="iterative-panel",
        style={"display": "none"},
    )
    return html.Div(
        [
            _group(
                "Target",
                dcc.Dropdown(
                    id=ids.DROPDOWN_INVERSION_TARGET,
                    options=[],
                    clearable=False,
                    searchable=False,
                    placeholder="class",
                ),
                html.Div(
                    "Ideal output: the class's largest value on its training images, the "
                    "smallest value over all training images for every other output.",
                    className="hint",
                ),
            ),
            _group(
                "Method",
                _radio(ids.RADIO_INVERSION_METHOD, METHOD_LABELS, DEFAULTS.method),
                html.Div(id=ids.DIV_INVERSION_METHOD_NOTE),
                optimise,
            ),
        ],
        className="descramble-controls inversion-controls",
    )


def graphs() -> list[Any]:
    """Generated input | output vs. ideal, then the distance per step (optimisation)."""
    return [
        html.Div(
            [graph_panel(ids.GRAPH_INVERSION_INPUT), graph_panel(ids.GRAPH_INVERSION_OUTPUT)],
            className="graph-pair",
        ),
        html.Div(
            graph_panel(ids.GRAPH_INVERSION_HISTORY),
            id=ids.DIV_INVERSION_HISTORY,
            style={"display": "none"},
        ),
    ]


_stat = stat_maker("inversion")


def _stats(data: InversionData) -> list[html.Div]:
    target = data.class_names[data.options.target]
    predicted = data.class_names[data.predicted] if data.predicted < len(data.class_names) else "?"
    if data.method == "optimise":
        start_what = f"output of the {data.start} start"
        method = f"optimise from {data.start}"
        how = f"{data.steps:,} Adam steps" + (", cancelled" if data.stopped else "")
    else:
        start_what = "layer-by-layer eq. 5, before refinement"
        method = "pseudo-inverse"
        how = f"from the {data.start} start, {data.steps} Gauss-Newton step(s)"
    stats = [
        _stat("Distance reached", f"{data.distance:.4g}", "‖output − ideal output‖", "distance"),
        _stat("Start distance", f"{data.start_distance:.4g}", start_what, "start"),
        _stat("Predicted class", predicted, f"argmax of the output; target {target}", "predicted"),
        _stat("Method", method, how, "method"),
    ]
    low, high = float(data.x.min()), float(data.x.max())
    where = "kept in the data's range" if data.bounds else "not bounded"
    stats.append(_stat("Input range", f"{low:.3g} … {high:.3g}", where, "range"))
    if data.method == "pseudo-inverse":
        stats.append(
            _stat("Clipped values", str(data.clipped), "outside an activation's range", "clipped")
        )
    return stats


def render(
    data: InversionData, title: str
) -> tuple[go.Figure, go.Figure, go.Figure, dict[str, str], list[Any], Any]:
    """(input figure, output bars, distance history, its style, stats, warnings)."""
    target = data.class_names[data.options.target]
    axis = data.input_axis
    stacked = f" ({data.channels} channels, top to bottom)" if data.channels > 1 else ""
    image = generated_input(
        data.x,
        title=f"Generated input of {title} for class {target}{stacked}",
        image_shape=data.image_shape,
        bounds=data.bounds,
        axis_values=None if axis is None else axis.values,
        axis_title=axis_title(axis, "input index"),
    )
    bars = output_bars(
        data.output,
        data.target,
        data.class_names,
        title=f"Output vs. ideal output, class {target}",
        target_index=data.options.target,
    )
    history, style = placeholder_figure(), {"display": "none"}
    if data.method == "optimise" and data.history.size > 1:
        history = distance_history(
            data.history, title=f"Distance to the ideal output per step ({data.start} start)"
        )
        style = {"display": "block"}
    warnings = None
    if data.warnings:
        warnings = alert(" ".join(data.warnings), kind="warning", title="Warnings")
    return image, bars, history, style, _stats(data), warnings
