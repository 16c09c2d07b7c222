"""Model overview view: the per-layer spectral table of the whole model (sortable, with a
CSV download) and a sparkline spectrum per layer. A click on a table row opens that layer
in the Weights tab (the router reads the table's active cell)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dash_table, dcc, html
from dash.dash_table.Format import Format, Scheme

from app import ids
from app.figures import placeholder_figure, sparklines_figure
from app.services.overview import table_records
from app.storage.session import current_session_id
from app.views.common import CLICKABLE_CELLS, Selection, attempt, data_table, selection_ready
from svdcore.cache import make_key

__all__ = ["COLUMNS", "layout", "register"]

_G4 = Format(precision=4, scheme=Scheme.decimal_or_exponent)
_F3 = Format(precision=3, scheme=Scheme.fixed)
_F2 = Format(precision=2, scheme=Scheme.fixed)
# (id, header, format): None for text, "int" for counts
COLUMNS: list[tuple[str, str, Any]] = [
    ("name", "Layer", None),
    ("kind", "Kind", None),
    ("shape", "Shape", None),
    ("spectral_norm", "‖W‖₂", _G4),
    ("frobenius_norm", "‖W‖F", _G4),
    ("stable_rank", "stable rank", _F2),
    ("effective_rank", "eff. rank", _F2),
    ("numerical_rank", "rank", "int"),
    ("condition_number", "κ", _G4),
    ("alpha", "α (ESD)", _F3),
    ("D", "KS D", _F3),
    ("n_tail", "tail", "int"),
    ("note", "Note", None),
]


def _columns() -> list[dict[str, Any]]:
    cols = []
    for cid, name, fmt in COLUMNS:
        col: dict[str, Any] = {"name": name, "id": cid}
        if fmt == "int":
            col["type"] = "numeric"
        elif fmt is not None:
            col.update(type="numeric", format=fmt)
        cols.append(col)
    return cols


def _table() -> dash_table.DataTable:
    return data_table(
        ids.TABLE_OVERVIEW_LAYERS,
        _columns(),
        cell=CLICKABLE_CELLS,
        sort_action="native",
        cell_selectable=True,
        style_table={"overflowX": "auto"},
        style_cell_conditional=[
            {"if": {"column_id": c}, "textAlign": "left"} for c in ("name", "kind", "shape")
        ]
        + [
            {
                "if": {"column_id": "note"},
                "textAlign": "left",
                "whiteSpace": "normal",
                "minWidth": "160px",
                "maxWidth": "360px",
                "color": "#8d6e63",
            }
        ],
        tooltip_header={
            "alpha": "power-law exponent of the ESD (eigenvalues of WᵀW), "
            "fitted by maximum likelihood, xmin by the smallest KS distance",
            "D": "Kolmogorov-Smirnov distance of the power-law fit (smaller is better)",
            "n_tail": "eigenvalues ≥ xmin used in the fit",
            "condition_number": "σ₁ / σᵣ",
        },
    )


def layout() -> html.Div:
    return html.Div(
        [
            html.Div(id=ids.DIV_OVERVIEW_ALERT),
            html.Div(
                [
                    html.Div(id=ids.DIV_OVERVIEW_SUMMARY, className="hint"),
                    html.Button("Download CSV", id=ids.BUTTON_OVERVIEW_CSV, n_clicks=0),
                    dcc.Download(id=ids.DOWNLOAD_OVERVIEW_CSV),
                ],
                className="overview-head",
                style={"display": "flex", "gap": "16px", "alignItems": "center"},
            ),
            html.Div("Click a row to open that layer.", className="hint"),
            dcc.Loading(_table(), type="dot", delay_show=300),
            dcc.Graph(
                id=ids.GRAPH_OVERVIEW_SPARKLINES,
                figure=placeholder_figure(),
                config={"displaylogo": False, "displayModeBar": False},
            ),
        ],
        className="view view-overview",
    )


def summary_text(records: list[dict[str, Any]]) -> str:
    """ "5 layers, 5 with an ESD fit; alpha from 1.83 to 6.02"."""
    alphas = [r["alpha"] for r in records if r.get("alpha") is not None]
    text = f"{len(records)} layers, {len(alphas)} with an ESD power-law fit"
    if alphas:
        text += f"; α from {min(alphas):.2f} to {max(alphas):.2f}"
    return text + "."


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.TABLE_OVERVIEW_LAYERS, "data"),
        Output(ids.GRAPH_OVERVIEW_SPARKLINES, "figure"),
        Output(ids.DIV_OVERVIEW_SUMMARY, "children"),
        Output(ids.DIV_OVERVIEW_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
    )
    def update_overview(selection: Selection | None) -> tuple[Any, Any, Any, Any]:
        if not selection_ready(selection, ids.TAB_OVERVIEW):
            raise dash.exceptions.PreventUpdate
        model = selection.get("model")
        if not model:
            return [], placeholder_figure("Choose a model."), "", None
        data, error = attempt(services, lambda: services.overview.data(model, current_session_id()))
        if error is not None:
            return [], placeholder_figure(), "", error
        records = table_records(data.table)
        alphas = {r["name"]: r["alpha"] for r in records if r["alpha"] is not None}
        figure = services.cache.get_or_compute(
            make_key("overview-figure", services.overview.key(model, current_session_id())),
            lambda: sparklines_figure(
                data.spectra, alphas, title="Singular values σᵢ / σ₁ per layer (log scale)"
            ).to_dict(),
        )
        return records, figure, summary_text(records), None

    @app.callback(
        Output(ids.DOWNLOAD_OVERVIEW_CSV, "data"),
        Input(ids.BUTTON_OVERVIEW_CSV, "n_clicks"),
        State(ids.STORE_SELECTION_STATE, "data"),
        prevent_initial_call=True,
    )
    def download_csv(n_clicks: int | None, selection: Selection | None) -> Any:
        model = (selection or {}).get("model")
        if not n_clicks or not model:
            raise dash.exceptions.PreventUpdate
        return services.overview.csv(model, current_session_id())
