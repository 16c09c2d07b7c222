"""The registry of exportable analyses: the arrays, numbers and figures of one analysis of
one layer (written by app/export/files.py and app/export/report.py).

`export_analysis` runs an analysis through `Services`, the same cached engine the page
uses (a result computed by the page is reused, and the other way round), and returns an
`AnalysisExport`: every array and number of the service's result, and the view's figures.
`save_npz` writes the arrays plus the numbers (0-d arrays) and a JSON `meta` entry;
`html_report` writes one HTML file that opens offline (plotly.js is inlined once).

Analyses: ``weights`` (the matrix W), ``svd`` (spectrum summary, top-k U, S, Vh), ``fft``
(symmetrised log-magnitude 2-D FFT of W), ``descramble`` (P, P W, phi, ... of
svdcore.wiretap.descramble_layer), ``subspaces`` (dimensions, singular values, signal
vectors), ``surgery`` (the spectral surgery of one sample at one split: alpha, bias
terms, ...), ``compare`` (against a layer of a second model: difference, spectra, subspace
overlaps and angles). `TAB_ANALYSES` says which analysis holds the data of each tab.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

import svdcore as sc
from app.figures import fft_view_heatmap, side_gallery, spectrum_figure
from app.figures.descramble_panels import descramble_figures
from app.figures.spectrum import first_view_figure
from app.figures.subspaces_panels import weight_figures
from app.figures.surgery_panels import surgery_figures
from app.services.descramble import DescrambleOptions
from app.services.surgery_types import (
    DEFAULT_TOP_K,
    SurgeryOptions,
    computed_in_request,
    resolve_precision,
    resolve_rank,
)

__all__ = [
    "ANALYSES",
    "TAB_ANALYSES",
    "AnalysisExport",
    "ExportOptions",
    "export_analysis",
]

ANALYSES: tuple[str, ...] = (
    "weights",
    "svd",
    "fft",
    "descramble",
    "subspaces",
    "surgery",
    "compare",
)
# the analysis behind each tab of the page (tabs without one have their own downloads)
TAB_ANALYSES: dict[str, str] = {
    "weights": "weights",
    "spectrum": "svd",
    "vectors": "svd",
    "descramble": "descramble",
    "subspaces": "subspaces",
    "surgery": "surgery",
    "compare": "compare",
}
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """Options of the exported analyses (the page's defaults).

    k: singular vectors kept (svd). source, samples, stencil, position: the descrambler's
    data source and wiretap (see DescrambleOptions; the exact method is always used).
    rtol: numerical-rank tolerance (subspaces; None: svdcore's default). sample, split:
    the surgery's dataset sample and split module (None: the model's default split);
    components ("auto", "exact", "top") and top_k: which of its components are computed,
    as the page's controls say (``resolve_rank``); precision: of a top-k surgery's Jacobian
    products ("float32" applies to top-k surgeries only, as on the page).
    compare_model, compare_layer: the second model and its layer (compare; the layer
    defaults to the same name). descramble: the page's full DescrambleOptions (an
    iterative result must already be computed). full_spectrum: compute a large layer's
    full SVD (the CLI) or export its randomized first view (the page, until its job ends);
    for the surgery, False exports only what the page computed (a large split: its job).
    """

    k: int = 16
    source: str = "limit"
    samples: int = 10_000
    stencil: str = "fourier"
    position: str = "linear"
    rtol: float | None = None
    sample: int = 0
    split: str | None = None
    components: str = "auto"
    top_k: int = DEFAULT_TOP_K
    precision: str = "float64"
    compare_model: str | None = None
    compare_layer: str | None = None
    descramble: DescrambleOptions | None = None  # all the view's options (the page)
    full_spectrum: bool = True  # False: a large layer's first view, as the page shows it


@dataclass(frozen=True)
class AnalysisExport:
    """One analysis of one layer: ``arrays`` (name -> numpy array), ``numbers`` (name ->
    plain number or text) and the view's ``figures`` (title -> plotly figure)."""

    analysis: str
    model: str
    layer: str
    arrays: dict[str, np.ndarray]
    numbers: dict[str, Any]
    figures: dict[str, go.Figure] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """A number/text/None as plain JSON-able Python, else the sentinel `_SKIP`."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return _SKIP


_SKIP = object()


def _collect(obj: Any, prefix: str, arrays: dict, numbers: dict) -> None:
    """Every array and number field of a dataclass result (nested dataclasses and dicts of
    arrays too, with dotted names); objects for the page only (ViewInfo, layouts) are
    skipped."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            _collect(value, f"{name}.", arrays, numbers)
        elif isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
            for key, arr in value.items():
                arrays[f"{name}.{key}"] = arr
        elif isinstance(value, dict) and all(_plain(v) is not _SKIP for v in value.values()):
            for key, v in value.items():
                numbers[f"{name}.{key}"] = _plain(v)
        elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            numbers[name] = "x".join(str(v) for v in value)
        elif _plain(value) is not _SKIP:
            numbers[name] = _plain(value)


