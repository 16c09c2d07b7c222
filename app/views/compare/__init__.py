"""Compare view: the selected layer (model A) against a layer of a second model (B).

Both spectra overlaid (with their ratio), the overlaps |U_A^T U_B| and |V_A^T V_B| of the
top-k singular vectors with the principal angles between the two top-k subspaces, and the
difference W_B - W_A. The second model and layer live in the page state (URL `compare=`,
`compare_layer=`): the router owns the two pickers (`picker_outputs`) and resolves them
with `services.compare.choices`; this module's callback only draws.
"""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
from dash import Input, Output, dcc, html, no_update

from app import ids
from app.figures import placeholder_figure, weights_heatmap
from app.figures.compare import overlap_figure, spectra_overlay
from app.formatting import fmt_g
from app.services.compare import COMPARE_TRUNCATED_RANK
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
    stat_maker,
)
from app.views.compare import checkpoint

__all__ = ["layout", "picker_outputs", "register", "resolve_compare"]


def _choice(label: str, cid: str) -> html.Div:
    """A labelled dropdown whose options the callbacks fill in."""
    return html.Div(
        [
            html.Label(label, htmlFor=cid),
            dcc.Dropdown(id=cid, options=[], clearable=False, searchable=False),
        ],
        className="compare-field",
    )


def layout() -> html.Div:
    graph = graph_panel

    return html.Div(
        [
            html.Div(id=ids.DIV_COMPARE_ALERT),
            html.Div(
                [
                    _choice("Compare with (model B)", ids.DROPDOWN_COMPARE_MODEL),
                    _choice("Layer of B", ids.DROPDOWN_COMPARE_LAYER),
                    k_slider(
                        ids.SLIDER_COMPARE_K,
                        "Subspace dimension k",
                        marks=(1, 4, 8, 16, 24, 32),
                        class_name="compare-field compare-k",
                    ),
                ],
                className="compare-controls",
            ),
            html.Div(id=ids.DIV_COMPARE_HINT, className="hint compare-hint"),
            html.Div(id=ids.DIV_COMPARE_STATS, className="stats"),
            graph(ids.GRAPH_COMPARE_SPECTRA),
            graph(ids.GRAPH_COMPARE_OVERLAP),
            graph(ids.GRAPH_COMPARE_DIFF),
            checkpoint.layout(),
        ],
        className="view view-compare",
    )


def resolve_compare(
    services: Any, session: str | None, state: Selection, requested: dict[str, Any]
) -> Any:
    """Put the second model and layer into `state` (in place) and return the
    `CompareChoices` behind them, or None when the Compare tab is not shown (the
    requested values are then kept unchecked, so links keep them) or no layer is chosen."""
    if state.get("tab") != ids.TAB_COMPARE or not state.get("model") or not state.get("layer"):
        for key in ("compare", "compare_layer"):
            if requested.get(key):
                state[key] = requested[key]
        return None
    choices = services.compare.choices(
        state["model"],
        state["layer"],
        session,
        other=requested.get("compare"),
        other_layer=requested.get("compare_layer"),
    )
    if choices.model:
        state["compare"] = choices.model
    if choices.layer:
        state["compare_layer"] = choices.layer
    return choices


def picker_outputs(choices: Any) -> tuple[Any, Any, Any, Any]:
    """(model options, model value, layer options, layer value) of the two pickers."""
    if choices is None:
        return no_update, no_update, no_update, no_update
    return (
        [{"label": label, "value": mid} for mid, label in choices.models],
        choices.model,
        [{"label": name, "value": name} for name in choices.layers],
        choices.layer,
    )


_stat = stat_maker("compare")


