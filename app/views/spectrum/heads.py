"""The Spectrum tab's heads panel: for an attention projection of a model opened with its
config.json, the singular values of every head's W_QK and W_OV in its block, and a table of
their norms (each head's own weights are the layer's "head h" matrix views)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, html

from app import ids
from app.figures.heads import heads_figure
from app.figures.theme import placeholder_figure
from app.services.overview import table_records
from app.storage.session import current_session_id
from app.views.common import Selection, attempt, data_table, graph_panel, selection_ready

__all__ = ["COLUMNS", "layout", "register"]

_HIDDEN = {"display": "none"}
COLUMNS = [
    ("head", "head"),
    ("kv_head", "kv head"),
    ("qk_sigma1", "‖W_QK‖₂"),
    ("qk_frobenius", "‖W_QK‖F"),
    ("qk_stable_rank", "W_QK stable rank"),
    ("ov_sigma1", "‖W_OV‖₂"),
    ("ov_frobenius", "‖W_OV‖F"),
    ("ov_stable_rank", "W_OV stable rank"),
]


def layout() -> html.Div:
    from dash.dash_table.Format import Format, Scheme

    fmt = Format(precision=4, scheme=Scheme.decimal_or_exponent)
    columns = [
        {"name": name, "id": cid, "type": "numeric"}
        | ({} if cid in ("head", "kv_head") else {"format": fmt})
        for cid, name in COLUMNS
    ]
    return html.Div(
        [
            html.H4("Attention heads of this block", className="section-title"),
            html.Div(id=ids.TEXT_HEADS_NOTE, className="hint"),
            html.Div(id=ids.DIV_HEADS_ALERT),
            graph_panel(ids.GRAPH_HEADS),
            data_table(ids.TABLE_HEADS, columns, cell={}, sort_action="native"),
        ],
        id=ids.DIV_HEADS_PANEL,
        className="esd-panel",
        style=_HIDDEN,
    )


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.DIV_HEADS_PANEL, "style"),
        Output(ids.TEXT_HEADS_NOTE, "children"),
        Output(ids.GRAPH_HEADS, "figure"),
        Output(ids.TABLE_HEADS, "data"),
        Output(ids.DIV_HEADS_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
    )
    def update_heads(selection: Selection | None) -> tuple[Any, ...]:
        if not selection_ready(selection, ids.TAB_SPECTRUM):
            raise dash.exceptions.PreventUpdate
        model, layer = selection.get("model"), selection.get("layer")
        if not layer:
            return _HIDDEN, "", placeholder_figure(), [], None
        session = current_session_id()
        data, error = attempt(services, lambda: services.heads.heads(model, layer, session))
        if error is not None:
            return {"display": "block"}, "", placeholder_figure(), [], error
        if data is None:
            return _HIDDEN, "", placeholder_figure(), [], None
        b, cfg = data.block, data.block.config
        note = (
            f"{b.name}: {cfg.n_heads} query heads sharing {cfg.n_kv_heads} key/value heads "
            f"(head_dim {cfg.head_dim}, d_model {cfg.hidden_size}); each circuit has rank ≤ "
            f"{cfg.head_dim}, its singular values computed from the factors. Each head's own "
            "rows are this layer's “head h” matrix views."
        )
        figure = heads_figure(data.qk, data.ov, kv_heads=data.kv_heads, title=f"Heads of {b.name}")
        rows = table_records(data.table.assign(name=[f"head {h}" for h in data.table["head"]]))
        return {"display": "block"}, note, figure, rows, None
