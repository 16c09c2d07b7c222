"""Weight-matrix heatmap: diverging scale centred at 0, max-abs pooled when large."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app.figures.pooling import Pooled, pool_max_abs
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
    window: tuple[int, int, int, int] | None = None,
    context_side: int = 160,
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

    `window = (r0, r1, c0, c1)` (half-open index ranges, e.g. the region a user zoomed
    into) draws that part at up to `max_side` cells per axis, so a small enough window shows
    one cell per weight, over the whole matrix pooled to `context_side` (the context around
    it, revealed by panning out); the axes open on the window and both layers share one
    colour scale. Windows apply to index coordinates only: with `row_values` /
    `col_values`, or a matrix that fits unpooled anyway, `window` is ignored.
    """
    if window is not None and row_values is None and col_values is None:
        W = np.asarray(matrix)
        if max(W.shape) > max_side:
            return _windowed_heatmap(
                W,
                window,
                title=title,
                row_label=row_label,
                col_label=col_label,
                max_side=max_side,
                context_side=context_side,
                clip_percentile=clip_percentile,
                value_label=value_label,
            )
    pooled = pool_max_abs(matrix, max_side=max_side)
    z = pooled.values
    m, n = np.shape(matrix)
    # an axis that is not monotone (e.g. ILR's time axis, 0-800 ms once per input half)
    # would stack its parts on top of each other: index coordinates, and the label says why
    if col_values is not None and len(col_values) == n and not _monotone(col_values):
        col_values, col_label = None, f"{col_label.split(' (')[0]} index (the axis restarts)"
    if row_values is not None and len(row_values) == m and not _monotone(row_values):
        row_values, row_label = None, f"{row_label.split(' (')[0]} index (the axis restarts)"
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
    hover = _cell_hover(pooled, row_label=row_label, col_label=col_label, value_label=value_label)
    if pooled.pooled:
        note = f"max-abs pooled {fr}×{fc} (shown {z.shape[0]}×{z.shape[1]} of {m}×{n})"
    else:
        note = f"{m}×{n}"
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


def _symbol(value_label: str) -> str:
    """The values' symbol in hover texts: w for weights, else the label itself."""
    return "w" if value_label == "weight" else value_label


def _cell_hover(pooled: Pooled, *, row_label: str, col_label: str, value_label: str) -> str:
    """The hover text of a heatmap cell of `pooled`: its block and largest |value| when
    pooled, else its row, column and value."""
    symbol = _symbol(value_label)
    if not pooled.pooled:
        return f"{row_label} %{{y}}<br>{col_label} %{{x}}<br>{symbol} = %{{z:.4g}}<extra></extra>"
    fr, fc = pooled.row_factor, pooled.col_factor
    return (
        f"{row_label} %{{y}}…+{fr - 1}<br>{col_label} %{{x}}…+{fc - 1}"
        f"<br>largest |{symbol}| in block: %{{z:.4g}}<extra></extra>"
    )


def _monotone(values: np.ndarray) -> bool:
    """Strictly increasing or strictly decreasing (a usable heatmap coordinate)."""
    step = np.diff(np.asarray(values, dtype=np.float64))
    return bool(np.all(step > 0) or np.all(step < 0))


def _windowed_heatmap(
    W: np.ndarray,
    window: tuple[int, int, int, int],
    *,
    title: str,
    row_label: str,
    col_label: str,
    max_side: int,
    context_side: int,
    clip_percentile: float | None,
    value_label: str,
) -> go.Figure:
    m, n = W.shape
    r0, r1, c0, c1 = (int(v) for v in window)
    r0, c0 = min(max(r0, 0), m - 1), min(max(c0, 0), n - 1)
    r1, c1 = min(max(r1, r0 + 1), m), min(max(c1, c0 + 1), n)
    limit = symmetric_limit(W, percentile=clip_percentile)
    context = pool_max_abs(W, max_side=context_side)
    detail = pool_max_abs(W[r0:r1, c0:c1], max_side=max_side)
    symbol = _symbol(value_label)
    common = {"zmid": 0.0, "zmin": -limit, "zmax": limit, "colorscale": DIVERGING}
    cfr, cfc = context.row_factor, context.col_factor
    fr, fc = detail.row_factor, detail.col_factor
    hover = _cell_hover(detail, row_label=row_label, col_label=col_label, value_label=value_label)
    resolution = f"max-abs pooled {fr}×{fc}" if detail.pooled else "one cell per weight"
    fig = go.Figure(
        [
            go.Heatmap(
                z=context.values,
                x0=0,
                dx=cfc,
                y0=0,
                dy=cfr,
                showscale=False,
                name="overview",
                hovertemplate=(
                    f"overview block {row_label} %{{y}}…+{cfr - 1}, {col_label} %{{x}}…+{cfc - 1}"
                    f"<br>largest |{symbol}|: %{{z:.4g}}<extra></extra>"
                ),
                **common,
            ),
            go.Heatmap(
                z=detail.values,
                x0=c0,
                dx=fc,
                y0=r0,
                dy=fr,
                name="zoomed",
                colorbar={"title": {"text": value_label, "side": "right"}, "thickness": 14},
                hovertemplate=hover,
                **common,
            ),
        ]
    )
    clip = (
        f"; colour clipped at ±{limit:.3g} ({clip_percentile:g}th pct |w|)"
        if clip_percentile
        else ""
    )
    note = (
        f"rows {r0}–{r1 - 1}, columns {c0}–{c1 - 1} of {m}×{n}: {resolution} "
        f"(outside: the whole matrix pooled {cfr}×{cfc}; double-click to zoom out){clip}"
    )
    fig.update_layout(
        template=register_template(),
        title={"text": f"{title}<br><sup>{note}</sup>" if title else note},
        xaxis={"title": {"text": col_label}, "range": [c0 - 0.5, c1 - 0.5], "autorange": False},
        yaxis={"title": {"text": row_label}, "range": [r1 - 0.5, r0 - 0.5], "autorange": False},
        height=620,
    )
    return fig
