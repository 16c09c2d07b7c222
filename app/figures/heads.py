"""The attention heads of one block: the singular values of each head's circuits.

Two heatmaps side by side, one row per query head: the singular values sigma_i of
W_QK^h = W_Q^h^T W_K^h (left) and of W_OV^h = W_O^h W_V^h (right), i = 1..head_dim, on a
log colour scale shared by the row's panel; the hover names the head, its key/value head
and sigma_i. A head whose row is bright in few columns is low-rank there.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.theme import SEQUENTIAL, register_template

__all__ = ["heads_figure"]


def _log_matrix(rows: list[np.ndarray]) -> np.ndarray:
    """(heads, d) log10 sigma (NaN where a row is shorter, or sigma is 0)."""
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        r = np.asarray(r, dtype=np.float64)
        with np.errstate(divide="ignore"):
            out[i, : r.size] = np.where(r > 0, np.log10(np.where(r > 0, r, 1.0)), np.nan)
    return out


def heads_figure(
    qk: list[np.ndarray],
    ov: list[np.ndarray] | None,
    *,
    kv_heads: list[int],
    title: str = "",
) -> go.Figure:
    """The two heatmaps (module docstring); ``qk[h]``, ``ov[h]`` the descending singular
    values of head h's circuits (``ov`` None: the block has no output projection)."""
    panels = [("W_QK = W_Qᵀ W_K", qk)] + ([("W_OV = W_O W_V", ov)] if ov is not None else [])
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[f"σᵢ of {name} per head" for name, _ in panels],
        horizontal_spacing=0.16,
    )
    heads = np.arange(len(qk))
    for col, (name, rows) in enumerate(panels, start=1):
        z = _log_matrix(rows)
        custom = np.repeat(np.asarray(kv_heads, dtype=float)[:, None], z.shape[1], axis=1)
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=np.arange(1, z.shape[1] + 1),
                y=heads,
                customdata=custom,
                colorscale=SEQUENTIAL,
                colorbar={"title": {"text": "log₁₀ σ"}, "len": 0.9, "thickness": 14},
                hovertemplate=(
                    f"head %{{y}} (key/value head %{{customdata}})<br>σ%{{x}} of {name}"
                    ": 10^%{z:.3f}<extra></extra>"
                ),
            ),
            1,
            col,
        )
        fig.update_xaxes(title_text="index i", row=1, col=col)
        fig.update_yaxes(
            title_text="query head" if col == 1 else None, autorange="reversed", row=1, col=col
        )
    for i, trace in enumerate(fig.data):  # each colour bar just right of its own panel
        domain = fig.layout[f"xaxis{i + 1 if i else ''}"].domain
        trace.colorbar.x = domain[1] + 0.01
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        height=max(300, 140 + 14 * len(qk)),
    )
    return fig
