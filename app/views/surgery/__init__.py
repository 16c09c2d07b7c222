"""Spectral surgery view (SpecXAI): one sample's prediction split into the singular
components of the locally linear network at a chosen layer.

Pick a sample in the gallery (its index is `sample=` in the URL: a click writes
STORE_SURGERY_PICK, which the router folds into the selection), a split module (the
sidebar's layer by default) and an output (the predicted one by default). The surgery of a
sample at a split is computed in the request and cached (all outputs at once); the
dataset-wide analyses are background jobs (app/views/surgery/jobs.py).
"""

from __future__ import annotations

import math
import time
from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, no_update

from app import ids
from app.figures import placeholder_figure
from app.services.surgery_types import SurgeryOptions
from app.storage.session import current_session_id
from app.views.common import Selection, alert, selection_ready
from app.views.surgery import jobs as surgery_jobs
from app.views.surgery.controls import DEFAULT_VECTORS, MAX_VECTORS, PER_PAGE
from app.views.surgery.controls import layout as _layout
from app.views.surgery.render import empty, gallery_items, render, render_pruned
from app.views.surgery.state import dataset_of, sample_of, surgery_options, sync

__all__ = ["dataset_of", "layout", "register", "sample_of"]

layout = _layout


def _ready(selection: Selection | None) -> bool:
    return selection_ready(selection, ids.TAB_SURGERY) and bool(selection.get("model"))


def _surgery(
    services: Any,
    selection: Selection,
    split: Any,
    components: tuple[Any, Any, Any],
    session: str | None,
) -> tuple[SurgeryOptions, Any, int]:
    """(options, the surgery or None when too large to compute in the request, r);
    ``components``: the controls' (mode, k, precision)."""
    mode, k, precision = components
    options, r = surgery_options(services, selection, split, mode, k, session, precision)
    model, dataset = selection["model"], dataset_of(selection)
    data = services.surgery.run(model, options, session, dataset, compute=sync(r))
    return options, data, r


def _background_text(options: SurgeryOptions, r: int) -> str:
    """Why the surgery asked for runs in the background, and what it will compute."""
    if options.rank is None:
        return (
            f"Splitting at {options.split} gives r = {r:,} components: the exact surgery "
            f"takes three Jacobians and an SVD of that size, too long to compute while the "
            f"page waits (minutes on a CPU for r = 4,096). Compute it in the background, "
            f"choose the top k components, or a narrower layer."
        )
    return (
        f"Splitting at {options.split} gives r = {r:,} components. The top "
        f"{options.rank:,} come from a randomized SVD of R = ∂z/∂x over Jacobian-vector "
        f"products (R is never formed), and the other {r - options.rank:,} from one more "
        f"term, the rest of the spectrum. Compute it in the background (with progress)."
    )


def _is_index(value: Any, n: int) -> bool:
    try:
        return float(value).is_integer() and 0 <= int(float(value)) < n
    except (TypeError, ValueError):
        return False


