"""Make a weights-only chain of Linear layers executable by choosing its activation.

A state_dict whose rank-2 weights form a chain (``0.weight``, ``2.weight``, ... as
``nn.Sequential`` writes them, or ``fc1``, ``fc2``, ... in natural order) with matching
shapes (out of layer i == in of layer i+1) is rebuilt as Linear -> act -> Linear -> ...
with the original module names, so layer names and hooks stay the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
from torch import nn

from ..exceptions import LoadError
from ..sources import natural_key

__all__ = ["ACTIVATIONS", "LinearChain", "build_chain", "chain_order"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
}


def chain_order(tensors: Mapping[str, tuple[int, ...]]) -> list[str] | None:
    """Module names of a Linear chain in forward order, or None if the weights are no chain.

    ``tensors`` maps tensor keys to shapes. Every tensor must be a ``<module>.weight`` of
    rank 2 or a rank-1 ``<module>.bias`` of a listed weight.
    """
    weights = {k[: -len(".weight")]: s for k, s in tensors.items() if k.endswith(".weight")}
    if not weights:
        return None
    for key, shape in tensors.items():
        if key.endswith(".weight") and len(shape) == 2:
            continue
        if key.endswith(".bias") and key[: -len(".bias")] in weights and len(shape) == 1:
            continue
        return None
    order = sorted(weights, key=natural_key)
    for a, b in itertools.pairwise(order):
        if weights[a][0] != weights[b][1]:
            return None
    for name in order:
        bias = tensors.get(f"{name}.bias")
        if bias is not None and bias[0] != weights[name][0]:
            return None
    return order


class LinearChain(nn.Module):
    """Linear layers under their original (possibly dotted) names with activations between."""

    def __init__(
        self,
        names: list[str],
        shapes: Mapping[str, tuple[int, int]],
        biases: Mapping[str, bool],
        *,
        activation: str,
        output_activation: str = "identity",
    ):
        super().__init__()
        self._order = list(names)
        for i, name in enumerate(names):
            out_f, in_f = shapes[name]
            self._place(name, nn.Linear(in_f, out_f, bias=biases[name]))
            act = activation if i < len(names) - 1 else output_activation
            self._place(f"svdscope_act{i + 1}", ACTIVATIONS[act]())
        self._acts = [f"svdscope_act{i + 1}" for i in range(len(names))]

    @property
    def linear_names(self) -> list[str]:
        """Names of the Linear layers, in forward order."""
        return list(self._order)

    @property
    def activation_names(self) -> list[str]:
        """Names of the activation modules, one after each Linear layer."""
        return list(self._acts)

    def steps(self) -> list[tuple[str, nn.Module]]:
        """(name, module) of every step in forward order: Linear, its activation, Linear, ...

        Invariant: applying the modules in this order (after flattening the input) is
        exactly :meth:`forward`.
        """
        out: list[tuple[str, nn.Module]] = []
        for lin, act in zip(self._order, self._acts, strict=True):
            out += [(lin, self.get_submodule(lin)), (act, self.get_submodule(act))]
        return out

    def _place(self, dotted: str, module: nn.Module) -> None:
        parent: nn.Module = self
        *path, leaf = dotted.split(".")
        for part in path:
            child = getattr(parent, part, None)
            if child is None:
                child = nn.Module()
                parent.add_module(part, child)
            parent = child
        parent.add_module(leaf, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        for _name, step in self.steps():
            x = step(x)
        return x


def build_chain(
    tensors: Mapping[str, torch.Tensor],
    *,
    activation: str,
    output_activation: str = "identity",
) -> LinearChain:
    """A :class:`LinearChain` loaded with ``tensors``; ``LoadError`` if they form no chain."""
    for act in (activation, output_activation):
        if act not in ACTIVATIONS:
            raise LoadError(
                f"unknown activation {act!r}; choose one of {', '.join(sorted(ACTIVATIONS))}."
            )
    shapes = {k: tuple(int(s) for s in v.shape) for k, v in tensors.items()}
    order = chain_order(shapes)
    if order is None:
        raise LoadError(
            "these weights are not a chain of Linear layers (rank-2 '<name>.weight' tensors "
            "with matching shapes, plus optional biases), so an activation cannot make them "
            "executable; open them weights-only or export the model with torch.export."
        )
    chain = LinearChain(
        order,
        {n: shapes[f"{n}.weight"] for n in order},
        {n: f"{n}.bias" in tensors for n in order},
        activation=activation,
        output_activation=output_activation,
    )
    try:
        state = {k: v.float() for k, v in tensors.items()}
        chain.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as exc:  # sparse, quantized, odd dtypes
        raise LoadError(
            f"these weights cannot be loaded into Linear layers ({type(exc).__name__}: "
            f"{str(exc)[:200]}); save dense floating-point tensors."
        ) from exc
    return chain.eval()
