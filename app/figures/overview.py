"""Model overview: one small spectrum (sigma_i / sigma_1 on a log axis) per layer."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.theme import LINE, register_template

__all__ = ["sparklines_figure"]

COLUMNS = 6
ROW_HEIGHT = 120


def sparklines_figure(
    spectra: Mapping[str, np.ndarray],
    alphas: Mapping[str, float] | None = None,
    *,
    title: str = "",
) -> go.Figure:
    """Small multiples, one line per layer in the given order: sigma_i / sigma_1 against i
    (log y). Subplot titles carry the layer name and, when known, its ESD alpha. Zero
    values have no place on a log axis and are left out."""
    names = list(spectra)
    alphas = alphas or {}
    cols = max(1, min(COLUMNS, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    titles = []
    for name in names:
        a = alphas.get(name)
        ok = a is not None and math.isfinite(a)
        titles.append(f"{name} · α={a:.2f}" if ok else name)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles or None,
        horizontal_spacing=0.03,
        vertical_spacing=min(0.12, 0.5 / rows) if rows > 1 else 0.0,
    )
    for k, name in enumerate(names):
        s = np.asarray(spectra[name], dtype=np.float32)
        y = np.where(s > 0, s, np.nan).astype(np.float32)
        x = np.arange(1, s.size + 1, dtype=np.int32)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=name,
                line={"color": LINE, "width": 1.5},
                hovertemplate=name + ": σ<sub>%{x}</sub>/σ<sub>1</sub> = %{y:.3g}<extra></extra>",
            ),
            row=k // cols + 1,
            col=k % cols + 1,
        )
    fig.update_yaxes(type="log", showticklabels=False, showgrid=False)
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_annotations(font={"size": 11})
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        showlegend=False,
        height=60 + ROW_HEIGHT * rows,
        margin={"l": 20, "r": 20, "t": 70 if title else 30, "b": 10},
    )
    return fig
