"""The figures of a layer's four subspaces (the Subspaces view and the exports draw these)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from app.figures.subspaces import signal_gallery, singular_values_figure
from app.figures.theme import axis_title, placeholder_figure

__all__ = ["weight_figures"]


def weight_figures(data: Any, name: str) -> tuple[go.Figure, go.Figure]:
    """The singular values with the rank cut, and the signal-vector gallery (`data`: the
    services' SubspacesData)."""
    spectrum = singular_values_figure(
        data.singular_values,
        data.rank,
        data.rtol,
        title=f"Singular values of {name}: rank {data.rank} of {min(data.shape)}",
    )
    k = data.signal_vectors.shape[0]
    if k == 0:
        return spectrum, placeholder_figure("The matrix is zero: its signal space is empty.")
    info = data.info
    shown = f" (the first {k} of {data.rank})" if k < data.rank else ""
    kind = "signal kernels" if data.image_shape and info.row_label.startswith("kernel") else ""
    what = kind or "signal vectors"
    gallery = signal_gallery(
        data.signal_vectors,
        data.singular_values[:k],
        title=f"Signal space of {name}: {what} σᵢvᵢ{shown}, one colour scale",
        image_shape=data.image_shape,
        axis_values=None if info.col_axis is None else info.col_axis.values,
        axis_title=axis_title(info.col_axis, info.col_label),
    )
    return spectrum, gallery
