"""The Export bar above the views: the visible tab's figures as PNG or SVG (drawn by plotly
in the browser, exactly as shown), the arrays behind them as NPY (.npz) or CSV (.zip), and
an HTML report of the current layer (that tab's analysis, its spectrum and singular
vectors, and its 2-D FFT, with every number).

The arrays come from `app.export.export_analysis` with the view's own options (k, the
descrambler's options, rtol, the surgery's split and sample, the second model), through
the same cached services, so what is downloaded is what the view computed, at full
resolution (the weights, not their pooled picture).
"""

from __future__ import annotations

import re
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html

from app import ids
from app.export import (
    TAB_ANALYSES,
    ExportOptions,
    csv_zip,
    export_analysis,
    html_report,
    npz_bytes,
)
from app.services.surgery_types import DEFAULT_TOP_K
from app.storage.session import current_session_id
from app.views.common import Selection, alert, number
from app.views.descramble import _OPTION_STATES as DESCRAMBLE_STATES
from app.views.descramble import options_from as descramble_options

__all__ = ["layout", "register", "view_options"]

_IMAGES_JS = """function (png, svg) {
    const trig = (dash_clientside.callback_context.triggered[0] || {}).prop_id || "";
    const format = trig.startsWith("__SVG__") ? "svg" : "png";
    const crumbs = Array.from(document.querySelectorAll(".crumb-model, .crumb-layer"))
        .map((e) => e.textContent.split(" — ")[0].trim()).join("-")
        .replace(/[^A-Za-z0-9_.-]+/g, "-") || "svdscope";
    const shown = "#__TABS__-parent .tab-content .dash-graph";
    const graphs = Array.from(document.querySelectorAll(shown))
        .filter((g) => g.offsetParent !== null)
        .map((g) => [g.id, g.querySelector(".js-plotly-plot")])
        .filter(([id, gd]) => gd && gd.data && gd.data.length);
    graphs.forEach(([id, gd]) => {
        Plotly.downloadImage(gd, {format: format, filename: crumbs + "-" + id,
                                  scale: format === "png" ? 2 : 1});
    });
    return graphs.length
        ? `${graphs.length} figure(s) saved as ${format.toUpperCase()}.`
        : "No figure on this tab yet.";
}""".replace("__SVG__", ids.BUTTON_EXPORT_SVG).replace("__TABS__", ids.TABS_VIEW_SELECT)


def layout() -> html.Div:
    def button(label: str, cid: str, title: str) -> html.Button:
        return html.Button(label, id=cid, title=title, className="button-export")

    return html.Div(
        [
            html.Span("Export", className="inline-label"),
            button("PNG", ids.BUTTON_EXPORT_PNG, "every figure of this tab as a PNG image"),
            button("SVG", ids.BUTTON_EXPORT_SVG, "every figure of this tab as an SVG drawing"),
            button("NPY", ids.BUTTON_EXPORT_NPZ, "the arrays and numbers behind this tab (.npz)"),
            button("CSV", ids.BUTTON_EXPORT_CSV, "the same as CSV files in a .zip"),
            button(
                "Report",
                ids.BUTTON_EXPORT_REPORT,
                "one HTML file with this layer's figures and numbers",
            ),
            dcc.Loading(
                html.Span(id=ids.TEXT_EXPORT_STATUS, className="export-status"),
                type="dot",
                delay_show=400,
            ),
            dcc.Download(id=ids.DOWNLOAD_EXPORT),
        ],
        className="export-bar",
    )


def view_options(
    selection: Selection,
    *,
    vectors_k: Any = None,
    compare_k: Any = None,
    rtol: Any = None,
    split: Any = None,
    components: Any = None,
    top_k: Any = None,
    precision: Any = None,
    descramble: tuple[Any, ...] = (),
) -> ExportOptions:
    """ExportOptions from the tabs' own controls, so that the export is what they show."""
    tab = selection.get("tab")
    k = number(compare_k if tab == ids.TAB_COMPARE else vectors_k, int) or 16
    sample = number(selection.get("sample"), int) or 0
    return ExportOptions(
        k=k,
        rtol=number(rtol, float),
        sample=sample,
        split=split or None,
        components=components if components in ("auto", "exact", "top") else "auto",
        top_k=number(top_k, int) or DEFAULT_TOP_K,
        precision="float32" if precision == "float32" else "float64",
        compare_model=selection.get("compare"),
        compare_layer=selection.get("compare_layer"),
        descramble=descramble_options(*descramble) if descramble else None,
        full_spectrum=False,
    )


