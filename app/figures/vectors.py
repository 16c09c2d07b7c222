"""Gallery of singular vectors: small diverging images or curves, each titled with sigma,
optionally with fitted curves (dashed) and their R² in the titles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.common import curve_axis, curve_trace, diverging_image
from app.figures.theme import FIT, image_panel_axes, register_template

__all__ = ["FitPart", "r2_text", "side_gallery", "vector_gallery"]


class FitPart(Protocol):
    """What the gallery reads of one fitted part (e.g. ``svdcore.signal_models.Fit``):
    ``fitted`` (stop - start,) over the vector's entries ``span = (start, stop)``, and ``r2``."""

    fitted: np.ndarray
    span: tuple[int, int]
    r2: float


def r2_text(parts: Sequence[FitPart]) -> str:
    """ "R² 0.989 | 0.965": one value per part, 3 decimals, "n/a" where R² is undefined."""
    values = [float(p.r2) for p in parts]
    return "R² " + " | ".join("n/a" if not math.isfinite(v) else f"{v:.3f}" for v in values)


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
    fits: Sequence[Sequence[FitPart] | None] | None = None,
) -> go.Figure:
    """One panel per row of `vectors` (k, n), titled "<symbol>_i  σ = sigma[i]".

    With `image_shape` (h, w), h * w == n, each vector is drawn as an h x w image with its
    own symmetric colour range centred at 0 (blue < 0 < red). Otherwise it is a curve over
    `axis_values` (length n, e.g. time in µs) or over the index; where the axis restarts
    (its values decrease: two signals side by side) the curve is broken, not joined back.

    `fits` (curves only; ignored for images): per vector, its fitted parts or None. Each
    part's `fitted` values are drawn dashed over the same x values as the vector's entries
    `span`, one trace per part (parts are not joined across a split), and the panel title
    gets a second line "R² 0.989 | 0.965" (one value per part).
    """
    V = np.asarray(vectors, dtype=np.float32)
    if V.ndim != 2:
        raise ValueError(f"expected (k, n) vectors, got shape {V.shape}")
    k, n = V.shape
    if image_shape is not None and image_shape[0] * image_shape[1] != n:
        image_shape = None  # the view's image shape does not fit these vectors: draw curves
    cols = max(1, min(columns, k))
    rows = max(1, math.ceil(k / cols))
    if image_shape is not None or fits is None:
        fits = [None] * k
    elif len(fits) != k:
        raise ValueError(f"expected one entry of fits per vector ({k}), got {len(fits)}")
    titles = [f"{symbol}<sub>{i + 1}</sub>   σ = {float(sigma[i]):.4g}" for i in range(k)]
    titles = [t if not f else f"{t}<br>{r2_text(f)}" for t, f in zip(titles, fits, strict=True)]
    two_lines = any(fits)  # room for the R² line under each title
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.04 if image_shape else 0.06,
        vertical_spacing=min((0.5 if two_lines else 0.36) / rows, 0.2 if two_lines else 0.14)
        if rows > 1
        else 0.0,
    )
    x = None if image_shape is not None else curve_axis(axis_values, n, dtype=np.float32)
    for i in range(k):
        r, c = divmod(i, cols)
        if image_shape is not None:
            trace: go.Heatmap | go.Scatter = diverging_image(V[i].reshape(image_shape))
        else:
            trace = curve_trace(*_break_at_restarts(x, V[i]), width=1.5)
        fig.add_trace(trace, row=r + 1, col=c + 1)
        for j, part in enumerate(fits[i] or ()):
            fig.add_trace(_fit_trace(part, x, n, j, len(fits[i] or ())), row=r + 1, col=c + 1)
    if image_shape is not None:
        for i in range(k):
            image_panel_axes(fig, i)
        panel = 190
    else:
        fig.update_yaxes(zeroline=True, zerolinecolor="#cfd8dc", showticklabels=False)
        fig.update_xaxes(title_text=None)
        for c in range(cols):
            fig.update_xaxes(title_text=axis_title, row=rows, col=c + 1)
        panel = 200 if two_lines else 170
    fig.update_annotations(font_size=12)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        showlegend=False,
        height=90 + panel * rows,
        margin={"t": 96 if two_lines else 80},
    )
    return fig


def side_gallery(
    vectors: Any,
    side: str,
    *,
    title: str,
    axis_title: str = "index",
    fits: Sequence[Sequence[FitPart] | None] | None = None,
) -> go.Figure:
    """`vector_gallery` of one side of a layer's singular vectors (`vectors`: right and
    left (k, n), sigma, and the layer's view info): "right" draws v over the view's columns
    (its column image shape or axis), "left" draws u over its rows."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', not {side!r}")
    info = vectors.info
    right = side == "right"
    axis = info.col_axis if right else info.row_axis
    return vector_gallery(
        vectors.right if right else vectors.left,
        vectors.sigma,
        symbol="v" if right else "u",
        title=title,
        image_shape=info.col_image_shape if right else info.row_image_shape,
        axis_values=None if axis is None else axis.values,
        axis_title=axis_title,
        fits=fits,
    )


def _break_at_restarts(x: np.ndarray | None, y: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(x, y) with a NaN gap before every index where x decreases (plotly does not join
    across it); unchanged without an axis or for a monotone one."""
    if x is None:
        return None, y
    restarts = np.flatnonzero(np.diff(x) < 0) + 1
    if restarts.size == 0:
        return x, y
    return np.insert(x, restarts, np.nan), np.insert(y, restarts, np.nan)


def _fit_trace(part: FitPart, x: np.ndarray | None, n: int, j: int, parts: int) -> go.Scatter:
    """The dashed fitted curve of one part over its entries' x values (the index if none)."""
    start, stop = (int(v) for v in part.span)
    y = np.asarray(part.fitted, dtype=np.float32).reshape(-1)
    if not (0 <= start < stop <= n and y.size == stop - start):
        raise ValueError(f"a fit of {y.size} values over span {part.span} does not fit n = {n}")
    xs = np.arange(start, stop) if x is None else x[start:stop]
    where = f"part {j + 1}, " if parts > 1 else ""
    r2 = float(part.r2)
    return go.Scatter(
        x=xs,
        y=y,
        mode="lines",
        line={"color": FIT, "width": 1.5, "dash": "dash"},
        name="fit",
        hovertemplate=(
            f"%{{x}}: fit %{{y:.3g}}<extra>{where}R² "
            f"{'n/a' if not math.isfinite(r2) else f'{r2:.3f}'}</extra>"
        ),
    )
