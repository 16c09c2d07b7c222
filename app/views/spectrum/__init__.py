"""Spectrum view: singular values, cumulative energy and the rank numbers.

A large layer (min(m, n) > `SPECTRUM_FULL_MAX_SIDE`) opens on its top singular values from
a randomized sketch, with their error bounds, and starts the full SVD as a background job
(progress, Cancel); when the job is done the full spectrum replaces the first view.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from typing import Any

import dash
from dash import Input, Output, State, html, no_update

from app import ids
from app.figures import placeholder_figure, spectrum_figure
from app.figures.spectrum import first_view_figure as top_figure
from app.formatting import fmt_g
from app.services import SpectrumData
from app.storage.session import current_session_id
from app.views import jobs
from app.views.common import (
    Selection,
    attempt,
    graph_panel,
    layer_title,
    selection_ready,
    stat_maker,
)
from app.views.spectrum import esd, heads
from svdcore.cache import make_key

__all__ = ["layout", "register", "stats_panel", "top_stats_panel"]

_JOB = ids.JOB_SPECTRUM
# seconds of a full SVD of a 4096 x 4096 float32 matrix in a one-thread job here (the
# progress bar's scale only: LAPACK reports nothing while it runs)
_SECONDS_4096 = 60.0


def layout() -> html.Div:
    return html.Div(
        [
            html.Div(id=ids.DIV_SPECTRUM_ALERT),
            html.Div(
                [
                    html.Span(id=ids.TEXT_SPECTRUM_FULL_NOTE, className="hint"),
                    *jobs.run_controls(_JOB, run_label="Compute the full spectrum"),
                    html.Div(id=ids.JOB_SPECTRUM.status),
                ],
                id=ids.DIV_SPECTRUM_FULL,
                className="iterative-panel spectrum-full",
                style={"display": "none"},
            ),
            *jobs.stores(_JOB),
            html.Div(id=ids.DIV_SPECTRUM_STATS, className="stats"),
            graph_panel(ids.GRAPH_SPECTRUM_VALUES),
            esd.layout(),
            heads.layout(),
        ],
        className="view view-spectrum",
    )


_stat = stat_maker("spectrum")


def stats_panel(data: SpectrumData) -> list[html.Div]:
    """The numbers of the spectrum, each with how it is defined."""
    s = data.summary
    sv = s.singular_values
    m, n = data.shape
    tol = float(s.rtol) * float(sv[0]) if len(sv) else 0.0
    levels = " / ".join(f"{f:.0%}" for f in data.rank_for_energy)
    reach = " / ".join(str(k) for k in data.rank_for_energy.values())
    return [
        _stat(
            "Condition number",
            fmt_g(float(s.condition_number)),
            "σ₁ / σᵣ, σᵣ the smallest above the tolerance",
            "cond",
        ),
        _stat(
            "Numerical rank",
            f"{int(s.numerical_rank)} of {min(m, n)}",
            f"σᵢ > {tol:.3g} (rtol {float(s.rtol):.2g} · σ₁)",
            "rank",
        ),
        _stat(
            "Effective rank", f"{float(s.effective_rank):.2f}", "exp(entropy of σᵢ / Σσ)", "erank"
        ),
        _stat("Stable rank", f"{float(s.stable_rank):.2f}", "Σσᵢ² / σ₁² (‖W‖F² / ‖W‖₂²)", "srank"),
        _stat("Energy", reach or "—", f"smallest k holding {levels} of Σσ²", "energy"),
    ]


def top_stats_panel(data: SpectrumData) -> list[html.Div]:
    """What the top singular values of a large layer already tell, with their bounds."""
    top = data.top
    s1, u1 = float(top.singular_values[0]), float(top.upper[0])
    srank_hi = top.frobenius_norm**2 / s1**2 if s1 > 0 else math.nan
    srank_lo = top.frobenius_norm**2 / u1**2 if u1 > 0 else math.nan
    pending = "after the full SVD"
    return [
        _stat("Spectral norm σ₁", f"{fmt_g(s1)}", f"in [{fmt_g(s1)}, {fmt_g(u1)}]", "sigma1"),
        _stat(
            "Stable rank", f"{fmt_g(srank_hi)}", f"‖W‖F² / σ₁², in [{fmt_g(srank_lo)}, …]", "srank"
        ),
        _stat(
            f"Energy in the top {top.singular_values.size}",
            f"≥ {top.captured_energy:.1%}",
            "Σ sᵢ² / ‖W‖F² (‖W‖F exact)",
            "energy",
        ),
        _stat(
            "Accuracy",
            f"{top.max_relative_residual:.1e}",
            "largest Ritz residual δᵢ / sᵢ: a singular value lies within δᵢ of each sᵢ",
            "error",
        ),
        _stat("Condition number", "…", pending, "cond"),
        _stat("Effective rank", "…", pending, "erank"),
    ]


def register(app: dash.Dash, services: Any) -> None:
    esd.register(app, services)
    heads.register(app, services)
    outputs = [
        Output(ids.GRAPH_SPECTRUM_VALUES, "figure"),
        Output(ids.DIV_SPECTRUM_STATS, "children"),
        Output(ids.DIV_SPECTRUM_ALERT, "children"),
        Output(ids.DIV_SPECTRUM_FULL, "style"),
        Output(ids.TEXT_SPECTRUM_FULL_NOTE, "children"),
        Output(ids.JOB_SPECTRUM.status, "children"),
    ]

    def render(
        selection: Selection | None, done: dict | None, started: dict | None, *, start: bool
    ) -> tuple[Any, ...]:
        """The view's outputs and the run store (a new job, or no_update)."""
        if not selection_ready(selection, ids.TAB_SPECTRUM):
            raise dash.exceptions.PreventUpdate
        hidden = {"display": "none"}
        if not selection.get("layer"):
            note = placeholder_figure("Choose a layer with a weight matrix.")
            return note, [], None, hidden, "", None, no_update
        data, error = attempt(
            services,
            lambda: services.layers.spectrum(
                selection["model"], selection["layer"], selection["view"], current_session_id()
            ),
        )
        if error is not None:
            return placeholder_figure(), [], error, hidden, "", None, no_update
        name = f"{layer_title(selection)} ({data.shape[0]}×{data.shape[1]})"
        if data.preliminary:
            first = services.cache.get_or_compute(
                make_key("spectrum-first-figure", data.full_key, name),
                lambda: first_view_figure(data, name),
            )
            shown = started if start else {"key": data.full_key}
            return _preliminary(data, name, done, shown, first)
        s = data.summary
        sv = s.singular_values

        def draw() -> dict[str, Any]:
            return spectrum_figure(
                sv,
                s.cumulative_energy,
                tolerance=float(s.rtol) * float(sv[0]) if len(sv) else None,
                numerical_rank=int(s.numerical_rank),
                title=f"Spectrum of {name}",
            ).to_dict()

        key = make_key("spectrum-figure", data.full_key, name)
        figure = services.cache.get_or_compute(key, draw)
        return figure, stats_panel(data), None, hidden, "", None, no_update

    # Two callbacks, not one: the one that starts the job must not listen to the job's
    # result (a cycle through the job, which Dash would not run again).
    @app.callback(
        *outputs,
        Output(ids.JOB_SPECTRUM.run_store, "data", allow_duplicate=True),
        Input(ids.STORE_SELECTION_STATE, "data"),
        State(ids.JOB_SPECTRUM.done_store, "data"),
        State(ids.JOB_SPECTRUM.run_store, "data"),
        prevent_initial_call="initial_duplicate",
    )
    def update_spectrum(
        selection: Selection | None, done: dict | None, started: dict | None
    ) -> tuple[Any, ...]:
        return render(selection, done, started, start=True)

    @app.callback(
        *[Output(o.component_id, o.component_property, allow_duplicate=True) for o in outputs],
        Input(ids.JOB_SPECTRUM.done_store, "data"),
        State(ids.STORE_SELECTION_STATE, "data"),
        prevent_initial_call=True,
    )
    def show_full_spectrum(done: dict | None, selection: Selection | None) -> tuple[Any, ...]:
        """The job ended: the full spectrum when it is there, else why not."""
        return render(selection, done, None, start=False)[:-1]

    def prepare(session: str | None, selection: Selection) -> Any:
        args = (selection["model"], selection["layer"], selection["view"], session)
        key = services.layers.spectrum_full_key(*args)
        shape = services.registry.network(args[0], session).view_info(args[1], view=args[2]).shape

        def both() -> None:  # the spectrum, then the ESD panel's shuffled copy
            services.layers.spectrum_full(*args)
            services.esd.shuffled(*args)

        def compute(progress: Any, should_stop: Any) -> bool:
            return _run_with_clock(both, progress, should_stop, tuple(shape))

        return key, compute

    jobs.register_job(
        app,
        services,
        _JOB,
        states=[],
        requires="layer",
        prepare=prepare,
        progress_text=lambda step, total: f"full SVD running · {step:,} s of about {total:,} s",
        cancelled=lambda step, total: jobs.cancelled_alert(
            None, None, what="full SVD", kept="the top singular values stay shown"
        ),
    )


