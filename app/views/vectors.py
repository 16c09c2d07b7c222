"""Singular-vector view: galleries of the top-k right (input-side) and left vectors."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html

from app import ids
from app.figures import placeholder_figure, vector_gallery
from app.uploads import current_session_id
from app.views.common import Selection, attempt, axis_title, layer_title, selection_ready

__all__ = ["DEFAULT_K", "MAX_K", "layout", "register"]

DEFAULT_K = 8
MAX_K = 32


def layout() -> html.Div:
    def graph(graph_id: str) -> dcc.Loading:
        return dcc.Loading(
            dcc.Graph(id=graph_id, figure=placeholder_figure(), config={"displaylogo": False}),
            type="dot",
            delay_show=300,
        )

    return html.Div(
        [
            html.Div(id=ids.DIV_VECTORS_ALERT),
            html.Div(
                [
                    html.Label("Number of singular vectors k", htmlFor=ids.SLIDER_VECTORS_COUNT),
                    dcc.Slider(
                        id=ids.SLIDER_VECTORS_COUNT,
                        min=1,
                        max=MAX_K,
                        step=1,
                        value=DEFAULT_K,
                        marks={i: str(i) for i in (1, 4, 8, 12, 16, 20, 24, 28, 32)},
                        tooltip={"placement": "bottom"},
                    ),
                ],
                className="control-row",
            ),
            graph(ids.GRAPH_VECTORS_RIGHT),
            graph(ids.GRAPH_VECTORS_LEFT),
        ],
        className="view view-vectors",
    )


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.GRAPH_VECTORS_RIGHT, "figure"),
        Output(ids.GRAPH_VECTORS_LEFT, "figure"),
        Output(ids.DIV_VECTORS_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.SLIDER_VECTORS_COUNT, "value"),
    )
    def update_vectors(selection: Selection | None, k: int | None) -> tuple[Any, Any, Any]:
        if not selection_ready(selection, ids.TAB_VECTORS):
            raise dash.exceptions.PreventUpdate
        if not selection.get("layer"):
            empty = placeholder_figure("Choose a layer with a weight matrix.")
            return empty, placeholder_figure(), None
        data, error = attempt(
            services,
            lambda: services.vectors(
                selection["model"],
                selection["layer"],
                selection["view"],
                int(k or DEFAULT_K),
                current_session_id(),
            ),
        )
        if error is not None:
            return placeholder_figure(), placeholder_figure(), error
        info = data.info
        name = layer_title(selection)
        note = " (truncated SVD)" if data.truncated else ""
        right = vector_gallery(
            data.right,
            data.sigma,
            symbol="v",
            title=f"Right singular vectors of {name} (input side{_side(info.col_label)}){note}",
            image_shape=info.col_image_shape,
            axis_values=None if info.col_axis is None else info.col_axis.values,
            axis_title=axis_title(info.col_axis, info.col_label),
        )
        left = vector_gallery(
            data.left,
            data.sigma,
            symbol="u",
            title=f"Left singular vectors of {name} (output side{_side(info.row_label)}){note}",
            image_shape=info.row_image_shape,
            axis_values=None if info.row_axis is None else info.row_axis.values,
            axis_title=axis_title(info.row_axis, info.row_label),
        )
        return right, left, None


def _side(label: str) -> str:
    return "" if label in ("input", "output") else f": {label}"
