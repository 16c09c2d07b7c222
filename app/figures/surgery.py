"""Spectral surgery figures (SpecXAI): contributions, reduced proportions, spectra, singular
vectors as images or curves, the bias waterfall and the pruned output. Pure builders."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.common import curve_axis, curve_trace, diverging_image, relative_spectrum
from app.figures.theme import ACCENT, LINE, MUTED, image_panel_axes, register_template
from app.figures.weights import weights_heatmap

__all__ = [
    "bias_waterfall",
    "contributions_heatmap",
    "data_svd_figure",
    "image_trace",
    "input_figure",
    "panel_grid",
    "proportions_bar",
    "pruned_output",
    "spectrum_comparison",
]

GREYS = [[0.0, "#ffffff"], [1.0, "#102a43"]]  # inputs: dark ink on white


def contributions_heatmap(
    alpha: np.ndarray, *, output: int, title: str = "", output_label: str = "output j"
) -> go.Figure:
    """alpha (N outputs, r components) as a diverging heatmap centred at 0 (white = 0),
    component axis 1-based; the chosen `output` row is outlined (when not pooled)."""
    n, r = np.shape(alpha)
    fig = weights_heatmap(
        np.asarray(alpha, dtype=np.float32),
        title=title,
        row_label=output_label,
        col_label="component k (σ descending)",
        value_label="α",
        col_values=np.arange(1, r + 1),
    )
    if n <= 512 and r <= 512:
        fig.add_shape(
            type="rect",
            x0=0.5,
            x1=r + 0.5,
            y0=output - 0.5,
            y1=output + 0.5,
            line={"color": "#263238", "width": 1.5},
        )
    fig.update_layout(height=int(min(620, max(300, 150 + 22 * n))))
    return fig


def proportions_bar(
    proportions: np.ndarray,
    lead: np.ndarray,
    group_sizes: Sequence[int],
    *,
    title: str = "",
    max_bars: int = 20,
) -> go.Figure:
    """Sign-reduced proportions (eq. 21-22), one bar per reduced term labelled by its lead
    component (1-based; "+n" = n more components merged into it), largest first; terms past
    `max_bars` are summed in one "others" bar, so the bars always sum to 1."""
    p = np.asarray(proportions, dtype=np.float64)
    lead = np.asarray(lead, dtype=int)
    labels = [
        f"φ{k + 1}" + (f" +{s - 1}" if s > 1 else "")
        for k, s in zip(lead, group_sizes, strict=True)
    ]
    shown, values = labels[:max_bars], list(p[:max_bars])
    if p.size > max_bars:
        shown.append(f"others ({p.size - max_bars})")
        values.append(float(p[max_bars:].sum()))
    fig = go.Figure(
        go.Bar(
            x=shown,
            y=values,
            marker_color=[LINE] * min(p.size, max_bars) + [MUTED] * (p.size > max_bars),
            hovertemplate="%{x}<br>share %{y:.3%}<extra></extra>",
        )
    )
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis={"title": {"text": "reduced term (lead component)"}, "type": "category"},
        yaxis={"title": {"text": "proportion α̃ (sums to 1)"}, "tickformat": ".0%"},
        height=360,
    )
    return fig


def spectrum_comparison(
    S: np.ndarray,
    alpha_row: np.ndarray,
    *,
    title: str = "",
    residuals: np.ndarray | None = None,
) -> go.Figure:
    """Spectrum sigma_k (bars, left axis) against the reduced spectrum |alpha[j, k]| of one
    output (markers, right axis), k = 1..r; ``residuals`` (r,): the residual norm of each
    computed triplet of a top-k surgery, drawn as error bars on sigma_k."""
    k = np.arange(1, len(S) + 1)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    error = None
    hover = "k = %{x}<br>σ = %{y:.4g}<extra></extra>"
    if residuals is not None:
        delta = np.asarray(residuals, dtype=np.float32)
        error = {"type": "data", "array": delta, "visible": True, "color": "#546e7a"}
        hover = "k = %{x}<br>σ = %{y:.4g} ± %{customdata:.2g} (residual)<extra></extra>"
    fig.add_trace(
        go.Bar(
            x=k,
            y=np.asarray(S, dtype=np.float32),
            name="σₖ (full spectrum)" if residuals is None else "σₖ ± triplet residual",
            marker_color="#b0bec5",
            error_y=error,
            customdata=None if residuals is None else np.asarray(residuals, dtype=np.float32),
            hovertemplate=hover,
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=k,
            y=np.abs(np.asarray(alpha_row, dtype=np.float32)),
            name="|αⱼₖ| (reduced spectrum of output j)",
            mode="markers+lines",
            marker={"color": ACCENT, "size": 5},
            line={"color": ACCENT, "width": 1},
            hovertemplate="k = %{x}<br>|α| = %{y:.4g}<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.update_xaxes(title_text="component k")
    fig.update_yaxes(title_text="σₖ", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="|αⱼₖ|", secondary_y=True, showgrid=False, rangemode="tozero")
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        height=360,
        legend={"orientation": "h", "y": -0.25, "x": 0},
        bargap=0.15,
    )
    return fig


def image_trace(z: np.ndarray, *, diverging: bool) -> go.Heatmap:
    """`z` as a float32 image: zero-centred on the diverging scale, or dark ink on white."""
    z = np.asarray(z, dtype=np.float32)
    if diverging:
        return diverging_image(z)
    return go.Heatmap(
        z=z,
        colorscale=GREYS,
        showscale=False,
        hovertemplate="(%{y}, %{x}): %{z:.3g}<extra></extra>",
    )


def panel_grid(
    panels: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    columns: int,
    title: str = "",
    axis_values: np.ndarray | None = None,
    axis_label: str = "index",
    diverging: bool = True,
    row_titles: Sequence[str] | None = None,
    panel_height: int | None = None,
) -> go.Figure:
    """A grid of small panels, filled row by row: 2-D arrays as images (each with its own
    colour range, zero-centred when `diverging`), 1-D arrays as curves over `axis_values`
    (or the index). `row_titles` name the rows at the left."""
    count = len(panels)
    cols = max(1, min(columns, count))
    rows = max(1, math.ceil(count / cols))
    images = [np.ndim(p) == 2 for p in panels]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=list(titles),
        row_titles=list(row_titles) if row_titles else None,
        horizontal_spacing=0.03 if all(images) else 0.05,
        vertical_spacing=min(0.4 / rows, 0.12) if rows > 1 else 0.0,
    )
    for i, panel in enumerate(panels):
        r, c = divmod(i, cols)
        if images[i]:
            trace: go.Heatmap | go.Scatter = image_trace(panel, diverging=diverging)
        else:
            y = np.asarray(panel, dtype=np.float32).reshape(-1)
            trace = curve_trace(curve_axis(axis_values, y.size), y, width=1.4)
        fig.add_trace(trace, row=r + 1, col=c + 1)
        suffix = "" if i == 0 else str(i + 1)
        if images[i]:
            image_panel_axes(fig, i)
        else:
            fig.layout[f"yaxis{suffix}"].update(zeroline=True, zerolinecolor="#cfd8dc")
            if r == rows - 1:
                fig.layout[f"xaxis{suffix}"].update(title={"text": axis_label})
    fig.update_annotations(font_size=11)
    height = panel_height or (200 if all(images) else 170)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        showlegend=False,
        height=80 + height * rows,
        margin={"t": 80, "l": 70 if row_titles else 40},
    )
    return fig


def input_figure(
    sample: np.ndarray, *, title: str = "", axis_values: np.ndarray | None = None,
    axis_label: str = "index",
) -> go.Figure:  # fmt: skip
    """The input: an (h, w) image (dark = large), a (3, h, w) colour image (values in
    [0, 1] drawn as RGB; others scaled to their own range) or a curve."""
    a = np.asarray(sample, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 3:
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:  # not an RGB image in [0, 1]: stretch it to fit
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
            title = f"{title} (RGB scaled from [{lo:.3g}, {hi:.3g}])"
        rgb = np.round(np.transpose(a, (1, 2, 0)) * 255).astype(np.uint8)
        fig = go.Figure(go.Image(z=rgb, hovertemplate="(%{x}, %{y}): %{z}<extra></extra>"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    elif a.ndim == 2:
        fig = go.Figure(image_trace(a, diverging=False))
        fig.update_traces(showscale=True, colorbar={"thickness": 10})
        fig.update_xaxes(scaleanchor="y", constrain="domain", visible=False)
        fig.update_yaxes(autorange="reversed", constrain="domain", visible=False)
    else:
        x = curve_axis(axis_values, a.size)
        fig = go.Figure(go.Scatter(x=x, y=a.reshape(-1), mode="lines", line={"color": LINE}))
        fig.update_xaxes(title_text=axis_label)
    fig.update_layout(template=register_template(), title={"text": title}, height=300)
    return fig


def bias_waterfall(
    parts: Sequence[tuple[str, float]], total: float, *, title: str = "", total_label: str = "y"
) -> go.Figure:
    """How the output is assembled: each part (Σ α, bypass, β per layer, remainder) adds
    to the running sum; the last bar is the total, which the parts reach exactly."""
    labels = [p[0] for p in parts] + [total_label]
    values = [float(p[1]) for p in parts] + [float(total)]
    fig = go.Figure(
        go.Waterfall(
            x=labels,
            y=values,
            measure=["relative"] * len(parts) + ["total"],
            increasing={"marker": {"color": "#c0392b"}},
            decreasing={"marker": {"color": "#2e6da4"}},
            totals={"marker": {"color": "#37474f"}},
            connector={"line": {"color": "#b0bec5", "width": 1}},
            text=[f"{v:+.4g}" for v in values[:-1]] + [f"{values[-1]:.4g}"],
            textposition="outside",
            hovertemplate="%{x}: %{y:.6g}<extra></extra>",
        )
    )
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis={"type": "category"},
        yaxis={"title": {"text": "contribution to the output"}},
        height=380,
        showlegend=False,
    )
    return fig


def pruned_output(
    y: np.ndarray,
    y_pruned: np.ndarray,
    *,
    kind: str,
    title: str = "",
    names: Sequence[str] | None = None,
    image_shape: tuple[int, int] | None = None,
    axis_values: np.ndarray | None = None,
    axis_label: str = "output index",
) -> go.Figure:
    """The full output against the output kept by the top-k components: grouped bars
    (`kind` "bars"), two images side by side ("image") or two curves ("curve")."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    yp = np.asarray(y_pruned, dtype=np.float64).reshape(-1)
    if kind == "image" and image_shape is not None:
        h, w = image_shape
        pair = [y.reshape(-1, h, w).mean(0), yp.reshape(-1, h, w).mean(0)]
        fig = panel_grid(pair, ["full output y", "top-k output"], columns=2, diverging=False)
        fig.update_layout(title={"text": title}, height=340)
        return fig
    if kind == "bars":
        x = list(names) if names and len(names) == y.size else [str(i) for i in range(y.size)]
        traces = [
            go.Bar(x=x, y=y, name="full output y", marker_color="#90a4ae"),
            go.Bar(x=x, y=yp, name="top-k output", marker_color=LINE),
        ]
        xaxis = {"title": {"text": axis_label}, "type": "category"}
    else:
        x = curve_axis(axis_values, y.size)
        traces = [
            go.Scatter(x=x, y=y, name="full output y", line={"color": "#90a4ae", "width": 3}),
            go.Scatter(x=x, y=yp, name="top-k output", line={"color": LINE, "width": 1.5}),
        ]
        xaxis = {"title": {"text": axis_label}}
    fig = go.Figure(traces)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis=xaxis,
        yaxis={"title": {"text": "output"}},
        barmode="group",
        height=360,
        legend={"orientation": "h", "y": -0.3, "x": 0},
    )
    return fig


