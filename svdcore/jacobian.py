"""The one Jacobian engine of svdcore: Jacobians of networks as matrix-free linear operators.

The operators themselves (:class:`JacobianOperator`: jvp / vjp products in chunks with a
stated memory bound) are in :mod:`svdcore.operators` and re-exported here.

For a network (:func:`network_operator`, :func:`split_operators`) the engine runs a private
float64 copy of the module (made once per :class:`~svdcore.network.Network`, used under its
own lock), so user code and other threads keep the original; :func:`network_function` gives
that copy as functions of flat samples to callers that differentiate it themselves (the
inversion by optimisation). A split at module ``l`` (output z_l) is realised by a forward
hook that adds a perturbation ``delta`` to z_l:

    R = dz_l/dx         (d x M)   input -> the split's output
    L = dy/d delta      (N x d)   the split's output -> the network output (through z_l only)
    J = dy/dx           (N x M)   the whole network; J - L R is the part bypassing z_l.

R's products end each forward pass at the split (the hook raises once z_l is known), so
they cost the part of the network before it, not the whole.

Fixed-batch ``torch.export`` programs (batch B) are evaluated with the sample in every
row, and each product packs B tangents (or cotangents) into the B rows, one per row (rows
run independently in eval mode): a product costs what it costs at batch 1, not B times it.

The operators are the building blocks of randomized top-k decompositions: ``matmat`` of
a Gaussian block and ``rmatmat`` of its range give a sketch without ever forming A.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jvp, vmap

from .exceptions import ExecutionError, LayerError
from .network import Network
from .operators import (
    DEFAULT_BUDGET_BYTES,
    JacobianOperator,
    chunk_size,
    jacobian_operator,
    value_and_pullback,
)

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "JacobianOperator",
    "NetworkFunction",
    "SplitOperators",
    "chunk_size",
    "jacobian_operator",
    "network_function",
    "network_operator",
    "parameter_jvp",
    "split_operators",
    "value_and_pullback",
]

_MODULES64: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


# --------------------------------------------------------------------------- networks
def module64(
    net: Network,
    what: str = "this analysis",
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[nn.Module, threading.Lock]:
    """The eval copy of ``net``'s module in ``dtype`` (float64 unless asked) on ``device``
    (None: the CPU), made once per device and dtype, and the lock for hooking it."""
    if net.module is None:
        raise ExecutionError(
            f"{net.name} holds weights only; {what} needs a network that runs "
            "(a zoo network, a torch.export .pt2, or a Linear chain with an activation)."
        )
    where = _where(device)
    with _GUARD:
        copies = _MODULES64.setdefault(net, {})
        entry = copies.get((str(where), dtype))
        if entry is None:
            entry = (net.module_copy().to(dtype).eval().to(where), threading.Lock())
            copies[(str(where), dtype)] = entry
        return entry


def network_inputs(
    net: Network, x: torch.Tensor | np.ndarray, what: str = "this analysis"
) -> torch.Tensor:
    """``x`` as a float64 batch (B, *input_shape); clear errors for networks that cannot run."""
    module64(net, what)
    if net.input_shape is None:
        raise ExecutionError(f"{net.name} has no known input shape; pass a network that has one.")
    return net._batch(x).double()


class _Reached(Exception):
    """Raised by the split's hook to end a forward pass once z_l is known (R products)."""


def _where(device: torch.device | str | None) -> torch.device:
    return torch.device("cpu" if device is None else device)


def submodule(module: nn.Module, name: str, net: Network) -> nn.Module:
    """``module.get_submodule(name)`` with a ``LayerError`` naming the choices."""
    try:
        return module.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in module.named_modules() if n]
        raise LayerError(
            f"{net.name} has no module {name!r} to split at; choose one of {', '.join(names)}."
        ) from None


def _one(xs: torch.Tensor, net: Network) -> torch.Tensor:
    """One flat sample as the batch the module accepts: (1, *shape), or zero-padded to the
    fixed batch of a torch.export program traced with one."""
    shape = tuple(net.input_shape)
    one = xs.reshape(1, *shape)
    batch = net.static_batch
    if batch and batch > 1:
        pad = torch.zeros(batch - 1, *shape, dtype=one.dtype, device=one.device)
        one = torch.cat([one, pad])
    return one


def _first(out: torch.Tensor, net: Network) -> torch.Tensor:
    """The output row of the sample (row 0), flattened."""
    return out[:1].reshape(-1) if net.static_batch and net.static_batch > 1 else out.reshape(-1)


