"""Inversion figures (Pattichis & Pattichis, Fig. 3): the generated input, its output
against the ideal output, and the distance per optimisation step. Pure: arrays in,
figures out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.figures.common import curve_axis
from app.figures.theme import ACCENT, LINE, register_template

__all__ = ["distance_history", "generated_input", "output_bars"]


def generated_input(
    x: np.ndarray,
    *,
    title: str,
    image_shape: tuple[int, int] | None = None,
    bounds: tuple[float, float] | None = None,
    axis_values: np.ndarray | None = None,
    axis_title: str = "input index",
) -> go.Figure:
    """The input as a grey image (dark = low, bright = high; `bounds` fixes the range,
    e.g. the data's pixel range) or, without an image shape, as a curve."""
    v = np.asarray(x, dtype=np.float64).ravel()
    if image_shape is not None and image_shape[0] * image_shape[1] == v.size:
        low, high = bounds if bounds is not None else (float(v.min()), float(v.max()))
        if not high > low:
            high = low + 1.0
        fig = go.Figure(
            go.Heatmap(
                z=v.reshape(image_shape),
                colorscale="gray",
                zmin=low,
                zmax=high,
                colorbar={"title": {"text": "value", "side": "right"}, "thickness": 12},
                hovertemplate="(%{y}, %{x}): %{z:.3g}<extra></extra>",
            )
        )
        fig.update_layout(
            xaxis={"visible": False, "scaleanchor": "y", "constrain": "domain"},
            yaxis={"visible": False, "autorange": "reversed", "constrain": "domain"},
        )
    else:
        xs = curve_axis(axis_values, v.size, dtype=np.float64)
        xs = np.arange(v.size) if xs is None else xs
        fig = go.Figure(go.Scatter(x=xs, y=v, mode="lines", line={"color": LINE, "width": 1.6}))
        fig.update_layout(xaxis={"title": {"text": axis_title}}, yaxis={"title": {"text": "value"}})
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        height=380,
        margin={"l": 30, "r": 20, "t": 70, "b": 30},
    )
    return fig


def output_bars(
    output: np.ndarray,
    target: np.ndarray,
    names: Sequence[str],
    *,
    title: str,
    target_index: int | None = None,
) -> go.Figure:
    """Grouped bars per output: the network's output at the generated input and the ideal
    output it aims at; the target output's label is marked."""
    out = np.asarray(output, dtype=np.float64).ravel()
    goal = np.asarray(target, dtype=np.float64).ravel()
    labels = [str(names[i]) if i < len(names) else str(i) for i in range(out.size)]
    if target_index is not None and 0 <= target_index < len(labels):
        labels[target_index] = f"<b>{labels[target_index]} ◆</b>"
    fig = go.Figure(
        [
            go.Bar(
                x=labels,
                y=out,
                name="output at the generated input",
                marker={"color": LINE},
                hovertemplate="%{x}: %{y:.4g}<extra>output</extra>",
            ),
            go.Bar(
                x=labels,
                y=goal,
                name="ideal output",
                marker={"color": ACCENT, "opacity": 0.75},
                hovertemplate="%{x}: %{y:.4g}<extra>ideal</extra>",
            ),
        ]
    )
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        barmode="group",
        xaxis={"title": {"text": "output (class)"}, "type": "category"},
        yaxis={"title": {"text": "value"}, "zeroline": True, "zerolinecolor": "#b0bec5"},
        height=380,
        legend={"orientation": "h", "y": -0.22, "yanchor": "top", "x": 0, "xanchor": "left"},
        margin={"b": 80},
    )
    return fig


def distance_history(history: np.ndarray, *, title: str, x_title: str = "step") -> go.Figure:
    """||output - ideal|| at the start (step 0) and after every step, log scale."""
    h = np.asarray(history, dtype=np.float64)
    fig = go.Figure(
        go.Scatter(
            x=np.arange(h.size, dtype=np.int32),
            y=np.maximum(h, np.finfo(np.float64).tiny),
            mode="lines+markers" if h.size <= 12 else "lines",
            line={"color": LINE},
            hovertemplate=f"{x_title} %{{x}}: %{{y:.6g}}<extra></extra>",
        )
    )
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        xaxis={"title": {"text": x_title}},
        yaxis={"title": {"text": "‖output − ideal‖"}, "type": "log", "exponentformat": "power"},
        height=300,
        showlegend=False,
    )
    return fig
