"""Figures of the Compare view: both spectra overlaid, and the subspace overlaps with the
principal angles."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.theme import ACCENT, LINE, MUTED, register_template

__all__ = ["overlap_figure", "spectra_overlay"]

OVERLAP_SCALE = "Blues"  # |cos| from 0 (white) to 1 (dark blue)


def spectra_overlay(
    spectra_a: np.ndarray,
    spectra_b: np.ndarray,
    *,
    name_a: str = "A",
    name_b: str = "B",
    title: str = "",
) -> go.Figure:
    """sigma_i of both matrices on one log axis (1-based i), and the ratio sigma_i(B) /
    sigma_i(A) on a second panel (1 = the same value; zero values are left out of both)."""
    a = np.asarray(spectra_a, dtype=np.float64)
    b = np.asarray(spectra_b, dtype=np.float64)
    r = min(a.size, b.size)
    index = np.arange(1, max(a.size, b.size) + 1, dtype=np.int32)
    mode = "lines+markers" if index.size <= 128 else "lines"
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.62, 0.38],
        subplot_titles=("Singular values σᵢ", "Ratio σᵢ(B) / σᵢ(A)"),
        horizontal_spacing=0.1,
    )
    for values, name, color, dash in ((a, name_a, LINE, None), (b, name_b, ACCENT, "dash")):
        fig.add_trace(
            go.Scatter(
                x=index[: values.size],
                y=np.where(values > 0, values, np.nan).astype(np.float32),
                mode=mode,
                name=name,
                line={"color": color, "dash": dash},
                marker={"size": 5},
                hovertemplate=f"{name}<br>σ<sub>%{{x}}</sub> = %{{y:.4g}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((a[:r] > 0) & (b[:r] > 0), b[:r] / a[:r], np.nan)
    fig.add_trace(
        go.Scatter(
            x=index[:r],
            y=ratio.astype(np.float32),
            mode=mode,
            name="ratio",
            showlegend=False,
            line={"color": MUTED},
            marker={"size": 5},
            hovertemplate="σ<sub>%{x}</sub>(B) / σ<sub>%{x}</sub>(A) = %{y:.4g}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.add_hline(y=1.0, line={"dash": "dot", "color": MUTED, "width": 1}, row=1, col=2)
    fig.update_xaxes(title_text="index i")
    fig.update_yaxes(type="log", exponentformat="power", title_text="σᵢ", row=1, col=1)
    fig.update_yaxes(type="log", title_text="ratio", row=1, col=2)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        legend={"orientation": "h", "x": 0.0, "y": -0.18},
        height=440,
    )
    return fig


def overlap_figure(
    left_overlap: np.ndarray,
    right_overlap: np.ndarray,
    left_angles: np.ndarray,
    right_angles: np.ndarray,
    *,
    left_label: str = "output side",
    right_label: str = "input side",
    title: str = "",
) -> go.Figure:
    """Three panels: |U_A^T U_B| and |V_A^T V_B| (k x k, entry (i, j) = |cos| of the angle
    between singular vector i of A and j of B, 0 white to 1 dark) and the principal angles
    between the two top-k subspaces of each side, in degrees, ascending."""
    L = np.asarray(left_overlap, dtype=np.float32)
    R = np.asarray(right_overlap, dtype=np.float32)
    k = L.shape[0]
    ticks = np.arange(1, k + 1, dtype=np.int32)
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.33, 0.33, 0.34],
        horizontal_spacing=0.08,
        subplot_titles=(
            f"|U<sub>A</sub>ᵀU<sub>B</sub>| ({left_label})",
            f"|V<sub>A</sub>ᵀV<sub>B</sub>| ({right_label})",
            "Principal angles θᵢ",
        ),
    )
    for col, (M, symbol) in enumerate(((L, "u"), (R, "v")), start=1):
        fig.add_trace(
            go.Heatmap(
                z=M,
                x=ticks,
                y=ticks,
                zmin=0.0,
                zmax=1.0,
                colorscale=OVERLAP_SCALE,
                showscale=col == 2,
                colorbar={
                    "title": {"text": "|cos|", "side": "top"},
                    "orientation": "h",
                    "thickness": 10,
                    "len": 0.3,
                    "x": 0.33,
                    "xanchor": "center",
                    "y": -0.3,
                    "yanchor": "top",
                },
                hovertemplate=(
                    f"|{symbol}<sub>%{{y}}</sub>(A) · {symbol}<sub>%{{x}}</sub>(B)| = "
                    "%{z:.3f}<extra></extra>"
                ),
            ),
            row=1,
            col=col,
        )
        suffix = "" if col == 1 else str(col)
        fig.layout[f"xaxis{suffix}"].update(
            title_text="j (B)", scaleanchor=f"y{suffix}", constrain="domain", dtick=_dtick(k)
        )
        fig.layout[f"yaxis{suffix}"].update(
            title_text="i (A)", autorange="reversed", constrain="domain", dtick=_dtick(k)
        )
    for angles, name, color in (
        (left_angles, left_label, LINE),
        (right_angles, right_label, ACCENT),
    ):
        degrees = np.degrees(np.asarray(angles, dtype=np.float64)).astype(np.float32)
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, degrees.size + 1, dtype=np.int32),
                y=degrees,
                mode="lines+markers",
                name=name,
                line={"color": color},
                marker={"size": 6},
                hovertemplate=f"{name}: θ<sub>%{{x}}</sub> = %{{y:.3g}}°<extra></extra>",
            ),
            row=1,
            col=3,
        )
    fig.update_xaxes(title_text="index", row=1, col=3)
    fig.update_yaxes(title_text="degrees", range=[0, 92], row=1, col=3)
    fig.update_annotations(font_size=12)
    fig.update_layout(
        template=register_template(),
        title={"text": title},
        legend={"orientation": "h", "x": 0.70, "y": -0.22},
        height=470,
        margin={"b": 110},
    )
    return fig


def _dtick(k: int) -> int:
    return 1 if k <= 10 else (2 if k <= 20 else 4)
