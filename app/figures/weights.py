"""Weight-matrix heatmap: diverging scale centred at 0, max-abs pooled when large."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app.figures.pooling import pool_max_abs
from app.figures.theme import DIVERGING, register_template

__all__ = ["symmetric_limit", "weights_heatmap"]


def symmetric_limit(values: np.ndarray, *, percentile: float | None = None) -> float:
    """max |finite value| (or that ``percentile`` of |finite values|), 1.0 if that is 0.

    The fallback keeps the colour scale valid for all-zero / all-NaN arrays.
    """
    finite = np.abs(values[np.isfinite(values)])
    if not finite.size:
        return 1.0
    top = float(np.percentile(finite, percentile) if percentile else finite.max())
    return top if top > 0 else 1.0


def weights_heatmap(
    matrix: np.ndarray,
    *,
    title: str = "",
    row_label: str = "row",
    col_label: str = "column",
    max_side: int = 512,
    row_values: np.ndarray | None = None,
    col_values: np.ndarray | None = None,
    clip_percentile: float | None = None,
    value_label: str = "weight",
) -> go.Figure:
    """Heatmap of `matrix` (m, n) with row 0 at the top.

    Colour limits are symmetric (-a, a) with a = max |w| and zmid = 0, so white means zero.
    Matrices longer than `max_side` on an axis are max-abs pooled (see `pool_max_abs`); the
    title then states the block size, and the x/y coordinates are the block start indices.
    `row_values` / `col_values` (length m / n, e.g. time in µs) replace the indices as
    coordinates (the first entry of each block when pooled).
    With `clip_percentile` (e.g. 99), the limit is that percentile of |w| over the whole
    (unpooled) matrix, so a few outliers no longer wash out the rest; cells beyond it
    saturate and the title counts them. `value_label` names the values (colour bar, hover).
    """
    pooled = pool_max_abs(matrix, max_side=max_side)
    z = pooled.values
    m, n = np.shape(matrix)
    if clip_percentile:
        limit = symmetric_limit(np.asarray(matrix), percentile=clip_percentile)
        beyond = int(np.count_nonzero(np.abs(matrix) > limit))
        clip_note = (
            f"; colour clipped at ±{limit:.3g} ({clip_percentile:g}th pct |w|, {beyond} beyond)"
        )
    else:
        limit = symmetric_limit(z)
        clip_note = ""
    fr, fc = pooled.row_factor, pooled.col_factor
    symbol = "w" if value_label == "weight" else value_label
    if pooled.pooled:
        note = f"max-abs pooled {fr}×{fc} (shown {z.shape[0]}×{z.shape[1]} of {m}×{n})"
        hover = (
            f"{row_label} %{{y}}…+{fr - 1}<br>{col_label} %{{x}}…+{fc - 1}"
            f"<br>largest |{symbol}| in block: %{{z:.4g}}<extra></extra>"
        )
    else:
        note = f"{m}×{n}"
        hover = f"{row_label} %{{y}}<br>{col_label} %{{x}}<br>{symbol} = %{{z:.4g}}<extra></extra>"
    coords: dict[str, object] = {"x0": 0, "dx": fc, "y0": 0, "dy": fr}
    if col_values is not None and len(col_values) == n:
        coords.update(x=np.asarray(col_values, dtype=np.float32)[::fc])
        del coords["x0"], coords["dx"]
    if row_values is not None and len(row_values) == m:
        coords.update(y=np.asarray(row_values, dtype=np.float32)[::fr])
        del coords["y0"], coords["dy"]
    heat = go.Heatmap(
        z=z,
        **coords,
        zmid=0.0,
        zmin=-limit,
        zmax=limit,
        colorscale=DIVERGING,
        colorbar={"title": {"text": value_label, "side": "right"}, "thickness": 14},
        hovertemplate=hover,
    )
    fig = go.Figure(heat)
    fig.update_layout(
        template=register_template(),
        # the shape / pooling / clipping note goes on a second, smaller line
        title={"text": f"{title}<br><sup>{note}{clip_note}</sup>" if title else note + clip_note},
        xaxis={"title": {"text": col_label}, "constrain": "domain"},
        yaxis={"title": {"text": row_label}, "autorange": "reversed"},
        height=620,
    )
    return fig