def _filename(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-.")


def register(app: dash.Dash, services: Any) -> None:
    app.clientside_callback(
        _IMAGES_JS,
        Output(ids.TEXT_EXPORT_STATUS, "children", allow_duplicate=True),
        Input(ids.BUTTON_EXPORT_PNG, "n_clicks"),
        Input(ids.BUTTON_EXPORT_SVG, "n_clicks"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.DOWNLOAD_EXPORT, "data"),
        Output(ids.TEXT_EXPORT_STATUS, "children"),
        Input(ids.BUTTON_EXPORT_NPZ, "n_clicks"),
        Input(ids.BUTTON_EXPORT_CSV, "n_clicks"),
        Input(ids.BUTTON_EXPORT_REPORT, "n_clicks"),
        State(ids.STORE_SELECTION_STATE, "data"),
        State(ids.SLIDER_VECTORS_COUNT, "value"),
        State(ids.SLIDER_COMPARE_K, "value"),
        State(ids.INPUT_SUBSPACES_RTOL, "value"),
        State(ids.DROPDOWN_SURGERY_SPLIT, "value"),
        State(ids.RADIO_SURGERY_COMPONENTS, "value"),
        State(ids.INPUT_SURGERY_TOP_K, "value"),
        State(ids.RADIO_SURGERY_PRECISION, "value"),
        *[State(cid, prop) for cid, prop in DESCRAMBLE_STATES],
        prevent_initial_call=True,
    )
    def export_data(
        _npz: Any,
        _csv: Any,
        _report: Any,
        selection: Selection | None,
        vectors_k: Any,
        compare_k: Any,
        rtol: Any,
        split: Any,
        components: Any,
        top_k: Any,
        precision: Any,
        *descramble: Any,
    ) -> tuple[Any, Any]:
        if not selection or not selection.get("model") or not selection.get("layer"):
            return dash.no_update, alert("Choose a layer first.", kind="info", title="")
        tab = selection.get("tab") or ids.TAB_WEIGHTS
        analysis = TAB_ANALYSES.get(tab)
        report = ctx.triggered_id == ids.BUTTON_EXPORT_REPORT
        if analysis is None and not report:
            hint = "the table's own CSV button" if tab == ids.TAB_OVERVIEW else "Report"
            return dash.no_update, alert(
                f"This tab has no arrays of its own to export; use {hint}.", kind="info", title=""
            )
        model, layer = selection["model"], selection["layer"]
        options = view_options(
            selection,
            vectors_k=vectors_k,
            compare_k=compare_k,
            rtol=rtol,
            split=split,
            components=components,
            top_k=top_k,
            precision=precision,
            descramble=descramble if tab == ids.TAB_DESCRAMBLE else (),
        )
        session = current_session_id()
        common = {
            "view": selection.get("view") or "default",
            "session": session,
            "dataset": selection.get("dataset"),
            "options": options,
        }
        try:
            if report:
                wanted = [a for a in (analysis, "svd", "fft") if a]
                results = [
                    export_analysis(services, model, layer, a, **common)
                    for a in dict.fromkeys(wanted)
                ]
                name = _filename(model, layer, "report") + ".html"
                page = html_report(results)
                return dcc.send_string(page, name), f"Saved {name}."
            result = export_analysis(services, model, layer, analysis, **common)
        except Exception as err:
            return dash.no_update, alert(services.error_message(err), title="Cannot export")
        stem = _filename(model, layer, analysis)
        if ctx.triggered_id == ids.BUTTON_EXPORT_CSV:
            return dcc.send_bytes(csv_zip(result), f"{stem}-csv.zip"), f"Saved {stem}-csv.zip."
        return dcc.send_bytes(npz_bytes(result), f"{stem}.npz"), f"Saved {stem}.npz."