def data_svd_figure(
    data_S: np.ndarray,
    net_S: np.ndarray,
    data_vectors: Sequence[np.ndarray],
    net_vectors: Sequence[np.ndarray],
    *,
    title: str = "",
    data_label: str = "data X",
    net_label: str = "network",
    axis_values: np.ndarray | None = None,
    axis_label: str = "index",
) -> go.Figure:
    """SpecXAI Fig. 8: the spectrum of the data matrix and of the network operator, each
    divided by its first value, on one log axis (row 1); the top singular vectors of the
    data (row 2) and of the network (row 3), as images (2-D arrays) or curves (1-D)."""
    k = max(1, len(data_vectors), len(net_vectors))
    specs: list[list[dict | None]] = [[{"colspan": k}] + [None] * (k - 1)]
    specs += [[{} for _ in range(k)] for _ in range(2)]
    titles = ["", *(f"data v{i + 1}" for i in range(len(data_vectors)))]
    titles += [""] * (k - len(data_vectors))
    titles += [f"network φ{i + 1}" for i in range(len(net_vectors))]
    fig = make_subplots(
        rows=3,
        cols=k,
        specs=specs,
        subplot_titles=titles,
        row_heights=[0.44, 0.28, 0.28],
        vertical_spacing=0.09,
        horizontal_spacing=0.02 if k > 1 else 0.0,
    )
    for S, name, colour in ((data_S, data_label, MUTED), (net_S, net_label, ACCENT)):
        index, relative = relative_spectrum(S)
        fig.add_trace(
            go.Scatter(
                x=index,
                y=relative,
                name=name,
                mode="lines+markers",
                marker={"color": colour, "size": 4},
                line={"color": colour, "width": 1.5},
                hovertemplate="k = %{x}<br>σₖ/σ₁ = %{y:.3g}<extra>" + name + "</extra>",
            ),
            row=1,
            col=1,
        )
    fig.update_xaxes(title_text="k", row=1, col=1)
    fig.update_yaxes(title_text="σₖ / σ₁", type="log", row=1, col=1)
    for row, panels in ((2, data_vectors), (3, net_vectors)):
        for c, panel in enumerate(panels, start=1):
            if np.ndim(panel) == 2:
                fig.add_trace(image_trace(panel, diverging=True), row=row, col=c)
                fig.update_xaxes(visible=False, row=row, col=c)
                fig.update_yaxes(visible=False, autorange="reversed", row=row, col=c)
                y_name = fig.get_subplot(row, c).xaxis.anchor  # keep the pixels square
                fig.update_xaxes(scaleanchor=y_name, constrain="domain", row=row, col=c)
                fig.update_yaxes(constrain="domain", row=row, col=c)
            else:
                y = np.asarray(panel, dtype=np.float32).reshape(-1)
                x = curve_axis(axis_values, y.size)
                fig.add_trace(
                    go.Scatter(x=x, y=y, mode="lines", line={"color": LINE, "width": 1.2},
                               showlegend=False),
                    row=row,
                    col=c,
                )  # fmt: skip
                fig.update_yaxes(showticklabels=False, row=row, col=c)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        height=760,
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        margin={"t": 90},
    )
    return fig
