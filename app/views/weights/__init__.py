"""Weights view: the layer's matrix as a heatmap centred at zero.

A large matrix is sent max-abs pooled; when the user zooms (plotly's relayout event), the
server re-renders the visible window at up to `MAX_SIDE` cells per axis, down to one cell
per weight, over the pooled whole (`window_from_relayout` turns the event into the window,
kept in STORE_WEIGHTS_WINDOW; a double-click zooms out to the whole matrix again).
"""

from __future__ import annotations

import math
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html

from app import ids
from app.figures import placeholder_figure, weights_heatmap
from app.storage.session import current_session_id
from app.views.common import (
    Selection,
    attempt,
    axis_title,
    graph_panel,
    layer_title,
    selection_ready,
)
from svdcore.cache import make_key

__all__ = ["MAX_SIDE", "layout", "register", "window_from_relayout"]

MAX_SIDE = 448  # cells per axis sent for the whole matrix or a zoomed window (payload < 2 MB)
Window = tuple[int, int, int, int]  # r0, r1, c0, c1: half-open row and column index ranges


def _axis_span(
    relayout: dict[str, Any], axis: str, size: int, previous: tuple[int, int]
) -> tuple[int, int]:
    """Index range [lo, hi) of the cells visible on one axis after a relayout event."""
    if relayout.get(f"{axis}.autorange"):
        return (0, size)
    bounds = relayout.get(f"{axis}.range")
    if bounds is None and f"{axis}.range[0]" in relayout and f"{axis}.range[1]" in relayout:
        bounds = (relayout[f"{axis}.range[0]"], relayout[f"{axis}.range[1]"])
    try:
        a, b = (float(v) for v in bounds)
    except (TypeError, ValueError):
        return previous
    if not (math.isfinite(a) and math.isfinite(b)):
        return previous
    lo, hi = min(a, b), max(a, b)  # cell i covers [i - 0.5, i + 0.5]
    start = max(0, math.floor(lo - 0.5) + 1)  # cells overlapping (lo, hi), edges excluded
    stop = min(size, math.ceil(hi + 0.5))
    return (start, stop) if stop > start else previous


def window_from_relayout(
    relayout: dict[str, Any] | None, shape: tuple[int, int], previous: Window | None
) -> Window | None:
    """The (r0, r1, c0, c1) window a plotly relayout event shows on a matrix of `shape`,
    None for the whole matrix. Axes the event does not mention keep `previous`; events
    without ranges (autosize, dragmode) change nothing."""
    m, n = shape
    before = tuple(previous) if previous else (0, m, 0, n)
    if not relayout:
        return previous
    rows = _axis_span(relayout, "yaxis", m, (before[0], before[1]))
    cols = _axis_span(relayout, "xaxis", n, (before[2], before[3]))
    window = (rows[0], rows[1], cols[0], cols[1])
    return None if window == (0, m, 0, n) else window


def layout() -> html.Div:
    return html.Div(
        [
            html.Div(id=ids.DIV_WEIGHTS_ALERT),
            html.Div(
                [
                    html.Span("Colour limits", className="inline-label"),
                    dcc.RadioItems(
                        id=ids.RADIO_WEIGHTS_RANGE,
                        options=[
                            {"label": "±max |w|", "value": "max"},
                            {"label": "±99th percentile |w| (outliers saturate)", "value": "p99"},
                        ],
                        value="max",
                        inline=True,
                        className="radio-inline",
                    ),
                ],
                className="view-controls",
            ),
            dcc.Store(id=ids.STORE_WEIGHTS_WINDOW, storage_type="memory"),
            dcc.Store(id=ids.STORE_WEIGHTS_ZOOM, storage_type="memory"),
            graph_panel(ids.GRAPH_WEIGHTS_HEATMAP),
            html.P(
                "Colour: blue < 0 < red, white = 0, symmetric limits. Large matrices "
                "are max-abs pooled: each cell keeps the signed weight of largest magnitude "
                "in its block. Zoom in (drag a box) to redraw that region in detail, down to "
                "one cell per weight; double-click to zoom out.",
                id=ids.DIV_WEIGHTS_CAPTION,
                className="caption",
            ),
        ],
        className="view view-weights",
    )


def register(app: dash.Dash, services: Any) -> None:
    # Only relayout events that move an axis reach the server: the "autosize" event that
    # plotly sends while it draws a new figure would otherwise supersede (and so drop) the
    # redraw a zoom asked for.
    app.clientside_callback(
        """function (relayout) {
            const moved = relayout && Object.keys(relayout).some(
                (k) => k.startsWith('xaxis.') || k.startsWith('yaxis.'));
            return moved ? relayout : window.dash_clientside.no_update;
        }""",
        Output(ids.STORE_WEIGHTS_ZOOM, "data"),
        Input(ids.GRAPH_WEIGHTS_HEATMAP, "relayoutData"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.GRAPH_WEIGHTS_HEATMAP, "figure"),
        Output(ids.DIV_WEIGHTS_ALERT, "children"),
        Output(ids.STORE_WEIGHTS_WINDOW, "data"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.RADIO_WEIGHTS_RANGE, "value"),
        Input(ids.STORE_WEIGHTS_ZOOM, "data"),
        State(ids.STORE_WEIGHTS_WINDOW, "data"),
    )
    def update_weights(
        selection: Selection | None,
        colour_range: str | None,
        relayout: dict[str, Any] | None,
        shown: dict[str, Any] | None,
    ) -> tuple[Any, Any, Any]:
        if not selection_ready(selection, ids.TAB_WEIGHTS):
            raise dash.exceptions.PreventUpdate
        if not selection.get("layer"):
            return placeholder_figure("Choose a layer with a weight matrix."), None, None
        subject = [selection["model"], selection["layer"], selection["view"]]
        zoom = ctx.triggered_id == ids.STORE_WEIGHTS_ZOOM
        if zoom and (not shown or shown.get("subject") != subject):
            raise dash.exceptions.PreventUpdate  # an event from a figure no longer shown
        args = (selection["model"], selection["layer"], selection["view"], current_session_id())
        meta, error = attempt(services, lambda: services.registry.layer_view(*args))
        if error is not None:
            return placeholder_figure(), error, None
        content_key, shape, info = meta
        window = None
        if ctx.triggered_id == ids.RADIO_WEIGHTS_RANGE and shown and shown["subject"] == subject:
            window = tuple(shown["window"]) if shown.get("window") else None  # keep the zoom
        if zoom:
            before = shown.get("window")
            window = window_from_relayout(relayout, shape, tuple(before) if before else None)
            if max(shape) <= MAX_SIDE or window == (tuple(before) if before else None):
                raise dash.exceptions.PreventUpdate  # plotly's own zoom shows every weight
        title = f"Weights of {layer_title(selection)}"
        clip = 99.0 if colour_range == "p99" else None

        def draw() -> dict[str, Any]:  # reading, pooling (and the percentile): cached
            matrix = services.layers.weights(*args).matrix
            return weights_heatmap(
                matrix,
                title=title,
                row_label=axis_title(info.row_axis, info.row_label),
                col_label=axis_title(info.col_axis, info.col_label),
                row_values=None if info.row_axis is None else info.row_axis.values,
                col_values=None if info.col_axis is None else info.col_axis.values,
                clip_percentile=clip,
                max_side=MAX_SIDE,
                window=window,
            ).to_dict()

        key = make_key("weights-figure", content_key, title, clip, window, MAX_SIDE)
        figure, error = attempt(services, lambda: services.cache.get_or_compute(key, draw))
        if error is not None:
            return placeholder_figure(), error, None
        return figure, None, {"subject": subject, "window": window}
