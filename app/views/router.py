"""Page state: URL <-> controls, the layer table and the upload status.

The URL (`?model=deernet&layer=fc1&tab=spectrum&view=kernels&dataset=upload-...`) and the
controls are kept
in step by ONE callback (`sync_state`): Dash allows a callback to read and write the same
props, not two callbacks to feed each other. It resolves what was asked for against what
exists (`resolve_state`) and publishes the result in STORE_SELECTION_STATE, which the
views listen to. It writes the URL only after a user action, so opening a link or going
back in history never adds history entries.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, State, ctx, html, no_update

from app import ids
from app.storage.session import current_session_id
from app.views import compare
from app.views.common import Selection, alert

__all__ = ["encode_search", "parse_search", "register", "resolve_state"]

_KEYS = ("model", "layer", "tab", "view", "dataset", "sample", "compare", "compare_layer")


def parse_search(search: str | None) -> dict[str, str]:
    """`?model=a&layer=b` -> {"model": "a", "layer": "b"} (first value of each known key)."""
    query = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
    return {key: query[key][0] for key in _KEYS if query.get(key)}


def encode_search(
    state: Selection, default_view: str | None = None, default_dataset: str | None = None
) -> str:
    """The canonical query string of a selection; the default matrix view and the model's
    default dataset (its own data) are left out."""
    defaults = {"view": default_view, "dataset": default_dataset}
    pairs = [(key, state.get(key)) for key in _KEYS]
    kept = [(k, v) for k, v in pairs if v and not (k in defaults and v == defaults[k])]
    return "?" + urlencode(kept) if kept else ""


def resolve_state(
    services: Any,
    session: str | None,
    requested: dict[str, Any],
    *,
    fallback_layer: str | None = None,
) -> tuple[Selection, list[html.Div], Any]:
    """Turn a requested selection into one that exists, with a message for each fallback.

    An unusable layer is replaced by `fallback_layer` (e.g. the one shown before a click on
    a tensor without a matrix view) when that one is usable, else by the first usable layer.
    Returns (selection, alerts, LayerInfo of the selected layer or None).
    """
    messages: list[html.Div] = []
    model_ids = [m.id for m in services.registry.models(session)]
    model = requested.get("model")
    if model and model not in model_ids:
        gone = services.registry.upload_gone_message(model, session)  # an upload that expired
        messages.append(
            alert(
                f"{gone} Showing another model."
                if gone
                else f"The model '{model}' is not available in this browser session "
                "(uploads are private to the session that sent them); showing another model.",
                kind="warning",
            )
        )
        model = None
    if not model and model_ids:
        model = model_ids[0]
    tab = requested.get("tab") if requested.get("tab") in ids.TABS else ids.TAB_WEIGHTS
    layer, view, info = requested.get("layer"), requested.get("view"), None
    if model:
        try:
            layers = {
                layer_info.name: layer_info
                for layer_info in services.registry.layers(model, session)
            }
        except Exception as err:
            messages.append(alert(services.error_message(err), title="Cannot open this model"))
            layers = {}
        if layer and layer not in layers:
            if layers:
                messages.append(
                    alert(
                        f"'{model}' has no layer '{layer}'.",
                        kind="warning",
                    )
                )
            layer = None
        elif layer and layers[layer].matrix_shape is None:
            reason = layers[layer].note or "it is not a matrix"
            messages.append(alert(f"'{layer}' has no matrix view: {reason}", kind="warning"))
            layer = None
        usable = [name for name, li in layers.items() if li.matrix_shape is not None]
        if not layer:
            layer = fallback_layer if fallback_layer in usable else next(iter(usable), None)
        if layer:
            info = layers[layer]
            views = tuple(info.views) or ("default",)
            view = view if view in views else views[0]
    dataset = _resolve_dataset(services, session, model, requested.get("dataset"), messages)
    state: Selection = {
        "model": model,
        "layer": layer,
        "view": view or "default",
        "tab": tab,
        "dataset": dataset,
    }
    sample = _sample(requested.get("sample"))
    if sample is not None:  # the Spectral surgery tab's sample (URL `sample=`)
        state["sample"] = sample
    return state, messages, info


def _sample(value: Any) -> str | None:
    """A sample index as the URL spells it ("12"), None unless a non-negative integer."""
    try:
        index = int(value)
    except (TypeError, ValueError):
        return None
    return str(index) if index >= 0 else None


def _resolve_dataset(
    services: Any, session: str | None, model: str | None, dataset: Any, messages: list
) -> str | None:
    """The requested dataset when this session has it, else the model's default (its own
    data for an example network, none otherwise)."""
    if not model:
        return None
    available = [d.id for d in services.datasets.entries(model, session)]
    default = services.datasets.default(model, session)
    if dataset and dataset not in available:
        instead = "the model's own data" if default else "no dataset"
        gone = services.registry.upload_gone_message(dataset, session, dataset=True)
        messages.append(
            alert(
                f"{gone} Using {instead}."
                if gone
                else f"The dataset '{dataset}' is not available in this browser session "
                f"(uploads are private to the session that sent them); using {instead}.",
                kind="warning",
            )
        )
        dataset = None
    return dataset or default


def _header(services: Any, session: str | None, state: Selection, info: Any) -> list[Any]:
    if not state.get("model"):
        return [html.H2("No model", className="layer-title")]
    entry = services.registry.model_entry(state["model"], session)
    title = [html.Span(entry.label, className="crumb-model")]
    if info is None:
        return [html.H2(title, className="layer-title")]
    title += [
        html.Span(" › ", className="crumb-sep"),
        html.Span(info.name, className="crumb-layer"),
    ]
    shape = "×".join(map(str, info.shape))
    m, n = info.matrix_shape
    facts = f"{info.kind} · tensor {shape} · matrix {m}×{n} · {info.dtype}"
    return [html.H2(title, className="layer-title"), html.Div(facts, className="layer-facts")]


MAX_RADIO_VIEWS = 6  # more views (one per attention head): a dropdown instead of the radio


def _view_pickers(views: tuple[str, ...], view: str) -> tuple[Any, ...]:
    """Options, value and style of the radio and of the dropdown: one shows the views."""
    options = [{"label": v, "value": v} for v in views]
    shown, hidden = {}, {"display": "none"}
    if len(views) > MAX_RADIO_VIEWS:
        return [], None, hidden, options, view, {"minWidth": "220px"}
    return options, view, shown, [], None, hidden


def register(app: dash.Dash, services: Any) -> None:
    @app.callback(
        Output(ids.LOCATION_PAGE_URL, "search"),
        Output(ids.DROPDOWN_MODEL_SELECT, "options"),
        Output(ids.DROPDOWN_MODEL_SELECT, "value"),
        Output(ids.TABS_VIEW_SELECT, "value"),
        Output(ids.RADIO_MATRIX_VIEW, "options"),
        Output(ids.RADIO_MATRIX_VIEW, "value"),
        Output(ids.RADIO_MATRIX_VIEW, "style"),
        Output(ids.DROPDOWN_MATRIX_VIEW, "options"),
        Output(ids.DROPDOWN_MATRIX_VIEW, "value"),
        Output(ids.DROPDOWN_MATRIX_VIEW, "style"),
        Output(ids.DIV_MATRIX_VIEW, "style"),
        Output(ids.STORE_SELECTION_STATE, "data"),
        Output(ids.DIV_ALERT_GLOBAL, "children"),
        Output(ids.DIV_LAYER_HEADER, "children"),
        Output(ids.DIV_MODEL_DESCRIPTION, "children"),
        Output(ids.TABLE_LAYER_LIST, "active_cell"),
        Output(ids.DROPDOWN_DATASET_SELECT, "options"),
        Output(ids.DROPDOWN_DATASET_SELECT, "value"),
        Output(ids.TABLE_OVERVIEW_LAYERS, "active_cell"),
        Output(ids.DROPDOWN_COMPARE_MODEL, "options"),
        Output(ids.DROPDOWN_COMPARE_MODEL, "value"),
        Output(ids.DROPDOWN_COMPARE_LAYER, "options"),
        Output(ids.DROPDOWN_COMPARE_LAYER, "value"),
        Input(ids.LOCATION_PAGE_URL, "search"),
        Input(ids.DROPDOWN_MODEL_SELECT, "value"),
        Input(ids.TABLE_LAYER_LIST, "active_cell"),
        Input(ids.TABS_VIEW_SELECT, "value"),
        Input(ids.RADIO_MATRIX_VIEW, "value"),
        Input(ids.DROPDOWN_MATRIX_VIEW, "value"),
        Input(ids.STORE_UPLOAD_EVENT, "data"),
        Input(ids.DROPDOWN_DATASET_SELECT, "value"),
        Input(ids.STORE_DATASET_UPLOAD_EVENT, "data"),
        Input(ids.STORE_SURGERY_PICK, "data"),
        Input(ids.TABLE_OVERVIEW_LAYERS, "active_cell"),
        Input(ids.TABLE_FINETUNE_LAYERS, "active_cell"),
        Input(ids.DROPDOWN_COMPARE_MODEL, "value"),
        Input(ids.DROPDOWN_COMPARE_LAYER, "value"),
        Input(ids.STORE_TOUR_REQUEST, "data"),
        State(ids.STORE_SELECTION_STATE, "data"),
    )
    def sync_state(
        search: str | None,
        model_value: str | None,
        active_cell: dict[str, Any] | None,
        tab_value: str | None,
        view_value: str | None,
        view_choice: str | None,
        upload_event: dict[str, Any] | None,
        dataset_value: str | None,
        dataset_event: dict[str, Any] | None,
        surgery_pick: dict[str, Any] | None,
        overview_cell: dict[str, Any] | None,
        finetune_cell: dict[str, Any] | None,
        compare_value: str | None,
        compare_layer_value: str | None,
        tour_request: dict[str, Any] | None,
        current: Selection | None,
    ) -> tuple[Any, ...]:
        trigger = ctx.triggered_id
        session = current_session_id()
        current = dict(current or {})
        from_user = trigger not in (None, ids.LOCATION_PAGE_URL)
        if not from_user:
            requested: dict[str, Any] = parse_search(search)
        else:
            requested = {**current, "tab": tab_value}
            if trigger == ids.DROPDOWN_MODEL_SELECT:
                if not model_value:
                    raise dash.exceptions.PreventUpdate
                requested.update(
                    model=model_value, layer=None, view=None, dataset=None, compare_layer=None
                )
            elif trigger == ids.TABLE_LAYER_LIST:
                if not active_cell or not active_cell.get("row_id"):
                    raise dash.exceptions.PreventUpdate
                requested.update(layer=active_cell["row_id"], view=None, compare_layer=None)
            elif trigger in (ids.RADIO_MATRIX_VIEW, ids.DROPDOWN_MATRIX_VIEW):
                chosen = view_value if trigger == ids.RADIO_MATRIX_VIEW else view_choice
                if not chosen:
                    raise dash.exceptions.PreventUpdate
                requested["view"] = chosen
            elif trigger == ids.STORE_UPLOAD_EVENT:
                if not upload_event or not upload_event.get("ok"):
                    raise dash.exceptions.PreventUpdate
                requested.update(
                    model=upload_event["model_id"], layer=None, view=None, dataset=None
                )
            elif trigger == ids.DROPDOWN_DATASET_SELECT:
                if not dataset_value:
                    raise dash.exceptions.PreventUpdate
                requested["dataset"] = dataset_value
            elif trigger == ids.STORE_DATASET_UPLOAD_EVENT:
                if not dataset_event or not dataset_event.get("ok"):
                    raise dash.exceptions.PreventUpdate
                requested["dataset"] = dataset_event["dataset_id"]
            elif trigger == ids.STORE_SURGERY_PICK:
                if not surgery_pick:
                    raise dash.exceptions.PreventUpdate
                requested["sample"] = surgery_pick.get("sample")
            elif trigger == ids.TABLE_OVERVIEW_LAYERS:  # a row of the Model overview
                if not overview_cell or not overview_cell.get("row_id"):
                    raise dash.exceptions.PreventUpdate
                requested.update(layer=overview_cell["row_id"], view=None, tab=ids.TAB_WEIGHTS)
            elif trigger == ids.TABLE_FINETUNE_LAYERS:  # a row of the fine-tune table
                if not finetune_cell or not finetune_cell.get("row_id"):
                    raise dash.exceptions.PreventUpdate
                name = finetune_cell["row_id"]
                requested.update(layer=name, view=None, compare_layer=name)
            elif trigger == ids.DROPDOWN_COMPARE_MODEL:
                if not compare_value or compare_value == current.get("compare"):
                    raise dash.exceptions.PreventUpdate
                requested.update(compare=compare_value, compare_layer=None)
            elif trigger == ids.DROPDOWN_COMPARE_LAYER:
                if not compare_layer_value or compare_layer_value == current.get("compare_layer"):
                    raise dash.exceptions.PreventUpdate
                requested["compare_layer"] = compare_layer_value
            elif trigger == ids.STORE_TOUR_REQUEST:  # a guided tour's step (app/views/tours.py)
                if not tour_request or not tour_request.get("state"):
                    raise dash.exceptions.PreventUpdate
                requested = {"tab": ids.TAB_WEIGHTS, **tour_request["state"]}  # as a link would
        fallback = current.get("layer") if requested.get("model") == current.get("model") else None
        state, messages, info = resolve_state(services, session, requested, fallback_layer=fallback)
        try:  # the Compare tab's second model and layer (URL `compare=`, `compare_layer=`)
            pickers = compare.resolve_compare(services, session, state, requested)
        except Exception as err:
            pickers = None
            messages.append(alert(services.error_message(err), title="Cannot compare"))
        views = tuple(info.views) if info is not None and info.views else ("default",)
        default_dataset = services.datasets.default(state.get("model"), session)
        new_search = encode_search(state, default_view=views[0], default_dataset=default_dataset)
        options = [{"label": m.label, "value": m.id} for m in services.registry.models(session)]
        dataset_options = [
            {"label": d.label, "value": d.id}
            for d in services.datasets.entries(state.get("model"), session)
        ]
        description = _description(services, session, state.get("model"))
        return (
            new_search if from_user and new_search != (search or "") else no_update,
            options,
            state["model"],
            state["tab"],
            *_view_pickers(views, state["view"]),
            {"display": "flex"} if len(views) > 1 else {"display": "none"},
            state if state != current else no_update,
            messages,
            _header(services, session, state, info),
            description,
            None if trigger == ids.TABLE_LAYER_LIST else no_update,
            dataset_options,
            state.get("dataset"),
            None if trigger == ids.TABLE_OVERVIEW_LAYERS else no_update,
            *compare.picker_outputs(pickers),
        )

    @app.callback(
        Output(ids.TABLE_LAYER_LIST, "data"),
        Output(ids.TABLE_LAYER_LIST, "tooltip_data"),
        Output(ids.TABLE_LAYER_LIST, "style_data_conditional"),
        Output(ids.STORE_MODEL_CURRENT, "data"),
        Output(ids.DIV_LAYER_NOTES, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
        Input(ids.JOB_SPECTRUM.done_store, "data"),
        State(ids.STORE_MODEL_CURRENT, "data"),
        State(ids.TABLE_LAYER_LIST, "data"),
    )
    def update_layer_table(
        selection: Selection | None,
        spectrum_done: dict[str, Any] | None,
        shown_model: str | None,
        rows: list[dict[str, Any]] | None,
    ) -> tuple[Any, ...]:
        model = (selection or {}).get("model")
        # a new model, or a large layer's full spectrum just computed (its κ is known now)
        finished = (
            ctx.triggered_id == ids.JOB_SPECTRUM.done_store
            and (spectrum_done or {}).get("status") == "done"
        )
        fresh = model != shown_model or finished
        notes: Any = no_update
        if fresh:
            rows, notes = [], []
            if model:
                try:
                    rows = services.layers.table(model, current_session_id())
                except Exception as err:
                    notes = alert(services.error_message(err))
            if rows and not isinstance(notes, html.Div):
                notes = _notes(rows)
        rows = rows or []
        styles = [
            {"if": {"row_index": i}, "color": "#90a4ae", "fontStyle": "italic"}
            for i, row in enumerate(rows)
            if not row.get("viewable")
        ]
        layer = (selection or {}).get("layer")
        styles += [
            {"if": {"row_index": i}, "backgroundColor": "#e3f2fd", "fontWeight": 600}
            for i, row in enumerate(rows)
            if row.get("id") == layer
        ]
        tooltips = [
            {"name": {"value": row["note"], "type": "text"}} if row.get("note") else {}
            for row in rows
        ]
        return (
            rows if fresh else no_update,
            tooltips if fresh else no_update,
            styles,
            model if fresh else no_update,
            notes,
        )

    @app.callback(
        Output(ids.DIV_UPLOAD_STATUS, "children"),
        Input(ids.STORE_UPLOAD_EVENT, "data"),
        prevent_initial_call=True,
    )
    def show_upload_status(event: dict[str, Any] | None) -> Any:
        if not event:
            raise dash.exceptions.PreventUpdate
        name = event.get("name") or "the file"
        if event.get("status") == "uploading":
            return html.Div(f"Uploading {name}…", className="upload-progress")
        if event.get("ok"):
            return alert(f"Opened {name}.", kind="info")
        return alert(event.get("message") or "The upload failed.", title="Upload failed")

    @app.callback(
        Output(ids.DIV_DATASET_UPLOAD_STATUS, "children"),
        Input(ids.STORE_DATASET_UPLOAD_EVENT, "data"),
        prevent_initial_call=True,
    )
    def show_dataset_upload_status(event: dict[str, Any] | None) -> Any:
        return show_upload_status(event)

    @app.callback(
        Output(ids.DIV_DATASET_STATUS, "children"),
        Input(ids.STORE_SELECTION_STATE, "data"),
    )
    def show_dataset_status(selection: Selection | None) -> Any:
        """Size and labels of the chosen dataset, or why it cannot be used with this model."""
        model = (selection or {}).get("model")
        if not model:
            return []
        dataset = (selection or {}).get("dataset")
        try:
            text = services.datasets.summary(model, dataset, current_session_id())
        except Exception as err:
            return alert(services.error_message(err), title="This dataset does not fit")
        if text is None:
            return html.Div(
                "No dataset chosen: upload one to see residuals and inversions.", className="hint"
            )
        return html.Div(text, className="hint dataset-summary")


def _description(services: Any, session: str | None, model: str | None) -> Any:
    if not model:
        return []
    entry = services.registry.model_entry(model, session)
    if entry.kind == "zoo" and entry.description:
        return html.Details([html.Summary("About this network"), html.P(entry.description)])
    return html.Div(entry.description, className="model-path")


def _notes(rows: list[dict[str, Any]]) -> Any:
    hidden = [row for row in rows if not row.get("viewable")]
    if not hidden:
        return []
    return html.Details(
        [
            html.Summary(f"{len(hidden)} tensor(s) without a matrix view"),
            html.Ul(
                [
                    html.Li([html.Code(r["name"]), f": {r['note'] or 'not a matrix'}"])
                    for r in hidden
                ]
            ),
        ],
        className="layer-notes",
    )
