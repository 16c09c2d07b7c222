"""Dataset-wide spectral surgery figures: singular-vector similarity across samples
(SpecXAI Fig. 5) and the top singular vector and spectrum at each depth (Fig. 6)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.common import curve_axis, relative_spectrum
from app.figures.surgery import image_trace
from app.figures.theme import DIVERGING, LINE, register_template

__all__ = ["depth_figure", "similarity_heatmap"]


def similarity_heatmap(
    matrix: np.ndarray, *, labels: np.ndarray | None = None, title: str = ""
) -> go.Figure:
    """Cosine similarities (n, n) in [-1, 1], white = 0 (diverging, zero-centred). With
    class `labels` (samples already grouped by class), ticks mark where each class starts."""
    m = np.asarray(matrix, dtype=np.float32)
    n = m.shape[0]
    fig = go.Figure(
        go.Heatmap(
            z=m,
            zmid=0.0,
            zmin=-1.0,
            zmax=1.0,
            colorscale=DIVERGING,
            colorbar={"title": {"text": "cos", "side": "right"}, "thickness": 14},
            hovertemplate="sample %{y} · sample %{x}<br>⟨φ, φ'⟩ = %{z:.3f}<extra></extra>",
        )
    )
    axis: dict[str, object] = {"constrain": "domain"}
    if labels is not None and len(labels) == n:
        lab = np.asarray(labels)
        starts = [0, *(np.flatnonzero(lab[1:] != lab[:-1]) + 1).tolist()]
        axis.update(tickvals=starts, ticktext=[f"class {lab[s]}" for s in starts])
        for s in starts[1:]:
            for kind in ("h", "v"):
                line = (
                    {"x0": -0.5, "x1": n - 0.5, "y0": s - 0.5, "y1": s - 0.5}
                    if kind == "h"
                    else {"y0": -0.5, "y1": n - 0.5, "x0": s - 0.5, "x1": s - 0.5}
                )
                fig.add_shape(type="line", line={"color": "#37474f", "width": 0.6}, **line)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis={**axis, "title": {"text": "sample"}, "scaleanchor": "y"},
        yaxis={**axis, "title": {"text": "sample"}, "autorange": "reversed"},
        height=560,
    )
    return fig


def depth_figure(
    splits: Sequence[str],
    tops: Sequence[np.ndarray],
    contracted: Sequence[np.ndarray],
    spectra: Sequence[np.ndarray],
    *,
    title: str = "",
    axis_values: np.ndarray | None = None,
    axis_label: str = "input index",
) -> go.Figure:
    """One column per split (network order): the top singular vector phi_1 (row 1, image
    or curve), phi_1 contracted with the input (row 2) and the spectrum sigma_k / sigma_1
    (row 3, bars)."""
    n = len(splits)
    fig = make_subplots(
        rows=3,
        cols=n,
        subplot_titles=[f"{s}: φ₁" for s in splits]
        + [f"{s}: φ₁ · x (contracted)" for s in splits]
        + [f"{s}: σₖ / σ₁ (r = {len(S)})" for s, S in zip(splits, spectra, strict=True)],
        horizontal_spacing=0.04,
        vertical_spacing=0.1,
        row_heights=[0.36, 0.36, 0.28],
    )
    for c, (top, con, S) in enumerate(zip(tops, contracted, spectra, strict=True)):
        for r, panel in ((1, top), (2, con)):
            if np.ndim(panel) == 2:
                fig.add_trace(image_trace(panel, diverging=True), row=r, col=c + 1)
                index = (r - 1) * n + c + 1
                fig.update_xaxes(
                    scaleanchor="y" if index == 1 else f"y{index}",
                    constrain="domain",
                    visible=False,
                    row=r,
                    col=c + 1,
                )
                fig.update_yaxes(
                    autorange="reversed", constrain="domain", visible=False, row=r, col=c + 1
                )
            else:
                y = np.asarray(panel, dtype=np.float32).reshape(-1)
                x = curve_axis(axis_values, y.size)
                fig.add_trace(
                    go.Scatter(x=x, y=y, mode="lines", line={"color": LINE, "width": 1.3}),
                    row=r,
                    col=c + 1,
                )
                if r == 2:
                    fig.update_xaxes(title_text=axis_label, row=r, col=c + 1)
        index, relative = relative_spectrum(S)
        fig.add_trace(
            go.Bar(
                x=index,
                y=relative,
                marker_color=LINE,
                hovertemplate="k = %{x}<br>σₖ/σ₁ = %{y:.3g}<extra></extra>",
            ),
            row=3,
            col=c + 1,
        )
        fig.update_xaxes(title_text="k", row=3, col=c + 1)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        showlegend=False,
        height=680,
        bargap=0.1,
    )
    return fig
