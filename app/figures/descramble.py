"""Descramble view figures: matrix panels, 2-D FFT magnitudes, singular vectors over the
smooth basis, and the objective of an iterative run. Pure: arrays in, figures out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.common import level_line
from app.figures.theme import ACCENT, LINE, SEQUENTIAL, register_template
from app.figures.weights import weights_heatmap

__all__ = [
    "FREQ_UNIT",
    "basis_overlay",
    "fft_heatmap",
    "fft_view_heatmap",
    "matrix_panel",
    "objective_history",
]

FREQ_UNIT = "cycles/sample"
PANEL_HEIGHT = 440
# basis_overlay's two curves per panel: (legend name, legend group, line, hover symbol)
_VECTOR = ("left singular vector uᵢ of P W", "u", {"color": LINE, "width": 1.8}, "u")
_BASIS = (
    "smooth basis tᵢ (stencil eigenvector)",
    "basis",
    {"color": ACCENT, "width": 1.5, "dash": "dash"},
    "t",
)


def matrix_panel(
    matrix: np.ndarray,
    *,
    title: str,
    row_label: str = "row",
    col_label: str = "column",
    col_values: np.ndarray | None = None,
    value_label: str = "weight",
    square: bool = False,
    height: int = PANEL_HEIGHT,
) -> go.Figure:
    """The weights heatmap (diverging, zero = white, symmetric limits) sized for a panel
    of two side by side; `square` keeps cells square (for P and phi)."""
    fig = weights_heatmap(
        matrix,
        title=title,
        row_label=row_label,
        col_label=col_label,
        col_values=col_values,
        value_label=value_label,
    )
    fig.update_layout(height=height, margin={"l": 60, "r": 10, "t": 70, "b": 50})
    if square:
        fig.update_yaxes(scaleanchor="x", scaleratio=1, constrain="domain")
    return fig


def _pool_max(values: np.ndarray, max_side: int) -> tuple[np.ndarray, int, int]:
    """Block maxima of `values` (m, n) so that each side is at most `max_side`."""
    m, n = values.shape
    fr, fc = max(1, math.ceil(m / max_side)), max(1, math.ceil(n / max_side))
    if fr == 1 and fc == 1:
        return values, 1, 1
    mp, np_ = math.ceil(m / fr), math.ceil(n / fc)
    padded = np.full((mp * fr, np_ * fc), -np.inf, dtype=values.dtype)
    padded[:m, :n] = values
    return padded.reshape(mp, fr, np_, fc).max(axis=(1, 3)), fr, fc


def fft_heatmap(
    magnitude: np.ndarray,
    row_freq: np.ndarray,
    col_freq: np.ndarray,
    *,
    title: str,
    log: bool = False,
    symmetrized: bool = False,
    max_side: int = 512,
    height: int = PANEL_HEIGHT,
) -> go.Figure:
    """|fftshift(fft2(M))| (m, n) over (output frequency, input frequency) in cycles/sample.

    Row i sits at `row_freq[i]` (y, ascending upwards), column j at `col_freq[j]` (x), zero
    frequency in the middle. `log` only relabels the values (log10 |F|, computed upstream);
    `symmetrized` says in the subtitle that the input-frequency sign was folded in. Larger
    spectra are shown as block maxima, so no peak disappears.
    """
    Z = np.asarray(magnitude, dtype=np.float32)
    if Z.ndim != 2 or Z.shape != (len(row_freq), len(col_freq)):
        raise ValueError(
            f"magnitude {Z.shape} does not match the frequency axes "
            f"({len(row_freq)}, {len(col_freq)})"
        )
    z, fr, fc = _pool_max(Z, max_side)
    value = "log₁₀|F|" if log else "|F|"
    parts = ["|fftshift(fft2)|"]
    if symmetrized:
        parts.append("symmetrised over the input-frequency sign")
    if log:
        parts.append("log₁₀ scale")
    if fr > 1 or fc > 1:
        parts.append(f"block maxima {fr}×{fc}")
    heat = go.Heatmap(
        z=z,
        x=np.asarray(col_freq, dtype=np.float32)[::fc],
        y=np.asarray(row_freq, dtype=np.float32)[::fr],
        colorscale=SEQUENTIAL,
        zmin=None if log else 0.0,
        colorbar={"title": {"text": value, "side": "right"}, "thickness": 14},
        hovertemplate=(
            f"input %{{x:.4f}}, output %{{y:.4f}} {FREQ_UNIT}<br>{value} = %{{z:.4g}}"
            "<extra></extra>"
        ),
    )
    fig = go.Figure(heat)
    fig.update_layout(
        template=register_template(),
        title={"text": f"{title}<br><sup>{', '.join(parts)}</sup>"},
        xaxis={"title": {"text": f"input frequency ({FREQ_UNIT})"}, "constrain": "domain"},
        yaxis={"title": {"text": f"output frequency ({FREQ_UNIT})"}},
        height=height,
        margin={"l": 60, "r": 10, "t": 70, "b": 50},
    )
    return fig


def fft_view_heatmap(view: Any, *, title: str) -> go.Figure:
    """`fft_heatmap` of an FFT view (``svdcore.fourier.FFTView``: magnitude, row_freq,
    col_freq, log, symmetrized)."""
    return fft_heatmap(
        view.magnitude,
        view.row_freq,
        view.col_freq,
        title=title,
        log=view.log,
        symmetrized=view.symmetrized,
    )


def basis_overlay(
    vectors: np.ndarray,
    basis: np.ndarray,
    sigma: np.ndarray,
    *,
    count: int = 8,
    columns: int = 4,
    title: str = "",
    axis_title: str = "descrambled output index",
) -> go.Figure:
    """Panel i: column i of `vectors` (n, r) (solid) with column i of `basis` (n, r) dashed
    on top (both stay visible where they coincide), for the first `count` columns; titled
    with sigma[i]."""
    U = np.asarray(vectors, dtype=np.float32)
    B = np.asarray(basis, dtype=np.float32)
    if U.ndim != 2 or U.shape != B.shape:
        raise ValueError(f"vectors {U.shape} and basis {B.shape} must have one shape (n, r)")
    n, r = U.shape
    k = max(1, min(count, r))
    cols = min(columns, k)
    rows = math.ceil(k / cols)
    titles = [f"u<sub>{i + 1}</sub>   σ = {float(sigma[i]):.4g}" for i in range(k)]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.05,
        vertical_spacing=min(0.3 / rows, 0.16) if rows > 1 else 0.0,
    )
    index = np.arange(n, dtype=np.int32)
    for i in range(k):
        row, col = divmod(i, cols)
        for values, (name, group, line, symbol) in ((U, _VECTOR), (B, _BASIS)):
            fig.add_trace(
                go.Scatter(
                    x=index,
                    y=values[:, i],
                    mode="lines",
                    name=name,
                    legendgroup=group,
                    showlegend=i == 0,
                    line=line,
                    hovertemplate=symbol + ": %{y:.3g}<extra></extra>",
                ),
                row=row + 1,
                col=col + 1,
            )
    fig.update_yaxes(zeroline=True, zerolinecolor="#cfd8dc", showticklabels=False)
    fig.update_xaxes(title_text=axis_title, title_standoff=4, row=rows, col=1)
    fig.update_annotations(font_size=12)
    height = 150 + 190 * rows
    fig.update_layout(
        template=register_template(),
        title={"text": title, "y": 1 - 14 / height, "yanchor": "top", "yref": "container"},
        height=height,
        margin={"t": 122},
        # one legend line between the title and the panel titles (the mode bar is on the right)
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 1 - 46 / height,
            "yanchor": "top",
            "yref": "container",
        },
        hovermode="x unified",
    )
    return fig


def objective_history(
    history: np.ndarray,
    *,
    bound: float | None = None,
    bound_label: str = "closed-form optimum",
    title: str = "",
    y_title: str = "objective",
) -> go.Figure:
    """The objective after each iterative step, with the closed-form optimum dashed."""
    h = np.asarray(history, dtype=np.float64)
    fig = go.Figure(
        go.Scatter(
            x=np.arange(1, h.size + 1, dtype=np.int32),
            y=h,
            mode="lines",
            name="iterative",
            line={"color": LINE},
            hovertemplate="step %{x}: %{y:.6g}<extra></extra>",
        )
    )
    if bound is not None and math.isfinite(bound):
        text = f"{bound_label} {bound:.6g}"
        level_line(fig, bound, text, color=ACCENT, dash="dash", position="top right")
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis={"title": {"text": "step"}},
        yaxis={"title": {"text": y_title}, "exponentformat": "power"},
        height=320,
        showlegend=False,
    )
    return fig
