"""Spectral surgery for the page (SpecXAI, svdcore.surgery): cache keys, computation, and
results as numpy arrays (the records are in `app.services.surgery_types`).

`SurgeryService` is built once by `app.services.Services` with what it needs.
One surgery (a sample, a split)
decomposes every output, so the output index is not part of its cache key: the sign
reduction, pruning and contraction for an output are cheap and run on the cached arrays
through svdcore's own functions. The dataset-wide analyses (similarity of singular vectors
across samples, SpecXAI Fig. 5; top singular vector and spectrum at each depth, Fig. 6)
run in background jobs and keep their results in `ResultCaches.shared_cache`.

Samples come from the dataset chosen in the sidebar (`DatasetServices.dataset`; None =
the example network's own test split). Keys: (network content, dataset content, options).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import svdcore as sc
from app.services.base import DataAnalysis
from app.services.datasets import DATASET_ZOO
from app.services.surgery_types import (
    DATA_SVD_SAMPLES,
    DATA_SVD_VECTORS,
    MAX_DEPTH_SPLITS,
    SIMILARITY_BATCH,
    DataSvd,
    DepthData,
    DepthOptions,
    InputLayout,
    SampleSet,
    SimilarityData,
    SimilarityOptions,
    SplitChoice,
    SurgeryData,
    SurgeryOptions,
    TopVectors,
    resolve_rank,
)
from svdcore.surgery import Pruned, Reduced, contract, prune, sign_reduce

__all__ = ["SurgeryService"]


def _make_key(kind: str, net: Any, samples: SampleSet, options: Any) -> str:
    """Cache key of a surgery analysis: (kind, network content, dataset content, options)."""
    return sc.cache.make_key(kind, net.content_key(), samples.key, options)


def _np64(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float64).numpy())


def _np32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


class SurgeryService(DataAnalysis):
    """The spectral-surgery analyses of the page."""

    # ------------------------------------------------------------------ choices
    def splits(self, model_id: str, session: str | None) -> list[SplitChoice]:
        """Every named module of an executable network, in order (raises the engine's
        ExecutionError, a sentence, for a weights-only model)."""
        net = self._surgery_network(model_id, session)
        return [
            SplitChoice(name, type(mod).__name__, any(True for _ in mod.parameters(False)))
            for name, mod in net.module.named_modules()
            if name
        ]

    def default_split(self, model_id: str, layer: str | None, session: str | None) -> str:
        """The sidebar's layer when it is a module, else the first module with weights."""
        choices = self.splits(model_id, session)
        names = [c.name for c in choices]
        if layer in names:
            return layer
        weighted = [c.name for c in choices if c.has_weights]
        if not names:
            raise sc.LayerError("This network has no named modules to split at.")
        return (weighted or names)[0]

    def depth_splits(self, model_id: str, session: str | None) -> tuple[str, ...]:
        """Modules with weights, at most MAX_DEPTH_SPLITS of them evenly spaced (the first
        and the last always among them)."""
        weighted = [c.name for c in self.splits(model_id, session) if c.has_weights]
        if len(weighted) <= MAX_DEPTH_SPLITS:
            return tuple(weighted)
        picks = np.linspace(0, len(weighted) - 1, MAX_DEPTH_SPLITS).round().astype(int)
        return tuple(weighted[i] for i in sorted(set(picks.tolist())))

    def layout(self, model_id: str, session: str | None) -> InputLayout:
        """Images for inputs with spatial axes (or a zoo image shape), curves otherwise."""
        net = self._surgery_network(model_id, session)
        shape = tuple(net.input_shape)
        if len(shape) >= 2:
            return InputLayout("image", (shape[-2], shape[-1]), math.prod(shape[:-2]))
        entry = self._zoo_entry(model_id, session)
        image_shape = getattr(entry, "image_shape", None)
        if image_shape and math.prod(image_shape) == shape[0]:
            return InputLayout("image", tuple(image_shape))
        axis = getattr(entry, "input_axis", None)
        if axis is not None and len(axis.values) == shape[0]:
            label = f"{axis.label} ({axis.unit})" if axis.unit else axis.label
            return InputLayout("curve", axis_values=np.asarray(axis.values), axis_label=label)
        return InputLayout("curve")

    def output_layout(self, model_id: str, session: str | None, n: int) -> InputLayout:
        """Outputs as images when they have the size of an image input (autoencoders), as a
        curve over the zoo's output axis, as "bars" (one per class) up to 64, else a curve."""
        net = self._surgery_network(model_id, session)
        layout = self.layout(model_id, session)
        if layout.kind == "image" and n == math.prod(net.input_shape):
            return layout
        axis = getattr(self._zoo_entry(model_id, session), "output_axis", None)
        if axis is not None and len(axis.values) == n:
            label = f"{axis.label} ({axis.unit})" if axis.unit else axis.label
            return InputLayout("curve", axis_values=np.asarray(axis.values), axis_label=label)
        return InputLayout("bars" if n <= 64 else "curve", axis_label="output index")

    def samples(self, model_id: str, session: str | None, dataset: str | None = None) -> SampleSet:
        """The chosen dataset (None: the example network's own test split) as arrays."""
        self._surgery_network(model_id, session)
        opened = self.datasets.open(model_id, dataset or DATASET_ZOO, session)
        data = opened.data
        labels = None
        if data.y is not None and data.y.dtype == torch.int64 and data.y.ndim == 1:
            labels = data.y.numpy()
        x = data.x.numpy()
        return SampleSet(x, labels, list(data.classes or []) or None, opened.key, data.name)

    # ------------------------------------------------------------------ keys
    def key(
        self, model_id: str, options: SurgeryOptions, session: str | None, dataset: str | None
    ) -> str:
        """Cache key of one surgery: (network content, dataset content, sample, split)."""
        return self._key("surgery", model_id, options, session, dataset)

    def similarity_key(
        self, model_id: str, options: SimilarityOptions, session: str | None, dataset: str | None
    ) -> str:
        return self._key("surgery-similarity", model_id, options, session, dataset)

    def depth_key(
        self, model_id: str, options: DepthOptions, session: str | None, dataset: str | None
    ) -> str:
        return self._key("surgery-depth", model_id, options, session, dataset)

    def _key(
        self, kind: str, model_id: str, options: Any, session: str | None, dataset: str | None
    ) -> str:
        net = self._surgery_network(model_id, session)
        return _make_key(kind, net, self.samples(model_id, session, dataset), options)

    # ------------------------------------------------------------------ one sample
    def run(
        self,
        model_id: str,
        options: SurgeryOptions,
        session: str | None,
        dataset: str | None = None,
        *,
        compute: bool = True,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> SurgeryData | None:
        """Spectral surgery of sample `options.sample` at `options.split` (exact, or the top
        `options.rank` components and the rest term), cached in the shared cache (a
        background job's result is seen by the server); compute=False: None unless cached.
        A top-k surgery reports `progress(done, total)` per block step of its randomized
        SVD; `should_stop()` True cancels it (ExecutionError, nothing kept)."""
        options.validate()
        net = self._surgery_network(model_id, session)  # the model and data, resolved once
        samples = self.samples(model_id, session, dataset)
        self._check_sample(options.sample, samples)
        key = _make_key("surgery", net, samples, options)
        if not compute:
            return self.caches.shared_cache.backend.get(key)

        def run() -> SurgeryData:
            res = sc.spectral_surgery(
                net,
                torch.from_numpy(samples.x[options.sample]),
                split=options.split,
                rank=options.rank,
                precision=options.precision,  # type: ignore[arg-type]
                progress=progress,
                should_stop=should_stop,
            )
            label = None if samples.labels is None else int(samples.labels[options.sample])
            return SurgeryData(
                options=options,
                input_shape=tuple(res.input_shape),
                layout=self.layout(model_id, session),
                label=label,
                x=_np32(res.x),
                y=_np64(res.y),
                S=_np64(res.S),
                V=_np32(res.V),
                coeffs=_np64(res.coeffs),
                alpha=_np64(res.alpha),
                bias=_np64(res.bias),
                bypass=_np64(res.bypass),
                remainder=_np64(res.remainder),
                layer_bias={k: _np64(v) for k, v in res.layer_bias.items()},
                output_layout=self.output_layout(model_id, session, res.y.shape[0]),
                output_names=samples.classes if samples.classes else None,
                rest=None if res.rest is None else _np64(res.rest),
                residuals=None if res.residuals is None else _np64(res.residuals),
                components=res.components,
            )

        return self.caches.shared_cache.get_or_compute(key, run)

    @staticmethod
    def auto_rank(r: int, *, need: int | None = None) -> int | None:
        """The components an analysis computes by default at a split of r components:
        all of them (None, the exact surgery) up to SYNC_MAX_RANK, else the top `need`
        (None: DEFAULT_TOP_K; a randomized SVD of R, never formed)."""
        return resolve_rank("auto", need, r)

    def rank(
        self, model_id: str, options: SurgeryOptions, session: str | None, dataset: str | None
    ) -> int:
        """r = min(size of the split's output, input size): the number of components, and
        the size of the Jacobian whose SVD the surgery takes (one hooked forward pass)."""
        return self.ranks(model_id, options.sample, (options.split,), session, dataset)[0]

    def ranks(
        self,
        model_id: str,
        sample: int,
        splits: tuple[str, ...],
        session: str | None,
        dataset: str | None,
    ) -> list[int]:
        """r at each of `splits` for one sample (one hooked forward pass)."""
        samples = self.samples(model_id, session, dataset)
        self._check_sample(sample, samples)
        net = self._surgery_network(model_id, session)
        x = torch.from_numpy(samples.x[sample : sample + 1])
        z = net.activations(x, list(splits))
        return [min(int(z[s][0].numel()), math.prod(net.input_shape)) for s in splits]

    @staticmethod
    def output(data: SurgeryData, output: Any) -> int:
        """The output index asked for, or the predicted one (argmax y) when none / invalid."""
        try:
            value = float(output)
        except (TypeError, ValueError):
            return data.predicted
        j = int(value) if value.is_integer() else -1
        return j if 0 <= j < data.y.shape[0] else data.predicted

    @staticmethod
    def reduce(data: SurgeryData, output: int) -> Reduced:
        """svdcore's sign reduction (eq. 21) and proportions (eq. 22) of alpha[output]."""
        return sign_reduce(data.alpha[output])

    @staticmethod
    def prune(data: SurgeryData, output: int, k: int) -> Pruned:
        """svdcore's prune: keep the k components with the largest |alpha[output, k]|."""
        return prune(data.as_engine(), int(k), output=int(output))

    def top(self, data: SurgeryData, output: int, count: int, *, rank: str = "alpha") -> TopVectors:
        """The `count` top contributing singular vectors of `output`, raw and contracted
        with the input. rank="alpha": largest alpha[output, k] in the direction of the sum
        over k (share = alpha / that sum); "reduced": the leads of the sign-reduced terms
        (eq. 21, Fig. 2), largest first (share = the term's proportion, eq. 22)."""
        count = max(1, int(count))
        row = data.alpha[output]
        if rank == "reduced":
            reduced = self.reduce(data, output)
            ks = np.asarray(reduced.lead[:count], dtype=int)
            share = reduced.proportions[: len(ks)]
        else:
            total = float(row.sum())
            ks = np.argsort(-row * (1.0 if total >= 0 else -1.0), kind="stable")[:count]
            share = row[ks] / total if total else np.zeros(len(ks))
        contracted = contract(data.V[:, ks], data.x, input_shape=data.input_shape)
        return TopVectors(
            k=ks,
            sigma=data.S[ks],
            alpha=row[ks],
            share=share,
            raw=np.ascontiguousarray(data.V[:, ks].T),
            contracted=np.asarray(contracted, dtype=np.float32),
        )

    # ------------------------------------------------------------------ dataset-wide
    def data_svd(
        self,
        model_id: str,
        session: str | None,
        dataset: str | None = None,
        *,
        samples: int = DATA_SVD_SAMPLES,
    ) -> DataSvd:
        """SpecXAI Fig. 8: the SVD (svdcore.svd, float64) of the data matrix X whose rows
        are the first `samples` inputs of the chosen dataset, flattened and uncentred.
        Cached by the dataset's content key (not the network's: any network reading the
        same data shares it)."""
        data = self.samples(model_id, session, dataset)
        n = max(1, min(int(samples), len(data)))
        key = sc.cache.make_key("surgery-data-svd", data.key, n, DATA_SVD_VECTORS)

        def run() -> DataSvd:
            X = torch.from_numpy(data.x[:n].reshape(n, -1).astype(np.float64))
            # X^T = V S U^T: the tall factorisation is several times faster on a CPU
            res = sc.svd(X.T, precision="float64")
            top, _ = sc.canonical_signs(_np64(res.U[:, :DATA_SVD_VECTORS]))
            vectors = np.ascontiguousarray(top.T, dtype=np.float32)
            return DataSvd(_np64(res.S), vectors, n, len(data), data.name)

        return self.caches.cache.get_or_compute(key, run)

    def similarity(
        self,
        model_id: str,
        options: SimilarityOptions,
        session: str | None,
        dataset: str | None = None,
        *,
        compute: bool = True,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> SimilarityData | None:
        """Fig. 5 (cached in the shared cache); compute=False: None unless cached. A
        cancelled run returns None and keeps nothing."""
        options.validate()
        key = self.similarity_key(model_id, options, session, dataset)
        if not compute:
            return self.caches.shared_cache.backend.get(key)
        samples = self.samples(model_id, session, dataset)
        n = min(options.samples, len(samples))
        note = ""
        if n < options.samples:
            note = f"The dataset has {len(samples):,} samples; all of them are used."
        order = np.arange(n)
        labels = None
        if samples.labels is not None:
            order = np.argsort(samples.labels[:n], kind="stable")
            labels = samples.labels[:n][order]
        stopped = {"flag": False}

        def stop() -> bool:
            stopped["flag"] = bool(should_stop is not None and should_stop())
            return stopped["flag"]

        def run() -> SimilarityData:
            net = self._surgery_network(model_id, session)
            (r,) = self.ranks(model_id, 0, (options.split,), session, dataset)
            matrix = sc.singular_vector_similarity(
                net,
                torch.from_numpy(samples.x[order]),
                split=options.split,
                k=options.component - 1,
                rank=self.auto_rank(r, need=options.component),
                batch_size=SIMILARITY_BATCH,
                progress=progress,
                should_stop=stop,
            )
            return SimilarityData(options, matrix.astype(np.float32), order, labels, note)

        try:
            return self.caches.shared_cache.get_or_compute(key, run)
        except sc.ExecutionError:
            if stopped["flag"]:
                return None
            raise

    def depth(
        self,
        model_id: str,
        options: DepthOptions,
        session: str | None,
        dataset: str | None = None,
        *,
        compute: bool = True,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> DepthData | None:
        """Fig. 6 (cached in the shared cache); compute=False: None unless cached. A
        cancelled run returns None and keeps nothing."""
        if not options.splits:
            raise sc.DataError("This network has no layer with weights to follow in depth.")
        key = self.depth_key(model_id, options, session, dataset)
        if not compute:
            return self.caches.shared_cache.backend.get(key)
        samples = self.samples(model_id, session, dataset)
        self._check_sample(options.sample, samples)
        x = torch.from_numpy(samples.x[options.sample])
        net = self._surgery_network(model_id, session)
        ranks = self.ranks(model_id, options.sample, options.splits, session, dataset)
        spectra, top, contracted = [], [], []
        total = len(options.splits)
        for i, split in enumerate(options.splits):
            if should_stop is not None and should_stop():
                return None
            (res,) = sc.depth_evolution(net, x, splits=[split], rank=self.auto_rank(ranks[i]))
            spectra.append(_np64(res.S))
            top.append(_np32(res.V[:, 0]))
            c = contract(res.V[:, :1], res.x, input_shape=res.input_shape)[0]
            contracted.append(np.asarray(c, dtype=np.float32))
            if progress is not None:
                progress(i + 1, total)
        data = DepthData(options, options.splits, spectra, top, contracted)
        self.caches.shared_cache.backend.set(key, data)
        return data

    # ------------------------------------------------------------------ helpers
    def _surgery_network(self, model_id: str, session: str | None) -> Any:
        net = self.registry.open(model_id, session).net
        if net.module is None:
            raise sc.ExecutionError(
                f"{net.name} holds weights only; spectral surgery needs a network that runs "
                "(a zoo network, a torch.export .pt2, or a Linear chain with an activation)."
            )
        if net.input_shape is None:
            raise sc.ExecutionError(
                f"{net.name} has no known input shape, so no sample can be fed to it."
            )
        return net

    def _zoo_entry(self, model_id: str, session: str | None) -> Any:
        if self.registry.open(model_id, session).entry.kind != "zoo":
            return None
        try:
            return sc.zoo.get(model_id)
        except sc.SvdscopeError:
            return None

    @staticmethod
    def _check_sample(sample: int, samples: SampleSet) -> None:
        if not 0 <= int(sample) < len(samples):
            raise sc.DataError(
                f"There is no sample {sample}: the dataset has {len(samples):,} "
                f"(0 to {len(samples) - 1:,})."
            )
