"""Spectral surgery view: the static layout (gallery, controls, graphs, job panels)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from app import ids
from app.ids import JobIds
from app.services.surgery_types import (
    DEFAULT_TOP_K,
    MAX_SIMILARITY_SAMPLES,
    MAX_TOP_K,
    SYNC_MAX_RANK,
)
from app.views import jobs
from app.views.common import graph_panel, number_field

__all__ = ["DEFAULT_SIM_SAMPLES", "DEFAULT_VECTORS", "MAX_VECTORS", "PER_PAGE", "layout"]

PER_PAGE = 24  # thumbnails per gallery page
DEFAULT_VECTORS = 4
MAX_VECTORS = 12
DEFAULT_SIM_SAMPLES = 100


def _gallery() -> html.Fieldset:
    return html.Fieldset(
        [
            html.Legend("Sample"),
            html.Div(
                [
                    html.Button("‹ previous", id=ids.BUTTON_SURGERY_PREV, className="page-button"),
                    html.Span(id=ids.TEXT_SURGERY_PAGE, className="hint"),
                    html.Button("next ›", id=ids.BUTTON_SURGERY_NEXT, className="page-button"),
                    number_field(ids.INPUT_SURGERY_SAMPLE, "go to #", None, min=0, step=1),
                ],
                className="gallery-head",
            ),
            html.Div(id=ids.DIV_SURGERY_GALLERY, className="thumb-gallery"),
        ],
        className="control-group surgery-gallery",
    )


def _choices() -> html.Fieldset:
    return html.Fieldset(
        [
            html.Legend("Split and output"),
            html.Label("Split at layer (module output z_l)", className="inline-label"),
            dcc.Dropdown(id=ids.DROPDOWN_SURGERY_SPLIT, options=[], clearable=False),
            number_field(
                ids.INPUT_SURGERY_OUTPUT, "output j", None, min=0, step=1, placeholder="predicted"
            ),
            html.Div(
                "Empty: the predicted output (argmax y). Click a row of the contributions "
                "heatmap to pick another.",
                className="hint",
            ),
            number_field(
                ids.INPUT_SURGERY_VECTORS,
                "vectors shown",
                DEFAULT_VECTORS,
                min=1,
                max=MAX_VECTORS,
                step=1,
            ),
            html.Div("components", className="inline-label group-sub"),
            dcc.RadioItems(
                id=ids.RADIO_SURGERY_COMPONENTS,
                options=[
                    {
                        "label": f"automatic (all up to r = {SYNC_MAX_RANK:,}, else top k)",
                        "value": "auto",
                    },
                    {"label": "all r (exact SVD of R)", "value": "exact"},
                    {"label": "top k (randomized SVD, R never formed)", "value": "top"},
                ],
                value="auto",
                className="surgery-radio",
            ),
            number_field(ids.INPUT_SURGERY_TOP_K, "k", DEFAULT_TOP_K, min=1, max=MAX_TOP_K, step=1),
            dcc.RadioItems(
                id=ids.RADIO_SURGERY_PRECISION,
                options=[
                    {"label": "float64 products", "value": "float64"},
                    {
                        "label": "float32 products (top k: faster, values to ~1e-7)",
                        "value": "float32",
                    },
                ],
                value="float64",
                className="surgery-radio",
            ),
            html.Div(
                "A top-k surgery keeps the exact output: the components beyond the k-th "
                "are one more term, the rest of the spectrum L (R − Rₖ) x.",
                className="hint",
            ),
            html.Div("rank the vectors by", className="inline-label group-sub"),
            dcc.RadioItems(
                id=ids.RADIO_SURGERY_RANK,
                options=[
                    {"label": "αⱼₖ toward the output", "value": "alpha"},
                    {"label": "sign-reduced terms (eq. 21)", "value": "reduced"},
                ],
                value="alpha",
                className="surgery-radio",
            ),
        ],
        className="control-group surgery-choices",
    )


def job_panel(
    job: JobIds, *, title: str, explain: str, fields: list[Any], graph_id: str
) -> html.Section:
    """A dataset-wide analysis: its options, Run / Cancel, a progress bar, status, graph."""
    return html.Section(
        [
            *jobs.stores(job),
            html.H3(title, className="section-title"),
            html.P(explain, className="hint"),
            html.Div([*fields, *jobs.run_controls(job)], className="job-controls"),
            html.Div(id=job.status),
            graph_panel(graph_id),
        ],
        className="surgery-job",
    )


def _jobs() -> list[Any]:
    similarity = job_panel(
        ids.JOB_SURGERY_SIM,
        title="Similarity of singular vectors across the dataset (SpecXAI Fig. 5)",
        explain=(
            "The cosine ⟨φₖ(xᵢ), φₖ(xⱼ)⟩ of the k-th right singular vector at the split "
            "between every pair of the first N samples (grouped by class when labelled): "
            "blocks of ±1 are features the network reuses across samples."
        ),
        fields=[
            number_field(
                ids.INPUT_SURGERY_SIM_SAMPLES,
                "N samples",
                DEFAULT_SIM_SAMPLES,
                min=1,
                max=MAX_SIMILARITY_SAMPLES,
                step=1,
            ),
            number_field(ids.INPUT_SURGERY_SIM_COMPONENT, "vector k", 1, min=1, step=1),
        ],
        graph_id=ids.GRAPH_SURGERY_SIMILARITY,
    )
    depth = job_panel(
        ids.JOB_SURGERY_DEPTH,
        title="Depth evolution of the top singular vector (SpecXAI Fig. 6)",
        explain=(
            "Spectral surgery of this sample split at each layer with weights, first to "
            "last: the top singular vector φ₁, its contraction with the input, and the "
            "spectrum σₖ/σ₁, which narrows with depth in the paper's networks."
        ),
        fields=[],
        graph_id=ids.GRAPH_SURGERY_DEPTH,
    )
    return [similarity, depth]


def _compute_panel() -> html.Div:
    """Shown for a split too large to compute in the request: Compute / Cancel."""
    job = ids.JOB_SURGERY_COMPUTE
    return html.Div(
        [
            *jobs.stores(job),
            html.Span(id=ids.TEXT_SURGERY_COMPUTE),
            *jobs.run_controls(job, run_label="Compute"),
            html.Div(id=job.status),
        ],
        id=ids.DIV_SURGERY_COMPUTE,
        className="job-controls surgery-compute",
        style={"display": "none"},
    )


def _pair(left: Any, right: Any) -> html.Div:
    return html.Div([left, right], className="graph-pair")


def layout() -> html.Div:
    return html.Div(
        [
            dcc.Store(id=ids.STORE_SURGERY_PICK, storage_type="memory"),
            dcc.Store(id=ids.STORE_SURGERY_PAGE, storage_type="memory", data=0),
            dcc.Store(id=ids.STORE_SURGERY_SPLIT_FOR, storage_type="memory"),
            html.Div(id=ids.DIV_SURGERY_ALERT),
            _compute_panel(),
            html.Div([_gallery(), _choices()], className="surgery-controls"),
            html.Div(
                [
                    html.Div(id=ids.DIV_SURGERY_SUMMARY, className="surgery-summary"),
                    html.Span(id=ids.TEXT_SURGERY_CHECK, className="hint"),
                ],
                className="surgery-summary-row",
            ),
            _pair(graph_panel(ids.GRAPH_SURGERY_INPUT), graph_panel(ids.GRAPH_SURGERY_ALPHA)),
            _pair(
                graph_panel(ids.GRAPH_SURGERY_PROPORTIONS), graph_panel(ids.GRAPH_SURGERY_SPECTRUM)
            ),
            graph_panel(ids.GRAPH_SURGERY_VECTORS),
            graph_panel(ids.GRAPH_SURGERY_DATA_SVD),
            _pair(
                html.Div(
                    [graph_panel(ids.GRAPH_SURGERY_BIAS), html.Div(id=ids.DIV_SURGERY_BIAS_NOTES)]
                ),
                html.Div(
                    [
                        html.Label("Keep top k components", className="section-label"),
                        dcc.Slider(
                            id=ids.SLIDER_SURGERY_KEEP,
                            min=0,
                            max=1,
                            step=1,
                            value=1,
                            tooltip={"placement": "bottom"},
                        ),
                        html.Div(
                            [
                                html.Span("relative change ‖y − yₖ‖ / ‖y‖ = "),
                                html.Strong(id=ids.TEXT_SURGERY_CHANGE),
                                html.Span(id=ids.TEXT_SURGERY_KEPT, className="hint"),
                            ],
                            className="surgery-change",
                        ),
                        graph_panel(ids.GRAPH_SURGERY_PRUNED),
                    ]
                ),
            ),
            html.Div(
                graph_panel(ids.GRAPH_SURGERY_BIAS_IMAGES),
                id=ids.DIV_SURGERY_BIAS_IMAGES,
                style={"display": "none"},
            ),
            *_jobs(),
        ],
        className="view view-surgery",
    )
