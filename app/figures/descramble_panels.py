"""The figures of a descrambled layer (the Descramble view and the exports draw these)."""

from __future__ import annotations

from typing import Any, NamedTuple

import plotly.graph_objects as go

from app.figures.descramble import (
    basis_overlay,
    fft_view_heatmap,
    matrix_panel,
    objective_history,
)
from app.figures.theme import axis_title

__all__ = ["OBJECTIVE", "DescrambleFigures", "descramble_figures"]

OBJECTIVE = {
    "smoothness": ("‖D P Y‖²", "smoothness of P Y, per signal (minimised)"),
    "mds": ("tr(P W)", "diagonal sum of P W (maximised)"),
    "max_diagonal_norm": ("Σ (P W)ᵢᵢ²", "diagonal norm² of P W (maximised)"),
}
_STENCIL = {
    "fourier": "trigonometric basis (Fourier stencil)",
    "finite": "finite-difference stencil",
}


class DescrambleFigures(NamedTuple):
    raw: go.Figure
    descrambled: go.Figure
    fft_raw: go.Figure
    fft_descrambled: go.Figure
    P: go.Figure
    phi: go.Figure
    overlay: go.Figure
    next: go.Figure | None  # W_(k+1) P^T, when a next layer was descrambled with it
    history: go.Figure | None  # the iterative method's objective per step


def descramble_figures(data: Any, ffts: tuple[Any, Any], layer_name: str) -> DescrambleFigures:
    """Every figure of one descrambled layer (`data`: the services' DescrambleData; `ffts`:
    the FFT views of W and P W); `next` / `history` are None when they do not apply."""
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
    fft_raw = fft_view_heatmap(ffts[0], title="2-D FFT of W")
    fft_pw = fft_view_heatmap(ffts[1], title="2-D FFT of P W")
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
    nxt = None
    if data.W_next_Pt is not None:
        nxt = matrix_panel(
            data.W_next_Pt,
            title=f"W_(k+1) Pᵀ: {data.next_layer} with its inputs descrambled",
            row_label=f"output of {data.next_layer}",
            col_label=f"descrambled {info.row_label} of {layer_name}",
        )
    history = None
    if data.method == "iterative" and data.history.size:
        history = objective_history(
            data.history,
            bound=data.bound,
            title="Iterative descrambler: objective per step",
            y_title=OBJECTIVE.get(data.criterion, ("objective",))[0],
        )
    return DescrambleFigures(raw, descrambled, fft_raw, fft_pw, P, phi, overlay, nxt, history)
