"""Spectral surgery for the page: the option and result records (numpy arrays, plain
numbers) that `app.services.surgery` computes and the views draw."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import svdcore as sc
from svdcore.surgery import Surgery

__all__ = [
    "DATA_SVD_SAMPLES",
    "DATA_SVD_VECTORS",
    "DEFAULT_TOP_K",
    "MAX_DEPTH_SPLITS",
    "MAX_SIMILARITY_SAMPLES",
    "MAX_TOP_K",
    "PRECISIONS",
    "SIMILARITY_BATCH",
    "SYNC_MAX_RANK",
    "DataSvd",
    "DepthData",
    "DepthOptions",
    "InputLayout",
    "SampleSet",
    "SimilarityData",
    "SimilarityOptions",
    "SplitChoice",
    "SurgeryData",
    "SurgeryOptions",
    "TopVectors",
    "computed_in_request",
    "resolve_precision",
    "resolve_rank",
]

MAX_SIMILARITY_SAMPLES = 1000
MAX_DEPTH_SPLITS = 8
# Splits with more components than this (the SVD of an r x r Jacobian block and three
# Jacobians of that size; r = 4096 takes minutes on a CPU) run as a background job.
SYNC_MAX_RANK = 1024
DEFAULT_TOP_K = 64  # components of a top-k surgery (randomized SVD of R) by default
MAX_TOP_K = 1024  # the most a top-k surgery computes (a larger one: the exact surgery)
PRECISIONS = ("float64", "float32")  # of a top-k surgery's Jacobian products
SIMILARITY_BATCH = 16  # samples per progress report / cancel check
DATA_SVD_SAMPLES = 1024  # rows of the data matrix X (the first samples of the dataset)
DATA_SVD_VECTORS = 12  # top right singular vectors of X kept


@dataclass(frozen=True)
class SurgeryOptions:
    """One spectral surgery: dataset sample index, split module and ``rank``: None for
    the exact surgery (every component), k for the top k components of a seeded
    randomized SVD of R plus the rest-of-spectrum term (``spectral_surgery(rank=k)``);
    ``precision`` of a top-k surgery's Jacobian products ("float32": a float32 copy of the
    network, 3-4x faster on a CPU for large CNNs, values to about 1e-7; the exact surgery
    is always float64)."""

    sample: int = 0
    split: str = ""
    rank: int | None = None
    precision: str = "float64"

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise sc.DataError(
                f"Unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}."
            )
        if self.precision == "float32" and self.rank is None:
            raise sc.DataError(
                "float32 Jacobian products are for a top-k surgery; the exact surgery (every "
                "component) is computed in float64."
            )
        if self.rank is not None and not 1 <= self.rank <= MAX_TOP_K:
            raise sc.DataError(
                f"The number of top components must be between 1 and {MAX_TOP_K:,}, got "
                f"{self.rank}."
            )


def resolve_rank(mode: str | None, k: int | None, r: int) -> int | None:
    """The components to compute at a split of r: None (all of them, the exact surgery)
    or k (the top k of a randomized SVD; None or out of range: DEFAULT_TOP_K, capped at
    MAX_TOP_K). ``mode`` "exact": None; "top": k (None when k >= r); "auto" (or None):
    None up to SYNC_MAX_RANK components, else k."""
    top = DEFAULT_TOP_K if k is None or k < 1 else min(int(k), MAX_TOP_K)
    if mode == "exact" or top >= r:
        return None
    if mode == "top" or r > SYNC_MAX_RANK:
        return top
    return None


def resolve_precision(rank: int | None, precision: str | None) -> str:
    """The precision of the Jacobian products for ``rank`` components (see
    ``resolve_rank``): "float32" when asked for a top-k surgery, else "float64" (the exact
    surgery, and anything that is not a known precision)."""
    return "float32" if rank is not None and precision == "float32" else "float64"


def computed_in_request(r: int) -> bool:
    """Whether a surgery at a split of r components is computed while the page waits
    (else a background job, with progress, computes it)."""
    return r <= SYNC_MAX_RANK


@dataclass(frozen=True)
class SimilarityOptions:
    """Fig. 5: cosine similarity of singular vector ``component`` (1 = top) at ``split``
    between the first ``samples`` samples of the dataset."""

    split: str = ""
    samples: int = 100
    component: int = 1

    def validate(self) -> None:
        if not 1 <= self.samples <= MAX_SIMILARITY_SAMPLES:
            raise sc.DataError(
                f"The number of samples must be between 1 and {MAX_SIMILARITY_SAMPLES:,}."
            )
        if self.component < 1:
            raise sc.DataError("The singular vector number starts at 1 (the top one).")


@dataclass(frozen=True)
class DepthOptions:
    """Fig. 6: surgery of one sample at each of ``splits`` (in network order)."""

    sample: int = 0
    splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputLayout:
    """How a network's inputs (or outputs) are drawn: "image" (channels x h x w, channels =
    1 without a channel axis), "curve" over ``axis_values`` (or the index), or "bars" (a
    few outputs, e.g. class scores)."""

    kind: str
    image_shape: tuple[int, int] | None = None
    channels: int = 1
    axis_values: np.ndarray | None = field(default=None, repr=False)
    axis_label: str = "input index"

    def image(self, flat: np.ndarray, *, reduce: str = "mean") -> np.ndarray:
        """One sample (any shape with h * w * channels values) as an (h, w) picture: the
        mean (or sum) over the channels when there are several."""
        h, w = self.image_shape
        stack = np.asarray(flat, dtype=np.float32).reshape(-1, h, w)
        return stack.sum(axis=0) if reduce == "sum" else stack.mean(axis=0)


@dataclass(frozen=True)
class SplitChoice:
    name: str
    kind: str  # module class name
    has_weights: bool


@dataclass(frozen=True)
class SampleSet:
    """The samples the view picks from: ``x`` (n, *input_shape) float32, ``labels`` (n,)
    class labels or None, ``classes`` class names or None, ``key`` the content key."""

    x: np.ndarray
    labels: np.ndarray | None
    classes: list[str] | None
    key: str
    name: str

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class SurgeryData:
    """One sample at one split (see svdcore.surgery.Surgery): M inputs, N outputs, r
    components computed. ``x`` (M,), ``y`` (N,), ``S``, ``coeffs`` (r,), ``V`` (M, r)
    float32 phi_k as columns, ``alpha`` (N, r), ``bias``, ``bypass``, ``remainder`` (N,),
    ``layer_bias`` name -> (N,). A top-k surgery also has ``rest`` (N,), the output of the
    components not computed, ``residuals`` (r,) each triplet's residual norm and
    ``components`` the number in the full decomposition. Invariant: alpha.sum(1) + rest +
    bypass + bias == y (rest = 0 for an exact surgery)."""

    options: SurgeryOptions
    input_shape: tuple[int, ...]
    layout: InputLayout
    label: int | None
    x: np.ndarray
    y: np.ndarray
    S: np.ndarray
    V: np.ndarray
    coeffs: np.ndarray
    alpha: np.ndarray
    bias: np.ndarray
    bypass: np.ndarray
    remainder: np.ndarray
    layer_bias: dict[str, np.ndarray]
    output_layout: InputLayout
    output_names: list[str] | None = None
    rest: np.ndarray | None = None
    residuals: np.ndarray | None = None
    components: int | None = None

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.y))

    @property
    def rank(self) -> int:
        """The number of components computed (k of a top-k surgery, else all of them)."""
        return int(self.alpha.shape[1])

    @property
    def exact(self) -> bool:
        """True when every component is here (no rest-of-spectrum term)."""
        return self.rest is None

    @property
    def total_components(self) -> int:
        """The number of components of the full decomposition, min(size of z_l, M)."""
        return self.rank if self.components is None else int(self.components)

    @property
    def rest_or_zero(self) -> np.ndarray:
        """``rest``, or zeros for an exact surgery."""
        return np.zeros_like(self.y) if self.rest is None else self.rest

    @property
    def reconstruction(self) -> np.ndarray:
        """alpha.sum(1) + rest + bypass + bias: equals ``y`` to round-off."""
        return self.alpha.sum(1) + self.rest_or_zero + self.bypass + self.bias

    def output_name(self, j: int) -> str:
        if self.output_names and 0 <= j < len(self.output_names):
            return f"{j} ({self.output_names[j]})"
        return str(j)

    def as_engine(self) -> Surgery:
        """The arrays as an svdcore Surgery (svdcore's own ``Surgery.from_arrays``) for its
        reductions (prune); U and L are not kept, so they are empty."""
        return Surgery.from_arrays(
            split=self.options.split,
            input_shape=self.input_shape,
            layer_bias=self.layer_bias,
            x=self.x,
            y=self.y,
            S=self.S,
            V=self.V,
            coeffs=self.coeffs,
            alpha=self.alpha,
            bias=self.bias,
            bypass=self.bypass,
            remainder=self.remainder,
            rest=self.rest,
            residuals=self.residuals,
            components=self.components,
        )


@dataclass(frozen=True)
class TopVectors:
    """The top contributing singular vectors of one output (see
    `SurgeryServices.surgery_top` for the two rankings): component indices ``k`` (0-based),
    their sigma, alpha[output, k], ``share`` (of the sum, or of the reduced sum), ``raw``
    (K, M) phi_k and ``contracted`` (K, *spatial) = sum over channels of phi_k * x (eq. 23)."""

    k: np.ndarray
    sigma: np.ndarray
    alpha: np.ndarray
    share: np.ndarray
    raw: np.ndarray
    contracted: np.ndarray


@dataclass(frozen=True)
class SimilarityData:
    """(n, n) cosine similarities, rows/columns in ``order`` (dataset indices, grouped by
    class when there are labels), ``labels`` of those samples or None."""

    options: SimilarityOptions
    matrix: np.ndarray
    order: np.ndarray
    labels: np.ndarray | None
    note: str = ""


@dataclass(frozen=True)
class DepthData:
    """Per split (network order): the spectrum S (r_l,) and the top singular vector phi_1
    (M,) raw and channel-contracted with the sample (eq. 23)."""

    options: DepthOptions
    splits: tuple[str, ...]
    spectra: list[np.ndarray]
    top: list[np.ndarray]
    contracted: list[np.ndarray]


@dataclass(frozen=True)
class DataSvd:
    """The SVD of the data matrix X (``samples`` x M: the first samples of the dataset,
    flattened, uncentred, as in SpecXAI Fig. 8): every singular value ``S`` (float64,
    descending) and the top right singular vectors ``vectors`` (K, M) float32, each signed
    so that its largest-magnitude entry is positive."""

    S: np.ndarray
    vectors: np.ndarray
    samples: int
    total: int
    name: str
