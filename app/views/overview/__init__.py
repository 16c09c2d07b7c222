"""Model overview view: the per-layer spectral table of the whole model (sortable, with a
CSV download) and a sparkline spectrum per layer. A click on a table row opens that layer
in the Weights tab (the router reads the table's active cell).

Every layer is summarised, whatever its size: small ones in the request, the others by a
background job that starts by itself (progress in matrix entries and layers, elapsed and
estimated time, Cancel); while it runs an interval redraws the table from the cached rows,
so they fill in layer by layer. Rows are cached by tensor content (app/services/overview.py).
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dash_table, dcc, html, no_update
from dash.dash_table.Format import Format, Scheme

from app import ids
from app.figures import placeholder_figure, sparklines_figure
from app.services.overview import OverviewData, table_records
from app.storage.session import current_session_id
from app.views import jobs
from app.views.common import CLICKABLE_CELLS, Selection, attempt, data_table, selection_ready
from app.views.streamed import job_section, job_state, register_streamed, table_columns
from svdcore.cache import make_key
from svdcore.roles import ROLES

__all__ = ["COLUMNS", "layout", "progress_text", "register", "role_filter", "summary_text"]

ROLE_LABELS = {
    "attention": "attention",
    "mlp": "MLP",
    "embedding": "embedding",
    "head": "output head",
    "other": "other",
}

_JOB = ids.JOB_OVERVIEW

_G4 = Format(precision=4, scheme=Scheme.decimal_or_exponent)
_F3 = Format(precision=3, scheme=Scheme.fixed)
_F2 = Format(precision=2, scheme=Scheme.fixed)
# (id, header, format): None for text, "int" for counts
COLUMNS: list[tuple[str, str, Any]] = [
    ("name", "Layer", None),
    ("kind", "Kind", None),
    ("role", "Role", None),
    ("block", "Block", None),
    ("shape", "Shape", None),
    ("dtype", "dtype", None),
    ("spectral_norm", "‖W‖₂", _G4),
    ("frobenius_norm", "‖W‖F", _G4),
    ("stable_rank", "stable rank", _F2),
    ("effective_rank", "eff. rank", _F2),
    ("numerical_rank", "rank", "int"),
    ("condition_number", "κ", _G4),
    ("alpha", "α (ESD)", _F3),
    ("D", "KS D", _F3),
    ("n_tail", "tail", "int"),
    ("alpha_hill", "α Hill", _F3),
    ("n_spikes", "MP spikes", "int"),
    ("bulk_fraction", "bulk", _F3),
    ("rand_distance", "shuffled Δ", _F3),
    ("n_traps", "traps", "int"),
    ("near_ties", "near-ties", None),
    ("note", "Note", None),
]
# with a base model chosen: each layer's change from it (svdcore.finetune), after dtype
BASE_COLUMNS: list[tuple[str, str, Any]] = [
    ("rel_change", "Δ from base", _G4),
    ("delta_rank90", "ΔW rank 90 %", "int"),
    ("left_overlap", "overlap U", _F3),
    ("right_overlap", "overlap V", _F3),
]


def columns_for(base: str | None) -> list[dict[str, Any]]:
    """The table's columns: the spectral table's, and the change from ``base`` if any."""
    if not base:
        return table_columns(COLUMNS)
    at = next(i for i, c in enumerate(COLUMNS) if c[0] == "dtype") + 1  # where it shows
    return table_columns(COLUMNS[:at] + BASE_COLUMNS + COLUMNS[at:])


def _table() -> dash_table.DataTable:
    return data_table(
        ids.TABLE_OVERVIEW_LAYERS,
        table_columns(COLUMNS),
        cell=CLICKABLE_CELLS,
        sort_action="native",
        filter_action="native",  # the Role radio writes its filter_query; any column filters
        cell_selectable=True,
        style_table={"overflowX": "auto"},
        style_cell_conditional=[
            {"if": {"column_id": c}, "textAlign": "left"}
            for c in ("name", "kind", "role", "block", "shape", "dtype", "near_ties")
        ]
        + [
            {
                "if": {"column_id": "note"},
                "textAlign": "left",
                "whiteSpace": "normal",
                "minWidth": "160px",
                "maxWidth": "360px",
                "color": "#8d6e63",
            }
        ],
        tooltip_header={
            "alpha": "power-law exponent of the ESD (eigenvalues of WᵀW), "
            "fitted by maximum likelihood, xmin by the smallest KS distance",
            "D": "Kolmogorov-Smirnov distance of the power-law fit (smaller is better)",
            "n_tail": "eigenvalues ≥ xmin used in the fit",
            "condition_number": "σ₁ / σᵣ",
            "alpha_hill": "Hill's estimate of α from the top ⌈√N⌉ eigenvalues",
            "n_spikes": "eigenvalues above the Tracy-Widom 95 % point of the fitted "
            "Marchenko-Pastur bulk",
            "bulk_fraction": "share of ‖W‖F² inside the Marchenko-Pastur bulk",
            "rand_distance": "how far the ESD is from that of the layer with its entries "
            "shuffled: ½ Σ|λᵢ − μᵢ| / Σλᵢ (0: no structure beyond noise)",
            "n_traps": "spikes of the shuffled copy (correlation traps: single huge entries)",
            "role": "what the layer does, from its name: attention, MLP, embedding, "
            "output head or other (svdcore.roles)",
            "block": "the transformer block the layer belongs to",
            "rel_change": "‖W − W_base‖F / ‖W_base‖F (the base model chosen above)",
            "delta_rank90": "fewest singular directions of W − W_base holding 90 % of its energy",
            "left_overlap": "‖U_baseᵀ U‖F² / k over the top 8 left singular vectors",
            "right_overlap": "the same for the top 8 right singular vectors",
            "near_ties": "adjacent singular values within 1 % among the top 16: single "
            "vectors there are unstable, only their shared subspace is determined",
        },
    )


def layout() -> html.Div:
    return html.Div(
        [
            html.Div(id=ids.DIV_OVERVIEW_ALERT),
            html.Div(
                [
                    html.Div(id=ids.DIV_OVERVIEW_SUMMARY, className="hint"),
                    html.Button("Download CSV", id=ids.BUTTON_OVERVIEW_CSV, n_clicks=0),
                    html.Span("Base model", className="inline-label"),
                    dcc.Dropdown(
                        id=ids.DROPDOWN_OVERVIEW_BASE,
                        options=[],
                        placeholder="Compare with a base model…",
                        clearable=True,
                        style={"minWidth": "260px"},
                    ),
                    dcc.Download(id=ids.DOWNLOAD_OVERVIEW_CSV),
                ],
                className="overview-head",
                style={"display": "flex", "gap": "16px", "alignItems": "center"},
            ),
            *job_section(
                _JOB,
                panel_id=ids.DIV_OVERVIEW_JOB,
                note_id=ids.TEXT_OVERVIEW_JOB_NOTE,
                interval_id=ids.INTERVAL_OVERVIEW_REFRESH,
                class_name="overview-job",
            ),
            html.Div(
                [
                    html.Span("Role", className="inline-label"),
                    dcc.RadioItems(
                        id=ids.RADIO_OVERVIEW_ROLE,
                        options=[{"label": "all", "value": ""}]
                        + [{"label": ROLE_LABELS[r], "value": r} for r in ROLES],
                        value="",
                        inline=True,
                        className="radio-inline",
                    ),
                    html.Span(
                        "Click a row to open that layer; sort by Block to group the layers "
                        "of each transformer block, or type in a column's filter cell.",
                        className="hint",
                    ),
                ],
                className="view-controls overview-roles",
            ),
            dcc.Loading(_table(), type="dot", delay_show=300),
            dcc.Graph(
                id=ids.GRAPH_OVERVIEW_SPARKLINES,
                figure=placeholder_figure(),
                config={"displaylogo": False, "displayModeBar": False},
            ),
        ],
        className="view view-overview",
    )


def summary_text(records: list[dict[str, Any]], pending: int = 0) -> str:
    """ "5 layers, 5 with an ESD fit; alpha from 1.83 to 6.02" (and how many rows are
    still computed in the background)."""
    alphas = [r["alpha"] for r in records if r.get("alpha") is not None]
    text = f"{len(records)} layers, {len(alphas)} with an ESD power-law fit"
    if alphas:
        text += f"; α from {min(alphas):.2f} to {max(alphas):.2f}"
    if pending:
        text += f"; {pending} still computing in the background"
    return text + "."


def progress_text(
    done: int, total: int, layer: str = "", layers: int = 0, of: int = 0, *times: float
) -> str:
    """The job's progress line: layers and matrix entries done, elapsed and left."""
    text = f"{layers} of {of} layers ({done / max(total, 1):.0%} of the entries)"
    if layer:
        text += f", last {layer}"
    if len(times) == 2:
        elapsed, left = times
        text += f" · {elapsed:.0f} s, about {left:.0f} s left"
    return text