def _svd(services: Any, model: str, layer: str, view: str, session: Any, o: ExportOptions):
    vec = services.layers.vectors(model, layer, view, o.k, session)
    spectrum = services.layers.spectrum(model, layer, view, session)
    summary = spectrum.summary
    if summary is None and not o.full_spectrum:  # the page's first view of a large layer
        return _top_svd(vec, spectrum.top, layer)
    if summary is None:  # a large layer: the page shows the top first; here, wait for all
        summary = services.layers.spectrum_full(model, layer, view, session)
    arrays = {
        "singular_values": np.asarray(summary.singular_values),
        "cumulative_energy": np.asarray(summary.cumulative_energy),
        "U": np.ascontiguousarray(vec.left.T),
        "S": np.asarray(vec.sigma),
        "Vh": np.asarray(vec.right),
    }
    numbers = {
        "shape": "x".join(map(str, summary.shape)),
        "condition_number": float(summary.condition_number),
        "numerical_rank": int(summary.numerical_rank),
        "effective_rank": float(summary.effective_rank),
        "stable_rank": float(summary.stable_rank),
        "frobenius_norm": float(summary.frobenius_norm),
        "spectral_norm": float(summary.spectral_norm),
        "rtol": float(summary.rtol),
        "k": len(vec.sigma),
        "truncated_vectors": bool(vec.truncated),
    }
    s = summary.singular_values
    figures = {
        "Spectrum": spectrum_figure(
            s,
            summary.cumulative_energy,
            tolerance=float(summary.rtol) * float(s[0]) if len(s) else None,
            numerical_rank=int(summary.numerical_rank),
            title=f"Spectrum of {layer}",
        ),
        "Right singular vectors": side_gallery(
            vec, "right", title=f"Right singular vectors of {layer} (input side)"
        ),
        "Left singular vectors": side_gallery(
            vec, "left", title=f"Left singular vectors of {layer} (output side)"
        ),
    }
    return arrays, numbers, figures


def _top_svd(vec: Any, top: Any, layer: str):
    arrays: dict[str, np.ndarray] = {
        "U": np.ascontiguousarray(vec.left.T),
        "S": np.asarray(vec.sigma),
        "Vh": np.asarray(vec.right),
    }
    numbers: dict[str, Any] = {"k": len(vec.sigma), "truncated_vectors": bool(vec.truncated)}
    _collect(top, "top.", arrays, numbers)
    figures = {
        "Spectrum (first view)": first_view_figure(top, title=f"Spectrum of {layer}: first view"),
    }
    return arrays, numbers, figures


def _weights(services: Any, model: str, layer: str, view: str, session: Any):
    from app.figures import weights_heatmap

    data = services.layers.weights(model, layer, view, session)
    W = data.matrix
    finite = np.isfinite(W)
    numbers = {
        "shape": "x".join(map(str, W.shape)),
        "dtype": str(W.dtype),
        "max_abs": float(np.abs(W[finite]).max()) if finite.any() else math.nan,
        "frobenius_norm": float(np.linalg.norm(W[finite])),
        "non_finite": int((~finite).sum()),
    }
    figure = weights_heatmap(W, title=f"Weights of {layer}", max_side=448)
    return {"W": W}, numbers, {"Weights": figure}


def _compare(services: Any, model: str, layer: str, view: str, session: Any, o: ExportOptions):
    from app.figures import weights_heatmap
    from app.figures.compare import overlap_figure, spectra_overlay

    if not o.compare_model:
        raise sc.DataError("compare needs a second model (the Compare tab's model B).")
    other_layer = o.compare_layer or layer
    data = services.compare.run(model, layer, view, o.compare_model, other_layer, o.k, session)
    c = data.comparison
    arrays: dict[str, np.ndarray] = {}
    numbers: dict[str, Any] = {"model_b": o.compare_model, "layer_b": other_layer}
    _collect(c, "", arrays, numbers)
    figures = {
        "Spectra": spectra_overlay(
            c.spectra_a, c.spectra_b, name_a=f"A: {model}", name_b=f"B: {o.compare_model}"
        ),
        "Subspace overlaps": overlap_figure(
            c.left_overlap, c.right_overlap, c.left_angles, c.right_angles
        ),
        "Difference W_B - W_A": weights_heatmap(c.diff, title="W_B − W_A", value_label="Δw"),
    }
    return arrays, numbers, figures


def _fft(services: Any, model: str, layer: str, view: str, session: Any, o: ExportOptions):
    W = services.layers.weights(model, layer, view, session).matrix
    F = sc.fft2_view(W, symmetrize=True, log=True)
    arrays: dict[str, np.ndarray] = {}
    numbers: dict[str, Any] = {"symmetrized": True, "log10": True}
    _collect(F, "", arrays, numbers)
    figures = {"2-D FFT": fft_view_heatmap(F, title=f"|FFT| of {layer} (symmetrised, log10)")}
    return arrays, numbers, figures


