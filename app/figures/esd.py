"""The empirical spectral density (ESD) of a layer and its fits, in three panels.

Left: the density of the eigenvalues of W^T W on log-log axes (log-spaced bins), with the
ESD of the element-shuffled copy, the fitted Marchenko-Pastur bulk and the power-law tail
p(lambda) ~ lambda^(-alpha) from xmin; the xmin line is draggable (the figure's first
shape, `XMIN_SHAPE`). Middle: the KS distance of the power-law fit for every candidate xmin
(click one to choose it). Right: Hill's estimate against the number k of top eigenvalues.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.theme import ACCENT, FIT, LINE, MUTED, register_template

__all__ = ["XMIN_SHAPE", "esd_figure", "histogram_density"]

XMIN_SHAPE = 0  # index of the draggable xmin line in layout.shapes
_SHUFFLED = "#8e7cc3"
_MP = "#2e8b57"


def histogram_density(
    values: np.ndarray, edges: np.ndarray, *, total: int
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a step outline of counts / (total * bin width) on `edges`: each run of
    non-empty bins is one staircase (x the run's edges, y its densities with the last one
    repeated), runs apart by a NaN (empty bins have no place on a log axis, and a lone
    bin, such as one spike's, is still drawn)."""
    counts, _ = np.histogram(values, bins=edges)
    density = counts / (max(total, 1) * np.diff(edges))
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    full = np.flatnonzero(counts > 0)
    if full.size:
        breaks = np.flatnonzero(np.diff(full) > 1) + 1
        for run in np.split(full, breaks):
            a, b = run[0], run[-1] + 1
            xs += [edges[a : b + 1], [np.nan]]
            ys += [np.r_[density[a:b], density[b - 1]], [np.nan]]
    if not xs:
        return np.empty(0), np.empty(0)
    return np.concatenate(xs[:-1]), np.concatenate(ys[:-1])


