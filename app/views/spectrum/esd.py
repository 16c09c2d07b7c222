"""The ESD panel of the Spectrum tab: the eigenvalue density of W^T W and its diagnostics.

xmin is chosen by the smallest KS distance unless the user types one, drags the xmin line,
or clicks the ESD or the KS curve; Hill's k likewise (typed, or a click on the Hill plot).
A large layer's panel appears when its full-spectrum job is done.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, ctx, html, no_update

from app import ids
from app.figures.esd import XMIN_SHAPE, esd_figure
from app.figures.theme import placeholder_figure
from app.formatting import fmt_g
from app.services import EsdData, EsdOptions
from app.services.esd import mp_curve
from app.storage.session import current_session_id
from app.views.common import (
    Selection,
    alert,
    attempt,
    graph_panel,
    layer_title,
    number_field,
    selection_ready,
    stat_maker,
)
from svdcore.cache import make_key
from svdcore.esd import EVALS_THRESH
from svdcore.ties import TIE_RTOL

__all__ = ["layout", "register", "stats_panel", "ties_warning"]

_stat = stat_maker("esd")
_SHOWN = {"display": "block"}
_HIDDEN = {"display": "none"}


def layout() -> html.Div:
    return html.Div(
        [
            html.H4("Empirical spectral density", className="section-title"),
            html.Div(
                [
                    number_field(ids.INPUT_ESD_XMIN, "xmin", None, min=0, placeholder="auto"),
                    html.Button("KS choice", id=ids.BUTTON_ESD_AUTO, n_clicks=0),
                    number_field(ids.INPUT_ESD_HILL_K, "Hill k", None, min=1, step=1),
                    html.Span(
                        "xmin: click the red line, then drag it, or click the ESD or the D curve; "
                        "Hill k: click the Hill plot",
                        className="hint",
                    ),
                ],
                className="view-controls esd-controls",
            ),
            html.Div(id=ids.TEXT_ESD_NOTE, className="hint"),
            html.Div(id=ids.DIV_ESD_ALERT),
            html.Div(id=ids.DIV_ESD_TIES),
            html.Div(id=ids.DIV_ESD_STATS, className="stats"),
            graph_panel(ids.GRAPH_ESD),
        ],
        id=ids.DIV_ESD,
        className="esd-panel",
        style=_HIDDEN,
    )


def stats_panel(data: EsdData) -> list[html.Div]:
    """The fits' numbers, each with how it is defined."""
    out: list[html.Div] = []
    fit, hill, mp, sh = data.fit, data.hill, data.mp, data.shuffled
    if fit is not None:
        chosen = "yours" if data.options.xmin is not None else "smallest KS distance"
        out += [
            _stat(
                "alpha (power law)",
                f"{fit.alpha:.3f} ± {fit.sigma:.3f}",
                "MLE over λ ≥ xmin",
                "alpha",
            ),
            _stat("xmin", fmt_g(fit.xmin), f"{chosen}; {fit.n_tail} eigenvalues ≥ xmin", "xmin"),
            _stat("KS D", f"{fit.D:.4f}", "max |F_fit − F_emp| over the tail", "D"),
        ]
    else:
        out.append(_stat("alpha (power law)", "—", data.problems.get("fit", ""), "alpha"))
    if hill is not None:
        out.append(
            _stat(
                "alpha (Hill)",
                f"{hill.alpha:.3f} ± {hill.sigma:.3f}",
                f"top k = {hill.k} (cut at {fmt_g(hill.xmin)})",
                "hill",
            )
        )
    if mp is not None:
        out += [
            _stat(
                "MP bulk edge λ₊",
                fmt_g(mp.lambda_plus),
                f"σ² = {fmt_g(mp.sigma2)} per entry, q = {mp.q:.3g}; KS {mp.ks:.3f}",
                "mp-edge",
            ),
            _stat(
                "Spikes",
                f"{mp.n_spikes}",
                f"λ above the Tracy-Widom 95 % point {fmt_g(mp.spike_threshold)}; "
                f"bulk holds {mp.bulk_fraction:.1%} of ‖W‖F²",
                "spikes",
            ),
        ]
    else:
        out.append(_stat("Marchenko-Pastur", "—", data.problems.get("mp", ""), "mp-edge"))
    if sh is not None:
        out += [
            _stat(
                "Shuffled Δ",
                f"{sh.distance:.4f}",
                "½ Σ|λᵢ − μᵢ| / Σλᵢ against the entries shuffled (0: noise-like)",
                "rand-distance",
            ),
            _stat(
                "Correlation traps",
                f"{sh.n_traps}",
                "spikes of the shuffled copy (single huge entries)",
                "traps",
            ),
        ]
    else:
        out.append(
            _stat("Shuffled Δ", "…", "computed with the full spectrum's job", "rand-distance")
        )
    return out


