"""Spectrum view: singular values, cumulative energy and the rank numbers."""

from __future__ import annotations

import math
from typing import Any

import dash
from dash import Input, Output, dcc, html

from app import ids
from app.figures import placeholder_figure, spectrum_figure
from app.services import SpectrumData
from app.uploads import current_session_id
from app.views.common import Selection, attempt, layer_title, selection_ready

__all__ = ["layout", "register", "stats_panel"]


def layout() -> html.Div:
    return html.Div(
        [
            html.Div(id=ids.DIV_SPECTRUM_ALERT),
            html.Div(id=ids.DIV_SPECTRUM_STATS, className="stats"),
            dcc.Loading(
                dcc.Graph(
                    id=ids.GRAPH_SPECTRUM_VALUES,
                    figure=placeholder_figure(),
                    config={"displaylogo": False},
                ),
                type="dot",
                delay_show=300,
            ),
        ],
        className="view view-spectrum",
    )


def _stat(label: str, value: str, detail: str, key: str) -> html.Div:
    return html.Div(
        [
            html.Div(label, className="stat-label"),
            html.Div(value, className="stat-value", id=f"text-spectrum-{key}"),
            html.Div(detail, className="stat-detail"),
        ],
        className="stat",
    )


def _g(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    return "∞" if math.isinf(x) else f"{x:.4g}"


def stats_panel(data: SpectrumData) -> list[html.Div]:
    """The numbers of the spectrum, each with how it is defined."""
    s = data.summary
    sv = s.singular_values
    m, n = data.shape
    tol = float(s.rtol) * float(sv[0]) if len(sv) else 0.0
    levels = " / ".join(f"{f:.0%}" for f in data.rank_for_energy)
    reach = " / ".join(str(k) for k in data.rank_for_energy.values())
    return [
        _stat(
            "Condition number",
            _g(float(s.condition_number)),
            "σ₁ / σᵣ, σᵣ the smallest above the tolerance",
            "cond",
        ),
        _stat(
            "Numerical rank",
            f"{int(s.numerical_rank)} of {min(m, n)}",
            f"σᵢ > {tol:.3g} (rtol {float(s.rtol):.2g} · σ₁)",
            "rank",
        ),
        _stat(
            "Effective rank", f"{float(s.effective_rank):.2f}", "exp(entropy of σᵢ / Σσ)", "erank"
        ),
        _stat("Stable rank", f"{float(s.stable_rank):.2f}", "Σσᵢ² / σ₁² (‖W‖F² / ‖W‖₂²)", "srank"),
        _stat("Energy", reach or "—", f"smallest k holding {levels} of Σσ²", "energy"),
    ]


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.GRAPH_SPECTRUM_VALUES, "figure"),
        Output(ids.DIV_SPECTRUM_STATS, "children"),
        Output(ids.DIV_SPECTRUM_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
    )
    def update_spectrum(selection: Selection | None) -> tuple[Any, Any, Any]:
        if not selection_ready(selection, ids.TAB_SPECTRUM):
            raise dash.exceptions.PreventUpdate
        if not selection.get("layer"):
            return placeholder_figure("Choose a layer with a weight matrix."), [], None
        data, error = attempt(
            services,
            lambda: services.spectrum(
                selection["model"], selection["layer"], selection["view"], current_session_id()
            ),
        )
        if error is not None:
            return placeholder_figure(), [], error
        s = data.summary
        sv = s.singular_values
        figure = spectrum_figure(
            sv,
            s.cumulative_energy,
            tolerance=float(s.rtol) * float(sv[0]) if len(sv) else None,
            numerical_rank=int(s.numerical_rank),
            title=f"Spectrum of {layer_title(selection)} ({data.shape[0]}×{data.shape[1]})",
        )
        return figure, stats_panel(data), None
