"""Singular-vector view: galleries of the top-k right (input-side) and left vectors, and
the fit control (a signal-model family, its order, split points, the side to fit)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dcc, html

from app import ids
from app.figures import placeholder_figure
from app.figures.vectors import side_gallery
from app.services.vector_fits import DEFAULT_ORDERS, VectorFitOptions, VectorFitsData
from app.storage.session import current_session_id
from app.views.common import (
    DEFAULT_K,
    Selection,
    alert,
    attempt,
    axis_title,
    graph_panel,
    k_slider,
    layer_title,
    selection_ready,
)
from svdcore.cache import make_key

__all__ = ["FIT_NONE", "fit_hint", "layout", "register"]

FIT_NONE = "none"
FIT_FAMILY_OPTIONS = [
    {"label": "no fit", "value": FIT_NONE},
    {"label": "biexponential", "value": "biexponential"},
    {"label": "Chebyshev", "value": "chebyshev"},
    {"label": "trigonometric", "value": "trig"},
]
FIT_SIDE_OPTIONS = [
    {"label": "right (input)", "value": "right"},
    {"label": "left (output)", "value": "left"},
    {"label": "both", "value": "both"},
]
ORDER_LABELS = {"chebyshev": "degree", "trig": "terms"}
_FIT_HELP = (
    "Fit the vectors to a signal model (dashed curves, R² in the titles). Split: "
    "comma-separated indices, each part fitted on its own; empty = auto (where the axis restarts)."
)


def layout() -> html.Div:
    graph = graph_panel

    return html.Div(
        [
            html.Div(id=ids.DIV_VECTORS_ALERT),
            k_slider(
                ids.SLIDER_VECTORS_COUNT,
                "Number of singular vectors k",
                marks=(1, 4, 8, 12, 16, 20, 24, 28, 32),
                class_name="control-row",
            ),
            _fit_controls(),
            graph(ids.GRAPH_VECTORS_RIGHT),
            graph(ids.GRAPH_VECTORS_LEFT),
        ],
        className="view view-vectors",
    )


def _fit_controls() -> html.Div:
    def field(label: Any, control: Any, *, group: bool = False) -> html.Label | html.Div:
        # a radio group has labels of its own: a <div>, not a <label> around them
        tag = html.Div if group else html.Label
        return tag([html.Span(label, className="inline-label"), control], className="fit-field")

    return html.Div(
        [
            html.Div(
                [
                    field(
                        "fit",
                        dcc.Dropdown(
                            id=ids.DROPDOWN_VECTORS_FIT_FAMILY,
                            options=FIT_FAMILY_OPTIONS,
                            value=FIT_NONE,
                            clearable=False,
                            searchable=False,
                            className="fit-family",
                        ),
                    ),
                    field(
                        html.Span("order", id=ids.TEXT_VECTORS_FIT_ORDER_LABEL),
                        dcc.Input(
                            id=ids.INPUT_VECTORS_FIT_ORDER,
                            type="number",
                            min=0,
                            step=1,
                            debounce=True,
                            disabled=True,
                            className="fit-order",
                        ),
                    ),
                    field(
                        "split",
                        dcc.Input(
                            id=ids.INPUT_VECTORS_FIT_SPLIT,
                            type="text",
                            placeholder="auto",
                            debounce=True,
                            className="fit-split",
                        ),
                    ),
                    field(
                        "side",
                        dcc.RadioItems(
                            id=ids.RADIO_VECTORS_FIT_SIDE,
                            options=FIT_SIDE_OPTIONS,
                            value="right",
                            inline=True,
                            className="radio-inline fit-side",
                        ),
                        group=True,
                    ),
                ],
                className="fit-row",
            ),
            html.Div(_FIT_HELP, id=ids.DIV_VECTORS_FIT_HINT, className="hint"),
        ],
        className="fit-controls",
    )


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.INPUT_VECTORS_FIT_ORDER, "disabled"),
        Output(ids.INPUT_VECTORS_FIT_ORDER, "value"),
        Output(ids.TEXT_VECTORS_FIT_ORDER_LABEL, "children"),
        Input(ids.DROPDOWN_VECTORS_FIT_FAMILY, "value"),
        prevent_initial_call=True,
    )
    def update_fit_order(family: str | None) -> tuple[bool, int | None, str]:
        """The order box: Chebyshev degree or trig terms (with its default), else disabled."""
        return (
            family not in DEFAULT_ORDERS,
            DEFAULT_ORDERS.get(family),
            ORDER_LABELS.get(family, "order"),
        )

    @app.callback(
        Output(ids.GRAPH_VECTORS_RIGHT, "figure"),
        Output(ids.GRAPH_VECTORS_LEFT, "figure"),
        Output(ids.DIV_VECTORS_ALERT, "children"),
        Output(ids.DIV_VECTORS_FIT_HINT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.SLIDER_VECTORS_COUNT, "value"),
        Input(ids.DROPDOWN_VECTORS_FIT_FAMILY, "value"),
        Input(ids.INPUT_VECTORS_FIT_ORDER, "value"),
        Input(ids.INPUT_VECTORS_FIT_SPLIT, "value"),
        Input(ids.RADIO_VECTORS_FIT_SIDE, "value"),
    )
    def update_vectors(
        selection: Selection | None,
        k: int | None,
        family: str | None,
        order: float | None,
        split: str | None,
        side: str | None,
    ) -> tuple[Any, Any, Any, Any]:
        if not selection_ready(selection, ids.TAB_VECTORS):
            raise dash.exceptions.PreventUpdate
        if not selection.get("layer"):
            empty = placeholder_figure("Choose a layer with a weight matrix.")
            return empty, placeholder_figure(), None, _FIT_HELP
        args = (selection["model"], selection["layer"], selection["view"], int(k or DEFAULT_K))
        session = current_session_id()
        data, error = attempt(services, lambda: services.layers.vectors(*args, session))
        if error is not None:
            return placeholder_figure(), placeholder_figure(), error, _FIT_HELP
        fits: VectorFitsData | None = None
        fit_alert = None
        if family and family != FIT_NONE:
            try:
                options = VectorFitOptions.from_controls(
                    family=family, order=order, split=split, side=side
                )
                fits = services.fits.run(*args, options, session)
            except Exception as err:  # the vectors are still drawn, without fits
                fit_alert = alert(services.error_message(err), title="Cannot fit")
        fit_key = (family, order, split, side) if fits is not None else None
        key = make_key("vectors-figures", data.key, args, fit_key)
        right, left = services.cache.get_or_compute(
            key, lambda: _galleries(data, fits, layer_title(selection))
        )
        return right, left, fit_alert, _FIT_HELP if fits is None else fit_hint(fits)


def _galleries(
    data: Any, fits: VectorFitsData | None, name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The right and left galleries (as figure dicts, cached by the callback)."""
    info = data.info
    note = " (truncated SVD)" if data.truncated else ""

    def gallery(side: str) -> dict[str, Any]:
        right = side == "right"
        label = info.col_label if right else info.row_label
        space = "input side" if right else "output side"
        side_fits = None if fits is None else (fits.right if right else fits.left)
        return side_gallery(
            data,
            side,
            title=f"{side.title()} singular vectors of {name} ({space}{_side(label)}){note}",
            axis_title=axis_title(info.col_axis if right else info.row_axis, label),
            fits=None if side_fits is None else side_fits.fits,
        ).to_dict()

    return gallery("right"), gallery("left")


def fit_hint(fits: VectorFitsData) -> str:
    """One line on what was fitted: family and order, then per side the split points used
    (auto or given) and the abscissa, or why that side was not fitted."""
    family = {
        "biexponential": "Biexponential fit (c₁e^(−t/T₁) + c₂e^(−t/T₂) + d)",
        "chebyshev": f"Chebyshev fit of degree {fits.order}",
        "trig": f"Trigonometric fit with {fits.order} terms",
    }.get(fits.family, fits.family)
    parts = [family]
    for side in (fits.right, fits.left):
        if side is None:
            continue
        name = side.side.capitalize()
        if side.note:
            parts.append(f"{name}: {side.note}")
            continue
        where = ", ".join(str(s) for s in side.split) or "none"
        source = (
            "given" if not side.auto else "auto, where the axis restarts" if side.split else "auto"
        )
        x = f", x = {side.abscissa}" if fits.family != "trig" else ""
        parts.append(f"{name}: split {where} ({source}){x}")
    return " · ".join(parts) + "."


def _side(label: str) -> str:
    return "" if label in ("input", "output") else f": {label}"