def _descramble(
    services: Any,
    model: str,
    layer: str,
    session: Any,
    dataset: str | None,
    o: ExportOptions,
    progress: Progress | None,
):
    options = o.descramble or DescrambleOptions(
        source=o.source, samples=o.samples, stencil=o.stencil, position=o.position
    )
    iterative = options.method == "iterative"
    data = services.descramble.run(
        model,
        layer,
        options,
        session,
        dataset=dataset,
        compute=not iterative,  # an iterative run is a background job of the page
        progress=None if progress is None else (lambda s, t, obj: progress(s, t, "descramble")),
    )
    if data is None:
        raise sc.DataError(
            "No iterative descrambling result for these options yet: press Run in the "
            "Descramble tab first, or export the exact method."
        )
    arrays: dict[str, np.ndarray] = {}
    numbers: dict[str, Any] = {}
    _collect(data, "", arrays, numbers)
    ffts = services.descramble.ffts(data, symmetrize=True, log=True)
    shown = descramble_figures(data, ffts, layer)
    figures = {
        "W": shown.raw,
        "P W": shown.descrambled,
        "|FFT| of W": shown.fft_raw,
        "|FFT| of P W": shown.fft_descrambled,
        "P": shown.P,
        "phi(P)": shown.phi,
        "Left singular vectors over the smooth basis": shown.overlay,
    }
    if shown.next is not None:
        figures["Next layer"] = shown.next
    return arrays, numbers, figures


def _subspaces(services: Any, model: str, layer: str, view: str, session: Any, o: ExportOptions):
    data = services.subspaces.data(model, layer, view, o.rtol, session)
    arrays: dict[str, np.ndarray] = {}
    numbers: dict[str, Any] = {}
    _collect(data, "", arrays, numbers)
    spectrum, signal = weight_figures(data, layer)
    return arrays, numbers, {"Singular values and rank": spectrum, "Signal vectors": signal}


def _surgery(
    services: Any, model: str, layer: str, session: Any, dataset: str | None, o: ExportOptions
):
    split = o.split or services.surgery.default_split(model, layer, session)
    r = services.surgery.rank(model, SurgeryOptions(o.sample, split), session, dataset)
    rank = resolve_rank(o.components, o.top_k, r)
    options = SurgeryOptions(o.sample, split, rank, resolve_precision(rank, o.precision))
    compute = o.full_spectrum or computed_in_request(r)  # the page: what its job computed
    data = services.surgery.run(model, options, session, dataset, compute=compute)
    if data is None:
        raise sc.DataError(
            f"The surgery at {split} (r = {r:,} components) is computed in the background: "
            "press Compute on the Surgery tab first, then export."
        )
    arrays: dict[str, np.ndarray] = {}
    numbers: dict[str, Any] = {
        "predicted_output": int(data.predicted),
        "exact": data.exact,
        "total_components": data.total_components,
    }
    _collect(data, "", arrays, numbers)
    j = data.predicted
    shown = surgery_figures(
        data, j, services.surgery.reduce(data, j), services.surgery.top(data, j, 8)
    )
    figures = {
        "Input": shown.input,
        "Contributions alpha": shown.alpha,
        "Sign-reduced proportions": shown.proportions,
        "Singular values and |alpha|": shown.spectrum,
        "Top singular vectors": shown.vectors,
        "Bias terms": shown.bias,
    }
    return arrays, numbers, figures


def export_analysis(
    services: Any,
    model: str,
    layer: str,
    analysis: str,
    *,
    view: str = "default",
    session: str | None = None,
    dataset: str | None = None,
    options: ExportOptions | None = None,
    progress: Progress | None = None,
) -> AnalysisExport:
    """Run `analysis` (one of ANALYSES) on `layer` of `model` through `services` (cached)
    and collect its arrays, numbers and figures. `dataset`: a dataset id of `services` for
    the data-driven analyses (descramble source "dataset"/"jacobian", surgery); None uses
    the model's default (an example network's own data). Raises sc.DataError for an
    unknown analysis and whatever the service raises (svdcore's sentences)."""
    o = options or ExportOptions()
    if analysis not in ANALYSES:
        raise sc.DataError(f"unknown analysis {analysis!r}; choose one of {', '.join(ANALYSES)}.")
    services.registry.layer_info(model, layer, session)  # a missing layer: LayerError naming it
    if dataset is None:
        dataset = services.datasets.default(model, session)
    if progress is not None:
        progress(0, 1, analysis)
    if analysis == "weights":
        arrays, numbers, figures = _weights(services, model, layer, view, session)
    elif analysis == "compare":
        arrays, numbers, figures = _compare(services, model, layer, view, session, o)
    elif analysis == "svd":
        arrays, numbers, figures = _svd(services, model, layer, view, session, o)
    elif analysis == "fft":
        arrays, numbers, figures = _fft(services, model, layer, view, session, o)
    elif analysis == "descramble":
        arrays, numbers, figures = _descramble(
            services, model, layer, session, dataset, o, progress
        )
    elif analysis == "subspaces":
        arrays, numbers, figures = _subspaces(services, model, layer, view, session, o)
    else:
        arrays, numbers, figures = _surgery(services, model, layer, session, dataset, o)
    if progress is not None:
        progress(1, 1, analysis)
    return AnalysisExport(analysis, model, layer, arrays, numbers, figures)
