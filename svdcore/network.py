"""Network: named layers, their matrix views, and (when executable) forward passes.

A Network wraps a tensor source (weights) and, optionally, a ``torch.nn.Module`` that can run.
Every tensor of rank >= 2 is listed as a layer; nothing is dropped silently: a tensor that
cannot be viewed as a real matrix is listed with the reason.

Layer names: a key ``fc1.weight`` is named by its module, ``fc1`` (forward hooks find it).

Matrix views (``Network.matrix(name, view=...)``):
- ``linear``/``embedding``/2-D tensors: ``default`` = the stored (out, in) matrix.
- ``conv1d/2d/3d`` weights (out, in, *k): ``unfolded`` = (out, in * prod(k)) (the ``default``),
  the matrix the convolution applies to each im2col patch; ``kernels`` = (out * in, prod(k)),
  one row per kernel (Pattichis & Pattichis).
- other tensors of rank >= 3: ``default`` = (shape[0], prod(shape[1:])).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

from ._layer_kinds import heuristic_kind, layer_name, matrix_shape, not_viewable_reason, views
from .cache import make_key, tensor_key
from .dequant import FP8_DTYPES, dequantize, scale_key
from .exceptions import DataError, ExecutionError, LayerError
from .sources import DictSource, TensorSource

__all__ = ["Axis", "DerivedView", "LayerInfo", "Network", "ViewInfo"]

_CONV_TYPES: dict[type, str] = {
    nn.Conv1d: "conv1d",
    nn.Conv2d: "conv2d",
    nn.Conv3d: "conv3d",
    nn.ConvTranspose1d: "conv_transpose1d",
    nn.ConvTranspose2d: "conv_transpose2d",
    nn.ConvTranspose3d: "conv_transpose3d",
}


class Axis(NamedTuple):
    """A physical axis for one dimension of a matrix (e.g. time in µs, distance in nm)."""

    label: str
    unit: str
    values: np.ndarray


@dataclass(frozen=True)
class LayerInfo:
    """One weight tensor of rank >= 2.

    ``matrix_shape`` is the shape of the default matrix view, or None when the tensor cannot
    be viewed as a real matrix; ``note`` then says why. ``views`` lists the matrix views.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    matrix_shape: tuple[int, int] | None
    views: tuple[str, ...]
    dtype: str
    key: str
    bias: str | None = None
    note: str | None = None
    scale: str | None = None  # the key of an fp8 weight's scale, applied by Network.matrix

    @property
    def viewable(self) -> bool:
        return self.matrix_shape is not None


@dataclass(frozen=True)
class ViewInfo:
    """How to label and draw one matrix view: rows are outputs, columns are inputs.

    ``col_image_shape``: a right singular vector (length = columns) drawn as an image of this
    shape; None -> drawn as a curve over ``col_axis`` (or the index). Same for rows.
    """

    shape: tuple[int, int]
    row_label: str
    col_label: str
    row_axis: Axis | None = None
    col_axis: Axis | None = None
    row_image_shape: tuple[int, int] | None = None
    col_image_shape: tuple[int, int] | None = None


class DerivedView(Protocol):
    """A view computed from a layer's default matrix (:class:`svdcore.attention.HeadSlice`)."""

    def __call__(self, matrix: torch.Tensor) -> torch.Tensor: ...

    def view_info(self) -> ViewInfo: ...


