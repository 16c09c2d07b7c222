"""Descramble view: the controls and the graph grid (static layout, no callbacks)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from app import ids
from app.services import DescrambleOptions
from app.views import jobs
from app.views.common import graph_panel, number_field

__all__ = [
    "DEFAULTS",
    "POSITION_LABELS",
    "SOURCE_LABELS",
    "choices_note",
    "controls",
    "fft_flags",
    "graphs",
    "radio_options",
]

DEFAULTS = DescrambleOptions()
SOURCE_LABELS = {
    "dataset": "dataset inputs",
    "noise": "noise N(0, I), N samples",
    "limit": "exact limit (N → ∞)",
    "jacobian": "Jacobian at the data mean",
}
POSITION_LABELS = {
    "linear": "after the linear map",
    "activation": "after the activation",
    "second": "second-layer form",
}
STENCIL_LABELS = {"fourier": "Fourier (spectral)", "finite": "finite difference [1, −2, 1]"}
CRITERION_LABELS = {
    "smoothness": "smoothness ‖D P Y‖²",
    "mds": "maximum diagonal sum (closed form)",
    "max_diagonal_norm": "maximum diagonal norm² (iterative)",
}
METHOD_LABELS = {"exact": "exact (closed form)", "iterative": "iterative"}
OPTIMIZER_LABELS = {
    "riemannian": "Riemannian L-BFGS",
    "adam": "Cayley + Adam",
    "lbfgs": "Cayley + torch L-BFGS",
}


def radio_options(
    labels: dict[str, str], kind: str, reasons: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """RadioItems options; those named in `reasons` ("<kind>:<value>" -> why) are disabled
    and say why on hover."""
    reasons = reasons or {}
    options = []
    for value, text in labels.items():
        reason = reasons.get(f"{kind}:{value}")
        label: Any = text
        if reason:
            label = html.Span(
                [text, html.Span(" (not available)", className="hint-inline")],
                title=f"Not available: {reason}",
            )
        options.append({"label": label, "value": value, "disabled": bool(reason)})
    return options


def fft_flags(values: list[str] | None) -> tuple[bool, bool]:
    """(symmetrize, log) from the FFT display checklist."""
    chosen = set(values or [])
    return "symmetrize" in chosen, "log" in chosen


def _group(title: str, *children: Any) -> html.Fieldset:
    return html.Fieldset([html.Legend(title), *children], className="control-group")


def _radio(cid: str, labels: dict[str, str], value: str, kind: str = "") -> dcc.RadioItems:
    return dcc.RadioItems(
        id=cid,
        options=radio_options(labels, kind),
        value=value,
        className="radio-stack",
    )


def controls() -> html.Div:
    """Data source, stencil, criterion, method (with the iterative panel), position, options."""
    iterative = html.Div(
        [
            number_field(ids.INPUT_DESCRAMBLE_STEPS, "steps", DEFAULTS.steps, min=1, step=1),
            _radio(ids.RADIO_DESCRAMBLE_OPTIMIZER, OPTIMIZER_LABELS, DEFAULTS.optimizer),
            number_field(
                ids.INPUT_DESCRAMBLE_LR, "step / learning rate", DEFAULTS.lr, min=0, step="any"
            ),
            *jobs.run_controls(ids.JOB_DESCRAMBLE),
        ],
        id=ids.DIV_DESCRAMBLE_ITERATIVE,
        className="iterative-panel",
        style={"display": "none"},
    )
    grid = html.Div(
        [
            _group(
                "Data source",
                _radio(ids.RADIO_DESCRAMBLE_SOURCE, SOURCE_LABELS, DEFAULTS.source, "source"),
                number_field(ids.INPUT_DESCRAMBLE_SAMPLES, "N", DEFAULTS.samples, min=1, step=1),
            ),
            _group(
                "Wiretap position",
                _radio(
                    ids.RADIO_DESCRAMBLE_POSITION, POSITION_LABELS, DEFAULTS.position, "position"
                ),
            ),
            _group(
                "Criterion",
                _radio(ids.RADIO_DESCRAMBLE_CRITERION, CRITERION_LABELS, DEFAULTS.criterion),
            ),
            _group(
                "Stencil", _radio(ids.RADIO_DESCRAMBLE_STENCIL, STENCIL_LABELS, DEFAULTS.stencil)
            ),
            _group(
                "Method",
                _radio(ids.RADIO_DESCRAMBLE_METHOD, METHOD_LABELS, DEFAULTS.method),
                iterative,
            ),
            _group(
                "Options",
                dcc.Checklist(
                    id=ids.CHECKLIST_DESCRAMBLE_DET,
                    options=[{"label": "det(P) = +1", "value": "det"}],
                    value=[],
                    className="radio-stack",
                ),
                html.Div("FFT views", className="inline-label group-sub"),
                dcc.Checklist(
                    id=ids.CHECKLIST_DESCRAMBLE_FFT,
                    options=[
                        {
                            "label": "symmetrise (fold the input-frequency sign)",
                            "value": "symmetrize",
                        },
                        {"label": "log scale", "value": "log"},
                    ],
                    value=[],
                    className="radio-stack",
                ),
            ),
        ],
        className="descramble-controls",
    )
    return html.Div([grid, html.Div(id=ids.DIV_DESCRAMBLE_CHOICES, className="choices-note")])


def choices_note(reasons: dict[str, str]) -> list[Any]:
    """One line per reason: which sources / positions are disabled, and why."""
    by_reason: dict[str, list[str]] = {}
    for key, why in reasons.items():
        kind, value = key.split(":", 1)
        labels = SOURCE_LABELS if kind == "source" else POSITION_LABELS
        by_reason.setdefault(why, []).append(labels.get(value, value))
    return [
        html.Div(f"Unavailable: {', '.join(names)}: {why}.", className="hint")
        for why, names in by_reason.items()
    ]


def _pair(left: str, right: str) -> html.Div:
    return html.Div([graph_panel(left), graph_panel(right)], className="graph-pair")


def graphs() -> list[Any]:
    """W | P W, FFT(W) | FFT(P W), P | phi(P), the overlay, then W_(k+1) P^T and the
    objective history (each shown only when it exists)."""
    return [
        _pair(ids.GRAPH_DESCRAMBLE_RAW, ids.GRAPH_DESCRAMBLE_DESCRAMBLED),
        _pair(ids.GRAPH_DESCRAMBLE_FFT_RAW, ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED),
        _pair(ids.GRAPH_DESCRAMBLE_P, ids.GRAPH_DESCRAMBLE_PHI),
        graph_panel(ids.GRAPH_DESCRAMBLE_OVERLAY),
        html.Div(
            graph_panel(ids.GRAPH_DESCRAMBLE_NEXT),
            id=ids.DIV_DESCRAMBLE_NEXT,
            style={"display": "none"},
        ),
        html.Div(
            graph_panel(ids.GRAPH_DESCRAMBLE_HISTORY),
            id=ids.DIV_DESCRAMBLE_HISTORY,
            style={"display": "none"},
        ),
    ]
