"""Gallery of singular vectors: small diverging images or curves, each titled with sigma."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.theme import DIVERGING, LINE, image_panel_axes, register_template
from app.figures.weights import symmetric_limit

__all__ = ["vector_gallery"]


def vector_gallery(
    vectors: np.ndarray,
    sigma: np.ndarray,
    *,
    symbol: str = "v",
    title: str = "",
    image_shape: tuple[int, int] | None = None,
    axis_values: np.ndarray | None = None,
    axis_title: str = "index",
    columns: int = 4,
) -> go.Figure:
    """One panel per row of `vectors` (k, n), titled "<symbol>_i  σ = sigma[i]".

    With `image_shape` (h, w), h * w == n, each vector is drawn as an h x w image with its
    own symmetric colour range centred at 0 (blue < 0 < red). Otherwise it is a curve over
    `axis_values` (length n, e.g. time in µs) or over the index.
    """
    V = np.asarray(vectors, dtype=np.float32)
    if V.ndim != 2:
        raise ValueError(f"expected (k, n) vectors, got shape {V.shape}")
    k, n = V.shape
    if image_shape is not None and image_shape[0] * image_shape[1] != n:
        image_shape = None  # the view's image shape does not fit these vectors: draw curves
    cols = max(1, min(columns, k))
    rows = max(1, math.ceil(k / cols))
    titles = [f"{symbol}<sub>{i + 1}</sub>   σ = {float(sigma[i]):.4g}" for i in range(k)]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.04 if image_shape else 0.06,
        vertical_spacing=min(0.36 / rows, 0.14) if rows > 1 else 0.0,
    )
    x = None
    if image_shape is None and axis_values is not None and len(axis_values) == n:
        x = np.asarray(axis_values, dtype=np.float32)
    for i in range(k):
        r, c = divmod(i, cols)
        if image_shape is not None:
            limit = symmetric_limit(V[i])
            trace: go.Heatmap | go.Scatter = go.Heatmap(
                z=V[i].reshape(image_shape),
                zmid=0.0,
                zmin=-limit,
                zmax=limit,
                colorscale=DIVERGING,
                showscale=False,
                hovertemplate="(%{y}, %{x}): %{z:.3g}<extra></extra>",
            )
        else:
            trace = go.Scatter(
                x=x,
                y=V[i],
                mode="lines",
                line={"color": LINE, "width": 1.5},
                hovertemplate="%{x}: %{y:.3g}<extra></extra>",
            )
        fig.add_trace(trace, row=r + 1, col=c + 1)
    if image_shape is not None:
        for i in range(k):
            image_panel_axes(fig, i)
        panel = 190
    else:
        fig.update_yaxes(zeroline=True, zerolinecolor="#cfd8dc", showticklabels=False)
        fig.update_xaxes(title_text=None)
        for c in range(cols):
            fig.update_xaxes(title_text=axis_title, row=rows, col=c + 1)
        panel = 170
    fig.update_annotations(font_size=12)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        showlegend=False,
        height=90 + panel * rows,
        margin={"t": 80},
    )
    return fig
