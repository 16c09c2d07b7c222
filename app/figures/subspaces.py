"""Subspaces & residuals figures (Pattichis & Pattichis, Fig. 1 and 2): galleries of
vectors drawn as small images (or curves), the signal / residual split of one input, and
the singular values against the rank tolerance. Pure: arrays in, figures out."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.common import curve_axis, curve_trace, diverging_image
from app.figures.theme import ACCENT, LINE, MUTED, image_panel_axes, register_template
from app.figures.weights import symmetric_limit

__all__ = ["decomposition_figure", "panel_grid", "signal_gallery", "singular_values_figure"]


def panel_grid(
    panels: np.ndarray,
    titles: Sequence[str],
    *,
    image_shape: tuple[int, int] | None = None,
    axis_values: np.ndarray | None = None,
    axis_title: str = "index",
    title: str = "",
    columns: int = 5,
    shared_scale: bool = True,
    highlight: int | None = None,
    value_label: str = "value",
) -> go.Figure:
    """One panel per row of `panels` (k, n), titled by `titles`.

    With `image_shape` (h, w), h * w == n, each row is an h x w image on a diverging scale
    centred at 0 (blue < 0 < red); `shared_scale` gives all images one symmetric range (so
    brightness compares across panels, e.g. sigma_1 v_1 against sigma_9 v_9) and one colour
    bar. Otherwise each row is a curve over `axis_values` (length n) or the index.
    `highlight` draws panel i's title in the accent colour.
    """
    P = np.asarray(panels, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"expected (k, n) panels, got shape {P.shape}")
    k, n = P.shape
    if len(titles) != k:
        raise ValueError(f"{len(titles)} titles for {k} panels")
    if k == 0:
        fig = go.Figure()
        fig.update_layout(template=register_template(), title={"text": title}, height=120)
        return fig
    if image_shape is not None and image_shape[0] * image_shape[1] != n:
        image_shape = None
    cols = max(1, min(columns, k))
    rows = math.ceil(k / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=list(titles),
        horizontal_spacing=0.03 if image_shape else 0.05,
        vertical_spacing=min(0.3 / rows, 0.12) if rows > 1 else 0.0,
    )
    shared = symmetric_limit(P) if shared_scale else None
    x = curve_axis(axis_values, n, dtype=np.float64)
    for i in range(k):
        r, c = divmod(i, cols)
        if image_shape is not None:
            trace: go.Heatmap | go.Scatter = diverging_image(
                P[i].reshape(image_shape),
                limit=shared,
                showscale=shared is not None and i == 0,
                colorbar={"title": {"text": value_label, "side": "right"}, "thickness": 12},
            )
        else:
            trace = curve_trace(x, P[i], width=1.4)
        fig.add_trace(trace, row=r + 1, col=c + 1)
    if image_shape is not None:
        for i in range(k):
            image_panel_axes(fig, i)
        panel = 150 if cols >= 5 else 200
    else:
        fig.update_yaxes(zeroline=True, zerolinecolor="#cfd8dc", showticklabels=False)
        if shared_scale:
            top = symmetric_limit(P)
            fig.update_yaxes(range=[-1.05 * top, 1.05 * top])
        for c in range(cols):
            fig.update_xaxes(title_text=axis_title, title_standoff=2, row=rows, col=c + 1)
        panel = 150
    fig.update_annotations(font_size=11.5)
    if highlight is not None and 0 <= highlight < k:
        fig.layout.annotations[highlight].font = {"color": ACCENT, "size": 12}
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        showlegend=False,
        height=100 + panel * rows + (16 if "<br>" in title else 0),
        margin={"t": 102 if "<br>" in title else 86, "l": 30, "r": 30},
    )
    return fig


def signal_gallery(
    vectors: np.ndarray,
    sigma: np.ndarray,
    *,
    title: str,
    image_shape: tuple[int, int] | None = None,
    axis_values: np.ndarray | None = None,
    axis_title: str = "index",
    columns: int = 5,
) -> go.Figure:
    """The signal vectors sigma_i v_i (rows of `vectors`) on one shared colour scale, so
    the weaker ones look fainter (Pattichis Fig. 1, middle row; Fig. 2 for kernels)."""
    titles = [
        f"σ<sub>{i + 1}</sub>v<sub>{i + 1}</sub> · σ = {float(s):.3g}" for i, s in enumerate(sigma)
    ]
    return panel_grid(
        vectors,
        titles,
        image_shape=image_shape,
        axis_values=axis_values,
        axis_title=axis_title,
        title=title,
        columns=columns,
        shared_scale=True,
        value_label="σv",
    )


def decomposition_figure(
    x: np.ndarray,
    signal: np.ndarray,
    residual: np.ndarray,
    energy_ratio: float,
    *,
    title: str,
    image_shape: tuple[int, int] | None = None,
    axis_values: np.ndarray | None = None,
    axis_title: str = "index",
) -> go.Figure:
    """x = signal + residual for one input: three images on one colour scale, or, for
    curves, the three on one axis."""
    removed = 100.0 * float(energy_ratio)
    labels = [
        "input x",
        f"signal V<sub>r</sub>V<sub>r</sub><sup>T</sup>x · kept {100.0 - removed:.1f} %",
        f"residual x − signal · removed {removed:.1f} %",
    ]
    stack = np.stack([np.ravel(x), np.ravel(signal), np.ravel(residual)])
    n = stack.shape[1]
    if image_shape is not None and image_shape[0] * image_shape[1] == n:
        fig = panel_grid(
            stack, labels, image_shape=image_shape, title=title, columns=3, value_label="value"
        )
        fig.update_layout(height=330)
        return fig
    xs = curve_axis(axis_values, n, dtype=np.float64)
    xs = np.arange(n) if xs is None else xs
    fig = go.Figure()
    for values, label, color, dash in zip(
        stack, labels, (MUTED, LINE, ACCENT), ("solid", "solid", "dot"), strict=True
    ):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=values,
                mode="lines",
                name=label.replace("<sub>", "").replace("</sub>", "").replace("<sup>T</sup>", "ᵀ"),
                line={"color": color, "width": 1.6, "dash": dash},
            )
        )
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis={"title": {"text": axis_title}},
        yaxis={"title": {"text": "value"}, "zeroline": True, "zerolinecolor": "#cfd8dc"},
        height=340,
        legend={"orientation": "h", "y": -0.25},
        hovermode="x unified",
    )
    return fig


def singular_values_figure(
    sigma: np.ndarray, rank: int, rtol: float, *, title: str = ""
) -> go.Figure:
    """sigma_i (log scale) with the rank cut rtol * sigma_1; the kept ones in colour."""
    s = np.asarray(sigma, dtype=np.float64)
    idx = np.arange(1, s.size + 1)
    kept = idx <= rank
    floor = np.finfo(np.float64).tiny
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=idx[kept],
            y=np.maximum(s[kept], floor),
            mode="markers",
            name="σᵢ in the signal space",
            marker={"color": LINE, "size": 7},
        )
    )
    if (~kept).any():
        fig.add_trace(
            go.Scatter(
                x=idx[~kept],
                y=np.maximum(s[~kept], floor),
                mode="markers",
                name="below the tolerance",
                marker={"color": MUTED, "size": 7, "symbol": "x"},
            )
        )
    if s.size and s[0] > 0:
        cut = max(rtol * s[0], floor)
        fig.add_trace(
            go.Scatter(
                x=[0.5, s.size + 0.5],
                y=[cut, cut],
                mode="lines",
                name=f"rank cut rtol·σ₁ = {rtol * s[0]:.3g}",
                line={"dash": "dash", "color": ACCENT, "width": 1},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis={"title": {"text": "i"}},
        yaxis={"title": {"text": "σᵢ"}, "type": "log", "exponentformat": "power"},
        height=300,
        showlegend=True,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    )
    return fig
