"""Component ids, one constant each, spelled "<type>-<subject>-<param>".

Callbacks, assets/upload.js and the browser tests refer to components only through these
names (the upload controls hand their ids to assets/upload.js as data attributes). Numbers
that callbacks create (stat boxes) have ids `stat_id(view, key)`: "text-<view>-<key>".
The components of a background job (Run, Cancel, progress, status and the two stores of
app/views/jobs.py) have their ids in one `JobIds` per job: `JOB_DESCRAMBLE.run` is
"button-descramble-run".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobIds:
    """The component ids of one background job (see app/views/jobs.py)."""

    run: str  # the Run button
    cancel: str  # the Cancel button
    progress_div: str  # shown while the job runs
    progress: str  # the progress bar (value, max)
    text: str  # the progress text
    status: str  # where Cancel, a failure or a note is said
    run_store: str  # {"nonce", ...}: one per Run click
    done_store: str  # {"nonce", "key", "status", "message"}: the job's last result

    @classmethod
    def of(cls, subject: str) -> JobIds:
        """The ids of the job of `subject`, spelled "<type>-<subject>-<part>"."""
        return cls(
            run=f"button-{subject}-run",
            cancel=f"button-{subject}-cancel",
            progress_div=f"div-{subject}-progress",
            progress=f"progress-{subject}-steps",
            text=f"text-{subject}-progress",
            status=f"div-{subject}-status",
            run_store=f"store-{subject}-run",
            done_store=f"store-{subject}-done",
        )


# Page state
LOCATION_PAGE_URL = "location-page-url"
STORE_SELECTION_STATE = "store-selection-state"  # model, dataset, layer, view, tab, sample
STORE_MODEL_CURRENT = "store-model-current"  # model id whose layer table is shown
STORE_UPLOAD_EVENT = "store-upload-event"  # written by assets/upload.js after each upload
STORE_DATASET_UPLOAD_EVENT = "store-dataset-upload-event"  # the same, for dataset files

# Header
TEXT_COMPUTE_DEVICE = "text-compute-device"  # where svdcore computes: "CPU (2 threads)", a GPU

# Export bar (above the tabs): the visible tab's figures, arrays and a report
BUTTON_EXPORT_PNG = "button-export-png"  # every figure of the tab, drawn by plotly.js
BUTTON_EXPORT_SVG = "button-export-svg"
BUTTON_EXPORT_NPZ = "button-export-npz"  # the arrays behind the tab (.npz of .npy files)
BUTTON_EXPORT_CSV = "button-export-csv"  # the same as CSV files in a .zip
BUTTON_EXPORT_REPORT = "button-export-report"  # one HTML file for the layer
TEXT_EXPORT_STATUS = "text-export-status"
DOWNLOAD_EXPORT = "download-export-file"

# Sidebar
DROPDOWN_MODEL_SELECT = "dropdown-model-select"
DIV_MODEL_DESCRIPTION = "div-model-description"
DIV_UPLOAD_CONTROL = "div-upload-control"  # upload.js puts the file input inside
INPUT_UPLOAD_FILE = "input-upload-file"  # the <input type="file"> created by upload.js
DIV_UPLOAD_STATUS = "div-upload-status"
TABLE_LAYER_LIST = "table-layer-list"
DIV_LAYER_NOTES = "div-layer-notes"
# Sidebar: dataset
DROPDOWN_DATASET_SELECT = "dropdown-dataset-select"  # "zoo" | "upload-<id>"
DIV_DATASET_STATUS = "div-dataset-status"  # size and labels, or why it does not fit
DIV_DATASET_UPLOAD_CONTROL = "div-dataset-upload-control"
INPUT_DATASET_FILE = "input-dataset-file"  # the <input type="file"> created by upload.js
INPUT_DATASET_LABELS = "input-dataset-labels"  # label column (.csv) / array (.npz, .pt)
DIV_DATASET_UPLOAD_STATUS = "div-dataset-upload-status"

# Main area
DIV_ALERT_GLOBAL = "div-alert-global"
DIV_LAYER_HEADER = "div-layer-header"
RADIO_MATRIX_VIEW = "radio-matrix-view"
DIV_MATRIX_VIEW = "div-matrix-view"
DROPDOWN_MATRIX_VIEW = "dropdown-matrix-view"  # instead of the radio for many views (heads)
TABS_VIEW_SELECT = "tabs-view-select"

# Weights view
DIV_WEIGHTS_ALERT = "div-weights-alert"
GRAPH_WEIGHTS_HEATMAP = "graph-weights-heatmap"
DIV_WEIGHTS_CAPTION = "div-weights-caption"
RADIO_WEIGHTS_RANGE = "radio-weights-range"  # colour limits: "max" or "p99"
STORE_WEIGHTS_WINDOW = "store-weights-window"  # {"subject", "window"}: the zoomed region
STORE_WEIGHTS_ZOOM = "store-weights-zoom"  # the heatmap's relayout events that move an axis

# Spectrum view
DIV_SPECTRUM_ALERT = "div-spectrum-alert"
GRAPH_SPECTRUM_VALUES = "graph-spectrum-values"
DIV_SPECTRUM_STATS = "div-spectrum-stats"
# Spectrum view: the full spectrum of a large layer (a background job, started by itself)
DIV_SPECTRUM_FULL = "div-spectrum-full"  # shown while only the top values are known
TEXT_SPECTRUM_FULL_NOTE = "text-spectrum-full-note"
JOB_SPECTRUM = JobIds.of("spectrum")  # (re)start the full SVD
# Spectrum view: the ESD panel (power law, Hill, Marchenko-Pastur, shuffled copy, near-ties)
DIV_ESD = "div-esd-panel"
TEXT_ESD_NOTE = "text-esd-note"  # why the panel is not there yet (a large layer's job)
INPUT_ESD_XMIN = "input-esd-xmin"  # empty: xmin by the smallest KS distance
BUTTON_ESD_AUTO = "button-esd-auto"  # back to the KS choice
INPUT_ESD_HILL_K = "input-esd-hill-k"  # empty: ceil(sqrt(N))
GRAPH_ESD = "graph-esd-density"
DIV_ESD_STATS = "div-esd-stats"
DIV_ESD_ALERT = "div-esd-alert"
DIV_ESD_TIES = "div-esd-ties"  # the near-tie warning
# Spectrum view: the heads panel (an attention projection's block, from config.json)
DIV_HEADS_PANEL = "div-heads-panel"
TEXT_HEADS_NOTE = "text-heads-note"
DIV_HEADS_ALERT = "div-heads-alert"
GRAPH_HEADS = "graph-heads-circuits"
TABLE_HEADS = "table-heads-norms"

# Singular-vector view
DIV_VECTORS_ALERT = "div-vectors-alert"
SLIDER_VECTORS_COUNT = "slider-vectors-count"
GRAPH_VECTORS_RIGHT = "graph-vectors-right"
GRAPH_VECTORS_LEFT = "graph-vectors-left"
DROPDOWN_VECTORS_FIT_FAMILY = "dropdown-vectors-fit-family"  # "none" or a fit family
INPUT_VECTORS_FIT_ORDER = "input-vectors-fit-order"  # Chebyshev degree / trig terms
TEXT_VECTORS_FIT_ORDER_LABEL = "text-vectors-fit-order-label"  # "degree" | "terms"
INPUT_VECTORS_FIT_SPLIT = "input-vectors-fit-split"  # "64", "32, 64"; empty = auto
RADIO_VECTORS_FIT_SIDE = "radio-vectors-fit-side"  # right | left | both
DIV_VECTORS_FIT_HINT = "div-vectors-fit-hint"  # the split and abscissa actually used

# Descramble view: controls
RADIO_DESCRAMBLE_SOURCE = "radio-descramble-source"  # dataset | noise | limit | jacobian
INPUT_DESCRAMBLE_SAMPLES = "input-descramble-samples"  # N for noise / dataset
RADIO_DESCRAMBLE_STENCIL = "radio-descramble-stencil"  # fourier | finite
RADIO_DESCRAMBLE_METHOD = "radio-descramble-method"  # exact | iterative
RADIO_DESCRAMBLE_OPTIMIZER = "radio-descramble-optimizer"  # riemannian | adam | lbfgs
RADIO_DESCRAMBLE_CRITERION = "radio-descramble-criterion"  # smoothness | mds | max_diagonal_norm
RADIO_DESCRAMBLE_POSITION = "radio-descramble-position"  # linear | activation | second
CHECKLIST_DESCRAMBLE_DET = "checklist-descramble-det"  # ["det"]: det(P) = +1
CHECKLIST_DESCRAMBLE_FFT = "checklist-descramble-fft"  # subset of ["symmetrize", "log"]
INPUT_DESCRAMBLE_STEPS = "input-descramble-steps"
INPUT_DESCRAMBLE_LR = "input-descramble-lr"
DIV_DESCRAMBLE_CHOICES = "div-descramble-choices"  # why some sources / positions are disabled
DIV_DESCRAMBLE_ITERATIVE = "div-descramble-iterative"  # steps, lr, run / cancel, progress
JOB_DESCRAMBLE = JobIds.of("descramble")  # the iterative descrambler
# Descramble view: results
DIV_DESCRAMBLE_ALERT = "div-descramble-alert"
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

# Subspaces & residuals view
DIV_SUBSPACES_ALERT = "div-subspaces-alert"
INPUT_SUBSPACES_RTOL = "input-subspaces-rtol"  # empty = svdcore's default tolerance
RADIO_SUBSPACES_FOCUS = "radio-subspaces-focus"  # class | sample
DROPDOWN_SUBSPACES_CLASS = "dropdown-subspaces-class"
INPUT_SUBSPACES_SAMPLE = "input-subspaces-sample"
DIV_SUBSPACES_STATS = "div-subspaces-stats"
GRAPH_SUBSPACES_SPECTRUM = "graph-subspaces-spectrum"  # sigma_i and the rank cut
GRAPH_SUBSPACES_SIGNAL = "graph-subspaces-signal"  # sigma_i v_i gallery
DIV_SUBSPACES_NOTE = "div-subspaces-note"  # why there are no residuals for this layer
DIV_SUBSPACES_INPUTS = "div-subspaces-inputs"  # everything that needs the layer's inputs
DIV_SUBSPACES_SOURCE = "div-subspaces-source"
GRAPH_SUBSPACES_DECOMPOSITION = "graph-subspaces-decomposition"  # x, signal, residual
GRAPH_SUBSPACES_NEURONS = "graph-subspaces-neurons"  # x - p_j per neuron
DIV_SUBSPACES_CLASSES = "div-subspaces-classes"
GRAPH_SUBSPACES_CLASSES = "graph-subspaces-classes"  # residuals of the class averages
DIV_SUBSPACES_OWN = "div-subspaces-own"  # shown when the layer's outputs are the classes
GRAPH_SUBSPACES_OWN = "graph-subspaces-own"  # class average k - p_k (Pattichis Fig. 1)
TABLE_SUBSPACES_ENERGY = "table-subspaces-energy"

# Inversion view
DIV_INVERSION_ALERT = "div-inversion-alert"
DROPDOWN_INVERSION_TARGET = "dropdown-inversion-target"
RADIO_INVERSION_METHOD = "radio-inversion-method"  # pseudo-inverse | optimise
DIV_INVERSION_METHOD_NOTE = "div-inversion-method-note"  # why a method does not apply
RADIO_INVERSION_START = "radio-inversion-start"  # avg-img | min-img | avg-min-img
INPUT_INVERSION_STEPS = "input-inversion-steps"
INPUT_INVERSION_LR = "input-inversion-lr"
CHECKLIST_INVERSION_CLAMP = "checklist-inversion-clamp"  # ["clamp"]: keep the data range
DIV_INVERSION_OPTIMISE = "div-inversion-optimise"  # start, steps, lr, run / cancel
JOB_INVERSION = JobIds.of("inversion")  # the optimised inversion
DIV_INVERSION_STATS = "div-inversion-stats"
DIV_INVERSION_WARNINGS = "div-inversion-warnings"
GRAPH_INVERSION_INPUT = "graph-inversion-input"
GRAPH_INVERSION_OUTPUT = "graph-inversion-output"
DIV_INVERSION_HISTORY = "div-inversion-history"
GRAPH_INVERSION_HISTORY = "graph-inversion-history"

# Spectral surgery view: sample gallery and choices
STORE_SURGERY_PICK = "store-surgery-pick"  # {"sample", "at"}: a gallery pick, read by the router
STORE_SURGERY_PAGE = "store-surgery-page"  # gallery page shown
STORE_SURGERY_SPLIT_FOR = "store-surgery-split-for"  # {"model", "layer"} the split follows
DIV_SURGERY_GALLERY = "div-surgery-gallery"
BUTTON_SURGERY_PREV = "button-surgery-prev"
BUTTON_SURGERY_NEXT = "button-surgery-next"
TEXT_SURGERY_PAGE = "text-surgery-page"
INPUT_SURGERY_SAMPLE = "input-surgery-sample"  # type a sample index
DROPDOWN_SURGERY_SPLIT = "dropdown-surgery-split"  # module whose output splits the network
INPUT_SURGERY_OUTPUT = "input-surgery-output"  # empty: the predicted output (argmax)
INPUT_SURGERY_VECTORS = "input-surgery-vectors"  # how many top vectors to show
SLIDER_SURGERY_KEEP = "slider-surgery-keep"  # keep the top k components
RADIO_SURGERY_RANK = "radio-surgery-rank"  # top vectors by "alpha" or "reduced" (eq. 21)
RADIO_SURGERY_COMPONENTS = "radio-surgery-components"  # "auto", "exact" or "top" (top k)
INPUT_SURGERY_TOP_K = "input-surgery-top-k"  # k of a top-k surgery (randomized SVD of R)
RADIO_SURGERY_PRECISION = "radio-surgery-precision"  # top-k Jacobian products: float64 | float32
# Spectral surgery view: a split too large to compute in the request (background job)
DIV_SURGERY_COMPUTE = "div-surgery-compute"
TEXT_SURGERY_COMPUTE = "text-surgery-compute"
JOB_SURGERY_COMPUTE = JobIds.of("surgery-compute")  # a surgery too large for the request
# Spectral surgery view: results
DIV_SURGERY_ALERT = "div-surgery-alert"
DIV_SURGERY_SUMMARY = "div-surgery-summary"
TEXT_SURGERY_CHECK = "text-surgery-check"  # max |sum alpha + rest + bypass + b - y|
GRAPH_SURGERY_INPUT = "graph-surgery-input"
GRAPH_SURGERY_ALPHA = "graph-surgery-alpha"  # contributions, outputs x components
GRAPH_SURGERY_PROPORTIONS = "graph-surgery-proportions"  # sign-reduced (eq. 21-22)
GRAPH_SURGERY_SPECTRUM = "graph-surgery-spectrum"  # sigma_k vs |alpha_jk|
GRAPH_SURGERY_VECTORS = "graph-surgery-vectors"  # top phi_k, raw and contracted
GRAPH_SURGERY_DATA_SVD = "graph-surgery-data-svd"  # data matrix SVD beside the network's
GRAPH_SURGERY_BIAS = "graph-surgery-bias"  # waterfall: sum alpha, rest, bypass, beta_l, rem.
DIV_SURGERY_BIAS_NOTES = "div-surgery-bias-notes"
DIV_SURGERY_BIAS_IMAGES = "div-surgery-bias-images"  # shown for image-shaped outputs
GRAPH_SURGERY_BIAS_IMAGES = "graph-surgery-bias-images"
GRAPH_SURGERY_PRUNED = "graph-surgery-pruned"
TEXT_SURGERY_CHANGE = "text-surgery-change"  # relative change of the top-k output
TEXT_SURGERY_KEPT = "text-surgery-kept"
# Spectral surgery view: dataset-wide background jobs (similarity: Fig. 5; depth: Fig. 6)
INPUT_SURGERY_SIM_SAMPLES = "input-surgery-sim-samples"
INPUT_SURGERY_SIM_COMPONENT = "input-surgery-sim-component"
JOB_SURGERY_SIM = JobIds.of("surgery-sim")  # the similarity matrix
GRAPH_SURGERY_SIMILARITY = "graph-surgery-similarity"
JOB_SURGERY_DEPTH = JobIds.of("surgery-depth")  # surgery by depth
GRAPH_SURGERY_DEPTH = "graph-surgery-depth"

# Model overview view: the per-layer spectral table of the whole model
DIV_OVERVIEW_ALERT = "div-overview-alert"
DIV_OVERVIEW_SUMMARY = "div-overview-summary"
TABLE_OVERVIEW_LAYERS = "table-overview-layers"  # a click on a row opens that layer
RADIO_OVERVIEW_ROLE = "radio-overview-role"  # show only attention / MLP / ... rows
DROPDOWN_OVERVIEW_BASE = "dropdown-overview-base"  # a base model: each layer's change from it
BUTTON_OVERVIEW_CSV = "button-overview-csv"
DOWNLOAD_OVERVIEW_CSV = "download-overview-csv"
GRAPH_OVERVIEW_SPARKLINES = "graph-overview-sparklines"  # one small spectrum per layer
JOB_OVERVIEW = JobIds.of("overview")  # the rows of layers too large for the request
DIV_OVERVIEW_JOB = "div-overview-job"  # the job's panel: note, Run / Cancel, progress
TEXT_OVERVIEW_JOB_NOTE = "text-overview-job-note"
INTERVAL_OVERVIEW_REFRESH = "interval-overview-refresh"  # redraws the table while rows come in
# Compare view: every layer of model B against model A (a fine-tune and its base)
DIV_FINETUNE_PANEL = "div-finetune-panel"  # hidden until a model B is chosen
DIV_FINETUNE_SUMMARY = "div-finetune-summary"
DIV_FINETUNE_ALERT = "div-finetune-alert"
TABLE_FINETUNE_LAYERS = "table-finetune-layers"  # a click on a row compares that layer
BUTTON_FINETUNE_CSV = "button-finetune-csv"
DOWNLOAD_FINETUNE_CSV = "download-finetune-csv"
JOB_FINETUNE = JobIds.of("finetune")  # the rows of layers too large for the request
DIV_FINETUNE_JOB = "div-finetune-job"
TEXT_FINETUNE_JOB_NOTE = "text-finetune-job-note"
INTERVAL_FINETUNE_REFRESH = "interval-finetune-refresh"

# Compare view: one layer of this model against a layer of a second model
DIV_COMPARE_ALERT = "div-compare-alert"
DROPDOWN_COMPARE_MODEL = "dropdown-compare-model"  # the second model (URL `compare=`)
DROPDOWN_COMPARE_LAYER = "dropdown-compare-layer"  # its layer (URL `compare_layer=`)
SLIDER_COMPARE_K = "slider-compare-k"  # dimension of the compared singular subspaces
DIV_COMPARE_HINT = "div-compare-hint"  # what is compared, or why nothing can be
DIV_COMPARE_STATS = "div-compare-stats"
GRAPH_COMPARE_SPECTRA = "graph-compare-spectra"  # both spectra overlaid, and their ratio
GRAPH_COMPARE_OVERLAP = "graph-compare-overlap"  # |U_A^T U_B|, |V_A^T V_B|, principal angles
GRAPH_COMPARE_DIFF = "graph-compare-diff"  # W_B - W_A

# Guided tours (app/tours/*.json, app/views/tours.py): a bar above the views
STORE_TOUR_STATE = "store-tour-state"  # {"tour", "step", "focus"}; None: no tour shown
STORE_TOUR_REQUEST = "store-tour-request"  # {"state", "nonce"}: a step's page, read by the router
STORE_TOUR_PENDING = "store-tour-pending"  # class-picker values to set once their options arrive
STORE_TOUR_SCROLL = "store-tour-scroll"  # output of the clientside scroll to a step's focus
DIV_TOUR_BAR = "div-tour-bar"
DROPDOWN_TOUR_SELECT = "dropdown-tour-select"  # the tour's id; cleared when leaving
DIV_TOUR_STEP = "div-tour-step"  # the step card, hidden when no tour is shown
TEXT_TOUR_TITLE = "text-tour-title"  # the tour's title and paper
TEXT_TOUR_COUNTER = "text-tour-counter"  # "step i of n"
TEXT_TOUR_STEP_TITLE = "text-tour-step-title"
TEXT_TOUR_STEP_TEXT = "text-tour-step-text"
BUTTON_TOUR_PREV = "button-tour-prev"
BUTTON_TOUR_NEXT = "button-tour-next"  # "Finish" on the last step (leaves the tour)
BUTTON_TOUR_LEAVE = "button-tour-leave"

# Tab values (also the `tab=` URL parameter)
TAB_WEIGHTS = "weights"
TAB_SPECTRUM = "spectrum"
TAB_VECTORS = "vectors"
TAB_DESCRAMBLE = "descramble"
TAB_SUBSPACES = "subspaces"
TAB_INVERSION = "inversion"
TAB_SURGERY = "surgery"
TAB_OVERVIEW = "overview"
TAB_COMPARE = "compare"
TABS = (
    TAB_WEIGHTS,
    TAB_SPECTRUM,
    TAB_VECTORS,
    TAB_DESCRAMBLE,
    TAB_SUBSPACES,
    TAB_INVERSION,
    TAB_SURGERY,
    TAB_OVERVIEW,
    TAB_COMPARE,
)


def stat_id(view: str, key: str) -> str:
    """Id of a number box a callback creates: "text-<view>-<key>"."""
    return f"text-{view}-{key}"


def surgery_thumb_id(index: Any) -> dict[str, Any]:
    """Pattern-matching id of a sample thumbnail the surgery gallery creates (index: the
    sample, or dash.ALL in a callback)."""
    return {"type": "button-surgery-thumb", "index": index}