def ties_warning(data: EsdData) -> html.Div | None:
    """A warning naming the near-tied groups among the top singular values, or None."""
    if not data.ties:
        return None
    parts = [
        f"{t.label()} (gap {t.gap:.2%}, {t.separation:.1%} from the rest)"
        if t.separation != float("inf")
        else f"{t.label()} (gap {t.gap:.2%})"
        for t in data.ties
    ]
    text = (
        f"Near-ties: {', '.join(parts)} lie within {TIE_RTOL:.0%} of each other. Their single "
        "singular vectors are not determined by the weights (any small change mixes them); "
        "only the subspace each group spans is, as well as its separation allows. Read those "
        "vectors in the Singular vectors view as one subspace."
    )
    return alert(text, kind="warning", title="Unstable singular vectors")


def _figure(data: EsdData, title: str) -> dict[str, Any]:
    fit, auto, hill, mp, sh = data.fit, data.auto, data.hill, data.mp, data.shuffled
    m, n = data.shape
    drawn = int((data.eigenvalues > EVALS_THRESH).sum()) or 1
    mp_args = None
    if mp is not None:
        shown = data.eigenvalues[data.eigenvalues > EVALS_THRESH]
        lo = float(shown.min()) if shown.size else mp.lambda_plus
        if shown.size and shown.max() <= lo:  # the figure's range for equal eigenvalues
            lo /= 2
        x, y = mp_curve(
            q=mp.q,
            sigma2=mp.sigma2,
            n_big=max(m, n),
            weight=(min(m, n) - mp.n_spikes) / drawn,
            lo=lo,
        )
        mp_args = {"x": x, "y": y, "lambda_plus": mp.lambda_plus}
    fig = esd_figure(
        data.eigenvalues,
        thresh=EVALS_THRESH,
        xmin=fit.xmin if fit else None,
        alpha=fit.alpha if fit else None,
        n_tail=fit.n_tail if fit else None,
        xmins=auto.xmins if auto else None,
        Ds=auto.Ds if auto else None,
        auto_xmin=auto.xmin if auto else None,
        hill_ks=hill.ks if hill else None,
        hill_alphas=hill.alphas if hill else None,
        hill_k=hill.k if hill else None,
        mp=mp_args,
        spikes=mp.spikes if mp else None,
        shuffled=sh.eigenvalues if sh else None,
        title=title,
    )
    return fig.to_dict()


