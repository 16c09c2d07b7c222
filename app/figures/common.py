"""Pieces several figures draw alike: a curve's x coordinates, a curve panel, a diverging
image panel, a spectrum relative to its first value and an annotated level line. Pure:
arrays in, plotly traces out (or added to a figure)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from app.figures.theme import DIVERGING, LINE
from app.figures.weights import symmetric_limit

__all__ = ["curve_axis", "curve_trace", "diverging_image", "level_line", "relative_spectrum"]


def curve_axis(
    axis_values: np.ndarray | None, n: int, *, dtype: npt.DTypeLike | None = None
) -> np.ndarray | None:
    """The x coordinates of a curve of `n` points: `axis_values` (as an array of `dtype`
    when given, else as they are), or None (plotly's index) when there are none or their
    length is not `n`."""
    if axis_values is None or len(axis_values) != n:
        return None
    return axis_values if dtype is None else np.asarray(axis_values, dtype=dtype)


def curve_trace(x: np.ndarray | None, y: np.ndarray, *, width: float) -> go.Scatter:
    """One panel's curve: y over x (None: the index) in the line colour, hover "x: y"."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        line={"color": LINE, "width": width},
        hovertemplate="%{x}: %{y:.3g}<extra></extra>",
    )


def diverging_image(z: np.ndarray, *, limit: float | None = None, **extra: Any) -> go.Heatmap:
    """`z` as an image on the diverging scale, white at zero, over ±`limit` (default: its
    own max |z|); no colour bar unless `extra` (more heatmap properties) asks for one."""
    limit = symmetric_limit(z) if limit is None else limit
    options: dict[str, Any] = {"showscale": False, **extra}
    return go.Heatmap(
        z=z,
        zmid=0.0,
        zmin=-limit,
        zmax=limit,
        colorscale=DIVERGING,
        hovertemplate="(%{y}, %{x}): %{z:.3g}<extra></extra>",
        **options,
    )


def relative_spectrum(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k = 1..r, sigma_k / sigma_1 as float32) of the singular values `S` (flattened);
    unscaled when sigma_1 is not positive."""
    s = np.asarray(S, dtype=np.float64).reshape(-1)
    rel = s / s[0] if s.size and s[0] > 0 else s
    return np.arange(1, s.size + 1), rel.astype(np.float32)


def level_line(
    fig: go.Figure, y: float, text: str, *, color: str, dash: str, position: str, **where: Any
) -> None:
    """A thin horizontal `dash` line at `y` in `color`, labelled `text` at `position` (e.g.
    "top right"); `where` (row=, col=) picks the subplot."""
    fig.add_hline(
        y=y,
        line={"dash": dash, "color": color, "width": 1},
        annotation_text=text,
        annotation_position=position,
        annotation_font={"color": color, "size": 11},
        **where,
    )
