"""Spectral surgery view: computed results -> figures, sentences and gallery items.

No computing here beyond choosing what to show: the numbers come from the services
(svdcore underneath), the figures from app.figures.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go
from dash import html

from app import ids
from app.figures import placeholder_figure
from app.figures.surgery import (
    data_svd_figure,
    pruned_output,
)
from app.figures.surgery_panels import panel, surgery_figures
from app.figures.thumbnails import curve_thumbnail, image_thumbnail
from app.formatting import fmt_value
from app.services.surgery import SurgeryService
from app.services.surgery_types import DataSvd, InputLayout, SampleSet, SurgeryData

__all__ = ["Rendered", "empty", "gallery_items", "panel", "render", "render_pruned"]

SHOWN: dict[str, str] = {"display": "block"}
HIDDEN: dict[str, str] = {"display": "none"}
# |value| / (|y| + 1) below this reads as "zero up to round-off", by the precision of the
# Jacobian products (a float32 top-k surgery leaves remainders of about 1e-7 on ReLU nets)
ZERO = {"float64": 1e-9, "float32": 1e-5}


class Rendered(NamedTuple):
    input: go.Figure
    alpha: go.Figure
    proportions: go.Figure
    spectrum: go.Figure
    vectors: go.Figure
    data_svd: go.Figure
    bias: go.Figure
    bias_notes: list[Any]
    bias_images: go.Figure
    bias_images_style: dict[str, str]
    summary: list[Any]
    check: str


def empty(message: str = "") -> Rendered:
    blank, other = placeholder_figure(message), placeholder_figure()
    return Rendered(blank, other, other, other, other, other, other, [], other, HIDDEN, [], "")


def gallery_items(samples: SampleSet, layout: InputLayout, start: int, stop: int, chosen: int):
    """Thumbnail buttons for samples start..stop-1 (the chosen one highlighted)."""
    items = []
    for i in range(start, min(stop, len(samples))):
        x = samples.x[i]
        if layout.kind == "image" and layout.channels == 3 and x.ndim == 3:
            src = image_thumbnail(x)
        elif layout.kind == "image":
            src = image_thumbnail(layout.image(x), invert=True)
        else:
            src = curve_thumbnail(x)
        caption = f"#{i}"
        if samples.labels is not None:
            label = int(samples.labels[i])
            name = (
                samples.classes[label]
                if samples.classes and label < len(samples.classes)
                else label
            )
            caption += f" · {name}"
        items.append(
            html.Button(
                [html.Img(src=src, alt=f"sample {i}"), html.Span(caption)],
                id=ids.surgery_thumb_id(i),
                className="thumb thumb-chosen" if i == chosen else "thumb",
                title=f"Sample {i}",
                n_clicks=0,
            )
        )
    return items


def _bias_notes(data: SurgeryData, j: int) -> list[Any]:
    split = data.options.split
    scale = abs(float(data.y[j])) + 1.0
    zero = ZERO[data.options.precision]
    bypass, remainder = float(data.bypass[j]), float(data.remainder[j])
    bypass_note = (
        f"Here it is zero: every path from the input to the output passes through {split}."
        if abs(bypass) / scale < zero
        else f"Here it is {fmt_value(bypass)}: a skip connection carries the input around {split}."
    )
    remainder_note = (
        "Here it is zero up to round-off, as for a piecewise-linear network (ReLU)."
        if abs(remainder) / scale < zero
        else f"Here it is {fmt_value(remainder)}: the network has smooth activations."
    )
    notes = [
        html.P(
            [
                html.Strong("Σₖ αⱼₖ "),
                f"= {fmt_value(float(data.alpha[j].sum()))}: the split components, "
                "αⱼₖ = (L U)ⱼₖ cₖ with cₖ = σₖ (φₖ · x), SpecXAI eq. 17-20"
                + ("." if data.exact else f", for the top {data.rank:,} components."),
            ]
        ),
        html.P(
            [
                html.Strong("Bypass "),
                f"(J − L R) x: the part of the output that goes around {split} (skip "
                f"connections) and so is in no component of {split}. {bypass_note}",
            ]
        ),
        html.P(
            [
                html.Strong("βₗ "),
                "= (∂y/∂bₗ) bₗ: the bias of layer l carried to the output by the local linear "
                "map (eq. 9); one bar per layer with a bias.",
            ]
        ),
        html.P(
            [
                html.Strong("Remainder "),
                "= b − Σₗ βₗ, with b = y − J x the local bias. It is zero for piecewise-linear "
                "networks (ReLU, leaky ReLU); with smooth activations (tanh, SELU, logistic) "
                f"the local bias is more than the layers' biases carried forward. {remainder_note}",
            ]
        ),
    ]
    if not data.exact:
        rest = float(data.rest[j])
        notes.insert(1, html.P(_rest_note(data, rest), className="surgery-rest-note"))
    return notes


def _rest_note(data: SurgeryData, rest: float) -> list[Any]:
    """What the rest-of-spectrum term of a top-k surgery is, and how large it is here."""
    k, r = data.rank, data.total_components
    y = float(np.linalg.norm(data.y))
    size = float(np.linalg.norm(data.rest)) / y if y else 0.0
    return [
        html.Strong("Rest of the spectrum "),
        f"L (R − Rₖ) x = {fmt_value(rest)}: the output carried by the {r - k:,} components "
        f"after the {k:,}-th (of r = {r:,}), computed as L R x − Σₖ αₖ, so nothing is "
        f"lost; over all outputs ‖rest‖ / ‖y‖ = {size:.3g}.",
    ]


def _data_svd_figure(data: SurgeryData, svd: DataSvd | None, count: int) -> go.Figure:
    """The data matrix's spectrum and top singular vectors beside the network's (Fig. 8)."""
    if svd is None:
        return placeholder_figure()
    layout, k = data.layout, max(1, min(count, svd.vectors.shape[0], data.rank))
    used = f"{svd.samples:,}" + ("" if svd.samples == svd.total else f" of {svd.total:,}")
    return data_svd_figure(
        svd.S,
        data.S,
        [panel(layout, v) for v in svd.vectors[:k]],
        [panel(layout, data.V[:, i]) for i in range(k)],
        title=(
            f"Data SVD ({used} samples of {svd.name}, uncentred) beside the network's at "
            f"{data.options.split}<br><sup>spectra divided by their first value; row 2: "
            f"top singular vectors vₖ of the data matrix X; row 3: top φₖ of the network "
            f"operator for sample #{data.options.sample}</sup>"
        ),
        data_label=f"data X ({svd.samples:,} × {svd.vectors.shape[1]:,})",
        net_label=f"network at {data.options.split}, sample #{data.options.sample}",
        axis_values=layout.axis_values,
        axis_label=layout.axis_label,
    )


def render(
    service: SurgeryService,
    data: SurgeryData,
    j: int,
    count: int,
    rank: str = "alpha",
    data_svd: DataSvd | None = None,
) -> Rendered:
    """Every figure of the view for one surgery and output j (`data_svd`: the dataset's
    SVD to draw beside the network's singular vectors; a blank panel without it)."""
    f = surgery_figures(
        data, j, service.reduce(data, j), service.top(data, j, count, rank=rank), rank
    )
    label = "" if data.label is None else f" (label {data.label})"
    error = float(np.max(np.abs(data.reconstruction - data.y)))
    summary = [
        html.Span(f"sample #{data.options.sample}{label}"),
        html.Span(_components_text(data)),
        html.Span(
            f"output {data.output_name(j)}"
            + (" (predicted)" if j == data.predicted else f" (predicted: {data.predicted})")
            + f", y = {fmt_value(float(data.y[j]))}"
        ),
    ]
    return Rendered(
        f.input,
        f.alpha,
        f.proportions,
        f.spectrum,
        f.vectors,
        _data_svd_figure(data, data_svd, count),
        f.bias,
        _bias_notes(data, j),
        f.bias_images or placeholder_figure(),
        HIDDEN if f.bias_images is None else SHOWN,
        summary,
        f"max |Σα + bypass + b − y| = {error:.1e}"
        if data.exact
        else f"max |Σα + rest + bypass + b − y| = {error:.1e}",
    )


def _components_text(data: SurgeryData) -> str:
    """ "split fc1: r = 32 components", or the top k of r with the worst triplet residual."""
    split, r = data.options.split, data.total_components
    if data.exact:
        return f"split {split}: r = {r:,} components"
    worst = float(np.max(data.residuals)) / float(data.S[0]) if data.S[0] else 0.0
    products = "; float32 products" if data.options.precision == "float32" else ""
    return (
        f"split {split}: top {data.rank:,} of r = {r:,} components (randomized SVD{products}; "
        f"largest residual {worst:.1e} σ₁)"
    )


def render_pruned(
    service: SurgeryService, data: SurgeryData, j: int, k: int
) -> tuple[go.Figure, str, str]:
    """The output kept by the top-k components of output j, the relative change, a note."""
    k = max(0, min(int(k), data.rank))
    pruned = service.prune(data, j, k)
    out = data.output_layout
    of = f"{data.rank}" if data.exact else f"the {data.rank} computed"
    rest = "" if data.exact else f"<br><sup>of r = {data.total_components:,} in all</sup>"
    fig = pruned_output(
        pruned.y,
        pruned.y_pruned,
        kind=out.kind,
        title=f"Output with the top {k} of {of} components (by |αⱼₖ|, j = {j}){rest}",
        names=data.output_names,
        image_shape=out.image_shape,
        axis_values=out.axis_values,
        axis_label=out.axis_label,
    )
    full, kept = int(np.argmax(pruned.y)), int(np.argmax(pruned.y_pruned))
    note = f"kept {k} of {data.rank}; argmax: full {full}, top-k {kept}"
    if not data.exact:
        note += "; the rest of the spectrum is dropped with the components not kept"
    return fig, f"{pruned.relative_change:.2e}", note