def esd_figure(
    eigenvalues: np.ndarray,
    *,
    thresh: float,
    xmin: float | None = None,
    alpha: float | None = None,
    n_tail: int | None = None,
    xmins: np.ndarray | None = None,
    Ds: np.ndarray | None = None,
    auto_xmin: float | None = None,
    hill_ks: np.ndarray | None = None,
    hill_alphas: np.ndarray | None = None,
    hill_k: int | None = None,
    mp: dict[str, Any] | None = None,
    spikes: np.ndarray | None = None,
    shuffled: np.ndarray | None = None,
    title: str = "",
) -> go.Figure:
    """The three ESD panels (module docstring). `eigenvalues` all min(m, n) of W^T W; those
    above `thresh` are drawn. `mp`: {"x", "y", "lambda_plus"}: the fitted
    bulk's density curve (`app.services.esd.mp_curve`) and its edge."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    ev = np.sort(ev[ev > thresh])
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.5, 0.25, 0.25],
        subplot_titles=(
            "ESD: density of the eigenvalues λ of WᵀW",
            "KS distance D for each xmin",
            "Hill's α from the top k",
        ),
        horizontal_spacing=0.08,
    )
    shapes: list[dict] = []
    if ev.size:
        lo, hi = ev[0], ev[-1]
        if hi <= lo:
            lo, hi = lo / 2, hi * 2
        edges = np.geomspace(lo, hi * (1 + 1e-9), int(np.clip(2 * math.sqrt(ev.size), 20, 120)) + 1)
        x, y = histogram_density(ev, edges, total=ev.size)
        esd = _step(x, y, "ESD", LINE, hover="λ %{x:.4g}: density %{y:.3g} (click: xmin)")
        esd.customdata = np.full(x.size, "xmin")  # what a click on it chooses
        fig.add_trace(esd, 1, 1)
        if shuffled is not None:
            sh = np.asarray(shuffled, dtype=np.float64)
            sh = sh[sh > thresh]
            lo2, hi2 = min(lo, sh.min(initial=lo)), max(hi, sh.max(initial=hi))
            edges2 = np.geomspace(lo2, hi2 * (1 + 1e-9), edges.size)
            x2, y2 = histogram_density(sh, edges2, total=sh.size)
            fig.add_trace(
                _step(x2, y2, "shuffled copy", _SHUFFLED, dash="dot", hover="shuffled λ %{x:.4g}"),
                1,
                1,
            )
        if mp is not None:
            fig.add_trace(
                go.Scatter(
                    x=mp["x"],
                    y=mp["y"],
                    mode="lines",
                    name="Marchenko-Pastur bulk",
                    line={"color": _MP, "width": 2},
                    hovertemplate="MP density %{y:.3g} at λ %{x:.4g}<extra></extra>",
                ),
                1,
                1,
            )
            shapes.append(_vline(mp["lambda_plus"], _MP, "dash"))
        if xmin is not None and alpha is not None and n_tail:
            xt = np.geomspace(xmin, max(hi, xmin * 1.01), 120)
            yt = n_tail / ev.size * (alpha - 1) / xmin * (xt / xmin) ** (-alpha)
            fig.add_trace(
                go.Scatter(
                    x=xt,
                    y=yt,
                    mode="lines",
                    name=f"power law α = {alpha:.3f}",
                    line={"color": FIT, "dash": "dash", "width": 2},
                    hovertemplate="λ^(-α) tail: %{y:.3g} at λ %{x:.4g}<extra></extra>",
                ),
                1,
                1,
            )
        if spikes is not None and len(spikes):
            sp = np.asarray(spikes, dtype=np.float64)
            finite = y[np.isfinite(y)]
            base = float(finite.min()) if finite.size else 1.0
            fig.add_trace(
                go.Scatter(
                    x=sp,
                    y=np.full(sp.size, base),
                    mode="markers",
                    name=f"{sp.size} spike(s) above the bulk",
                    marker={"symbol": "triangle-up", "size": 9, "color": _MP},
                    hovertemplate="spike λ = %{x:.5g}<extra></extra>",
                ),
                1,
                1,
            )
    if xmin is not None:  # first in the list: the draggable one (XMIN_SHAPE)
        line = _vline(xmin, ACCENT, "solid", width=3)
        line["editable"] = True
        shapes.insert(XMIN_SHAPE, line)
    if xmins is not None and Ds is not None and len(xmins):
        fig.add_trace(
            go.Scatter(
                x=np.asarray(xmins, dtype=np.float64),
                y=np.asarray(Ds, dtype=np.float64),
                mode="lines+markers" if len(xmins) <= 200 else "lines",
                name="KS D(xmin)",
                customdata=np.full(len(xmins), "xmin"),
                line={"color": LINE},
                marker={"size": 4},
                hovertemplate="xmin %{x:.4g}: D = %{y:.4f} (click to choose)<extra></extra>",
            ),
            1,
            2,
        )
        for value, color, label in ((auto_xmin, MUTED, "smallest D"), (xmin, ACCENT, "xmin")):
            if value is None:
                continue
            i = int(np.argmin(np.abs(np.asarray(xmins) - value)))
            fig.add_trace(
                go.Scatter(
                    x=[xmins[i]],
                    y=[Ds[i]],
                    mode="markers",
                    name=label,
                    marker={
                        "size": 11,
                        "color": color,
                        "symbol": "circle-open",
                        "line": {"width": 2},
                    },
                    hovertemplate=f"{label}: %{{x:.4g}}, D = %{{y:.4f}}<extra></extra>",
                ),
                1,
                2,
            )
    if hill_ks is not None and hill_alphas is not None and len(hill_ks):
        fig.add_trace(
            go.Scatter(
                x=np.asarray(hill_ks),
                y=np.asarray(hill_alphas, dtype=np.float64),
                mode="lines",
                name="Hill α(k)",
                customdata=np.full(len(hill_ks), "k"),
                line={"color": LINE},
                hovertemplate="k = %{x}: α = %{y:.3f} (click: choose k)<extra></extra>",
            ),
            1,
            3,
        )
        if hill_k is not None and 1 <= hill_k <= len(hill_alphas):
            fig.add_trace(
                go.Scatter(
                    x=[hill_k],
                    y=[hill_alphas[hill_k - 1]],
                    mode="markers",
                    name=f"Hill k = {hill_k}",
                    marker={
                        "size": 11,
                        "color": ACCENT,
                        "symbol": "circle-open",
                        "line": {"width": 2},
                    },
                    hovertemplate="k = %{x}: α = %{y:.3f}<extra></extra>",
                ),
                1,
                3,
            )
        if alpha is not None:
            fig.add_hline(y=alpha, line={"color": FIT, "dash": "dash", "width": 1}, row=1, col=3)
        finite = np.asarray(hill_alphas, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:  # the first few k swing widely: show the body of the plot
            lo_a, hi_a = np.percentile(finite, [2, 98])
            pad = 0.1 * max(hi_a - lo_a, 0.1)
            fig.update_yaxes(range=[max(1.0, lo_a - pad), hi_a + pad], row=1, col=3)
    fig.update_xaxes(type="log", exponentformat="power", title_text="λ", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", title_text="density", row=1, col=1)
    fig.update_xaxes(type="log", exponentformat="power", title_text="xmin", row=1, col=2)
    fig.update_yaxes(title_text="D", row=1, col=2)
    fig.update_xaxes(type="log", title_text="k", row=1, col=3)
    fig.update_yaxes(title_text="α", row=1, col=3)
    # ours first (the xmin line stays shapes[XMIN_SHAPE]), then add_hline's
    fig.layout.shapes = (*shapes, *fig.layout.shapes)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        height=430,
        legend={"orientation": "h", "y": -0.22, "x": 0},
        margin={"b": 90},
    )
    return fig


def _step(
    x: np.ndarray, y: np.ndarray, name: str, color: str, *, dash: str = "solid", hover: str = ""
) -> go.Scatter:
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        line={"shape": "hv", "color": color, "dash": dash, "width": 1.6},
        name=name,
        connectgaps=False,
        hovertemplate=(hover or name) + "<extra></extra>",
    )


def _vline(x: float, color: str, dash: str, *, width: float = 1.5) -> dict:
    """A vertical line over the whole height of the left panel (data x, paper-free y)."""
    return {
        "type": "line",
        "xref": "x",
        "yref": "y domain",
        "x0": float(x),
        "x1": float(x),
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "dash": dash, "width": width},
    }
