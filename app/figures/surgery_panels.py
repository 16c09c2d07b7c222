"""The figures of one spectral surgery (the Surgery view and the exports draw these)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go

from app.figures.surgery import (
    bias_waterfall,
    contributions_heatmap,
    input_figure,
    panel_grid,
    proportions_bar,
    spectrum_comparison,
)
from app.formatting import fmt_value

__all__ = [
    "SurgeryFigures",
    "count_terms",
    "fmt_value",
    "panel",
    "surgery_figures",
    "vectors_figure",
]


class SurgeryFigures(NamedTuple):
    input: go.Figure
    alpha: go.Figure
    proportions: go.Figure
    spectrum: go.Figure
    vectors: go.Figure
    bias: go.Figure
    bias_images: go.Figure | None


def panel(layout: Any, flat: np.ndarray, *, reduce: str = "mean") -> np.ndarray:
    """A flat input-sized vector as a picture (image layouts) or as it is (curves)."""
    if layout.kind == "image":
        return layout.image(flat, reduce=reduce)
    return np.asarray(flat, dtype=np.float32).reshape(-1)


def count_terms(n: int) -> str:
    """ "1 term" / "n terms"."""
    return "1 term" if n == 1 else f"{n} terms"


def vectors_figure(data: Any, j: int, top: Any, rank: str) -> go.Figure:
    """The top singular vectors φₖ of output j (`top`: the services' TopVectors) and their
    contractions with the input (SpecXAI eq. 23)."""
    of = "reduced sum" if rank == "reduced" else "Σα"
    layout = data.layout
    raw = [panel(layout, v) for v in top.raw]
    contracted = [panel(layout, c, reduce="sum") for c in top.contracted]
    n = len(raw)
    titles = [
        f"φ{k + 1}  σ={fmt_value(s)}  α={fmt_value(a)}"
        for k, s, a in zip(top.k, top.sigma, top.alpha, strict=True)
    ] + [f"φ{k + 1}·x  {p:.1%} of {of}" for k, p in zip(top.k, top.share, strict=True)]
    what = "contracted over channels (eq. 23)" if layout.channels > 1 else "φₖ ⊙ x (eq. 23)"
    how = "sign-reduced terms, eq. 21" if rank == "reduced" else "αⱼₖ toward the output"
    fig = panel_grid(
        raw + contracted,
        titles,
        columns=n,
        title=(
            f"Top {n} singular vectors contributing to output {data.output_name(j)} "
            f"(by {how})<br><sup>row 1: φₖ"
            f"{' (mean over channels)' if layout.channels > 1 else ''}; row 2: {what}</sup>"
        ),
        axis_values=layout.axis_values,
        axis_label=layout.axis_label,
        panel_height=190 if layout.kind == "image" else 160,
    )
    return fig


def surgery_figures(
    data: Any, j: int, reduced: Any, top: Any, rank: str = "alpha"
) -> SurgeryFigures:
    """Every figure of one surgery (`data`: the services' SurgeryData) for output j, from
    the sign reduction `reduced` of that output and its `top` singular vectors (ranked by
    `rank`); `bias_images` is None unless the outputs are images with per-layer biases."""
    layout, out = data.layout, data.output_layout
    split, r = data.options.split, data.rank
    label = "" if data.label is None else f" (label {data.label})"
    colour = layout.kind == "image" and layout.channels == 3
    inp = input_figure(
        np.asarray(data.x, np.float32).reshape(3, *layout.image_shape)
        if colour
        else panel(layout, data.x),
        title=f"Input: sample #{data.options.sample}{label}",
        axis_values=layout.axis_values,
        axis_label=layout.axis_label,
    )
    alpha = contributions_heatmap(
        data.alpha,
        output=j,
        title=f"Contributions αⱼₖ at {split}: outputs × components",
        output_label="output j",
    )
    proportions = proportions_bar(
        reduced.proportions,
        reduced.lead,
        [len(g) for g in reduced.groups],
        title=(
            f"Sign-reduced proportions of output {data.output_name(j)} (eq. 21-22)"
            f"<br><sup>{r} components → {count_terms(len(reduced.values))} of one sign after "
            f"{reduced.rounds} round(s)</sup>"
        ),
    )
    which = "Full spectrum σₖ" if data.exact else f"Top {r} of {data.total_components:,} σₖ"
    spectrum = spectrum_comparison(
        data.S,
        data.alpha[j],
        title=f"{which} vs reduced spectrum |αⱼₖ|, j = {j}",
        residuals=data.residuals,
    )
    parts = [("Σ α (split)", float(data.alpha[j].sum()))]
    if not data.exact:
        parts.append(("rest of spectrum", float(data.rest[j])))
    parts.append(("bypass", float(data.bypass[j])))
    parts += [(f"β {name}", float(v[j])) for name, v in data.layer_bias.items()]
    parts.append(("remainder", float(data.remainder[j])))
    bias = bias_waterfall(
        parts,
        float(data.y[j]),
        title=f"How output {data.output_name(j)} is assembled (bias per layer)",
        total_label=f"y{j}",
    )
    bias_images = None
    if out.kind == "image" and data.layer_bias:
        maps = [panel(out, v) for v in data.layer_bias.values()]
        maps += [panel(out, data.bias), panel(out, data.remainder)]
        names = [f"β {n}" for n in data.layer_bias] + ["total bias b", "remainder"]
        bias_images = panel_grid(
            maps, names, columns=min(5, len(maps)), title="Bias terms over all outputs"
        )
    vectors = vectors_figure(data, j, top, rank)
    return SurgeryFigures(inp, alpha, proportions, spectrum, vectors, bias, bias_images)