def _count(value: Any) -> int:
    try:
        return max(1, min(MAX_VECTORS, int(value)))
    except (TypeError, ValueError):
        return DEFAULT_VECTORS


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.DIV_SURGERY_GALLERY, "children"),
        Output(ids.STORE_SURGERY_PAGE, "data"),
        Output(ids.TEXT_SURGERY_PAGE, "children"),
        Output(ids.INPUT_SURGERY_SAMPLE, "value"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.BUTTON_SURGERY_PREV, "n_clicks"),
        Input(ids.BUTTON_SURGERY_NEXT, "n_clicks"),
        State(ids.STORE_SURGERY_PAGE, "data"),
    )
    def update_gallery(selection: Selection | None, _prev: Any, _next: Any, page: Any):
        """A page of thumbnails: the chosen sample's page, or the previous / next one."""
        if not _ready(selection):
            raise dash.exceptions.PreventUpdate
        session, sample = current_session_id(), sample_of(selection)
        try:
            samples = services.surgery.samples(selection["model"], session, dataset_of(selection))
            layout_ = services.surgery.layout(selection["model"], session)
        except Exception:  # the main callback shows the sentence
            return [], 0, "", None
        pages = max(1, math.ceil(len(samples) / PER_PAGE))
        page = int(page or 0)
        if ctx.triggered_id == ids.BUTTON_SURGERY_PREV:
            page = max(0, page - 1)
        elif ctx.triggered_id == ids.BUTTON_SURGERY_NEXT:
            page = min(pages - 1, page + 1)
        else:
            page = min(pages - 1, sample // PER_PAGE)
        start = page * PER_PAGE
        stop = min(len(samples), start + PER_PAGE)
        items = gallery_items(samples, layout_, start, stop, sample)
        text = f"#{start}–{stop - 1} of {len(samples):,} ({samples.name})"
        return items, page, text, sample

    @app.callback(
        Output(ids.STORE_SURGERY_PICK, "data"),
        Input(ids.surgery_thumb_id(ALL), "n_clicks"),
        Input(ids.INPUT_SURGERY_SAMPLE, "value"),
        State(ids.STORE_SELECTION_STATE, "data"),
        prevent_initial_call=True,
    )
    def pick_sample(_clicks: Any, typed: Any, selection: Selection | None) -> Any:
        """A thumbnail click or a typed number -> the router (URL `sample=`)."""
        trigger = ctx.triggered_id
        if isinstance(trigger, dict):
            if not ctx.triggered or not ctx.triggered[0].get("value"):
                raise dash.exceptions.PreventUpdate  # a freshly drawn thumbnail, not a click
            sample = int(trigger["index"])
            if sample == sample_of(selection) and (selection or {}).get("sample") is not None:
                raise dash.exceptions.PreventUpdate
        else:  # typed (or echoed back by the gallery): only a different sample counts
            try:
                sample = int(typed)
            except (TypeError, ValueError):
                raise dash.exceptions.PreventUpdate from None
            if sample == sample_of(selection):
                raise dash.exceptions.PreventUpdate
        if sample < 0:
            raise dash.exceptions.PreventUpdate
        return {"sample": sample, "at": time.time()}

    @app.callback(
        Output(ids.DROPDOWN_SURGERY_SPLIT, "options"),
        Output(ids.DROPDOWN_SURGERY_SPLIT, "value"),
        Output(ids.STORE_SURGERY_SPLIT_FOR, "data"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        State(ids.DROPDOWN_SURGERY_SPLIT, "value"),
        State(ids.STORE_SURGERY_SPLIT_FOR, "data"),
    )
    def update_split(selection: Selection | None, value: Any, split_for: Any):
        """The modules to split at; the sidebar's layer is chosen whenever it changes."""
        if not _ready(selection):
            raise dash.exceptions.PreventUpdate
        session = current_session_id()
        context = {"model": selection["model"], "layer": selection.get("layer")}
        try:
            choices = services.surgery.splits(selection["model"], session)
        except Exception:
            return [], None, context
        options = [
            {"label": f"{c.name} ({c.kind}{'' if c.has_weights else ', no weights'})",
             "value": c.name}
            for c in choices
        ]  # fmt: skip
        if context == split_for and value in {c.name for c in choices}:
            return options, no_update, no_update
        default = services.surgery.default_split(selection["model"], context["layer"], session)
        return options, default, context

    @app.callback(
        Output(ids.INPUT_SURGERY_OUTPUT, "value"),
        Input(ids.GRAPH_SURGERY_ALPHA, "clickData"),
        prevent_initial_call=True,
    )
    def click_output(click: Any) -> Any:
        """A click on a row of the contributions heatmap picks that output."""
        try:
            return max(0, round(float(click["points"][0]["y"])))
        except (TypeError, KeyError, IndexError, ValueError):
            raise dash.exceptions.PreventUpdate from None

    @app.callback(
        Output(ids.GRAPH_SURGERY_INPUT, "figure"),
        Output(ids.GRAPH_SURGERY_ALPHA, "figure"),
        Output(ids.GRAPH_SURGERY_PROPORTIONS, "figure"),
        Output(ids.GRAPH_SURGERY_SPECTRUM, "figure"),
        Output(ids.GRAPH_SURGERY_VECTORS, "figure"),
        Output(ids.GRAPH_SURGERY_DATA_SVD, "figure"),
        Output(ids.GRAPH_SURGERY_BIAS, "figure"),
        Output(ids.DIV_SURGERY_BIAS_NOTES, "children"),
        Output(ids.GRAPH_SURGERY_BIAS_IMAGES, "figure"),
        Output(ids.DIV_SURGERY_BIAS_IMAGES, "style"),
        Output(ids.DIV_SURGERY_SUMMARY, "children"),
        Output(ids.TEXT_SURGERY_CHECK, "children"),
        Output(ids.SLIDER_SURGERY_KEEP, "max"),
        Output(ids.SLIDER_SURGERY_KEEP, "marks"),
        Output(ids.SLIDER_SURGERY_KEEP, "value"),
        Output(ids.DIV_SURGERY_COMPUTE, "style"),
        Output(ids.TEXT_SURGERY_COMPUTE, "children"),
        Output(ids.DIV_SURGERY_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.DROPDOWN_SURGERY_SPLIT, "value"),
        Input(ids.INPUT_SURGERY_OUTPUT, "value"),
        Input(ids.INPUT_SURGERY_VECTORS, "value"),
        Input(ids.RADIO_SURGERY_RANK, "value"),
        Input(ids.RADIO_SURGERY_COMPONENTS, "value"),
        Input(ids.INPUT_SURGERY_TOP_K, "value"),
        Input(ids.RADIO_SURGERY_PRECISION, "value"),
        Input(ids.JOB_SURGERY_COMPUTE.done_store, "data"),
        State(ids.SLIDER_SURGERY_KEEP, "max"),
    )
    def update_surgery(
        selection: Selection | None,
        split: Any,
        output: Any,
        count: Any,
        rank_by: Any,
        mode: Any,
        top_k: Any,
        precision: Any,
        done: Any,
        shown_max: Any,
    ) -> tuple[Any, ...]:
        if not _ready(selection):
            raise dash.exceptions.PreventUpdate
        session = current_session_id()
        hidden = {"display": "none"}
        try:
            components = (mode, top_k, precision)
            options, data, r = _surgery(services, selection, split, components, session)
            if data is None:  # too large for the request: a background job computes it
                key = services.surgery.key(
                    selection["model"], options, session, dataset_of(selection)
                )
                failed = bool(done) and done.get("key") == key and done.get("status") == "error"
                text = _background_text(options, r)
                message = (
                    alert(done.get("message"), title="The computation failed") if failed else None
                )
                blank = empty("Press Compute to run this surgery in the background.")
                return (*blank, no_update, no_update, no_update, {"display": "flex"}, text, message)
            j = services.surgery.output(data, output)
            svd = services.surgery.data_svd(selection["model"], session, dataset_of(selection))
            rendered = render(services.surgery, data, j, _count(count), rank_by or "alpha", svd)
        except Exception as err:
            message = alert(services.error_message(err))
            return (*empty(), no_update, no_update, no_update, hidden, "", message)
        kept = data.rank  # the slider keeps up to the components computed
        step = max(1, kept // 8)
        marks = {k: str(k) for k in range(0, kept + 1, step)} | {kept: str(kept)}
        keep = kept if shown_max != kept else no_update
        note = None
        n = data.y.shape[0]
        if output not in (None, "") and not _is_index(output, n):
            note = alert(
                f"There is no output {output}: the network has {n} (0 to {n - 1}); "
                f"showing the predicted output {j}.",
                kind="warning",
            )
        return (*rendered, kept, marks, keep, hidden, "", note)

    @app.callback(
        Output(ids.GRAPH_SURGERY_PRUNED, "figure"),
        Output(ids.TEXT_SURGERY_CHANGE, "children"),
        Output(ids.TEXT_SURGERY_KEPT, "children"),
        Input(ids.SLIDER_SURGERY_KEEP, "value"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.DROPDOWN_SURGERY_SPLIT, "value"),
        Input(ids.INPUT_SURGERY_OUTPUT, "value"),
        Input(ids.RADIO_SURGERY_COMPONENTS, "value"),
        Input(ids.INPUT_SURGERY_TOP_K, "value"),
        Input(ids.RADIO_SURGERY_PRECISION, "value"),
        Input(ids.JOB_SURGERY_COMPUTE.done_store, "data"),
    )
    def update_pruned(
        keep: Any,
        selection: Selection | None,
        split: Any,
        output: Any,
        mode,
        top_k,
        precision,
        _done,
    ):
        """The output kept by the top-k components and how far it moved."""
        if not _ready(selection):
            raise dash.exceptions.PreventUpdate
        session = current_session_id()
        try:
            components = (mode, top_k, precision)
            _options, data, _r = _surgery(services, selection, split, components, session)
            if data is None:
                return placeholder_figure(), "", ""
            j = services.surgery.output(data, output)
            k = data.rank if keep is None else int(keep)
            fig, change, note = render_pruned(services.surgery, data, j, k)
        except Exception:  # the main callback shows the sentence
            return placeholder_figure(), "", ""
        return fig, change, f" · {note}"

    surgery_jobs.register(app, services)
