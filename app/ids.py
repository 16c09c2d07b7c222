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

# Descramble view: controls
RADIO_DESCRAMBLE_SOURCE = "radio-descramble-source"  # dataset | noise | limit | jacobian
INPUT_DESCRAMBLE_SAMPLES = "input-descramble-samples"  # N for noise / dataset
RADIO_DESCRAMBLE_STENCIL = "radio-descramble-stencil"  # fourier | finite
RADIO_DESCRAMBLE_METHOD = "radio-descramble-method"  # exact | iterative
RADIO_DESCRAMBLE_CRITERION = "radio-descramble-criterion"  # smoothness | mds | max_diagonal_norm
RADIO_DESCRAMBLE_POSITION = "radio-descramble-position"  # linear | activation | second
CHECKLIST_DESCRAMBLE_DET = "checklist-descramble-det"  # ["det"]: det(P) = +1
CHECKLIST_DESCRAMBLE_FFT = "checklist-descramble-fft"  # subset of ["symmetrize", "log"]
INPUT_DESCRAMBLE_STEPS = "input-descramble-steps"
INPUT_DESCRAMBLE_LR = "input-descramble-lr"
DIV_DESCRAMBLE_CHOICES = "div-descramble-choices"  # why some sources / positions are disabled
DIV_DESCRAMBLE_ITERATIVE = "div-descramble-iterative"  # steps, lr, run / cancel, progress
BUTTON_DESCRAMBLE_RUN = "button-descramble-run"
BUTTON_DESCRAMBLE_CANCEL = "button-descramble-cancel"
DIV_DESCRAMBLE_PROGRESS = "div-descramble-progress"  # visible while a job runs
PROGRESS_DESCRAMBLE_STEPS = "progress-descramble-steps"  # <progress value max>
TEXT_DESCRAMBLE_PROGRESS = "text-descramble-progress"
STORE_DESCRAMBLE_RUN = "store-descramble-run"  # {"nonce", ...}: one per Run click
STORE_DESCRAMBLE_DONE = "store-descramble-done"  # {"nonce", "key", "status", "message"}
# Descramble view: results
DIV_DESCRAMBLE_ALERT = "div-descramble-alert"
DIV_DESCRAMBLE_STATUS = "div-descramble-status"
DIV_DESCRAMBLE_STATS = "div-descramble-stats"
GRAPH_DESCRAMBLE_RAW = "graph-descramble-raw"  # W
GRAPH_DESCRAMBLE_DESCRAMBLED = "graph-descramble-descrambled"  # P W
GRAPH_DESCRAMBLE_FFT_RAW = "graph-descramble-fft-raw"
GRAPH_DESCRAMBLE_FFT_DESCRAMBLED = "graph-descramble-fft-descrambled"
GRAPH_DESCRAMBLE_P = "graph-descramble-p"
GRAPH_DESCRAMBLE_PHI = "graph-descramble-phi"
GRAPH_DESCRAMBLE_OVERLAY = "graph-descramble-overlay"  # left singular vectors vs basis
GRAPH_DESCRAMBLE_NEXT = "graph-descramble-next"  # W_{k+1} P^T (second-layer position)
GRAPH_DESCRAMBLE_HISTORY = "graph-descramble-history"  # objective per iterative step
DIV_DESCRAMBLE_NEXT = "div-descramble-next"
DIV_DESCRAMBLE_HISTORY = "div-descramble-history"

# Tab values (also the `tab=` URL parameter)
TAB_WEIGHTS = "weights"
TAB_SPECTRUM = "spectrum"
TAB_VECTORS = "vectors"
TAB_DESCRAMBLE = "descramble"
TABS = (TAB_WEIGHTS, TAB_SPECTRUM, TAB_VECTORS, TAB_DESCRAMBLE)