def stats_panel(c: Any) -> list[html.Div]:
    """The numbers of one comparison, each with how it is defined."""
    norm_a = float(np.sqrt(np.sum(np.square(c.spectra_a)))) if c.spectra_a.size else 0.0
    norm_b = float(np.sqrt(np.sum(np.square(c.spectra_b)))) if c.spectra_b.size else 0.0
    left = float(np.degrees(c.left_angles.max())) if c.left_angles.size else 0.0
    right = float(np.degrees(c.right_angles.max())) if c.right_angles.size else 0.0
    return [
        _stat("‖W_B − W_A‖F", fmt_g(c.diff_fro), "Frobenius norm of the difference", "diff"),
        _stat("Relative change", fmt_g(c.rel_diff), "‖W_B − W_A‖F / ‖W_A‖F", "rel"),
        _stat(
            "‖W_A‖₂ / ‖W_B‖₂",
            f"{fmt_g(float(c.spectra_a[0]))} / {fmt_g(float(c.spectra_b[0]))}",
            "largest singular values",
            "sigma1",
        ),
        _stat(
            "‖W_A‖F / ‖W_B‖F",
            f"{fmt_g(norm_a)} / {fmt_g(norm_b)}",
            "√Σσᵢ² of each (of the computed σᵢ)",
            "fro",
        ),
        _stat(
            "Largest angle, output side",
            f"{left:.3g}°",
            f"between span(U_A) and span(U_B), top {c.k}",
            "left-angle",
        ),
        _stat(
            "Largest angle, input side",
            f"{right:.3g}°",
            f"between span(V_A) and span(V_B), top {c.k}",
            "right-angle",
        ),
    ]


def register(app: dash.Dash, services: Any) -> None:
    checkpoint.register(app, services)

    @app.callback(
        Output(ids.GRAPH_COMPARE_SPECTRA, "figure"),
        Output(ids.GRAPH_COMPARE_OVERLAP, "figure"),
        Output(ids.GRAPH_COMPARE_DIFF, "figure"),
        Output(ids.DIV_COMPARE_STATS, "children"),
        Output(ids.DIV_COMPARE_HINT, "children"),
        Output(ids.DIV_COMPARE_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.SLIDER_COMPARE_K, "value"),
    )
    def update_compare(selection: Selection | None, k: int | None) -> tuple[Any, ...]:
        if not selection_ready(selection, ids.TAB_COMPARE):
            raise dash.exceptions.PreventUpdate
        empty = placeholder_figure()
        if not selection.get("layer"):
            note = placeholder_figure("Choose a layer with a weight matrix.")
            return note, empty, empty, [], None, None
        other, other_layer = selection.get("compare"), selection.get("compare_layer")
        if not other or not other_layer:
            session = current_session_id()
            choices, error = attempt(
                services,
                lambda: services.compare.choices(
                    selection["model"], selection["layer"], session, other=other
                ),
            )
            message = error or alert(
                choices.message or "Choose a second model.", kind="info", title="Nothing to compare"
            )
            return empty, empty, empty, [], None, message
        data, error = attempt(
            services,
            lambda: services.compare.run(
                selection["model"],
                selection["layer"],
                selection["view"],
                other,
                other_layer,
                int(k or DEFAULT_K),
                current_session_id(),
            ),
        )
        if error is not None:
            return empty, empty, empty, [], None, error
        c, info = data.comparison, data.info
        label_a = f"A: {selection['model']} › {layer_title(selection)}"
        label_b = f"B: {other} › {other_layer}"
        hint = [
            html.Span(label_a, className="compare-a"),
            html.Span("  against  "),
            html.Span(label_b, className="compare-b"),
            html.Span(f"  ·  matrix {c.shape[0]}×{c.shape[1]}, top k = {c.k} singular vectors"),
        ]
        if data.truncated:
            hint.append(
                html.Span(
                    f"  ·  large layer: top {COMPARE_TRUNCATED_RANK} singular values only "
                    "(randomized SVD)"
                )
            )
        name = layer_title(selection)
        spectra = spectra_overlay(
            c.spectra_a,
            c.spectra_b,
            name_a=f"A: {selection['model']}",
            name_b=f"B: {other}",
            title=f"Spectra of {name}: A and B",
        )
        overlap = overlap_figure(
            c.left_overlap,
            c.right_overlap,
            c.left_angles,
            c.right_angles,
            title=f"Top-{c.k} singular subspaces of A and B",
        )
        diff = weights_heatmap(
            c.diff,
            title=f"Difference W_B − W_A of {name}",
            row_label=axis_title(info.row_axis, info.row_label),
            col_label=axis_title(info.col_axis, info.col_label),
            row_values=None if info.row_axis is None else info.row_axis.values,
            col_values=None if info.col_axis is None else info.col_axis.values,
            value_label="Δw",
        )
        return spectra, overlap, diff, stats_panel(c), hint, None
