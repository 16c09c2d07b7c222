"""Subspaces & residuals for the page (Pattichis & Pattichis): the four fundamental
subspaces of a layer, its signal vectors sigma_i v_i, and how it splits inputs into a
signal part and a residual (per layer and per neuron), with the energy removed per class.

`SubspacesService` is built once by `app.services.Services` with what it needs. Two cached results:
`subspaces_data` depends on the weights only (key: matrix content, view, rtol);
`projections` on the weights and the layer's inputs (key: matrix content, rtol, inputs
content, focus). The layer's inputs are the dataset itself for the network's first layer,
else the output of the module that runs just before the layer, captured with
`net.activations` and checked against the layer's own output (W h + b); when that is not
possible `NoLayerInputs` says why, in a sentence for the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import svdcore as sc
from app.services.base import DataAnalysis
from app.services.datasets import flat_inputs
from app.services.registry import OpenedModel

__all__ = [
    "MAX_NEURONS_SHOWN",
    "MAX_SIGNAL_VECTORS",
    "SUBSPACES_MAX_SIDE",
    "NoLayerInputs",
    "ProjectionData",
    "SubspacesData",
    "SubspacesOptions",
    "SubspacesService",
]

MAX_SIGNAL_VECTORS = 32  # gallery size; the dimensions count them all
MAX_NEURONS_SHOWN = 16  # per-neuron residual row
MAX_INPUT_SAMPLES = 20_000
SUBSPACES_MAX_SIDE = 4096  # full U (m x m) and V (n x n) in float64 above this get too big
FOCUSES = ("class", "sample")


class NoLayerInputs(sc.DataError):
    """The inputs of this layer cannot be obtained (explained, not an error of the user)."""


@dataclass(frozen=True)
class SubspacesOptions:
    """What the Subspaces view asks for. ``rtol`` None = svdcore's default tolerance;
    ``focus`` "class" (the average of class ``cls``, None = the first class) or "sample"
    (dataset sample number ``sample``)."""

    rtol: float | None = None
    focus: str = "class"
    cls: int | None = None
    sample: int = 0

    def validate(self) -> None:
        if self.rtol is not None and not (math.isfinite(self.rtol) and 0 <= self.rtol < 1):
            raise sc.DataError(
                "The rank tolerance must be a number in [0, 1) (a fraction of σ₁); leave it "
                "empty for the default."
            )
        if self.focus not in FOCUSES:
            raise sc.DataError(f"Unknown focus {self.focus!r}; choose class or sample.")
        if self.sample < 0:
            raise sc.DataError("The sample index must be 0 or more.")


@dataclass(frozen=True, eq=False)
class SubspacesData:
    """The weights' side: dimensions, condition number, signal vectors (numpy)."""

    shape: tuple[int, int]
    dims: dict[str, int]  # row, col, null, left_null
    rank: int
    cond: float
    rtol: float
    singular_values: np.ndarray  # (min(m, n),) float64
    signal_vectors: np.ndarray  # (k, n) float64: sigma_i v_i, k <= MAX_SIGNAL_VECTORS
    image_shape: tuple[int, int] | None  # draw vectors of length n as images of this shape
    info: Any  # sc.ViewInfo


@dataclass(frozen=True, eq=False)
class ProjectionData:
    """The inputs' side, for the focus input x and for every class average (numpy)."""

    source: str  # where the layer's inputs came from, for the page
    n_samples: int
    focus_label: str  # "average of class 3" / "sample 12 (class 4)"
    x: np.ndarray  # (n,)
    signal: np.ndarray  # (n,)
    residual: np.ndarray  # (n,)
    energy_ratio: float  # ||residual||^2 / ||x||^2
    mean_energy_ratio: float  # over all samples
    neurons: np.ndarray  # (k,) row indices shown
    neuron_residuals: np.ndarray  # (k, n): x - p_j
    neuron_ratios: np.ndarray  # (k,)
    neuron_total: int  # m
    class_names: list[str]
    class_labels: np.ndarray  # (K,)
    class_residuals: np.ndarray  # (K, n)
    class_table: list[dict[str, Any]]  # ClassProjections.as_table()
    classes_note: str  # why there is no class table, or ""
    # Pattichis Fig. 1, last row, when output j of the layer is class j: each class
    # average x_k against its own neuron, x_k - p_k (K, n), and the energy removed (K,)
    own_residuals: np.ndarray | None = None
    own_ratios: np.ndarray | None = None


