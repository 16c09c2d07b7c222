"""The Compare tab's whole-checkpoint table: every layer of model B against model A.

For a fine-tune and its base (or a PEFT adapter folder as B: A with the adapter merged):
one row per shared layer with its relative change, the spectrum of ΔW (norm, ranks) and
the overlap of the top-k singular subspaces (`app.services.finetune`). Small layers are
computed in the request, larger ones by a background job (progress, Cancel) whose rows
stream into the table; a click on a row compares that layer above.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update
from dash.dash_table.Format import Format, Scheme

from app import ids
from app.services.finetune import FINETUNE_K
from app.services.overview import table_records
from app.storage.session import current_session_id
from app.views import jobs
from app.views.common import CLICKABLE_CELLS, Selection, attempt, data_table, selection_ready
from app.views.overview import progress_text
from app.views.streamed import job_section, job_state, register_streamed, table_columns

__all__ = ["COLUMNS", "layout", "register", "summary_text"]

_JOB = ids.JOB_FINETUNE
_G4 = Format(precision=4, scheme=Scheme.decimal_or_exponent)
_F3 = Format(precision=3, scheme=Scheme.fixed)
_F2 = Format(precision=2, scheme=Scheme.fixed)
COLUMNS: list[tuple[str, str, Any]] = [
    ("name", "Layer", None),
    ("rows", "rows", "int"),
    ("cols", "cols", "int"),
    ("rel_change", "‖ΔW‖F / ‖W_A‖F", _G4),
    ("delta_sigma1", "‖ΔW‖₂", _G4),
    ("delta_stable_rank", "ΔW stable rank", _F2),
    ("delta_effective_rank", "ΔW eff. rank", _F2),
    ("delta_rank90", "ΔW rank 90 %", "int"),
    ("left_overlap", "overlap U", _F3),
    ("right_overlap", "overlap V", _F3),
    ("max_left_angle_deg", "max angle U (°)", _F2),
    ("max_right_angle_deg", "max angle V (°)", _F2),
    ("note", "Note", None),
]
_HIDDEN = {"display": "none"}


def layout() -> html.Div:
    table = data_table(
        ids.TABLE_FINETUNE_LAYERS,
        table_columns(COLUMNS),
        cell=CLICKABLE_CELLS,
        sort_action="native",
        cell_selectable=True,
        style_table={"overflowX": "auto"},
        style_cell_conditional=[
            {"if": {"column_id": "name"}, "textAlign": "left"},
            {"if": {"column_id": "note"}, "textAlign": "left", "color": "#8d6e63"},
        ],
        tooltip_header={
            "rel_change": "how far the layer moved: ‖W_B − W_A‖F / ‖W_A‖F",
            "delta_sigma1": "largest singular value of ΔW = W_B − W_A",
            "delta_stable_rank": "‖ΔW‖F² / ‖ΔW‖₂²",
            "delta_effective_rank": "exp(entropy of σᵢ / Σσ) of ΔW",
            "delta_rank90": "fewest singular directions of ΔW holding 90 % of ‖ΔW‖F² "
            "(small for a low-rank update such as LoRA)",
            "left_overlap": f"‖U_Aᵀ U_B‖F² / k over the top {FINETUNE_K} left singular "
            "vectors: 1 = the same output subspace",
            "right_overlap": f"the same for the top {FINETUNE_K} right singular vectors",
            "max_left_angle_deg": "largest principal angle between the two top-k output subspaces",
            "max_right_angle_deg": "largest principal angle between the input subspaces",
        },
    )
    return html.Div(
        [
            html.H4("Every layer: B against A", className="section-title"),
            html.Div(id=ids.DIV_FINETUNE_ALERT),
            html.Div(
                [
                    html.Div(id=ids.DIV_FINETUNE_SUMMARY, className="hint"),
                    html.Button("Download CSV", id=ids.BUTTON_FINETUNE_CSV, n_clicks=0),
                    dcc.Download(id=ids.DOWNLOAD_FINETUNE_CSV),
                ],
                style={"display": "flex", "gap": "16px", "alignItems": "center"},
            ),
            *job_section(
                _JOB,
                panel_id=ids.DIV_FINETUNE_JOB,
                note_id=ids.TEXT_FINETUNE_JOB_NOTE,
                interval_id=ids.INTERVAL_FINETUNE_REFRESH,
            ),
            html.Div("Click a row to compare that layer above.", className="hint"),
            dcc.Loading(table, type="dot", delay_show=300),
        ],
        id=ids.DIV_FINETUNE_PANEL,
        className="finetune-panel",
        style=_HIDDEN,
    )


def summary_text(records: list[dict[str, Any]], pending: int, adapter: bool) -> str:
    """ "12 layers compared; most changed: fc1 (3.2 %)" and what is still computing."""
    done = [r for r in records if r.get("rel_change") is not None]
    what = "the adapter merged into A: each adapted layer's ΔW = B·A·scaling; " if adapter else ""
    text = f"{what}{len(done)} layers compared"
    if done:
        top = max(done, key=lambda r: r["rel_change"])
        text += f"; most changed: {top['name']} ({top['rel_change']:.3g} relative)"
    if pending:
        text += f"; {pending} still computing in the background"
    return text + "."


def register(app: dash.Dash, services: Any) -> None:
    outputs = [
        Output(ids.DIV_FINETUNE_PANEL, "style"),
        Output(ids.TABLE_FINETUNE_LAYERS, "data"),
        Output(ids.DIV_FINETUNE_SUMMARY, "children"),
        Output(ids.DIV_FINETUNE_ALERT, "children"),
        Output(ids.DIV_FINETUNE_JOB, "style"),
        Output(ids.TEXT_FINETUNE_JOB_NOTE, "children"),
        Output(_JOB.status, "children"),
        Output(ids.INTERVAL_FINETUNE_REFRESH, "disabled"),
    ]

    def render(
        selection: Selection | None, *, done: dict | None, started: dict | None, start: bool
    ) -> tuple[Any, ...]:
        if not selection_ready(selection, ids.TAB_COMPARE):
            raise dash.exceptions.PreventUpdate
        a, b = selection.get("model"), selection.get("compare")
        if not a or not b:
            return _HIDDEN, [], "", None, _HIDDEN, "", None, True, no_update
        shown = {"display": "block"}
        session = current_session_id()
        data, error = attempt(services, lambda: services.finetune.data(a, b, session))
        if error is not None:
            return shown, [], "", error, _HIDDEN, "", None, True, no_update
        records = table_records(data.table)
        summary = summary_text(records, len(data.pending), data.adapter)
        if data.complete:
            return shown, records, summary, None, _HIDDEN, "", None, True, no_update
        key = services.finetune.key(a, b, session)
        status, run, polling = job_state(done, started, key, start=start, cancelled=_cancelled)
        note = (
            f"{len(data.pending)} large layers ({data.elements:,} entries) are computed in "
            "the background; their rows fill in as each one is done."
        )
        panel = {"display": "flex", "flexDirection": "column", "gap": "6px"}
        return shown, records, summary, None, panel, note, status, not polling, run

    def prepare(session: str | None, selection: Selection) -> Any:
        a, b = selection["model"], selection.get("compare")
        key = services.finetune.key(a, b, session)

        def compute(progress: Any, should_stop: Any) -> bool:
            return services.finetune.compute(
                a, b, session, progress=progress, should_stop=should_stop
            )

        return key, compute

    register_streamed(
        app,
        services,
        _JOB,
        outputs=outputs,
        render=render,
        interval=ids.INTERVAL_FINETUNE_REFRESH,
        prepare=prepare,
        progress_text=progress_text,
        cancelled=_cancelled,
    )

    @app.callback(
        Output(ids.DOWNLOAD_FINETUNE_CSV, "data"),
        Input(ids.BUTTON_FINETUNE_CSV, "n_clicks"),
        State(ids.STORE_SELECTION_STATE, "data"),
        prevent_initial_call=True,
    )
    def download_csv(n_clicks: int | None, selection: Selection | None) -> Any:
        a, b = (selection or {}).get("model"), (selection or {}).get("compare")
        if not n_clicks or not a or not b:
            raise dash.exceptions.PreventUpdate
        return services.finetune.csv(a, b, current_session_id())


def _cancelled(step: Any, total: Any) -> Any:
    return jobs.cancelled_alert(
        None, None, what="comparison", kept="the rows computed so far are kept"
    )