def _sample(net: Network, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """One input of any shape holding M values, as a flat float64 (M,) tensor."""
    xt = torch.as_tensor(x)
    if net.input_shape is not None and xt.numel() == int(np.prod(net.input_shape)):
        xt = xt.reshape(net.input_shape)
    checked = network_inputs(net, xt)[0].reshape(-1)  # shape and finiteness checks
    # float64 input stays as it is (a data mean is not rounded to float32)
    return xt.reshape(-1) if xt.dtype == torch.float64 else checked


def _width(module: nn.Module, lock: threading.Lock, net: Network, x: torch.Tensor) -> int:
    """Values computed per sample in one forward pass (outputs of the leaf modules)."""
    total = [0]

    def count(_m, _i, out):
        if isinstance(out, torch.Tensor):
            total[0] += out[:1].numel()

    leaves = [m for m in module.modules() if not list(m.children())]
    with lock:
        handles = [m.register_forward_hook(count) for m in leaves]
        try:
            with torch.no_grad():
                module(_one(x, net))
        finally:
            for h in handles:
                h.remove()
    return total[0]


@dataclass(frozen=True)
class NetworkFunction:
    """``net`` as the engine runs it: its float64 eval copy (``module``), as functions of
    flat samples that ``torch.func`` transforms (vjp, jvp, vmap) go through. Hold ``lock``
    around every pass (splits hook the same copy). ``rows``: the fixed batch B of a
    ``torch.export`` program (1 otherwise). Invariant (tests): ``many`` of B samples equals
    ``one`` of each, row by row (eval mode: rows are independent)."""

    net: Network
    module: nn.Module
    lock: threading.Lock
    rows: int

    def one(self, v: torch.Tensor) -> torch.Tensor:
        """One sample (M values, any shape) -> the flat output (N,); a fixed-batch program
        runs it in row 0 (the other rows zero) and gives back row 0."""
        return _first(self.module(_one(v, self.net)), self.net)

    def many(self, vs: torch.Tensor) -> torch.Tensor:
        """(R, M) -> (R, N), one sample per row; R must be ``rows`` for a fixed batch."""
        return self.module(vs.reshape(vs.shape[0], *self.net.input_shape)).reshape(len(vs), -1)

    def width(self, v: torch.Tensor) -> int:
        """Values one forward pass computes per sample (leaf modules' outputs), at ``v``."""
        return _width(self.module, self.lock, self.net, v.reshape(-1).to(torch.float64))


def network_function(
    net: Network, what: str = "this analysis", *, device: torch.device | str | None = None
) -> NetworkFunction:
    """The :class:`NetworkFunction` of ``net`` on ``device`` (None: the CPU);
    ``ExecutionError`` for a weights-only network or one with no known input shape."""
    module, lock = module64(net, what, device=device)
    if net.input_shape is None:
        raise ExecutionError(f"{net.name} has no known input shape; pass a network that has one.")
    return NetworkFunction(net, module, lock, net.static_batch or 1)


def network_operator(
    net: Network,
    x: torch.Tensor | np.ndarray,
    *,
    budget_bytes: int | None = None,
    device: torch.device | str | None = None,
) -> JacobianOperator:
    """J = dy/dx (N x M) of ``net`` at one input ``x`` (any shape with M values), float64,
    computed on ``device`` (None: the CPU)."""
    fn = network_function(net, device=device)
    xs = _sample(net, x).to(_where(device))
    return JacobianOperator(
        fn.one,
        xs,
        context=lambda: fn.lock,
        width=fn.width(xs),
        budget_bytes=budget_bytes,
        f_rows=fn.many,
        rows=fn.rows,
    )


@dataclass(frozen=True)
class SplitOperators:
    """The network split at module ``split`` at one input ``x`` (M,), float64.

    ``y`` (N,) the output, ``z`` (d,) the split's output (flattened, channels first),
    ``J`` = dy/dx (N x M), ``R`` = dz/dx (d x M), ``L`` = dy/dz (N x d, through z only).
    Invariant: J = L R for a chain; J - L R is the part of J that bypasses the split.
    """

    split: str
    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor
    J: JacobianOperator
    R: JacobianOperator
    L: JacobianOperator


def split_operators(
    net: Network,
    x: torch.Tensor | np.ndarray,
    split: str,
    *,
    budget_bytes: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> SplitOperators:
    """R, L and J of ``net`` split at module ``split``, at one input ``x`` (see the module
    docstring), computed on ``device`` (None: the CPU; every tensor of the result lives
    there) in ``dtype`` (float64 unless asked: float32 products are several times faster
    through convolutions on a CPU, to about 1e-7 relative). Raises ``LayerError`` for an
    unknown split, ``ExecutionError`` for a
    weights-only network, ``DataError`` for an input that does not fit."""
    module, lock = module64(net, device=device, dtype=dtype)
    target = submodule(module, split, net)
    xs = _sample(net, x).to(device=_where(device), dtype=dtype)
    state: dict[str, torch.Tensor | bool | None] = {"delta": None, "stop": False}

    def hook(_mod, _inp, out):
        state["z"] = out
        if state["stop"]:  # R needs nothing after the split: end the forward pass here
            raise _Reached
        delta = state["delta"]
        if delta is None:
            return None
        # one sample (batch 1), or one delta per row of a fixed batch (run_rows)
        return out + delta.reshape(out.shape)

    @contextlib.contextmanager
    def hooked() -> Iterator[None]:
        with lock:
            handle = target.register_forward_hook(hook)
            try:
                yield
            finally:
                handle.remove()

    def run(v: torch.Tensor, delta: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        state["delta"] = delta
        y = _first(module(_one(v, net)), net)
        return y, _first(state["z"], net)

    def upto(call: Callable[[], object]) -> torch.Tensor:
        """z_l of a forward pass stopped at the split (the rest of the network skipped)."""
        state["delta"], state["stop"] = None, True
        try:
            call()
        except _Reached:
            pass
        finally:
            state["stop"] = False
        return state["z"]

    batch = net.static_batch or 1
    x_rows = xs.expand(batch, -1).contiguous()

    def run_rows(
        vs: torch.Tensor, deltas: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:  # a fixed batch: one sample (and delta) per row
        state["delta"] = None if deltas is None else deltas.reshape(batch, *z_shape)
        y = module(vs.reshape(batch, *net.input_shape)).reshape(batch, -1)
        return y, state["z"].reshape(batch, -1)

    with hooked(), torch.no_grad():
        y, z = run(xs, None)
        z_shape = tuple(state["z"].shape[1:])
    y, z = y.detach(), z.detach()
    width = _width(module, lock, net, xs)
    zero = torch.zeros_like(z)

    def common(
        f: Callable, f_rows: Callable, x0: torch.Tensor, value: torch.Tensor
    ) -> JacobianOperator:
        return JacobianOperator(
            f,
            x0,
            value=value,
            context=hooked,
            width=width,
            budget_bytes=budget_bytes,
            f_rows=f_rows,
            rows=batch,
        )

    return SplitOperators(
        split=split,
        x=xs,
        y=y,
        z=z,
        J=common(lambda v: run(v, None)[0], lambda vs: run_rows(vs, None)[0], xs, y),
        R=common(
            lambda v: _first(upto(lambda: module(_one(v, net))), net),
            lambda vs: upto(lambda: module(vs.reshape(batch, *net.input_shape))).reshape(batch, -1),
            xs,
            z,
        ),
        L=common(lambda dl: run(xs, dl)[0], lambda ds: run_rows(x_rows, ds)[0], zero, y),
    )


def parameter_jvp(
    net: Network, x: torch.Tensor | np.ndarray, tangents: dict[str, dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Directional derivatives of the output along parameter tangents, per sample.

    ``tangents`` key -> {parameter name: tangent} (parameters left out: zero tangent);
    returns key -> (B, N) (dy/dtheta) t at every input of the batch ``x`` (float64).
    """
    module, lock = module64(net)
    xb = network_inputs(net, x)
    params = dict(module.named_parameters())
    buffers = dict(module.named_buffers())

    def f(p: dict, xs: torch.Tensor) -> torch.Tensor:
        return _first(functional_call(module, (p, buffers), (_one(xs, net),)), net)

    out: dict[str, torch.Tensor] = {}
    with lock, torch.no_grad():
        for key, given in tangents.items():
            tangent = {k: given.get(k, torch.zeros_like(v)) for k, v in params.items()}

            def along(xs: torch.Tensor, tangent=tangent) -> torch.Tensor:
                return jvp(lambda p: f(p, xs), (params,), (tangent,))[1]

            out[key] = vmap(along)(xb)
    return out


def parameters64(net: Network) -> dict[str, torch.Tensor]:
    """The float64 copy's parameters (name -> tensor), as :func:`parameter_jvp` names them."""
    module, _ = module64(net)
    return {k: v.detach() for k, v in module.named_parameters()}
