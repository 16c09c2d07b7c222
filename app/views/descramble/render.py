"""Descramble view: a computed DescrambleData -> the figures and numbers of the page.

No computing here beyond choosing labels: the arrays come from the services, the
figures from app.figures.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import plotly.graph_objects as go
from dash import html

from app.figures import (
    basis_overlay,
    fft_heatmap,
    matrix_panel,
    objective_history,
    placeholder_figure,
)
from app.services import DescrambleData
from app.views.common import axis_title, stat_maker

__all__ = ["HIDDEN", "SHOWN", "Rendered", "empty", "render", "stats_panel"]

SHOWN: dict[str, str] = {"display": "block"}
HIDDEN: dict[str, str] = {"display": "none"}

_OBJECTIVE = {
    "smoothness": ("‖D P Y‖²", "smoothness of P Y, per signal (minimised)"),
    "mds": ("tr(P W)", "diagonal sum of P W (maximised)"),
    "max_diagonal_norm": ("Σ (P W)ᵢᵢ²", "diagonal norm² of P W (maximised)"),
}
_BOUND = {
    "smoothness": "von Neumann: Σ μᵢ sᵢ, the exact minimum",
    "mds": "Σ σᵢ (leading square block), the exact maximum",
    "max_diagonal_norm": "no closed form for this criterion",
}
_STENCIL = {
    "fourier": "trigonometric basis (Fourier stencil)",
    "finite": "finite-difference stencil",
}


class Rendered(NamedTuple):
    raw: go.Figure
    descrambled: go.Figure
    fft_raw: go.Figure
    fft_descrambled: go.Figure
    P: go.Figure
    phi: go.Figure
    overlay: go.Figure
    next: go.Figure
    next_style: dict[str, str]
    history: go.Figure
    history_style: dict[str, str]
    stats: list[Any]


def empty(message: str = "") -> Rendered:
    """Placeholders everywhere (nothing to show yet, or an error shown elsewhere)."""
    blank = placeholder_figure(message)
    other = placeholder_figure()
    return Rendered(
        blank, other, other, other, other, other, other, other, HIDDEN, other, HIDDEN, []
    )


_stat = stat_maker("descramble")


def _g(x: float | None, digits: int = 6) -> str:
    if x is None or math.isnan(x):
        return "—"
    return "∞" if math.isinf(x) else f"{x:.{digits}g}"


def stats_panel(data: DescrambleData) -> list[html.Div]:
    """The numbers: objective, bound, gap, principal angle, N, c, det P, phi, method."""
    symbol, detail = _OBJECTIVE.get(data.criterion, ("", data.criterion))
    gap = "—" if data.gap is None else f"{data.gap:.2e}"
    stats = [
        _stat("Objective", _g(data.objective), f"{symbol}: {detail}", "objective"),
        _stat("Bound", _g(data.bound), _BOUND.get(data.criterion, ""), "bound"),
        _stat("Gap", gap, "(objective − bound) / |bound|", "gap"),
    ]
    n = data.P.shape[0]
    span = (
        f"r = n = {n}: both spans are all of ℝⁿ"
        if data.rank >= n
        else f"u₁…u_r of P W vs. the r = {data.rank} smoothest basis vectors"
    )
    stats.append(_stat("Max principal angle", f"{data.max_angle_deg:.3g}°", span, "angle"))
    if data.source == "weights":
        signals, how = "—", "this criterion is judged on the weights alone"
    elif math.isinf(data.n_signals):
        signals, how = "∞", "exact limit S = W Wᵀ"
    else:
        signals, how = f"{int(data.n_signals):,}", f"signals from the {data.source} source"
    stats.append(_stat("N signals", signals, how, "signals"))
    if data.position == "second":
        stats.append(
            _stat(
                "c (second layer)",
                _g(data.c, 4),
                f"‖σ(W X)‖₂ / ‖W_(k+1)ᵀ‖₂ ({data.next_layer})",
                "c",
            )
        )
    stats.append(_stat("det P", "+1" if data.det_sign > 0 else "−1", "orientation of P", "det"))
    stats.append(
        _stat(
            "‖φ(P) − I‖",
            _g(data.phi_distance, 3),
            "Frobenius norm / √r; ≈ 0 in the noise limit",
            "phi",
        )
    )
    if data.method == "iterative":
        ending = "converged" if data.converged else "step limit reached"
        if data.cancelled:
            ending = "cancelled"
        method, how = "iterative", f"{data.steps:,} steps, {ending}"
    else:
        method, how = "exact", "closed form"
    stats.append(_stat("Method", method, f"{how}; criterion {data.criterion}", "method"))
    return stats


def render(data: DescrambleData, ffts: tuple[Any, Any], layer_name: str) -> Rendered:
    """Every figure and number of the view for one descrambled layer."""
    info = data.info
    col_label = axis_title(info.col_axis, info.col_label)
    col_values = None if info.col_axis is None else info.col_axis.values
    raw = matrix_panel(
        data.W,
        title=f"W: {layer_name} as trained",
        row_label=info.row_label,
        col_label=col_label,
        col_values=col_values,
    )
    descrambled = matrix_panel(
        data.PW,
        title=f"P W: {layer_name} descrambled",
        row_label=f"descrambled {info.row_label}",
        col_label=col_label,
        col_values=col_values,
    )
    f_raw, f_pw = ffts
    fft_raw = fft_heatmap(
        f_raw.magnitude,
        f_raw.row_freq,
        f_raw.col_freq,
        title="2-D FFT of W",
        log=f_raw.log,
        symmetrized=f_raw.symmetrized,
    )
    fft_pw = fft_heatmap(
        f_pw.magnitude,
        f_pw.row_freq,
        f_pw.col_freq,
        title="2-D FFT of P W",
        log=f_pw.log,
        symmetrized=f_pw.symmetrized,
    )
    P = matrix_panel(
        data.P,
        title="P (orthogonal descrambler)",
        row_label=f"descrambled {info.row_label}",
        col_label=info.row_label,
        value_label="P",
        square=True,
    )
    phi = matrix_panel(
        data.phi,
        title="φ(P) = T<sub>r</sub><sup>T</sup> P U<sub>r</sub> (Sule eq. 17)",
        row_label="smooth basis index",
        col_label="left singular vector index of W",
        value_label="φ",
        square=True,
    )
    overlay = basis_overlay(
        data.U_r,
        data.basis_r,
        data.sigma_r,
        title=f"Left singular vectors of P W over the {_STENCIL.get(data.options.stencil, '')}",
    )
    nxt, next_style = placeholder_figure(), HIDDEN
    if data.W_next_Pt is not None:
        nxt = matrix_panel(
            data.W_next_Pt,
            title=f"W_(k+1) Pᵀ: {data.next_layer} with its inputs descrambled",
            row_label=f"output of {data.next_layer}",
            col_label=f"descrambled {info.row_label} of {layer_name}",
        )
        next_style = SHOWN
    history, history_style = placeholder_figure(), HIDDEN
    if data.method == "iterative" and data.history.size:
        history = objective_history(
            data.history,
            bound=data.bound,
            title="Iterative descrambler: objective per step",
            y_title=_OBJECTIVE.get(data.criterion, ("objective",))[0],
        )
        history_style = SHOWN
    return Rendered(
        raw,
        descrambled,
        fft_raw,
        fft_pw,
        P,
        phi,
        overlay,
        nxt,
        next_style,
        history,
        history_style,
        stats_panel(data),
    )