def _job_note(data: OverviewData) -> str:
    n = len(data.pending)
    return (
        f"{n} large layer{'s' if n != 1 else ''} ({data.elements:,} matrix entries) "
        "computed in the background; their rows fill in as each one is done, and are kept "
        "for every later visit."
    )


def with_changes(
    records: list[dict[str, Any]], changes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The Overview's rows with each layer's change from the base (by name; a layer the base
    lacks or whose shape changed keeps empty cells and gains that note)."""
    by_name = {c["name"]: c for c in changes}
    out = []
    for r in records:
        c = by_name.get(r["name"], {})
        row = {**r, **{cid: c.get(cid) for cid, _, _ in BASE_COLUMNS}}
        extra = c.get("note") or ""
        if extra and extra not in (r.get("note") or ""):
            row["note"] = "; ".join(n for n in (r.get("note"), f"base: {extra}") if n)
        out.append(row)
    return out


def _job_key(services: Any, model: str, base: str | None, session: str | None) -> str:
    key = services.overview.key(model, session)
    if not base:
        return key
    return make_key("overview-with-base", key, services.finetune.key(base, model, session))


def _changes_note(changes: Any) -> str:
    n = len(changes.pending)
    return (
        f"The change from the base of {n} large layer{'s' if n != 1 else ''} "
        f"({changes.elements:,} matrix entries) is computed in the background."
    )


def role_filter(role: str | None) -> str:
    """The DataTable filter_query showing the rows of one role ("" for all)."""
    return f'{{role}} = "{role}"' if role else ""


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.TABLE_OVERVIEW_LAYERS, "filter_query"),
        Input(ids.RADIO_OVERVIEW_ROLE, "value"),
    )
    def filter_by_role(role: str | None) -> str:
        return role_filter(role)

    @app.callback(
        Output(ids.DROPDOWN_OVERVIEW_BASE, "options"),
        Input(ids.STORE_SELECTION_STATE, "data"),
    )
    def base_options(selection: Selection | None) -> list[dict[str, str]]:
        if not selection_ready(selection, ids.TAB_OVERVIEW):
            raise dash.exceptions.PreventUpdate
        models = services.registry.models(current_session_id())
        return [{"label": m.label, "value": m.id} for m in models if m.id != selection["model"]]

    outputs = [
        Output(ids.TABLE_OVERVIEW_LAYERS, "columns"),
        Output(ids.TABLE_OVERVIEW_LAYERS, "data"),
        Output(ids.GRAPH_OVERVIEW_SPARKLINES, "figure"),
        Output(ids.DIV_OVERVIEW_SUMMARY, "children"),
        Output(ids.DIV_OVERVIEW_ALERT, "children"),
        Output(ids.DIV_OVERVIEW_JOB, "style"),
        Output(ids.TEXT_OVERVIEW_JOB_NOTE, "children"),
        Output(_JOB.status, "children"),
        Output(ids.INTERVAL_OVERVIEW_REFRESH, "disabled"),
    ]
    hidden = {"display": "none"}

    def render(
        selection: Selection | None,
        base: str | None,
        *,
        done: dict | None,
        started: dict | None,
        start: bool,
    ) -> tuple[Any, ...]:
        """The view's outputs and the run store (a new job, or no_update)."""
        if not selection_ready(selection, ids.TAB_OVERVIEW):
            raise dash.exceptions.PreventUpdate
        model = selection.get("model")
        base = base if base and base != model else None
        columns = columns_for(base)
        if not model:
            return (
                columns,
                [],
                placeholder_figure("Choose a model."),
                "",
                None,
                hidden,
                "",
                None,
                True,
                no_update,
            )
        session = current_session_id()
        data, error = attempt(services, lambda: services.overview.data(model, session))
        changes = None
        if error is None and base:
            changes, error = attempt(services, lambda: services.finetune.data(base, model, session))
        if error is not None:
            return columns, [], placeholder_figure(), "", error, hidden, "", None, True, no_update
        records = table_records(data.table)
        key = _job_key(services, model, base, session)
        figure = _figure(services, data, records, key)
        pending = set(data.pending)
        if changes is not None:
            records = with_changes(records, table_records(changes.table))
            pending |= set(changes.pending)
        summary = summary_text(records, len(pending))
        if not pending:
            return columns, records, figure, summary, None, hidden, "", None, True, no_update
        status, run, polling = job_state(done, started, key, start=start, cancelled=_cancelled)
        shown = {"display": "flex", "flexDirection": "column", "gap": "6px"}
        note = _job_note(data) if data.pending else _changes_note(changes)
        return columns, records, figure, summary, None, shown, note, status, not polling, run

    def prepare(session: str | None, selection: Selection, base: str | None) -> Any:
        model = selection["model"]
        base = base if base and base != model else None

        def compute(progress: Any, should_stop: Any) -> bool:
            stopped = services.overview.compute(
                model, session, progress=progress, should_stop=should_stop
            )
            if stopped or not base:
                return stopped
            return services.finetune.compute(
                base, model, session, progress=progress, should_stop=should_stop
            )

        return _job_key(services, model, base, session), compute

    register_streamed(
        app,
        services,
        _JOB,
        outputs=outputs,
        render=render,
        interval=ids.INTERVAL_OVERVIEW_REFRESH,
        prepare=prepare,
        progress_text=progress_text,
        cancelled=_cancelled,
        extra=[(ids.DROPDOWN_OVERVIEW_BASE, "value")],
    )

    @app.callback(
        Output(ids.DOWNLOAD_OVERVIEW_CSV, "data"),
        Input(ids.BUTTON_OVERVIEW_CSV, "n_clicks"),
        State(ids.STORE_SELECTION_STATE, "data"),
        prevent_initial_call=True,
    )
    def download_csv(n_clicks: int | None, selection: Selection | None) -> Any:
        model = (selection or {}).get("model")
        if not n_clicks or not model:
            raise dash.exceptions.PreventUpdate
        return services.overview.csv(model, current_session_id())


def _cancelled(step: Any, total: Any) -> Any:
    return jobs.cancelled_alert(
        None, None, what="overview", kept="the rows computed so far are kept"
    )


def _figure(services: Any, data: OverviewData, records: list[dict[str, Any]], key: str) -> Any:
    """The sparklines (cached per overview key and number of rows known)."""
    alphas = {r["name"]: r["alpha"] for r in records if r["alpha"] is not None}
    return services.cache.get_or_compute(
        make_key("overview-figure", key, len(data.spectra)),
        lambda: sparklines_figure(
            data.spectra, alphas, title="Singular values σᵢ / σ₁ per layer (log scale)"
        ).to_dict(),
    )