class Network:
    """Named weight tensors, matrix views and, when a module is attached, forward passes."""

    def __init__(
        self,
        source: TensorSource,
        *,
        name: str,
        origin: str = "",
        module: nn.Module | None = None,
        kinds: Mapping[str, str] | None = None,
        input_shape: Sequence[int] | None = None,
        image_shape: tuple[int, int] | None = None,
        input_axis: Axis | None = None,
        output_axis: Axis | None = None,
        description: str = "",
    ):
        self.name = name
        self.origin = origin
        self.description = description
        self._source = source
        self._module = module.eval() if module is not None else None
        # Exported programs traced with a fixed batch size run in chunks of that size.
        self.static_batch: int | None = None
        # Forward hooks live on the shared module: one hooked pass at a time per network.
        self.hook_lock = threading.RLock()
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape else None
        self.image_shape = image_shape
        self.input_axis = input_axis
        self.output_axis = output_axis
        self._layers = self._build_layers(dict(kinds or {}))
        self._by_name = {layer.name: layer for layer in self._layers}
        self._derived: dict[str, dict[str, DerivedView]] = {}  # layer -> view -> how
        # content keys, computed once per Network (hashing a huge checkpoint reads it all)
        self._key_lock = threading.Lock()
        self._content_key: str | None = None
        self._matrix_keys: dict[tuple[str, str], str] = {}

    # ----------------------------------------------------------------- construction
    def _build_layers(self, kinds: dict[str, str]) -> list[LayerInfo]:
        keys = self._source.keys()
        key_set = set(keys)
        taken: set[str] = set()
        layers = []
        scales = {  # fp8 weight -> its stored scale (svdcore/dequant.py)
            key: scale_key(key, key_set)
            for key in keys
            if self._source.meta(key).dtype in FP8_DTYPES
        }
        scale_of = {scale: key for key, scale in scales.items() if scale is not None}
        for key in keys:
            meta = self._source.meta(key)
            if len(meta.shape) < 2:
                continue
            name = layer_name(key, taken)
            taken.add(name)
            kind = kinds.get(key) or heuristic_kind(key, meta.shape)
            reason = not_viewable_reason(meta.shape, meta.dtype)
            note, scale = reason, scales.get(key)
            if key in scale_of:
                kind, reason = "scale", f"the fp8 scales of {scale_of[key]}, applied to it"
                note = reason
            elif key in scales and scale is None and reason is None:
                note = (
                    f"{meta.dtype} stored without a scale ({key}_scale_inv or {key}_scale): "
                    "these are its raw values, not the model's weights"
                )
            bias_key = f"{name}.bias" if key.endswith(".weight") else None
            layers.append(
                LayerInfo(
                    name=name,
                    kind=kind,
                    shape=meta.shape,
                    matrix_shape=None if reason else matrix_shape(kind, meta.shape),
                    views=() if reason else views(kind),
                    dtype=meta.dtype,
                    key=key,
                    bias=bias_key if bias_key in key_set else None,
                    note=note,
                    scale=scale,
                )
            )
        return layers

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        *,
        input_shape: Sequence[int] | None,
        name: str | None = None,
        image_shape: tuple[int, int] | None = None,
        input_axis: Axis | None = None,
        output_axis: Axis | None = None,
        description: str = "",
        origin: str = "",
    ) -> Network:
        """Wrap an in-process module; ``input_shape`` is one sample's shape (no batch dim;
        None when unknown: inputs are then passed through unchecked).

        Layers are the module's parameters and buffers of rank >= 2, kinds from module types.
        """
        if not isinstance(module, nn.Module):
            raise DataError(f"from_module needs a torch.nn.Module, got {type(module).__name__}.")
        kinds: dict[str, str] = {}
        for mod_name, mod in module.named_modules():
            prefix = f"{mod_name}." if mod_name else ""
            kind = _CONV_TYPES.get(type(mod))
            if kind is None and isinstance(mod, nn.Linear):
                kind = "linear"
            elif kind is None and isinstance(mod, nn.Embedding | nn.EmbeddingBag):
                kind = "embedding"
            if kind:
                kinds[f"{prefix}weight"] = kind
        tensors = dict(module.state_dict(keep_vars=False))
        return cls(
            DictSource(tensors),
            name=name or type(module).__name__,
            origin=origin or f"module:{type(module).__name__}",
            module=module,
            kinds=kinds,
            input_shape=input_shape,
            image_shape=image_shape,
            input_axis=input_axis,
            output_axis=output_axis,
            description=description,
        )

    # ----------------------------------------------------------------- layers
    @property
    def layers(self) -> list[LayerInfo]:
        """Every tensor of rank >= 2, in storage order."""
        return list(self._layers)

    @property
    def source(self) -> TensorSource:  # keys, shapes and dtypes, lazy loads
        return self._source

    @property
    def executable(self) -> bool:
        """True when a forward pass (and activation capture) is possible."""
        return self._module is not None

    @property
    def module(self) -> nn.Module | None:
        return self._module

    def layer(self, name: str) -> LayerInfo:
        """The :class:`LayerInfo` called ``name``; ``LayerError`` naming close matches if absent."""
        try:
            return self._by_name[name]
        except KeyError:
            close = [n for n in self._by_name if name.lower() in n.lower()][:5]
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise LayerError(
                f"{self.name} has no layer named {name!r} ({len(self._layers)} layers).{hint}"
            ) from None

    def tensor(self, name: str) -> torch.Tensor:
        """The raw stored tensor of layer ``name`` (original dtype and shape)."""
        return self._source.load(self.layer(name).key)

    def bias(self, name: str) -> torch.Tensor | None:
        """The bias vector belonging to layer ``name`` (float32), if stored."""
        info = self.layer(name)
        return None if info.bias is None else self._source.load(info.bias).float()

    def add_views(self, name: str, views: Mapping[str, DerivedView]) -> None:
        """Add derived matrix views to viewable layer ``name`` (after its own views)."""
        info = self.layer(name)
        if not info.viewable:
            raise LayerError(f"layer {name!r} cannot be viewed as a matrix: {info.note}.")
        known = self._derived.setdefault(name, {})
        known.update(views)
        new = tuple(v for v in views if v not in info.views)
        info = dataclasses.replace(info, views=info.views + new)
        self._by_name[name] = info
        self._layers = [info if layer.name == name else layer for layer in self._layers]

    def matrix(
        self, name: str, *, view: str = "default", dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Layer ``name`` as a 2-D CPU tensor (float32 unless ``dtype``); see module docstring."""
        info = self.layer(name)
        derived = self._derived.get(name, {}).get(view)
        if derived is not None:
            return derived(self.matrix(name, dtype=dtype)).contiguous()
        if not info.viewable:
            raise LayerError(f"layer {name!r} cannot be viewed as a matrix: {info.note}.")
        view = self._resolve_view(info, view)
        W = self._source.load(info.key)
        if info.scale is not None:  # an fp8 weight: its stored values times its scale
            W = dequantize(W, self._source.load(info.scale), dtype=dtype)
        W = W.to(dtype=dtype, device="cpu")
        if view == "kernels":
            return W.reshape(info.shape[0] * info.shape[1], -1)
        if info.kind.startswith("conv_transpose"):
            W = W.transpose(0, 1)
        return W.reshape(W.shape[0], -1)

    # ----------------------------------------------------------------- content keys
    def matrix_key(
        self, name: str, *, view: str = "default", matrix: torch.Tensor | None = None
    ) -> str:
        """Content key of ``matrix(name, view=view)`` (:func:`svdcore.cache.tensor_key`).

        Hashed the first time only (from ``matrix`` when the caller has just read it) and
        memoised on this Network. Invariant: equal to ``tensor_key(self.matrix(name, view=view))``.
        """
        memo = (name, view)
        with self._key_lock:
            key = self._matrix_keys.get(memo)
        if key is None:
            key = tensor_key(self.matrix(name, view=view) if matrix is None else matrix)
            with self._key_lock:
                key = self._matrix_keys.setdefault(memo, key)
        return key

    def content_key(self) -> str:
        """Content key of everything a forward pass depends on (all tensors and structure).

        An executable network: the module's ``repr`` and the content of every state_dict
        tensor; a weights-only one: the content of every viewable layer's default matrix.
        Keyed by tensor *content* (reopening a file gives the same key, any change another);
        computed once per Network, one tensor in memory at a time, and memoised.
        """
        with self._key_lock:
            if self._content_key is not None:
                return self._content_key
        if self._module is not None:
            parts: list[object] = [repr(self._module)]
            parts += [(n, tensor_key(t)) for n, t in self._module.state_dict().items()]
        else:
            parts = ["weights-only"]
            parts += [(i.name, self.matrix_key(i.name)) for i in self._layers if i.viewable]
        key = make_key("network", *parts)
        with self._key_lock:
            self._content_key = key
        return key

    def _resolve_view(self, info: LayerInfo, view: str) -> str:
        if view == "default":
            return info.views[0]
        if view not in info.views:
            raise LayerError(
                f"layer {info.name!r} ({info.kind}) has no matrix view {view!r}; "
                f"available: {', '.join(info.views)}."
            )
        return view

    def view_info(self, name: str, *, view: str = "default") -> ViewInfo:
        """Labels, physical axes and image shapes for drawing ``matrix(name, view=view)``."""
        info = self.layer(name)
        if not info.viewable:
            raise LayerError(f"layer {name!r} cannot be viewed as a matrix: {info.note}.")
        derived = self._derived.get(name, {}).get(view)
        if derived is not None:
            return derived.view_info()
        view = self._resolve_view(info, view)
        if view == "kernels":
            k = info.shape[2:]
            m, n = info.shape[0] * info.shape[1], math.prod(k)
            return ViewInfo(
                shape=(m, n),
                row_label="kernel (out, in) pair",
                col_label="kernel tap",
                col_image_shape=(int(k[0]), int(k[1])) if len(k) == 2 else None,
            )
        m, n = matrix_shape(info.kind, info.shape)
        col_label = "input" if len(info.shape) == 2 else "input channel x kernel tap"
        viewable = [layer for layer in self._layers if layer.viewable]
        first = viewable[0].name == name if viewable else False
        last = viewable[-1].name == name if viewable else False
        col_axis = self.input_axis if first and self._axis_fits(self.input_axis, n) else None
        row_axis = self.output_axis if last and self._axis_fits(self.output_axis, m) else None
        col_image = None
        if first and self.image_shape and math.prod(self.image_shape) == n:
            col_image = self.image_shape
        return ViewInfo(
            shape=(m, n),
            row_label="output",
            col_label=col_axis.label if col_axis else col_label,
            row_axis=row_axis,
            col_axis=col_axis,
            col_image_shape=col_image,
        )

    @staticmethod
    def _axis_fits(axis: Axis | None, n: int) -> bool:
        return axis is not None and len(axis.values) == n

    # ----------------------------------------------------------------- execution
    def module_copy(self) -> nn.Module:
        """A private deep copy of the module (for a float64 or functorch pass), with no
        forward hooks: taken under ``hook_lock``, so another thread's hooked pass
        (``activations``) is not copied along and fed this copy's tensors."""
        module = self._require_module()
        with self.hook_lock:
            clone = copy.deepcopy(module)
        for sub in clone.modules():
            sub._forward_hooks.clear()
        return clone

    def _require_module(self) -> nn.Module:
        if self._module is None:
            raise ExecutionError(
                f"{self.name} holds weights only and cannot run a forward pass; open an "
                "executable format (torch.export .pt2, a zoo network) or make a Linear chain "
                "executable by choosing an activation."
            )
        return self._module

    def _batch(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise DataError(f"inputs must be a tensor or numpy array, got {type(x).__name__}.")
        x = x.float()
        if self.input_shape is not None:
            per_sample = math.prod(self.input_shape)
            if tuple(x.shape) == self.input_shape:
                x = x.unsqueeze(0)
            elif x.ndim >= 1 and math.prod(x.shape[1:]) == per_sample:
                x = x.reshape(x.shape[0], *self.input_shape)
            else:
                raise DataError(
                    f"inputs of shape {tuple(x.shape)} do not fit {self.name}, whose input "
                    f"shape is {self.input_shape} per sample (batch first)."
                )
        if not bool(torch.isfinite(x).all()):
            raise DataError("inputs contain NaN or infinite values.")
        return x

    def forward(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Run the network on a batch ``x`` of shape (N, *input_shape) (or one sample)."""
        module = self._require_module()
        xb = self._batch(x)
        try:
            with torch.no_grad():
                if not self.static_batch or xb.shape[0] == self.static_batch:
                    return module(xb)
                return torch.cat([module(chunk) for chunk in self._chunks(xb)])[: xb.shape[0]]
        except Exception as exc:
            raise ExecutionError(f"{self.name} failed on inputs {tuple(xb.shape)}: {exc}") from exc

    def _chunks(self, xb: torch.Tensor) -> list[torch.Tensor]:
        """Split a batch into chunks of ``static_batch`` rows, zero-padding the last one."""
        b = int(self.static_batch or xb.shape[0])
        chunks = list(torch.split(xb, b))
        if chunks[-1].shape[0] < b:
            pad = b - chunks[-1].shape[0]
            filler = torch.zeros(pad, *xb.shape[1:], dtype=xb.dtype)
            chunks[-1] = torch.cat([chunks[-1], filler])
        return chunks

    def activations(
        self, x: torch.Tensor | np.ndarray, names: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """Outputs of the named submodules for inputs ``x``, captured with forward hooks.

        A layer's name captures its pre-activation output ``W h + b``; name the activation
        module (e.g. ``act1``) for the post-activation signal. Returns name -> (N, ...).
        Invariant: for a chain, ``activations(x, [last])[last] == forward(x)`` before the
        output activation.
        """
        module = self._require_module()
        modules = dict(module.named_modules())
        unknown = [n for n in names if n not in modules]
        if unknown:
            choices = ", ".join(n for n in modules if n)[:300]
            raise LayerError(
                f"{self.name} has no submodule {unknown[0]!r} to capture; choose from {choices}."
            )
        captured: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        owner = threading.get_ident()  # another thread's forward pass is not captured

        def hook_for(key: str) -> Callable:
            def hook(_mod, _inp, out):
                if threading.get_ident() == owner:
                    captured[key].append(out.detach())

            return hook

        with self.hook_lock:
            handles = [modules[n].register_forward_hook(hook_for(n)) for n in names]
            try:
                n_rows = self.forward(x).shape[0]
            finally:
                for h in handles:
                    h.remove()
        return {n: torch.cat(parts)[:n_rows] for n, parts in captured.items() if parts}

    def __repr__(self) -> str:
        kind = "executable" if self.executable else "weights only"
        return f"Network({self.name!r}, {len(self._layers)} layers, {kind})"
