"""Weights view: the layer's matrix as a heatmap centred at zero."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html

from app import ids
from app.figures import placeholder_figure, weights_heatmap
from app.uploads import current_session_id
from app.views.common import Selection, attempt, axis_title, layer_title, selection_ready

__all__ = ["layout", "register"]


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
            dcc.Loading(
                dcc.Graph(
                    id=ids.GRAPH_WEIGHTS_HEATMAP,
                    figure=placeholder_figure(),
                    config={"displaylogo": False},
                ),
                type="dot",
                delay_show=300,
            ),
            html.P(
                "Colour: blue < 0 < red, white = 0, symmetric limits. Large matrices "
                "are max-abs pooled: each cell keeps the signed weight of largest magnitude "
                "in its block.",
                id=ids.DIV_WEIGHTS_CAPTION,
                className="caption",
            ),
        ],
        className="view view-weights",
    )


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.GRAPH_WEIGHTS_HEATMAP, "figure"),
        Output(ids.DIV_WEIGHTS_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.RADIO_WEIGHTS_RANGE, "value"),
    )
    def update_weights(selection: Selection | None, colour_range: str | None) -> tuple[Any, Any]:
        if not selection_ready(selection, ids.TAB_WEIGHTS):
            raise dash.exceptions.PreventUpdate
        if not selection.get("layer"):
            return placeholder_figure("Choose a layer with a weight matrix."), None
        data, error = attempt(
            services,
            lambda: services.weights(
                selection["model"], selection["layer"], selection["view"], current_session_id()
            ),
        )
        if error is not None:
            return placeholder_figure(), error
        figure = weights_heatmap(
            data.matrix,
            title=f"Weights of {layer_title(selection)}",
            row_label=axis_title(data.info.row_axis, data.info.row_label),
            col_label=axis_title(data.info.col_axis, data.info.col_label),
            row_values=None if data.info.row_axis is None else data.info.row_axis.values,
            col_values=None if data.info.col_axis is None else data.info.col_axis.values,
            clip_percentile=99.0 if colour_range == "p99" else None,
        )
        return figure, None