def register(app: dash.Dash, services: Any) -> None:
    outputs = [
        Output(ids.DIV_ESD, "style"),
        Output(ids.TEXT_ESD_NOTE, "children"),
        Output(ids.GRAPH_ESD, "figure"),
        Output(ids.DIV_ESD_STATS, "children"),
        Output(ids.DIV_ESD_ALERT, "children"),
        Output(ids.DIV_ESD_TIES, "children"),
    ]

    def render(selection: Selection | None, xmin: Any, hill_k: Any) -> tuple[Any, ...]:
        if not selection_ready(selection, ids.TAB_SPECTRUM):
            raise dash.exceptions.PreventUpdate
        if not selection.get("layer"):
            return _HIDDEN, "", no_update, [], None, None
        options, error = attempt(services, lambda: EsdOptions.from_page(xmin, hill_k))
        if error is not None:
            return _SHOWN, "", placeholder_figure(), [], error, None
        args = (selection["model"], selection["layer"], selection["view"], current_session_id())
        data, error = attempt(services, lambda: services.esd.esd(*args, options))
        if error is not None:
            return _SHOWN, "", placeholder_figure(), [], error, None
        if data is None:
            note = "The ESD and its fits appear when the full spectrum has been computed."
            return _SHOWN, note, placeholder_figure(), [], None, None
        m, n = data.shape
        title = f"ESD of {layer_title(selection)} ({m}×{n}, {min(m, n)} eigenvalues)"
        key = make_key(
            "esd-figure", data.key, options.xmin, options.hill_k, data.shuffled is not None, title
        )
        figure = services.cache.get_or_compute(key, lambda: _figure(data, title))
        return _SHOWN, "", figure, stats_panel(data), None, ties_warning(data)

    @app.callback(
        *outputs,
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.INPUT_ESD_XMIN, "value"),
        Input(ids.INPUT_ESD_HILL_K, "value"),
    )
    def update_esd(selection: Selection | None, xmin: Any, hill_k: Any) -> tuple[Any, ...]:
        if ctx.triggered_id == ids.STORE_SELECTION_STATE:  # another layer: its own KS choice
            xmin, hill_k = None, None
        return render(selection, xmin, hill_k)

    @app.callback(
        *[Output(o.component_id, o.component_property, allow_duplicate=True) for o in outputs],
        Input(ids.JOB_SPECTRUM.done_store, "data"),
        State(ids.STORE_SELECTION_STATE, "data"),
        State(ids.INPUT_ESD_XMIN, "value"),
        State(ids.INPUT_ESD_HILL_K, "value"),
        prevent_initial_call=True,
    )
    def esd_after_full_spectrum(
        _done: dict | None, selection: Selection | None, xmin: Any, hill_k: Any
    ) -> tuple[Any, ...]:
        """The full-spectrum job ended: the panel of the large layer, with its copy."""
        return render(selection, xmin, hill_k)

    @app.callback(
        Output(ids.INPUT_ESD_XMIN, "value"),
        Output(ids.INPUT_ESD_HILL_K, "value"),
        Input(ids.GRAPH_ESD, "relayoutData"),
        Input(ids.GRAPH_ESD, "clickData"),
        Input(ids.BUTTON_ESD_AUTO, "n_clicks"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        prevent_initial_call=True,
    )
    def choose_from_figure(
        relayout: dict | None, click: dict | None, _auto: int | None, _selection: Any
    ) -> tuple[Any, Any]:
        """A dragged xmin line or a click sets xmin (or Hill's k); the button, or another
        layer, goes back to the automatic choices."""
        trigger = ctx.triggered_id
        if trigger == ids.STORE_SELECTION_STATE:
            return None, None
        if trigger == ids.BUTTON_ESD_AUTO:
            return None, no_update
        if trigger == ids.GRAPH_ESD and ctx.triggered[0]["prop_id"].endswith("relayoutData"):
            value = (relayout or {}).get(f"shapes[{XMIN_SHAPE}].x0")
            if isinstance(value, int | float) and value > 0:
                return float(f"{value:.6g}"), no_update
            raise dash.exceptions.PreventUpdate
        point = ((click or {}).get("points") or [{}])[0]
        role = point.get("customdata")
        if role == "k" and isinstance(point.get("x"), int | float):
            return no_update, int(point["x"])
        if role == "xmin" and isinstance(point.get("x"), int | float) and point["x"] > 0:
            return float(f"{point['x']:.6g}"), no_update
        raise dash.exceptions.PreventUpdate
