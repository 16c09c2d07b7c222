"""Component ids, one constant each, spelled "<type>-<subject>-<param>".

Callbacks, assets/upload.js and the browser tests refer to components only through these
names (the JS file repeats the three upload ids; keep them in step).
"""

from __future__ import annotations

# Page state
LOCATION_PAGE_URL = "location-page-url"
STORE_SELECTION_STATE = "store-selection-state"  # {"model", "layer", "view", "tab"}
STORE_MODEL_CURRENT = "store-model-current"  # model id whose layer table is shown
STORE_UPLOAD_EVENT = "store-upload-event"  # written by assets/upload.js after each upload

# Sidebar
DROPDOWN_MODEL_SELECT = "dropdown-model-select"
DIV_MODEL_DESCRIPTION = "div-model-description"
DIV_UPLOAD_CONTROL = "div-upload-control"  # upload.js puts the file input inside
INPUT_UPLOAD_FILE = "input-upload-file"  # the <input type="file"> created by upload.js
DIV_UPLOAD_STATUS = "div-upload-status"
TABLE_LAYER_LIST = "table-layer-list"
DIV_LAYER_NOTES = "div-layer-notes"

# Main area
DIV_ALERT_GLOBAL = "div-alert-global"
DIV_LAYER_HEADER = "div-layer-header"
RADIO_MATRIX_VIEW = "radio-matrix-view"
DIV_MATRIX_VIEW = "div-matrix-view"
TABS_VIEW_SELECT = "tabs-view-select"

# Weights view
DIV_WEIGHTS_ALERT = "div-weights-alert"
GRAPH_WEIGHTS_HEATMAP = "graph-weights-heatmap"
DIV_WEIGHTS_CAPTION = "div-weights-caption"
RADIO_WEIGHTS_RANGE = "radio-weights-range"  # colour limits: "max" or "p99"

# Spectrum view
DIV_SPECTRUM_ALERT = "div-spectrum-alert"
GRAPH_SPECTRUM_VALUES = "graph-spectrum-values"
DIV_SPECTRUM_STATS = "div-spectrum-stats"

# Singular-vector view
DIV_VECTORS_ALERT = "div-vectors-alert"
SLIDER_VECTORS_COUNT = "slider-vectors-count"
GRAPH_VECTORS_RIGHT = "graph-vectors-right"
GRAPH_VECTORS_LEFT = "graph-vectors-left"

# Tab values (also the `tab=` URL parameter)
TAB_WEIGHTS = "weights"
TAB_SPECTRUM = "spectrum"
TAB_VECTORS = "vectors"
TABS = (TAB_WEIGHTS, TAB_SPECTRUM, TAB_VECTORS)
