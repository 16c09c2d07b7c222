"""Page shell: header, sidebar (model picker and upload, dataset picker and upload, layer
table) and the view tabs."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from dash import dash_table, dcc, html

from app import ids
from app.storage.uploads import ALLOWED_SUFFIXES, DATASET_SUFFIXES, MODEL_TOO_BIG_HINT
from app.views import (
    compare,
    descramble,
    export_bar,
    inversion,
    overview,
    router,
    spectrum,
    subspaces,
    surgery,
    tours,
    vectors,
    weights,
)
from app.views.common import CLICKABLE_CELLS, data_table

__all__ = ["LAYER_COLUMNS", "TABS", "VIEWS", "build_layout"]

# The view tabs in page order: (label, tab id, the view's module: layout() and register()).
TABS: tuple[tuple[str, str, ModuleType], ...] = (
    ("Weights", ids.TAB_WEIGHTS, weights),
    ("Spectrum", ids.TAB_SPECTRUM, spectrum),
    ("Singular vectors", ids.TAB_VECTORS, vectors),
    ("Descramble", ids.TAB_DESCRAMBLE, descramble),
    ("Subspaces & residuals", ids.TAB_SUBSPACES, subspaces),
    ("Inversion", ids.TAB_INVERSION, inversion),
    ("Spectral surgery", ids.TAB_SURGERY, surgery),
    ("Overview", ids.TAB_OVERVIEW, overview),
    ("Compare", ids.TAB_COMPARE, compare),
)
# Every module whose register(app, services) the app factory calls, in order: the router
# first, the tabs, the export bar, and the tours last (they read app/tours/*.json, so a bad
# file stops the start there).
VIEWS: tuple[ModuleType, ...] = (router, *(view for _, _, view in TABS), export_bar, tours)

LAYER_COLUMNS = [
    {"name": "Layer", "id": "name"},
    {"name": "Kind", "id": "kind"},
    {"name": "Shape", "id": "shape"},
    {"name": "κ", "id": "cond"},
    {"name": "eff. rank", "id": "erank"},
]


def _layer_table() -> dash_table.DataTable:
    return data_table(
        ids.TABLE_LAYER_LIST,
        LAYER_COLUMNS,
        cell={"padding": "4px 5px", "textAlign": "left", "whiteSpace": "nowrap", **CLICKABLE_CELLS},
        cell_selectable=True,
        tooltip_delay=200,
        tooltip_duration=None,
        style_table={"maxHeight": "52vh", "overflowY": "auto", "overflowX": "auto"},
        style_cell_conditional=[
            {"if": {"column_id": c}, "textAlign": "right"} for c in ("cond", "erank")
        ]
        + [
            # long dotted names (encoder.layer.3.attention.self.query) wrap, so the numbers
            # stay in view without scrolling sideways
            {
                "if": {"column_id": "name"},
                "whiteSpace": "normal",
                "wordBreak": "break-all",
                "height": "auto",
                "minWidth": "120px",
                "maxWidth": "200px",
            }
        ],
        # DataTable truncates cell values with an ellipsis unless told to inherit wrapping
        css=[
            {
                "selector": ".dash-cell div.dash-cell-value",
                "rule": "display: inline; white-space: inherit; overflow: inherit; "
                "text-overflow: inherit;",
            }
        ],
    )


def _upload_control(
    control_id: str,
    *,
    url: str,
    max_bytes: int,
    suffixes: tuple[str, ...],
    input_id: str,
    store_id: str,
    label: str,
    too_big_hint: str,
    labels_input: str | None = None,
) -> html.Div:
    """A placeholder that assets/upload.js fills with a file input (see that file)."""
    attrs = {
        "data-upload-url": url,
        "data-max-bytes": str(max_bytes),
        "data-accept": ",".join(suffixes),
        "data-input-id": input_id,
        "data-store-id": store_id,
        "data-label": label,
        "data-too-big": too_big_hint,
    }
    if labels_input:
        attrs["data-labels-input"] = labels_input
    return html.Div(id=control_id, className="upload-control", **attrs)


def _dataset_section(max_upload_bytes: int, dataset_upload_url: str) -> list[Any]:
    return [
        html.Label("Dataset", htmlFor=ids.DROPDOWN_DATASET_SELECT, className="section-label"),
        dcc.Dropdown(
            id=ids.DROPDOWN_DATASET_SELECT,
            options=[],
            clearable=False,
            searchable=False,
            placeholder="No dataset: upload one below",
        ),
        html.Div(id=ids.DIV_DATASET_STATUS, className="dataset-status"),
        html.Details(
            [
                html.Summary("Open a dataset file", className="section-summary"),
                html.Div(
                    [
                        html.Label(
                            "Label column (.csv) or array (.npz/.pt), optional",
                            htmlFor=ids.INPUT_DATASET_LABELS,
                            className="inline-label",
                        ),
                        dcc.Input(
                            id=ids.INPUT_DATASET_LABELS,
                            type="text",
                            placeholder="e.g. label",
                            debounce=True,
                            className="text-field",
                        ),
                    ],
                    className="labels-field",
                ),
                _upload_control(
                    ids.DIV_DATASET_UPLOAD_CONTROL,
                    url=dataset_upload_url,
                    max_bytes=max_upload_bytes,
                    suffixes=DATASET_SUFFIXES,
                    input_id=ids.INPUT_DATASET_FILE,
                    store_id=ids.STORE_DATASET_UPLOAD_EVENT,
                    label="Open a dataset file",
                    too_big_hint="upload a smaller sample of it",
                    labels_input=ids.INPUT_DATASET_LABELS,
                ),
                html.Div(
                    ".npy (inputs), .npz (arrays x and y), .csv (header row; every column but "
                    "the label column is a feature), .pt (tensors, loaded without unpickling "
                    "code) or a .zip of PNG/JPEG images, one folder per class. Samples are "
                    "reshaped to the model's input shape.",
                    className="hint",
                ),
            ],
            open=True,
            className="dataset-upload",
        ),
        html.Div(id=ids.DIV_DATASET_UPLOAD_STATUS),
    ]


def _sidebar(max_upload_bytes: int, upload_url: str, dataset_upload_url: str) -> html.Aside:
    return html.Aside(
        [
            html.Label("Model", htmlFor=ids.DROPDOWN_MODEL_SELECT, className="section-label"),
            dcc.Dropdown(
                id=ids.DROPDOWN_MODEL_SELECT, options=[], clearable=False, searchable=False
            ),
            html.Div(id=ids.DIV_MODEL_DESCRIPTION, className="model-description"),
            html.Label("Open a model file", className="section-label"),
            _upload_control(
                ids.DIV_UPLOAD_CONTROL,
                url=upload_url,
                max_bytes=max_upload_bytes,
                suffixes=ALLOWED_SUFFIXES,
                input_id=ids.INPUT_UPLOAD_FILE,
                store_id=ids.STORE_UPLOAD_EVENT,
                label="Open a model file",
                too_big_hint=MODEL_TOO_BIG_HINT,
            ),
            html.Div(
                "safetensors, PyTorch state_dict (.pt/.pth/.bin, loaded without unpickling "
                "code), torch.export (.pt2) or ONNX (.onnx, weights only).",
                className="hint",
            ),
            html.Div(id=ids.DIV_UPLOAD_STATUS),
            *_dataset_section(max_upload_bytes, dataset_upload_url),
            html.Label("Layers", className="section-label"),
            _layer_table(),
            html.Div(id=ids.DIV_LAYER_NOTES),
        ],
        className="sidebar",
    )


def _main() -> html.Main:
    return html.Main(
        [
            tours.bar(),
            html.Div(id=ids.DIV_ALERT_GLOBAL),
            html.Div(
                [
                    html.Div(id=ids.DIV_LAYER_HEADER, className="layer-header"),
                    html.Div(
                        [
                            html.Span("Matrix view", className="inline-label"),
                            dcc.RadioItems(
                                id=ids.RADIO_MATRIX_VIEW,
                                options=[],
                                inline=True,
                                className="radio-inline",
                            ),
                            dcc.Dropdown(
                                id=ids.DROPDOWN_MATRIX_VIEW,
                                options=[],
                                clearable=False,
                                className="matrix-view-dropdown",
                                style={"display": "none"},
                            ),
                        ],
                        id=ids.DIV_MATRIX_VIEW,
                        className="matrix-view",
                        style={"display": "none"},
                    ),
                    export_bar.layout(),
                ],
                className="main-head",
            ),
            dcc.Tabs(
                id=ids.TABS_VIEW_SELECT,
                value=ids.TAB_WEIGHTS,
                className="view-tabs",
                children=[
                    dcc.Tab(label=label, value=tab, children=view.layout())
                    for label, tab, view in TABS
                ],
            ),
        ],
        className="main",
    )


def build_layout(
    *,
    title: str,
    max_upload_bytes: int,
    upload_url: str,
    dataset_upload_url: str = "",
    device: str = "",
) -> html.Div:
    """The whole page (static: everything that changes is filled in by callbacks)."""
    return html.Div(
        [
            dcc.Location(id=ids.LOCATION_PAGE_URL, refresh=False),
            dcc.Store(id=ids.STORE_SELECTION_STATE, storage_type="memory"),
            dcc.Store(id=ids.STORE_MODEL_CURRENT, storage_type="memory"),
            dcc.Store(id=ids.STORE_UPLOAD_EVENT, storage_type="memory"),
            dcc.Store(id=ids.STORE_DATASET_UPLOAD_EVENT, storage_type="memory"),
            html.Header(
                [
                    html.H1(title, className="app-title"),
                    html.Span(
                        "weight spaces of trained networks through their singular values",
                        className="app-subtitle",
                    ),
                    html.Span(device, id=ids.TEXT_COMPUTE_DEVICE, className="app-device"),
                ],
                className="app-header",
            ),
            html.Div(
                [_sidebar(max_upload_bytes, upload_url, dataset_upload_url), _main()],
                className="app-body",
            ),
        ],
        className="app-root",
    )
