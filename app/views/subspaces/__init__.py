"""Subspaces & residuals view (Pattichis & Pattichis, Fig. 1 and 2): the four subspace
dimensions and the condition number of the chosen layer, its signal vectors sigma_i v_i,
and, for a class average or a sample of the chosen dataset, the split into signal and
residual, the per-neuron residuals and the energy removed per class.

The weights' part needs only the matrix; the inputs' part needs the layer's inputs (the
dataset for the first layer, else the previous module's outputs). When they cannot be had
the page says why instead of showing them. Everything computes in the request (small).
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, dash_table, dcc, html

from app import ids
from app.figures import placeholder_figure
from app.services import SubspacesOptions
from app.services.subspaces import NoLayerInputs
from app.storage.session import current_session_id
from app.views.common import (
    Selection,
    alert,
    data_table,
    graph_panel,
    layer_title,
    number,
    number_field,
    selection_ready,
)
from app.views.subspaces.render import (
    ENERGY_COLUMNS,
    input_figures,
    own_neuron_figure,
    stats_panel,
    table_rows,
    weight_figures,
)

__all__ = ["focus_options", "layout", "options_from", "register"]

SHOWN = {"display": "block"}
HIDDEN = {"display": "none"}


def _energy_table() -> dash_table.DataTable:
    return data_table(
        ids.TABLE_SUBSPACES_ENERGY,
        ENERGY_COLUMNS,
        cell={"fontSize": "12.5px"},
        style_table={"maxWidth": "760px"},
        style_cell_conditional=[{"if": {"column_id": "name"}, "textAlign": "left"}],
    )


def _controls() -> html.Div:
    return html.Div(
        [
            html.Fieldset(
                [
                    html.Legend("Rank tolerance"),
                    number_field(
                        ids.INPUT_SUBSPACES_RTOL,
                        "rtol",
                        None,
                        min=0,
                        max=0.999,
                        step="any",
                        placeholder="default",
                    ),
                    html.Div(
                        "σᵢ > rtol·σ₁ count; empty: max(m, n)·eps of the stored dtype.",
                        className="hint",
                    ),
                ],
                className="control-group",
            ),
            html.Fieldset(
                [
                    html.Legend("Input shown"),
                    dcc.RadioItems(
                        id=ids.RADIO_SUBSPACES_FOCUS,
                        options=focus_options(True),
                        value="class",
                        inline=True,
                        className="radio-inline",
                    ),
                    html.Div(
                        [
                            dcc.Dropdown(
                                id=ids.DROPDOWN_SUBSPACES_CLASS,
                                options=[],
                                clearable=False,
                                searchable=False,
                                placeholder="class",
                                className="class-picker",
                            ),
                            number_field(ids.INPUT_SUBSPACES_SAMPLE, "sample", 0, min=0, step=1),
                        ],
                        className="focus-row",
                    ),
                ],
                className="control-group",
            ),
        ],
        className="subspaces-controls",
    )


def layout() -> html.Div:
    return html.Div(
        [
            html.Div(id=ids.DIV_SUBSPACES_ALERT),
            _controls(),
            html.Div(id=ids.DIV_SUBSPACES_STATS, className="stats"),
            graph_panel(ids.GRAPH_SUBSPACES_SIGNAL),
            graph_panel(ids.GRAPH_SUBSPACES_SPECTRUM),
            html.Div(id=ids.DIV_SUBSPACES_NOTE),
            html.Div(
                [
                    html.Div(id=ids.DIV_SUBSPACES_SOURCE, className="caption"),
                    graph_panel(ids.GRAPH_SUBSPACES_DECOMPOSITION),
                    graph_panel(ids.GRAPH_SUBSPACES_NEURONS),
                    html.Div(
                        [
                            graph_panel(ids.GRAPH_SUBSPACES_CLASSES),
                            html.Div(
                                graph_panel(ids.GRAPH_SUBSPACES_OWN),
                                id=ids.DIV_SUBSPACES_OWN,
                                style=HIDDEN,
                            ),
                            html.H4("Energy removed per class", className="table-title"),
                            _energy_table(),
                            html.Div(
                                "‖residual‖² / ‖x‖²: the share of the input's energy in the "
                                "layer's null space (rejected signal space).",
                                className="caption",
                            ),
                        ],
                        id=ids.DIV_SUBSPACES_CLASSES,
                    ),
                ],
                id=ids.DIV_SUBSPACES_INPUTS,
                style=HIDDEN,
            ),
        ],
        className="view view-subspaces",
    )


def focus_options(has_classes: bool) -> list[dict[str, Any]]:
    """The focus choices; "class average" needs class labels."""
    return [
        {"label": "class average", "value": "class", "disabled": not has_classes},
        {"label": "one sample", "value": "sample"},
    ]


def options_from(rtol: Any, focus: Any, cls: Any, sample: Any) -> SubspacesOptions:
    """The controls' values as SubspacesOptions (empty or unreadable -> defaults)."""

    return SubspacesOptions(
        rtol=number(rtol, float),
        focus=focus if focus in ("class", "sample") else "class",
        cls=number(cls, int),
        sample=max(0, number(sample, int) or 0),
    )


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.DROPDOWN_SUBSPACES_CLASS, "options"),
        Output(ids.DROPDOWN_SUBSPACES_CLASS, "value"),
        Output(ids.INPUT_SUBSPACES_SAMPLE, "max"),
        Output(ids.RADIO_SUBSPACES_FOCUS, "options"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        dash.State(ids.DROPDOWN_SUBSPACES_CLASS, "value"),
    )
    def update_focus_choices(selection: Selection | None, current: Any) -> Any:
        """The classes of the chosen dataset, and its number of samples."""
        if not selection_ready(selection, ids.TAB_SUBSPACES) or not selection.get("model"):
            raise dash.exceptions.PreventUpdate
        try:
            classes, n = services.datasets.class_choices(
                selection["model"], selection.get("dataset"), current_session_id()
            )
        except Exception:
            classes, n = [], 0  # the dataset's own message is shown by the main callback
        options = [{"label": f"class {name}", "value": label} for label, name in classes]
        values = [label for label, _ in classes]
        value = current if current in values else (values[0] if values else None)
        return options, value, max(n - 1, 0), focus_options(bool(classes))

    @app.callback(
        Output(ids.DIV_SUBSPACES_STATS, "children"),
        Output(ids.GRAPH_SUBSPACES_SPECTRUM, "figure"),
        Output(ids.GRAPH_SUBSPACES_SIGNAL, "figure"),
        Output(ids.DIV_SUBSPACES_NOTE, "children"),
        Output(ids.DIV_SUBSPACES_INPUTS, "style"),
        Output(ids.DIV_SUBSPACES_SOURCE, "children"),
        Output(ids.GRAPH_SUBSPACES_DECOMPOSITION, "figure"),
        Output(ids.GRAPH_SUBSPACES_NEURONS, "figure"),
        Output(ids.GRAPH_SUBSPACES_CLASSES, "figure"),
        Output(ids.DIV_SUBSPACES_CLASSES, "style"),
        Output(ids.GRAPH_SUBSPACES_OWN, "figure"),
        Output(ids.DIV_SUBSPACES_OWN, "style"),
        Output(ids.TABLE_SUBSPACES_ENERGY, "data"),
        Output(ids.DIV_SUBSPACES_ALERT, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.INPUT_SUBSPACES_RTOL, "value"),
        Input(ids.RADIO_SUBSPACES_FOCUS, "value"),
        Input(ids.DROPDOWN_SUBSPACES_CLASS, "value"),
        Input(ids.INPUT_SUBSPACES_SAMPLE, "value"),
    )
    def update_subspaces(selection: Selection | None, *values: Any) -> tuple[Any, ...]:
        if not selection_ready(selection, ids.TAB_SUBSPACES):
            raise dash.exceptions.PreventUpdate
        blank = placeholder_figure()
        nothing = ([], blank, blank, None, HIDDEN, None, blank, blank, blank, HIDDEN, blank,
                   HIDDEN, [])  # fmt: skip
        if not selection.get("layer"):
            choose = placeholder_figure("Choose a layer with a weight matrix.")
            return ([], blank, choose, *nothing[3:], None)
        session = current_session_id()
        model, layer, view = selection["model"], selection["layer"], selection["view"]
        options = options_from(*values)
        name = layer_title(selection)
        try:
            data = services.subspaces.data(model, layer, view, options.rtol, session)
        except Exception as err:
            return (*nothing, alert(services.error_message(err)))
        spectrum, gallery = weight_figures(data, name)
        try:
            projection = services.subspaces.projections(
                model, layer, view, options, selection.get("dataset"), session
            )
        except NoLayerInputs as why:
            note = alert(str(why), kind="info", title="No residuals for this layer")
            return (stats_panel(data, None), spectrum, gallery, note, *nothing[4:], None)
        except Exception as err:
            note = alert(services.error_message(err), title="No residuals")
            return (stats_panel(data, None), spectrum, gallery, note, *nothing[4:], None)
        highlight = None
        outputs_are_classes = data.shape[0] == len(projection.class_names)
        if options.focus == "class" and projection.class_names and outputs_are_classes:
            highlight = options.cls
        decomposition, neurons, classes = input_figures(data, projection, name, highlight)
        source = (
            f"Layer inputs: {projection.source} ({projection.n_samples:,} samples of the "
            f"chosen dataset). {projection.classes_note}"
        ).strip()
        return (
            stats_panel(data, projection),
            spectrum,
            gallery,
            None,
            SHOWN,
            source,
            decomposition,
            neurons,
            classes,
            SHOWN if projection.class_names else HIDDEN,
            own_neuron_figure(data, projection, name),
            HIDDEN if projection.own_residuals is None else SHOWN,
            table_rows(projection),
            None,
        )