def first_view_figure(data: SpectrumData, name: str) -> dict[str, Any]:
    """The first view's figure (a dict, as the page caches it)."""
    return top_figure(data.top, title=f"Spectrum of {name}: first view").to_dict()


def _preliminary(
    data: SpectrumData,
    name: str,
    done: dict | None,
    started: dict | None,
    figure: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """The first view of a large layer, and the start of its full-SVD job (once per layer,
    unless that job was cancelled or failed: then the button starts it again)."""
    top = data.top
    m, n = data.shape
    figure = figure or first_view_figure(data, name)
    note = (
        f"Large layer: the top {top.singular_values.size} of {min(m, n)} singular values come "
        f"from a randomized sketch of {top.sketch} columns (error bars: Ritz residuals; "
        f"σ_{top.sketch + 1} ≤ {fmt_g(top.residual_norm)}); the full SVD runs in the background "
        "and replaces this view when it is done."
    )
    last = jobs.last_status(done, data.full_key)
    status, run = None, no_update
    if last == "error":
        status = jobs.failed_alert(done)
    elif last == "cancelled":
        status = jobs.cancelled_alert(
            None, None, what="full SVD", kept="the top singular values stay shown"
        )
    elif not started or started.get("key") != data.full_key:
        run = {"nonce": secrets.token_urlsafe(12), "key": data.full_key}
    shown = {"display": "flex", "flexDirection": "column", "gap": "6px"}
    return figure, top_stats_panel(data), None, shown, note, status, run


def _run_with_clock(compute: Any, progress: Any, should_stop: Any, shape: tuple[int, int]) -> bool:
    """Run `compute` (one LAPACK call: no progress of its own) in a thread and report the
    elapsed seconds against a rough estimate until it ends; True when stopped early."""
    m, n = shape
    estimate = max(1, round(_SECONDS_4096 * m * n * min(m, n) / 4096**3)) if m and n else 10
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = compute()
        except BaseException as err:  # handed to the job, which reports it
            outcome["error"] = err

    thread = threading.Thread(target=work, name="svdscope-full-svd", daemon=True)
    start = time.monotonic()
    thread.start()
    while thread.is_alive():
        thread.join(0.25)
        elapsed = int(time.monotonic() - start)
        progress(min(elapsed, estimate), max(estimate, elapsed + 1))
        if should_stop():
            return True
    if "error" in outcome:
        raise outcome["error"]
    progress(1, 1)
    return False
