"""The one plotly template of svdscope, registered once under the name `TEMPLATE`."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

__all__ = [
    "DIVERGING",
    "FIT",
    "LINE",
    "SEQUENTIAL",
    "TEMPLATE",
    "image_panel_axes",
    "placeholder_figure",
    "register_template",
]

TEMPLATE = "svdscope"
# Diverging scale centred at 0: blue negative, white zero, red positive.
DIVERGING = "RdBu_r"
# Sequential scale for magnitudes (2-D FFT views): dark = small, bright = large.
SEQUENTIAL = "Viridis"
LINE = "#1f4e79"
ACCENT = "#c0392b"
FIT = ACCENT  # fitted curves drawn over LINE curves (dashed)
MUTED = "#7f8c8d"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def register_template() -> str:
    """Register the template (idempotent) and return its name."""
    if TEMPLATE not in pio.templates:
        base = pio.templates["plotly_white"]
        template = go.layout.Template(base)
        template.layout.update(
            font={"family": FONT, "size": 12, "color": "#263238"},
            title={"font": {"size": 15}, "x": 0.01, "xanchor": "left"},
            margin={"l": 60, "r": 20, "t": 56, "b": 50},
            colorway=[LINE, ACCENT, "#16a085", "#8e44ad", "#d35400", MUTED],
            paper_bgcolor="white",
            plot_bgcolor="white",
            hoverlabel={"font": {"family": FONT}},
        )
        template.layout.xaxis.update(showline=True, linecolor="#b0bec5", zeroline=False)
        template.layout.yaxis.update(showline=True, linecolor="#b0bec5", zeroline=False)
        pio.templates[TEMPLATE] = template
    return TEMPLATE


def placeholder_figure(message: str = "") -> go.Figure:
    """An empty figure with a centred note (no axes), e.g. while nothing is selected."""
    fig = go.Figure()
    fig.update_layout(
        template=register_template(),
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=320,
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 14, "color": MUTED},
            }
        ]
        if message
        else [],
    )
    return fig


def image_panel_axes(fig: go.Figure, index: int) -> None:
    """Make subplot ``index`` (0-based, row-major) show an image: square pixels, row 0 on
    top, no axes."""
    suffix = "" if index == 0 else str(index + 1)
    fig.layout[f"xaxis{suffix}"].update(scaleanchor=f"y{suffix}", constrain="domain", visible=False)
    fig.layout[f"yaxis{suffix}"].update(autorange="reversed", constrain="domain", visible=False)


def axis_title(axis: Any, fallback: str) -> str:
    """ "label (unit)" of an sc.Axis, or `fallback` when there is none."""
    if axis is None:
        return fallback
    return f"{axis.label} ({axis.unit})" if getattr(axis, "unit", "") else str(axis.label)
