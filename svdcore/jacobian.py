"""The one Jacobian engine of svdcore: Jacobians as matrix-free linear operators.

A :class:`JacobianOperator` is the Jacobian A = df/dx (n_out x n_in) of a function of one
flat vector at a point x0. It never forms A: ``matvec`` / ``matmat`` are forward-mode
products A v (``torch.func.jvp``), ``rmatvec`` / ``rmatmat`` reverse-mode products A^T u
(``torch.func.vjp``), a block of vectors being pushed through in chunks with ``vmap``.
``dense()`` materialises A (chunked; forward mode when n_in < n_out, else reverse mode)
for the small cases that need the full matrix.

**Memory.** One vector pushed through a function costs about ``2 * itemsize * (n_in + n_out
+ width)`` bytes (primal and tangent of every intermediate; ``width`` the number of
intermediate values of one forward pass, measured with hooks on the leaf modules for a
network). A chunk holds ``chunk = max(1, budget_bytes // that)`` vectors, so the peak extra
memory of any product is about ``budget_bytes`` (default :data:`DEFAULT_BUDGET_BYTES`,
256 MiB), whatever the number of vectors.

For a network (:func:`network_operator`, :func:`split_operators`) the engine runs a private
float64 copy of the module (made once per :class:`~svdcore.network.Network`, used under its
own lock), so user code and other threads keep the original; :func:`network_function` gives
that copy as functions of flat samples to callers that differentiate it themselves (the
inversion by optimisation). A split at module ``l`` (output z_l) is realised by a forward
hook that adds a perturbation ``delta`` to z_l:

    R = dz_l/dx         (d x M)   input -> the split's output
    L = dy/d delta      (N x d)   the split's output -> the network output (through z_l only)
    J = dy/dx           (N x M)   the whole network; J - L R is the part bypassing z_l.

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
from torch.func import functional_call, jvp, vjp, vmap

from .exceptions import DataError, ExecutionError, LayerError
from .network import Network

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

DEFAULT_BUDGET_BYTES = 256 * 2**20

_MODULES64: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def chunk_size(per_vector_bytes: int, budget_bytes: int | None = None) -> int:
    """How many vectors of ``per_vector_bytes`` each fit in ``budget_bytes`` (at least 1)."""
    budget = DEFAULT_BUDGET_BYTES if budget_bytes is None else int(budget_bytes)
    if budget < 1:
        raise DataError(f"the memory budget must be a positive number of bytes, got {budget}.")
    return max(1, budget // max(1, int(per_vector_bytes)))


# --------------------------------------------------------------------------- the operator
class JacobianOperator:
    """The Jacobian A (``shape`` = (n_out, n_in)) of ``f`` at ``x0``, matrix-free.

    ``f`` maps a flat (n_in,) tensor to a flat (n_out,) tensor; ``value`` = f(x0).
    ``context`` (optional) is entered around every evaluation of ``f`` (locks, hooks).
    ``chunk`` vectors are pushed through at once (see the module docstring for the memory
    rule). ``rows`` (B > 1, with ``f_rows``): ``f_rows`` maps (B, n_in) -> (B, n_out) row by
    row independently, and each pass through it carries B vectors, one per row, at the point
    x0 repeated (a fixed-batch program). Invariant (tests): ``dense()`` equals
    ``torch.autograd.functional.jacobian``.
    """

    def __init__(
        self,
        f: Callable[[torch.Tensor], torch.Tensor],
        x0: torch.Tensor,
        *,
        value: torch.Tensor | None = None,
        context: Callable[[], contextlib.AbstractContextManager] | None = None,
        width: int | None = None,
        budget_bytes: int | None = None,
        f_rows: Callable[[torch.Tensor], torch.Tensor] | None = None,
        rows: int = 1,
    ):
        self._f = f
        self._f_rows = f_rows if rows > 1 else None
        self.rows = int(rows) if f_rows is not None else 1
        self._context = context or contextlib.nullcontext
        self.x0 = x0.detach().reshape(-1)
        if value is None:
            with self._context(), torch.no_grad():
                value = f(self.x0)
        self.value = value.detach().reshape(-1)
        self.shape = (int(self.value.numel()), int(self.x0.numel()))
        self.dtype = self.x0.dtype
        item = self.x0.element_size()
        inner = sum(self.shape) if width is None else int(width)
        self.per_vector_bytes = 2 * item * (sum(self.shape) + inner)
        self.chunk = chunk_size(self.per_vector_bytes, budget_bytes)
        if self.rows > 1:  # a pass holds B vectors' worth of values whatever it carries
            self.chunk = self.rows * max(1, self.chunk // self.rows)

    def __repr__(self) -> str:
        return f"JacobianOperator(shape={self.shape}, dtype={self.dtype}, chunk={self.chunk})"

    def _blocks(self, V: torch.Tensor) -> Iterator[torch.Tensor]:
        yield from torch.split(V, self.chunk, dim=1)

    def _packed(self, block: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The columns of ``block`` as (groups, B, n) row packs, zero-padded; and their count."""
        n, c = block.shape
        groups = -(-c // self.rows)
        pad = block.new_zeros(n, groups * self.rows - c)
        return torch.cat([block, pad], dim=1).T.reshape(groups, self.rows, n), c

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        """A V for V (n_in, k) -> (n_out, k), forward mode (k jvps, ``chunk`` at a time)."""
        V = self._check(V, 1)
        x0 = self.x0
        rows = x0.expand(self.rows, -1).contiguous()

        def push(v: torch.Tensor) -> torch.Tensor:
            return jvp(self._f, (x0,), (v,))[1]

        def push_rows(vs: torch.Tensor) -> torch.Tensor:  # (B, n_in) -> (B, n_out)
            return jvp(self._f_rows, (rows,), (vs,))[1]

        out = []
        with self._context(), torch.no_grad():  # the transforms ignore an outer no_grad
            for block in self._blocks(V):
                if self._f_rows is None:
                    out.append(vmap(push)(block.T).T.detach())
                else:
                    packs, c = self._packed(block)
                    done = vmap(push_rows)(packs).reshape(-1, self.shape[0])[:c]
                    out.append(done.T.detach())
        return torch.cat(out, dim=1) if out else V.new_zeros(self.shape[0], 0)

    def rmatmat(self, U: torch.Tensor) -> torch.Tensor:
        """A^T U for U (n_out, k) -> (n_in, k), reverse mode (one forward per chunk)."""
        U = self._check(U, 0)
        out = []
        with self._context(), torch.no_grad():
            for block in self._blocks(U):
                if self._f_rows is None:
                    _, pull = vjp(self._f, self.x0)
                    out.append(vmap(lambda u, pull=pull: pull(u)[0])(block.T).T.detach())
                else:
                    _, pull = vjp(self._f_rows, self.x0.expand(self.rows, -1).contiguous())
                    packs, c = self._packed(block)
                    done = vmap(lambda us, pull=pull: pull(us)[0])(packs)
                    out.append(done.reshape(-1, self.shape[1])[:c].T.detach())
        return torch.cat(out, dim=1) if out else U.new_zeros(self.shape[1], 0)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """A v for v (n_in,) -> (n_out,)."""
        return self.matmat(v.reshape(-1, 1))[:, 0]

    def rmatvec(self, u: torch.Tensor) -> torch.Tensor:
        """A^T u for u (n_out,) -> (n_in,): one forward and one backward pass."""
        return self.rmatmat(u.reshape(-1, 1))[:, 0]

    def dense(self) -> torch.Tensor:
        """A itself (n_out, n_in): identity columns pushed forward when n_in < n_out, rows
        pulled back otherwise (the cheaper number of passes), ``chunk`` at a time."""
        n_out, n_in = self.shape
        if n_in < n_out:
            return self.matmat(torch.eye(n_in, dtype=self.dtype, device=self.x0.device))
        return self.rmatmat(torch.eye(n_out, dtype=self.dtype, device=self.x0.device)).T

    def _check(self, V: torch.Tensor, axis: int) -> torch.Tensor:
        n = self.shape[axis]
        if V.ndim != 2 or V.shape[0] != n:
            raise DataError(
                f"expected vectors of length {n} as columns, got shape {tuple(V.shape)}."
            )
        return V.to(dtype=self.dtype, device=self.x0.device)


def jacobian_operator(
    f: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    budget_bytes: int | None = None,
) -> JacobianOperator:
    """The Jacobian of ``f`` (flat (n_in,) -> flat (n_out,)) at ``x0`` as an operator."""
    return JacobianOperator(f, x0, budget_bytes=budget_bytes)


def value_and_pullback(
    f: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    cotangent: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(x0), J^T u)`` with ``u = cotangent(f(x0))``, in one forward and one backward pass
    (``torch.func.vjp``): the gradient of an objective of the output, e.g. ``u = 2 (y - t)``
    for ``||y - t||^2``. Shapes are those of ``f``'s input and output (not flattened)."""
    with torch.no_grad():
        value, pull = vjp(f, x0.detach())
        return value.detach(), pull(cotangent(value.detach()))[0].detach()


# --------------------------------------------------------------------------- networks
def module64(net: Network, what: str = "this analysis") -> tuple[nn.Module, threading.Lock]:
    """The float64 eval copy of ``net``'s module (made once) and the lock for hooking it."""
    if net.module is None:
        raise ExecutionError(
            f"{net.name} holds weights only; {what} needs a network that runs "
            "(a zoo network, a torch.export .pt2, or a Linear chain with an activation)."
        )
    with _GUARD:
        entry = _MODULES64.get(net)
        if entry is None:
            entry = (net.module_copy().double().eval(), threading.Lock())
            _MODULES64[net] = entry
        return entry


def network_inputs(
    net: Network, x: torch.Tensor | np.ndarray, what: str = "this analysis"
) -> torch.Tensor:
    """``x`` as a float64 batch (B, *input_shape); clear errors for networks that cannot run."""
    module64(net, what)
    if net.input_shape is None:
        raise ExecutionError(f"{net.name} has no known input shape; pass a network that has one.")
    return net._batch(x).double()


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
        one = torch.cat([one, torch.zeros(batch - 1, *shape, dtype=one.dtype)])
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


def network_function(net: Network, what: str = "this analysis") -> NetworkFunction:
    """The :class:`NetworkFunction` of ``net``; ``ExecutionError`` for a weights-only network
    or one with no known input shape."""
    module, lock = module64(net, what)
    if net.input_shape is None:
        raise ExecutionError(f"{net.name} has no known input shape; pass a network that has one.")
    return NetworkFunction(net, module, lock, net.static_batch or 1)


def network_operator(
    net: Network, x: torch.Tensor | np.ndarray, *, budget_bytes: int | None = None
) -> JacobianOperator:
    """J = dy/dx (N x M) of ``net`` at one input ``x`` (any shape with M values), float64."""
    fn = network_function(net)
    xs = _sample(net, x)
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
) -> SplitOperators:
    """R, L and J of ``net`` split at module ``split``, at one input ``x`` (see the module
    docstring). Raises ``LayerError`` for an unknown split, ``ExecutionError`` for a
    weights-only network, ``DataError`` for an input that does not fit."""
    module, lock = module64(net)
    target = submodule(module, split, net)
    xs = _sample(net, x)
    state: dict[str, torch.Tensor | None] = {"delta": None}

    def hook(_mod, _inp, out):
        state["z"] = out
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
        R=common(lambda v: run(v, None)[1], lambda vs: run_rows(vs, None)[1], xs, z),
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
