"""Singular spectrum: sigma_i on a log axis and the cumulative energy curve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.common import level_line
from app.figures.theme import ACCENT, LINE, MUTED, register_template

__all__ = ["first_view_figure", "spectrum_figure", "top_spectrum_figure"]


def spectrum_figure(
    singular_values: np.ndarray,
    cumulative_energy: np.ndarray,
    *,
    tolerance: float | None = None,
    numerical_rank: int | None = None,
    title: str = "",
) -> go.Figure:
    """Two panels: sigma_i vs i (log y, 1-based i) and sum_{j<=i} s_j^2 / sum s_j^2 vs i.

    `tolerance` (absolute, sigma_1 * rtol) is drawn as a dashed line; values at or below it
    count as zero for the numerical rank. Zero singular values have no place on a log axis
    and are left out of the left panel (they still count in the energy curve).
    """
    s = np.asarray(singular_values, dtype=np.float32)
    energy = np.asarray(cumulative_energy, dtype=np.float32)
    index = np.arange(1, s.size + 1, dtype=np.int32)
    s_log = np.where(s > 0, s, np.nan).astype(np.float32)
    mode = "lines+markers" if s.size <= 128 else "lines"
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Singular values σᵢ", "Cumulative energy Σⱼ≤ᵢ σⱼ² / Σ σⱼ²"),
        horizontal_spacing=0.1,
    )
    fig.add_trace(
        go.Scatter(
            x=index,
            y=s_log,
            mode=mode,
            name="σᵢ",
            line={"color": LINE},
            marker={"size": 5},
            hovertemplate="σ<sub>%{x}</sub> = %{y:.4g}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if tolerance is not None and tolerance > 0 and s.size:
        label = "rank tolerance"
        if numerical_rank is not None:
            label += f" (rank {numerical_rank})"
        fig.add_hline(y=tolerance, line={"dash": "dash", "color": ACCENT, "width": 1}, row=1, col=1)
        # placed by hand: on a log axis an annotation's y is log10(value)
        fig.add_annotation(
            text=label,
            x=1,
            xref="x domain",
            y=math.log10(tolerance),
            yref="y",
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            font={"color": ACCENT, "size": 11},
        )
    _add_energy(fig, index, energy, mode=mode, hover="first %{x}: %{y:.2%} of the energy")
    for level in (0.9, 0.99):
        level_line(
            fig,
            level,
            f"{level:.0%}",
            color=MUTED,
            dash="dot",
            position="bottom right",
            row=1,
            col=2,
        )
    return _finish(fig, title)


def top_spectrum_figure(
    singular_values: np.ndarray,
    upper: np.ndarray,
    residuals: np.ndarray,
    frobenius_norm: float,
    *,
    rank: int,
    title: str = "",
) -> go.Figure:
    """The first view of a large matrix's spectrum: its top k singular values s_i (from a
    randomized sketch; each s_i <= sigma_i) with error bars of the Ritz residuals (a singular
    value of W lies within each bar), the guaranteed upper bounds `upper` in the hover, and
    the energy sum_{j<=i} s_j^2 / ||W||_F^2 they hold (exact denominator, so a lower bound)
    out of the `rank` = min(m, n) values of the full spectrum."""
    s = np.asarray(singular_values, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    delta = np.asarray(residuals, dtype=np.float64)
    index = np.arange(1, s.size + 1, dtype=np.int32)
    total = float(frobenius_norm) ** 2
    energy = np.cumsum(s**2) / total if total > 0 else np.zeros_like(s)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            f"Top {s.size} of {rank} singular values σᵢ (randomized)",
            "Energy held by the top i (≥)",
        ),
        horizontal_spacing=0.1,
    )
    fig.add_trace(
        go.Scatter(
            x=index,
            y=np.where(s > 0, s, np.nan).astype(np.float32),
            customdata=np.stack([delta, hi], axis=1).astype(np.float32),
            error_y={"type": "data", "array": delta.astype(np.float32), "color": ACCENT},
            mode="lines+markers",
            name="σᵢ",
            line={"color": LINE},
            marker={"size": 5},
            hovertemplate=(
                "s<sub>%{x}</sub> = %{y:.6g} ≤ σ<sub>%{x}</sub> ≤ %{customdata[1]:.5g}"
                "<br>a singular value within ±%{customdata[0]:.2g}<extra></extra>"
            ),
        ),
        row=1,
        col=1,
    )
    _add_energy(
        fig, index, energy, mode="lines+markers", hover="top %{x}: ≥ %{y:.2%} of the energy"
    )
    return _finish(fig, title)


def _add_energy(
    fig: go.Figure, index: np.ndarray, energy: np.ndarray, *, mode: str, hover: str
) -> None:
    """The cumulative-energy curve in the right-hand panel."""
    fig.add_trace(
        go.Scatter(
            x=index,
            y=np.asarray(energy, dtype=np.float32),
            mode=mode,
            name="energy",
            line={"color": LINE},
            marker={"size": 5},
            hovertemplate=hover + "<extra></extra>",
        ),
        row=1,
        col=2,
    )


def _finish(fig: go.Figure, title: str) -> go.Figure:
    """Axes of the two panels (log sigma_i, energy in %) and the shared layout."""
    fig.update_xaxes(title_text="index i")
    fig.update_yaxes(type="log", title_text="σᵢ", exponentformat="power", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", title_text="energy", row=1, col=2)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        showlegend=False,
        height=440,
    )
    return fig


def first_view_figure(top: Any, *, title: str = "") -> go.Figure:
    """`top_spectrum_figure` of an object with svdcore.TopSpectrum's fields
    (singular_values, upper, ritz_residual, frobenius_norm, shape)."""
    return top_spectrum_figure(
        top.singular_values,
        top.upper,
        top.ritz_residual,
        top.frobenius_norm,
        rank=min(top.shape),
        title=title,
    )
