"""Spectral surgery view: the dataset-wide analyses as background jobs (Dash background
callbacks on the app's DiskcacheManager, a forked process each).

Run writes a fresh nonce to the job's run store; the job reports progress, keeps its result
in the shared cache and writes {"key", "status", "message"} to the job's done store; the
draw callback shows whatever the cache holds for the options now on screen. Cancel kills
the job (Dash) and raises a flag the job polls (`should_stop`), so it stops either way and
keeps nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dash
from dash import Input, Output, State

import svdcore as sc
from app import ids
from app.figures import placeholder_figure
from app.figures.surgery_dataset import depth_figure, similarity_heatmap
from app.ids import JobIds
from app.services.surgery_types import DepthOptions, SimilarityOptions
from app.storage.session import current_session_id
from app.views import jobs
from app.views.common import Selection, alert, number, selection_ready
from app.views.surgery.controls import DEFAULT_SIM_SAMPLES
from app.views.surgery.render import panel
from app.views.surgery.state import dataset_of, sample_of, split_of, surgery_options

PROGRESS_EVERY_S = jobs.PROGRESS_EVERY_S  # throttle of progress reports and cancel checks

__all__ = ["PROGRESS_EVERY_S", "register"]


@dataclass(frozen=True)
class Job:
    name: str
    components: JobIds  # its Run / Cancel / progress / status components and stores
    graph: str
    fields: tuple[str, ...]  # ids of the job's own inputs (their "value")
    options: Callable[..., Any]  # (services, selection, split, session, *values) -> options
    compute: Callable[..., Any]  # services -> its method computing the result
    key: Callable[..., Any]  # services -> its method giving the cache key
    draw: Callable[..., Any]  # (services, selection, data) -> figure
    unit: str  # progress text: "samples" / "layers"


def _similarity_options(services, selection, split, session, samples, component):
    return SimilarityOptions(
        split=split_of(services, selection, split, session),
        samples=number(samples, int, DEFAULT_SIM_SAMPLES),
        component=number(component, int, 1),
    )


def _depth_options(services, selection, _split_value, session):
    splits = services.surgery.depth_splits(selection["model"], session)
    return DepthOptions(sample=sample_of(selection), splits=splits)


def _draw_similarity(services, selection, data) -> Any:
    o = data.options
    fig = similarity_heatmap(
        data.matrix,
        labels=data.labels,
        title=(
            f"⟨φ{o.component}(xᵢ), φ{o.component}(xⱼ)⟩ at {o.split} across "
            f"{data.matrix.shape[0]} samples"
        ),
    )
    return fig


def _draw_depth(services, selection, data) -> Any:
    layout = services.surgery.layout(selection["model"], current_session_id())
    return depth_figure(
        data.splits,
        [panel(layout, t) for t in data.top],
        [panel(layout, c, reduce="sum") for c in data.contracted],
        data.spectra,
        title=f"Top singular vector and spectrum by depth, sample #{data.options.sample}",
        axis_values=layout.axis_values,
        axis_label=layout.axis_label,
    )


JOBS = (
    Job(
        name="similarity",
        components=ids.JOB_SURGERY_SIM,
        graph=ids.GRAPH_SURGERY_SIMILARITY,
        fields=(ids.INPUT_SURGERY_SIM_SAMPLES, ids.INPUT_SURGERY_SIM_COMPONENT),
        options=_similarity_options,
        compute=lambda services: services.surgery.similarity,
        key=lambda services: services.surgery.similarity_key,
        draw=_draw_similarity,
        unit="samples",
    ),
    Job(
        name="depth",
        components=ids.JOB_SURGERY_DEPTH,
        graph=ids.GRAPH_SURGERY_DEPTH,
        fields=(),
        options=_depth_options,
        compute=lambda services: services.surgery.depth,
        key=lambda services: services.surgery.depth_key,
        draw=_draw_depth,
        unit="layers",
    ),
)


def _cancelled(job: Job, step: Any, total: Any) -> Any:
    what, at = f"{job.name} run", "after {step:,} of {total:,} " + job.unit
    return jobs.cancelled_alert(step, total, what=what, at=at, kept="nothing was kept")


def _register_job(app: dash.Dash, services: Any, job: Job) -> None:
    compute, key_of = job.compute(services), job.key(services)

    @app.callback(
        Output(job.graph, "figure"),
        Output(job.components.status, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.DROPDOWN_SURGERY_SPLIT, "value"),
        *[Input(f, "value") for f in job.fields],
        Input(job.components.done_store, "data"),
    )
    def draw(selection: Selection | None, split: Any, *values: Any) -> tuple[Any, Any]:
        if not selection_ready(selection, ids.TAB_SURGERY) or not selection.get("model"):
            raise dash.exceptions.PreventUpdate
        *fields, done = values
        session = current_session_id()
        try:  # no network to run or no data: the view's own alert says so already
            services.surgery.samples(selection["model"], session, dataset_of(selection))
        except Exception:
            return placeholder_figure(), None
        try:
            options = job.options(services, selection, split, session, *fields)
            args = (selection["model"], options, session, dataset_of(selection))
            data = compute(*args, compute=False)
            key = key_of(*args)
        except Exception as err:
            return placeholder_figure(), alert(services.error_message(err))
        if data is not None:
            return job.draw(services, selection, data), _note(data)
        last = jobs.last_status(done, key)
        if last == "error":
            return placeholder_figure(), jobs.failed_alert(done)
        if last == "cancelled":
            return placeholder_figure(), _cancelled(job, None, None)
        message = f"Press Run to compute the {job.name} for these settings."
        return placeholder_figure(), alert(message, kind="info")

    def prepare(session: str | None, selection: Selection, split: Any, *fields: Any) -> Any:
        options = job.options(services, selection, split, session, *fields)
        args = (selection["model"], options, session, dataset_of(selection))

        def run(progress: Any, should_stop: Any) -> bool:
            return compute(*args, progress=progress, should_stop=should_stop) is None

        return key_of(*args), run

    jobs.register_job(
        app,
        services,
        job.components,
        states=[
            State(ids.DROPDOWN_SURGERY_SPLIT, "value"),
            *[State(f, "value") for f in job.fields],
        ],
        requires="model",
        prepare=prepare,
        progress_text=lambda done, total: f"{done:,} of {total:,} {job.unit}",
        cancelled=lambda step, total: _cancelled(job, step, total),
    )


def _note(data: Any) -> Any:
    note = getattr(data, "note", "")
    return alert(note, kind="info", title="Note") if note else None


def _compute_text(done: Any, total: Any, *_: Any) -> str:
    if done is None or total is None:
        return "computing in the background…"
    return f"randomized SVD: block step {done:,} of {total:,}"


def _register_compute(app: dash.Dash, services: Any) -> None:
    """A surgery too large for the request (r > SYNC_MAX_RANK), computed in a job; the
    view's callbacks read it from the shared cache when the done store changes. A top-k
    surgery reports each block step of its randomized SVD; the exact one reports nothing
    (an indeterminate bar)."""

    def prepare(
        session: str | None, selection: Selection, split: Any, mode: Any, k: Any, precision: Any
    ) -> Any:
        options, _r = surgery_options(services, selection, split, mode, k, session, precision)
        args = (selection["model"], options, session, dataset_of(selection))

        def run(progress: Any, should_stop: Any) -> bool:
            if options.rank is None:
                progress(None, None)  # the Jacobians and the SVD report nothing
                services.surgery.run(*args)
                return False
            try:
                services.surgery.run(*args, progress=progress, should_stop=should_stop)
            except sc.ExecutionError:
                if should_stop():
                    return True  # cancelled between two steps: nothing was kept
                raise
            return False

        return services.surgery.key(*args), run

    jobs.register_job(
        app,
        services,
        ids.JOB_SURGERY_COMPUTE,
        states=[
            State(ids.DROPDOWN_SURGERY_SPLIT, "value"),
            State(ids.RADIO_SURGERY_COMPONENTS, "value"),
            State(ids.INPUT_SURGERY_TOP_K, "value"),
            State(ids.RADIO_SURGERY_PRECISION, "value"),
        ],
        requires="model",
        prepare=prepare,
        progress_text=_compute_text,
        cancelled=lambda step, total: jobs.cancelled_alert(
            None, None, what="surgery", kept="nothing was kept"
        ),
    )


def register(app: dash.Dash, services: Any) -> None:
    for job in JOBS:
        _register_job(app, services, job)
    _register_compute(app, services)