def _np64(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float64).numpy())


def _image_shape(net: Any, layer: str, view: str, n: int) -> tuple[int, int] | None:
    """The image shape of vectors of length n in this view (kernels, 1-channel conv
    patches, or the network's input images for its first layer)."""
    info = net.view_info(layer, view=view)
    if info.col_image_shape is not None:
        return tuple(info.col_image_shape)
    layer_info = net.layer(layer)
    shape = layer_info.shape
    one_channel = layer_info.kind == "conv2d" and len(shape) == 4 and shape[1] == 1
    if one_channel and n == shape[2] * shape[3]:
        return int(shape[2]), int(shape[3])
    return None


class SubspacesService(DataAnalysis):
    """The subspace analyses of the page."""

    # ------------------------------------------------------------------ weights
    def key(self, model_id: str, layer: str, view: str, rtol: float | None,
                      session: str | None) -> str:  # fmt: skip
        return self._key(self.registry.open(model_id, session), layer, view, rtol)

    @staticmethod
    def _key(model: OpenedModel, layer: str, view: str, rtol: float | None) -> str:
        return sc.cache.make_key("subspaces", model.key(layer, view), view, rtol)

    def data(
        self, model_id: str, layer: str, view: str, rtol: float | None, session: str | None
    ) -> SubspacesData:
        """sc.subspaces and sc.signal_vectors of the layer's matrix in `view` (cached)."""
        SubspacesOptions(rtol=rtol).validate()
        model = self.registry.open(model_id, session)
        net = model.net
        W, _ = model.matrix(layer, view)
        m, n = W.shape
        if max(m, n) > SUBSPACES_MAX_SIDE:
            raise sc.DataError(
                f"This layer's matrix is {m}×{n}: its full null-space bases would need a "
                f"{max(m, n)}×{max(m, n)} SVD factor; the Subspaces view handles up to "
                f"{SUBSPACES_MAX_SIDE} per side (the Spectrum and Singular vectors tabs work "
                "on larger layers)."
            )

        def compute() -> SubspacesData:
            fs = sc.subspaces(W, rtol=rtol)
            k = min(fs.rank, MAX_SIGNAL_VECTORS)
            sv = sc.signal_vectors(W, k=k, rtol=rtol) if k else None
            vectors = _np64(sv.vectors) if sv is not None else np.zeros((0, n))
            return SubspacesData(
                shape=(int(m), int(n)),
                dims=fs.dims,
                rank=fs.rank,
                cond=float(fs.cond),
                rtol=float(fs.rtol),
                singular_values=_np64(fs.singular_values),
                signal_vectors=vectors,
                image_shape=_image_shape(net, layer, view, n),
                info=model.view_info(layer, view),
            )

        return self.caches.cache.get_or_compute(self._key(model, layer, view, rtol), compute)

    # ------------------------------------------------------------------ layer inputs
    def layer_inputs(
        self, model_id: str, layer: str, view: str, dataset: str | None, session: str | None
    ) -> tuple[torch.Tensor, Any, str, str]:
        """(H (N, n) float32 inputs of the layer, the opened dataset, where H came from,
        content key of H). Raises NoLayerInputs with the reason when they cannot be had."""
        net = self.registry.open(model_id, session).net
        info = net.layer(layer)
        if info.kind.startswith("conv") or len(info.shape) != 2:
            raise NoLayerInputs(
                f"{layer} is a {info.kind} layer: its matrix acts on small patches of its "
                "input, not on whole inputs, so there is no per-input signal / residual to "
                "show. Its signal space is above (the kernels view shows the signal kernels "
                "σᵢvᵢ, Pattichis Fig. 2); choose a fully connected layer for residuals."
            )
        if view not in ("default", *info.views[:1]):
            raise NoLayerInputs("Residuals are shown for the layer's default matrix view.")
        viewable = [li.name for li in net.layers if li.viewable]
        first = bool(viewable) and viewable[0] == layer
        if not net.executable and not first:
            raise NoLayerInputs(
                f"{layer} is not the network's first layer, and this model holds weights "
                "only, so the inputs it receives cannot be computed. Choose the first layer "
                f"({viewable[0] if viewable else '—'}), or open an executable model."
            )
        opened = self.datasets.open(model_id, dataset, session)
        n = int(info.matrix_shape[1])
        X = flat_inputs(opened.data)[:MAX_INPUT_SAMPLES]
        if not net.executable:
            if X.shape[1] != n:
                raise NoLayerInputs(
                    f"{layer} takes {n} values per input but the dataset's samples have "
                    f"{X.shape[1]}."
                )
            return X, opened, "the dataset's inputs", opened.key
        memo_key = sc.cache.make_key("layer-inputs", net.content_key(), layer, opened.key)

        def capture() -> tuple[np.ndarray, str]:
            prev = _module_before(net, layer, X[:1])
            if prev is None:
                if X.shape[1] != n:
                    raise NoLayerInputs(
                        f"{layer} runs first but takes {n} values while the dataset's samples "
                        f"have {X.shape[1]}."
                    )
                return X.numpy(), "the dataset's inputs"
            acts = net.activations(X, [prev, layer])
            H = acts[prev].reshape(X.shape[0], -1)
            if H.shape[1] != n:
                raise NoLayerInputs(
                    f"The module that runs before {layer} ({prev}) gives {H.shape[1]} values "
                    f"per sample, but {layer} takes {n}; its inputs cannot be read off."
                )
            W = net.matrix(layer, view=view).double()
            b = net.bias(layer)
            expected = H.double() @ W.T + (0 if b is None else b.double())
            got = acts[layer].reshape(X.shape[0], -1).double()
            scale = float(got.abs().max()) + 1.0
            if float((expected - got).abs().max()) > 1e-3 * scale:
                raise NoLayerInputs(
                    f"The input of {layer} is not the output of the module before it ({prev}): "
                    "a skip connection or a computation in forward() lies in between, so its "
                    "inputs cannot be read off."
                )
            return np.ascontiguousarray(H.numpy()), f"the outputs of {prev} on the dataset"

        H, how = self.caches.cache.get_or_compute(memo_key, capture)
        return torch.from_numpy(H), opened, how, memo_key

    # ------------------------------------------------------------------ projections
    def projections(
        self,
        model_id: str,
        layer: str,
        view: str,
        options: SubspacesOptions,
        dataset: str | None,
        session: str | None,
    ) -> ProjectionData:
        """Signal / residual of the focus input, per-neuron residuals, class averages and
        the energy table (cached by weights, inputs and options)."""
        options.validate()
        W, wkey = self.registry.open(model_id, session).matrix(layer, view)
        H, opened, how, hkey = self.layer_inputs(model_id, layer, view, dataset, session)
        ds = opened.data
        key = sc.cache.make_key("projections", wkey, view, hkey, options)

        def compute() -> ProjectionData:
            fs = sc.subspaces(W, rtol=options.rtol)
            labels = ds.y[: H.shape[0]] if ds.is_classification else None
            classes: Any = None
            names: list[str] = []
            class_labels = np.zeros(0, dtype=np.int64)
            class_residuals = np.zeros((0, H.shape[1]))
            table: list[dict[str, Any]] = []
            note = ""
            if labels is not None:
                classes = sc.class_projections(fs, H, labels, classes=ds.classes)
                names = list(classes.names)
                class_labels = classes.labels.numpy()
                class_residuals = _np64(classes.residual.reshape(len(names), -1))
                table = classes.as_table()
            else:
                kind = "no labels" if ds.y is None else "regression targets, not class labels"
                note = (
                    f"{ds.name} has {kind}: class averages and the energy table need integer "
                    "class labels."
                )
            focus = options.focus if classes is not None else "sample"
            if focus == "class":
                where = 0
                if options.cls is not None and options.cls in class_labels.tolist():
                    where = class_labels.tolist().index(options.cls)
                x = classes.means[where].reshape(-1)
                label = f"average of class {names[where]} ({int(classes.counts[where])} samples)"
            else:
                if options.sample >= H.shape[0]:
                    raise sc.DataError(
                        f"There is no sample {options.sample}: the dataset has {H.shape[0]} "
                        f"(0 to {H.shape[0] - 1})."
                    )
                x = H[options.sample].double()
                label = f"sample {options.sample}"
                if labels is not None:
                    y = int(labels[options.sample])
                    name = ds.classes[y] if ds.classes and y < len(ds.classes) else str(y)
                    label += f" (class {name})"
            own_residuals = own_ratios = None
            if classes is not None and int(class_labels.max()) < W.shape[0] == len(names):
                own = [
                    sc.neuron_projections(W, mean.reshape(-1), neurons=[int(label)])
                    for mean, label in zip(classes.means, class_labels, strict=True)
                ]
                own_residuals = np.stack([_np64(o.residual[0]) for o in own])
                own_ratios = np.array([float(o.energy_ratio[0]) for o in own])
            proj = sc.project(fs, x)
            chosen = _strongest_neurons(W, x, MAX_NEURONS_SHOWN)
            neurons = sc.neuron_projections(W, x, neurons=chosen.tolist())
            overall = sc.project(fs, H)
            return ProjectionData(
                source=how,
                n_samples=int(H.shape[0]),
                focus_label=label,
                x=_np64(x),
                signal=_np64(proj.signal),
                residual=_np64(proj.residual),
                energy_ratio=float(proj.energy_ratio),
                mean_energy_ratio=float(overall.energy_ratio.mean()),
                neurons=neurons.neurons.numpy(),
                neuron_residuals=_np64(neurons.residual),
                neuron_ratios=_np64(neurons.energy_ratio),
                neuron_total=int(W.shape[0]),
                class_names=names,
                class_labels=class_labels,
                class_residuals=class_residuals,
                class_table=table,
                classes_note=note,
                own_residuals=own_residuals,
                own_ratios=own_ratios,
            )

        return self.caches.cache.get_or_compute(key, compute)


def _strongest_neurons(W: torch.Tensor, x: torch.Tensor, k: int) -> np.ndarray:
    """Indices (ascending) of the k rows w_j that keep the most of x's energy,
    (w_j.x)^2 / ||w_j||^2; all rows when there are at most k."""
    m = W.shape[0]
    if m <= k:
        return np.arange(m)
    Wd = W.double()
    norms = (Wd * Wd).sum(dim=1).clamp_min(1e-300)
    kept = (Wd @ x.double()) ** 2 / norms
    return np.sort(torch.topk(kept, k).indices.numpy())


def _module_before(net: Any, layer: str, probe: torch.Tensor) -> str | None:
    """The leaf module that runs last before `layer` in a forward pass of `probe` (None
    when the layer runs first)."""
    module = net.module
    order: list[str] = []
    handles = [
        mod.register_forward_hook(lambda _m, _i, _o, name=name: order.append(name))
        for name, mod in module.named_modules()
        if name and not list(mod.children())
    ]
    try:
        net.forward(probe)
    finally:
        for handle in handles:
            handle.remove()
    if layer not in order:
        raise NoLayerInputs(f"{layer} does not run in the network's forward pass.")
    i = order.index(layer)
    return order[i - 1] if i > 0 else None
